-- The REPL, driven through a pipe (no readline: results only, no banner or prompts) and once
-- through a pseudo-terminal (readline, prompts, history, Ctrl-C at the prompt and mid-run).
local support = require "support"

describe("retort REPL (stdin a pipe)", function()
   it("prints expression results and exits 0 at end of input", function()
      local r = support.repl({"1+1", "'a', 2, nil", "=3*3"})
      assert.are.equal(0, r.status)
      assert.are.equal("2\na\t2\tnil\n9\n", r.stdout)
   end)

   it("runs statements silently and keeps globals between lines", function()
      local r = support.repl({"x = 6;", "local y = 1", "x * 7"})
      assert.are.equal("42\n", r.stdout)
   end)

   it("echoes an assignment to one global name, unless the line ends with ';'", function()
      local r = support.repl({"x = 6 * 7", "y = 1;", "z = x + y", "a, b = 1, 2", "c == 1"})
      assert.are.equal("42\n43\nfalse\n", r.stdout)
   end)

   it("continues an incomplete statement over several lines", function()
      local r = support.repl({"function twice(a)", "  local b = a * 2", "  return b", "end", "twice(21)",
                              "t = {", "  1,", "}", "#t"})
      assert.are.equal(0, r.status)
      assert.are.equal("42\n1\n", r.stdout)
   end)

   it("reports an error with a traceback and goes on", function()
      local r = support.repl({"error('oops')", "1 + 2", "nosuch.field", "'still here'"})
      assert.are.equal(0, r.status)
      assert.are.equal("3\nstill here\n", r.stdout)
      assert.truthy(r.stderr:find("stdin:1: oops", 1, true), r.stderr)
      assert.truthy(r.stderr:find("stack traceback:", 1, true))
      assert.truthy(r.stderr:find("attempt to index a nil value (global 'nosuch')", 1, true))
   end)

   it("reports a syntax error and goes on", function()
      local r = support.repl({"x = = 2", "5"})
      assert.are.equal("5\n", r.stdout)
      assert.truthy(r.stderr:find("unexpected symbol", 1, true))
   end)

   it("reports a statement left incomplete at end of input", function()
      local r = support.repl({"for i = 1, 2 do"})
      assert.are.equal(0, r.status)
      assert.truthy(r.stderr:find("'end' expected", 1, true))
   end)

   it("shows plain tables briefly and uses __tostring otherwise", function()
      local r = support.repl({"{1, 'two', x = {y = {z = {}}}}",
                              "setmetatable({}, {__tostring = function() return 'custom!' end})",
                              "t = {} for i = 1, 100 do t[i] = i end return t"})
      local lines = {}
      for l in r.stdout:gmatch("[^\n]*\n") do lines[#lines + 1] = l end
      assert.are.equal('{1, "two", x = {y = {...}}}\n', lines[1])
      assert.are.equal("custom!\n", lines[2])
      assert.matches("^{1, 2, 3, .*%.%.%. %(100 entries%)}\n$", lines[3])
   end)

   it("has help()", function()
      local r = support.repl({"help()"})
      assert.are.equal(0, r.status)
      assert.truthy(r.stdout:find("retort.tensor", 1, true))
      assert.truthy(r.stdout:find("backward", 1, true))
      assert.truthy(r.stdout:find("README", 1, true))
   end)

   it("quits on os.exit with its status", function()
      local r = support.repl({"1", "os.exit(4)", "2"})
      assert.are.equal(4, r.status)
      assert.are.equal("1\n", r.stdout)
   end)

   it("runs after a script with -i", function()
      local script = support.tmpfile("z = 'from script'\n", ".lua")
      local r = support.repl({"z"}, {args = {"-i", script}})
      os.remove(script)
      assert.are.equal("from script\n", r.stdout)
   end)

   it("pre-binds the global `retort`; tensors print with their size", function()
      if not support.retort_loads() then
         pending("require \"retort\" (with retort.randn) does not work yet: binding or init.lua incomplete")
         return
      end
      local r = support.repl({"type(retort)", "x = retort.randn(3, 4)", "x"})
      assert.are.equal(0, r.status, r.stderr)
      assert.truthy(r.stdout:find("^table\n"), r.stdout)
      assert.truthy(r.stdout:find("[retort.FloatTensor of size 3x4]", 1, true), r.stdout)
   end)
end)

describe("retort REPL (pseudo-terminal)", function()
   if not support.have("script") then
      pending("util-linux `script` is missing: no pseudo-terminal tests")
      return
   end

   local history = os.tmpname()
   local env = {RETORT_HISTORY = history, TERM = "dumb"}
   local r -- one session serves all the checks below

   setup(function()
      os.remove(history)
      r = support.pty({"1+1\r", "function g()\r", "return 7 end\r", "g()\r", "abc\3", "'after ctrl-c'\r",
                       "while true do end\r", "\3", "'after interrupt'\r",
                       "strin\t.up\t('tab')\r", "\4"},
                      {env = env, delay = 0.5})
   end)

   teardown(function() os.remove(history) end)

   it("shows the banner and the prompts", function()
      assert.truthy(r.stdout:find("retort 0.1.0 \u{2014} Lua 5.4 \u{2014} type help() or Ctrl-D to quit", 1, true), r.stdout)
      assert.truthy(r.stdout:find("> 1+1", 1, true), r.stdout)
      assert.truthy(r.stdout:find(">> return 7 end", 1, true), r.stdout)
   end)

   it("prints results", function()
      assert.truthy(r.stdout:find("\n2\r?\n"), r.stdout)
      assert.truthy(r.stdout:find("\n7\r?\n"), r.stdout)
   end)

   it("Ctrl-C at the prompt clears the line and keeps the session", function()
      assert.truthy(r.stdout:find("\nafter ctrl%-c\r?\n"), r.stdout)
   end)

   it("Ctrl-C stops a running computation and returns to the prompt", function()
      assert.truthy(r.stdout:find("interrupted!", 1, true), r.stdout)
      assert.truthy(r.stdout:find("\nafter interrupt\r?\n"), r.stdout)
   end)

   it("completes names and fields with Tab", function()
      assert.truthy(r.stdout:find("string.upper('tab')", 1, true), r.stdout)
      assert.truthy(r.stdout:find("\nTAB\r?\n"), r.stdout)
   end)

   it("Ctrl-D quits with status 0", function()
      assert.are.equal(0, r.status, r.stdout .. r.stderr)
   end)

   it("writes the history file", function()
      local h = support.slurp(history)
      assert.truthy(h:find("1+1\n", 1, true), h)
      assert.truthy(h:find("function g()\nreturn 7 end\n", 1, true), h)
      assert.truthy(h:find("'after interrupt'", 1, true), h)
   end)
end)
