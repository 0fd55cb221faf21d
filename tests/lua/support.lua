-- Shared helpers for the Lua specs: run the `retort` binary as a child process and capture what
-- it did. Specs run inside the host itself (`retort /usr/bin/busted ...`), so these helpers use
-- only the standard library: os.execute with stdout/stderr redirected to temporary files.
local M = {}

--- Path of the binary under test: $RETORT_BIN (set by CTest), else build/bin/retort.
M.bin = os.getenv("RETORT_BIN") or "build/bin/retort"
M.build_dir = os.getenv("RETORT_BUILD_DIR") or "build"

--- Quote one word for /bin/sh.
function M.shquote(s)
   s = tostring(s)
   if s:match("^[%w%-%./_=:,+@]+$") then return s end
   return "'" .. s:gsub("'", "'\\''") .. "'"
end

--- Read a whole file ("" when missing).
function M.slurp(path)
   local f = io.open(path, "rb")
   if not f then return "" end
   local s = f:read("a")
   f:close()
   return s
end

--- Write `content` to a fresh temporary file and return its path. `suffix` (e.g. ".lua") is
--- appended to the name; the caller removes the file (or leaves it to /tmp).
function M.tmpfile(content, suffix)
   local path = os.tmpname()
   if suffix then
      os.remove(path)
      path = path .. suffix
   end
   local f = assert(io.open(path, "wb"))
   f:write(content or "")
   f:close()
   return path
end

--- A fresh temporary path that does not exist yet (for a run directory); remove it with rmrf.
function M.tmpdir()
   local d = os.tmpname()
   os.remove(d)
   return d
end

--- Remove a directory tree.
function M.rmrf(dir) os.execute("rm -rf " .. M.shquote(dir)) end

--- Run a shell command line with optional stdin text and environment additions.
--- Returns {stdout = ..., stderr = ..., status = exit status (128+n when killed by signal n)}.
function M.sh(cmd, opts)
   opts = opts or {}
   local out, err = os.tmpname(), os.tmpname()
   local input = M.tmpfile(opts.stdin or "")
   local env = {}
   for k, v in pairs(opts.env or {}) do env[#env + 1] = "export " .. k .. "=" .. M.shquote(v) .. "; " end
   table.sort(env)
   local line = string.format("(%s%s) <%s >%s 2>%s", table.concat(env), cmd,
                              M.shquote(input), M.shquote(out), M.shquote(err))
   local ok, how, code = os.execute(line)
   local r = {stdout = M.slurp(out), stderr = M.slurp(err), cmd = line}
   if how == "signal" then r.status = 128 + code else r.status = code or (ok and 0 or 1) end
   os.remove(out); os.remove(err); os.remove(input)
   return r
end

--- Run retort with the given argument list (each word quoted), e.g. M.run({"-e", "print(1)"}).
--- opts: stdin (text), env (table), prefix (a command put before the binary, e.g. "timeout 5").
function M.run(args, opts)
   opts = opts or {}
   local words = {M.shquote(M.bin)}
   for _, a in ipairs(args or {}) do words[#words + 1] = M.shquote(a) end
   local cmd = table.concat(words, " ")
   if opts.prefix then cmd = opts.prefix .. " " .. cmd end
   return M.sh(cmd, opts)
end

--- Feed the REPL (stdin a pipe) the given lines; returns the result table of M.run.
function M.repl(lines, opts)
   opts = opts or {}
   local text = type(lines) == "table" and (table.concat(lines, "\n") .. "\n") or lines
   return M.run(opts.args or {}, {stdin = text, env = opts.env})
end

--- Is an executable on PATH?
function M.have(cmd)
   local ok = os.execute("command -v " .. M.shquote(cmd) .. " >/dev/null 2>&1")
   return ok == true
end

--- Does `require "retort"` work inside the host (the binding and lua/retort/init.lua exist)?
function M.retort_loads()
   if M._retort_loads == nil then
      M._retort_loads = M.run({"-e", 'assert(require("retort").randn)'}).status == 0
   end
   return M._retort_loads
end

--- Drive retort through a pseudo-terminal with util-linux `script`. `steps` is a list of
--- strings (terminal input; use "\r" for Enter, "\3" Ctrl-C, "\4" Ctrl-D), each sent after
--- `delay` seconds (default 0.4). Returns the result of M.sh (stdout holds the terminal's output).
--- Returns nil when `script` is missing.
function M.pty(steps, opts)
   opts = opts or {}
   if not M.have("script") then return nil end
   local delay = opts.delay or 0.4
   local feed = {}
   for _, s in ipairs(steps) do
      feed[#feed + 1] = "sleep " .. delay
      feed[#feed + 1] = "printf '%s' " .. M.shquote(s)
   end
   feed[#feed + 1] = "sleep " .. delay
   -- `exec`: script runs the command through $SHELL -c; a shell left waiting in between (dash
   -- does not exec the last command) would also get the Ctrl-C and die of it after retort exits.
   local inner = "exec " .. M.shquote(M.bin)
   for _, a in ipairs(opts.args or {}) do inner = inner .. " " .. M.shquote(a) end
   local cmd = "(" .. table.concat(feed, "; ") .. ") | script -qfec " .. M.shquote(inner) .. " /dev/null"
   return M.sh(cmd, {env = opts.env})
end

return M
