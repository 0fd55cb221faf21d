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

-- the whole file, or nil and io.open's message
local function read_all(path)
   local f, err = io.open(path, "rb")
   if not f then return nil, err end
   local s = f:read("a")
   f:close()
   return s
end

--- Read a whole file ("" when missing).
function M.slurp(path) return read_all(path) or "" end

--- Read a whole file that must exist (an error when it cannot be opened, unlike slurp).
function M.read_file(path) return assert(read_all(path)) end

--- Write the string `s` to `path`, replacing the file.
function M.write_file(path, s)
   local f = assert(io.open(path, "wb"))
   f:write(s)
   f:close()
end

--- Does the file `path` exist (can it be opened)?
function M.exists(path)
   local f = io.open(path, "rb")
   if f then f:close() end
   return f ~= nil
end

--- Write `content` to a fresh temporary file and return its path. `suffix` (e.g. ".lua") is
--- appended to the name; the caller removes the file (or leaves it to /tmp).
function M.tmpfile(content, suffix)
   local path = os.tmpname()
   if suffix then
      os.remove(path)
      path = path .. suffix
   end
   M.write_file(path, content or "")
   return path
end

--- A fresh temporary path that does not exist yet (for a run directory); remove it with rmrf.
function M.tmpdir()
   local d = os.tmpname()
   os.remove(d)
   return d
end

--- A fresh, empty temporary directory, created; remove it with rmrf.
function M.mkdtemp()
   local d = M.tmpdir()
   assert(os.execute("mkdir -p " .. M.shquote(d)))
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

--- The folder of the specs (tests/lua/), where the Python helpers they run live.
M.spec_dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "tests/lua"

--- The Python the specs check retort against: Debian's, which finds python3-torch, -h5py, -numpy,
--- -pil, -onnx and -opencv (a python3 earlier on PATH, e.g. a virtualenv, may not).
M.python = "/usr/bin/python3"

--- Can M.python import `modules` (a Python import list, e.g. "h5py, numpy")?
function M.python_has(modules)
   return M.sh(M.python .. " -c " .. M.shquote("import " .. modules)).status == 0
end

--- Is PyTorch there, with the h5py and numpy that tools/torch_state.py and torch_twins.py use too?
function M.have_torch()
   return M.python_has("torch, h5py, numpy")
end

--- Run the Python source `code` (written to a temporary .py file) with M.python and the argument
--- list `args` (each word quoted). Returns the result table of M.sh.
function M.python_run(code, args)
   local script = M.tmpfile(code, ".py")
   local words = {M.python, M.shquote(script)}
   for _, a in ipairs(args or {}) do words[#words + 1] = M.shquote(a) end
   local r = M.sh(table.concat(words, " "))
   os.remove(script)
   return r
end

--- Make a fresh directory and fill it by running the Python fixture generator `code` with the
--- directory as its one argument; the generator failing is an error (with Python's stderr).
--- Returns the directory (remove it with rmrf).
function M.python_fixtures(code)
   local dir = M.mkdtemp()
   local r = M.python_run(code, {dir})
   assert(r.status == 0, "fixture generator failed: " .. r.stderr)
   return dir
end

--- Run retort with `args` and assert its exit status and that its output matches the Lua pattern
--- `want`: stdout when `status` is 0, stderr otherwise (where usage and errors go). Returns the
--- result table of M.run, for further checks.
function M.run_expect(args, status, want)
   local expect = require "luassert" -- busted's assert; required here so that plain scripts can load this file
   local r = M.run(args)
   expect.are.equal(status, r.status, r.stderr)
   expect.matches(want, status == 0 and r.stdout or r.stderr)
   return r
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
