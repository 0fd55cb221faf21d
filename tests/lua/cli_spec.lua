-- The `retort` command line: options, scripts and their arguments, errors, stdin, Ctrl-C.
local support = require "support"
local run, tmpfile = support.run, support.tmpfile

describe("retort command line", function()
   it("--version prints the version and the Lua release", function()
      local r = run({"--version"})
      assert.are.equal(0, r.status)
      assert.matches("^retort 0%.1%.0 %(Lua 5%.4%.%d+%)\n$", r.stdout)
      assert.are.equal(r.stdout, run({"-v"}).stdout)
   end)

   it("--help lists every option and the run subcommand", function()
      local r = run({"--help"})
      assert.are.equal(0, r.status)
      for _, word in ipairs({"usage:", "retort run script", "-e code", "-i", "--version", "--help", "-l mod"}) do
         assert.truthy(r.stdout:find(word, 1, true), "help lacks " .. word)
      end
      assert.truthy(r.stdout:find("\n  -  ", 1, true), "help lacks the stdin script '-'")
   end)

   it("rejects an unknown option with status 1 and a hint", function()
      local r = run({"--foo"})
      assert.are.equal(1, r.status)
      assert.truthy(r.stderr:find("retort: unrecognized option '--foo'", 1, true))
      assert.truthy(r.stderr:find("retort --help", 1, true))
      assert.are.equal("", r.stdout)
   end)

   it("-e without code is an error", function()
      local r = run({"-e"})
      assert.are.equal(1, r.status)
      assert.truthy(r.stderr:find("'-e' needs argument", 1, true))
   end)

   it("runs -e code, repeatedly and in order", function()
      local r = run({"-e", "x = 20", "-e", "print(x + 1)"})
      assert.are.equal(0, r.status)
      assert.are.equal("21\n", r.stdout)
   end)

   it("runs -e code before a script", function()
      local script = tmpfile("print('script', x)\n", ".lua")
      local r = run({"-e", "x = 5", script})
      os.remove(script)
      assert.are.equal(0, r.status)
      assert.are.equal("script\t5\n", r.stdout)
   end)

   it("-l requires a module into a global", function()
      local r = run({"-l", "string", "-e", "print(string.rep('a', 3))"})
      assert.are.equal("aaa\n", r.stdout)
   end)

   it("does not start a REPL after -e unless -i is given", function()
      local r = run({"-e", "print 'e'"}, {stdin = "1+1\n"})
      assert.are.equal("e\n", r.stdout)
      r = run({"-e", "y = 41", "-i"}, {stdin = "y + 1\n"})
      assert.are.equal(0, r.status)
      assert.are.equal("42\n", r.stdout)
   end)

   it("runs `retort script.lua args...` with arg and ... set", function()
      local script = tmpfile("print(arg[0], arg[1], arg[2], #arg, select('#', ...), ...)\n", ".lua")
      local r = run({script, "a", "b c"})
      assert.are.equal(0, r.status)
      assert.are.equal(script .. "\ta\tb c\t2\t2\ta\tb c\n", r.stdout)
      os.remove(script)
   end)

   it("runs `retort run script.lua args...` the same way, options going to the script", function()
      local script = tmpfile("print(arg[0], arg[-1], arg[1], arg[2], #arg)\n", ".lua")
      local r = run({"run", script, "--epochs=3", "-e"})
      assert.are.equal(0, r.status)
      assert.are.equal(script .. "\trun\t--epochs=3\t-e\t2\n", r.stdout)
      os.remove(script)
   end)

   it("`retort run` without a script is an error", function()
      local r = run({"run"})
      assert.are.equal(1, r.status)
      assert.truthy(r.stderr:find("retort run: missing script", 1, true))
   end)

   it("reports a missing script file", function()
      local r = run({"/nonexistent/recipe.lua"})
      assert.are.equal(1, r.status)
      assert.truthy(r.stderr:find("cannot open /nonexistent/recipe.lua", 1, true))
   end)

   it("reports a runtime error with its location and a traceback, status 1", function()
      local script = tmpfile("local x = 1\n\nerror('boom here')\n", ".lua")
      local r = run({script})
      os.remove(script)
      assert.are.equal(1, r.status)
      local name = script:match("[^/]+$")
      assert.truthy(r.stderr:find("^retort: [^\n]*" .. name:gsub("%p", "%%%0") .. ":3: boom here\n"), r.stderr)
      assert.truthy(r.stderr:find("stack traceback:", 1, true))
      assert.truthy(r.stderr:find("in main chunk", 1, true))
   end)

   it("reports a syntax error, status 1", function()
      local script = tmpfile("x = = 1\n", ".lua")
      local r = run({script})
      os.remove(script)
      assert.are.equal(1, r.status)
      assert.truthy(r.stderr:find("unexpected symbol near '='", 1, true))
   end)

   it("reports errors in -e code, status 1", function()
      local r = run({"-e", "error('bad -e')"})
      assert.are.equal(1, r.status)
      assert.truthy(r.stderr:find("retort: (command line):1: bad -e", 1, true))
      assert.truthy(r.stderr:find("stack traceback:", 1, true))
   end)

   it("shows non-string error objects", function()
      local r = run({"-e", "error({})"})
      assert.are.equal(1, r.status)
      assert.truthy(r.stderr:find("(error object is a table value)", 1, true))
   end)

   it("lets os.exit set the status", function()
      assert.are.equal(7, run({"-e", "os.exit(7)"}).status)
      assert.are.equal(0, run({"-e", "os.exit(true)"}).status)
      assert.are.equal(1, run({"-e", "os.exit(false)"}).status)
   end)

   it("reads a script from stdin with `-`", function()
      local r = run({"-", "x", "y"}, {stdin = "print('from stdin', ...)\n"})
      assert.are.equal(0, r.status)
      assert.are.equal("from stdin\tx\ty\n", r.stdout)
   end)

   it("bounds OpenMP's idle spinning (GOMP_SPINCOUNT=1000) unless the user chose a wait policy", function()
      local code = "print(os.getenv('GOMP_SPINCOUNT'), os.getenv('OMP_WAIT_POLICY'))"
      local clean = "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT"
      assert.are.equal("1000\tnil\n", run({"-e", code}, {prefix = clean}).stdout)
      assert.are.equal("50\tnil\n", run({"-e", code}, {prefix = clean .. " GOMP_SPINCOUNT=50"}).stdout)
      assert.are.equal("nil\tACTIVE\n", run({"-e", code}, {prefix = clean .. " OMP_WAIT_POLICY=ACTIVE"}).stdout)
   end)

   it("finds its Lua modules, RETORT_LUA_PATH overriding the built-in directory", function()
      local r = run({"-e", "print(require('retort.repl').show({1, 2}))"})
      assert.are.equal(0, r.status, r.stderr)
      assert.are.equal("{1, 2}\n", r.stdout)
      local dir = support.tmpdir()
      assert.is_true(os.execute("mkdir -p " .. dir .. "/mymod"))
      local f = assert(io.open(dir .. "/mymod/init.lua", "w"))
      f:write("return 'found me'\n")
      f:close()
      r = run({"-e", "print((require 'mymod'))"}, {env = {RETORT_LUA_PATH = dir}})
      support.rmrf(dir)
      assert.are.equal("found me\n", r.stdout)
   end)

   it("preloads retort.core", function()
      local r = run({"-e", "print(package.preload['retort.core'] ~= nil)"})
      assert.are.equal("true\n", r.stdout)
   end)

   it("does not bind the global `retort` outside the REPL", function()
      assert.are.equal("nil\n", run({"-e", "print(rawget(_G, 'retort'))"}).stdout)
   end)

   -- `timeout --foreground` signals the child once; without it timeout also signals its own
   -- process group, so the script would get a second Ctrl-C right after catching the first.
   describe("Ctrl-C (SIGINT)", function()
      if not support.have("timeout") then
         pending("coreutils `timeout` is missing")
         return
      end

      it("stops a running script: 'interrupted!', status 130", function()
         local r = run({"-e", "while true do end"}, {prefix = "timeout --foreground --preserve-status -s INT 1"})
         assert.are.equal(130, r.status)
         assert.truthy(r.stderr:find("interrupted", 1, true), r.stderr)
      end)

      it("is a Lua error that a script can catch", function()
         local code = "local ok, e = pcall(function() while true do end end) print('caught', e) os.exit(3)"
         local r = run({"-e", code}, {prefix = "timeout --foreground --preserve-status -s INT 1"})
         assert.are.equal(3, r.status)
         assert.truthy(r.stdout:find("caught\t[^\n]*interrupted!"), r.stdout)
      end)
   end)
end)

describe("recipe options on the command line (retort run recipe.lua ...)", function()
   local RECIPE = [[
-- A tiny recipe for the option tests, which prints its options. The rest of this header is not shown.
-- Second line of the header.
local opts = require("retort.recipe").options({epochs = 10, lr = 0.1, teacherModel = "mlp", flip = false},
   {...}, {epochs = "epochs to train", lr = "learning rate", teacherModel = "mlp or cnn", flip = "random flips"})
print("epochs", opts.epochs, "lr", opts.lr)
]]

   it("--help prints the summary, then each option with its default and description, status 0", function()
      local script = tmpfile(RECIPE, ".lua")
      local r = run({"run", script, "--help"})
      os.remove(script)
      assert.are.equal(0, r.status, r.stderr)
      assert.are.equal("", r.stderr)
      local summary = script .. ": A tiny recipe for the option tests, which prints its options.\n"
      assert.truthy(r.stdout:find(summary, 1, true), r.stdout)
      assert.truthy(r.stdout:find("usage: retort run " .. script .. " [--name=value ...]", 1, true), r.stdout)
      local expected = {{"--epochs=10", "epochs to train"}, {"--flip=false", "random flips"},
                        {"--lr=0.1", "learning rate"}, {"--teacherModel=mlp", "mlp or cnn"}}
      local got = {}
      for head, desc in r.stdout:gmatch("\n  (%-%-%S+) +([^\n]+)") do got[#got + 1] = {head, desc} end
      assert.are.same(expected, got)
      local columns = {}
      for line in r.stdout:gmatch("\n(  %-%-[^\n]+)") do columns[#columns + 1] = line:find("%S", line:find(" ", 5)) end
      for _, c in ipairs(columns) do assert.are.equal(columns[1], c) end -- aligned
      assert.is_nil(r.stdout:find("epochs\t", 1, true)) -- exited before running the recipe
   end)

   it("a mistyped option suggests the known name and exits 2 without a traceback", function()
      local script = tmpfile(RECIPE, ".lua")
      local r = run({"run", script, "--epoch=3"})
      local r2 = run({"run", script, "--lr=fast"})
      local r3 = run({"run", script, "--teachermodel=cnn", "--epochs=2"})
      local ok = run({"run", script, "--epochs=2"})
      os.remove(script)
      assert.are.equal(2, r.status)
      assert.are.equal("", r.stdout)
      assert.truthy(r.stderr:find("^retort: unknown option '%-%-epoch=3' %(did you mean %-%-epochs%?%)\n"), r.stderr)
      local known = "known options: --epochs=10 --flip=false --lr=0.1 --teacherModel=mlp"
      assert.truthy(r.stderr:find(known, 1, true), r.stderr)
      assert.is_nil(r.stderr:find("stack traceback", 1, true))
      assert.are.equal(2, r2.status)
      assert.are.equal("retort: option --lr expects a number, got 'fast'\n", r2.stderr)
      assert.are.equal(2, r3.status)
      assert.truthy(r3.stderr:find("(did you mean --teacherModel?)", 1, true), r3.stderr)
      assert.are.equal(0, ok.status, ok.stderr)
      assert.are.equal("epochs\t2\tlr\t0.1\n", ok.stdout)
   end)

   it("other errors in a script still show a traceback and exit 1", function()
      local r = run({"-e", "error(setmetatable({}, {__tostring = function() return 'plain object' end}))"})
      assert.are.equal(1, r.status)
      assert.are.equal("retort: plain object\n", r.stderr)
      r = run({"-e", "error(setmetatable({exitStatus = 5}, {__tostring = function() return 'five' end}))"})
      assert.are.equal(5, r.status)
      assert.are.equal("retort: five\n", r.stderr)
   end)

   it("every recipe in recipes/ describes every one of its options in --help", function()
      -- what each recipe passes to recipe.options, captured before it runs anything else
      local capture = "local r = require('retort.recipe') r.options = function(d, _, desc) "
         .. "for k, v in pairs(d) do io.write(k, '\\t', v == '' and '\"\"' or tostring(v), '\\t', "
         .. "desc and desc[k] or '', '\\n') end os.exit(0) end"
      local list = support.sh("ls recipes/*.lua")
      assert.are.equal(0, list.status)
      local count = 0
      for path in list.stdout:gmatch("[^\n]+") do
         count = count + 1
         local r = run({"-e", capture, path})
         assert.are.equal(0, r.status, path .. ": " .. r.stderr)
         local opts = {}
         for name, default, desc in r.stdout:gmatch("([^\t\n]+)\t([^\t\n]*)\t([^\n]*)\n") do
            opts[#opts + 1] = {name = name, default = default, desc = desc}
         end
         assert.is_true(#opts > 0, path .. " declares no options")
         local help = run({"run", path, "--help"})
         assert.are.equal(0, help.status, path .. ": " .. help.stderr)
         local flat = help.stdout:gsub("%s+", " ")
         for _, o in ipairs(opts) do
            assert.is_true(o.desc:match("%S") ~= nil, path .. ": option --" .. o.name .. " has no description")
            local shown = ("--%s=%s %s"):format(o.name, o.default, o.desc:gsub("%s+", " "))
            assert.truthy(flat:find(shown, 1, true), path .. ": --help lacks '" .. shown .. "'")
         end
      end
      assert.is_true(count >= 7)
   end)
end)
