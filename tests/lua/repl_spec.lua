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

   it("help(f) prints the doc comment above f's definition in its source file", function()
      if not support.retort_loads() then return pending("require \"retort\" does not work yet") end
      -- the reference: the comment lines right above `function M.kd(` in the source, read here
      local lines = {}
      for l in support.slurp("lua/retort/distill/logits.lua"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
      local def
      for i, l in ipairs(lines) do if l:match("^function M%.kd%(") then def = i end end
      assert.is_not_nil(def, "function M.kd not found in lua/retort/distill/logits.lua")
      local doc = {}
      for i = def - 1, 1, -1 do
         if not lines[i]:match("^%-%-%-") then break end
         table.insert(doc, 1, (lines[i]:gsub("^%-%-%- ?", "")))
      end
      assert.is_true(#doc >= 3)
      local r = support.repl({"help(retort.distill.kd)"})
      assert.are.equal(0, r.status, r.stderr)
      assert.are.equal("", r.stderr)
      assert.truthy(r.stdout:find("^retort%.distill%.kd%(s, t, opts%)\n"), r.stdout)
      assert.truthy(r.stdout:find("logits.lua:" .. def .. "\n", 1, true), r.stdout)
      local expected = "\n\n" .. table.concat(doc, "\n") .. "\n"
      assert.are.equal(expected, r.stdout:sub(-#expected)) -- the whole comment, and nothing after it
      -- by name, and a method shown as Class:method
      r = support.repl({"help('retort.distill.kd')", "help(retort.nn.Module.forward)"})
      assert.truthy(r.stdout:find(table.concat(doc, "\n"), 1, true), r.stdout)
      assert.truthy(r.stdout:find("retort.nn.Module:forward(x, opts)\n", 1, true), r.stdout)
   end)

   it("help says what it knows of C functions, lists a module's functions, a value's methods", function()
      if not support.retort_loads() then return pending("require \"retort\" does not work yet") end
      local r = support.repl({"help(retort.randn)", "help(retort.distill)", "x = retort.zeros(2, 3);", "help(x)",
                              "help(nosuch)", "help('retort.nosuch')"})
      assert.are.equal(0, r.status, r.stderr)
      assert.truthy(r.stdout:find("retort.randn: a C function", 1, true), r.stdout)
      assert.truthy(r.stdout:find("\nretort.distill: %d+ functions\n"), r.stdout)
      assert.truthy(r.stdout:find("\n  kd +kd%(s, t, {T = 4"), r.stdout) -- its first doc line
      assert.truthy(r.stdout:find("\n  kl +kl%(s, t, {T = 1}%)"), r.stdout)
      assert.truthy(r.stdout:find("userdata: [retort.FloatTensor of size 2x3]\nmethods: ", 1, true), r.stdout)
      assert.truthy(r.stdout:find("methods: [^\n]*narrow, "), r.stdout)
      assert.truthy(r.stdout:find("help: the value is nil", 1, true), r.stdout)
      assert.truthy(r.stdout:find("help: no value named 'retort.nosuch'", 1, true), r.stdout)
   end)

   it("completes names, fields, tensor methods and inherited module methods (retort.repl.complete)", function()
      if not support.retort_loads() then return pending("require \"retort\" does not work yet") end
      local r = support.repl({
         "c = require('retort.repl').complete;",
         "x = retort.randn(2, 3);",
         "net = retort.nn.Sequential():add('fc', retort.nn.Linear(2, 3));",
         "table.concat(c('x:na'), ' ')",
         "table.concat(c('net:for'), ' ')",
         "table.concat(c('net:zeroG'), ' ')",
         "table.concat(c('retort.ra'), ' ')",
         "table.concat(c('retort.pl'), ' ')",
         "table.concat(c('retort.nn.Lin'), ' ')",
         "table.concat(c('string.up'), ' ')",
         "table.concat(c('whi'), ' ')",
         "t = {f = print, n = 1, _h = 2};",
         "table.concat(c('t:'), ' ')",
         "table.concat(c('t.'), ' ')",
         "table.concat(c('t._'), ' ')",
         "#c('nosuch.x'), #c('x:na.y'), #c('t..f')",
      })
      assert.are.equal(0, r.status, r.stderr)
      local lines = {}
      for l in r.stdout:gmatch("[^\n]*\n") do lines[#lines + 1] = l:sub(1, -2) end
      assert.are.equal("x:narrow", lines[1])
      assert.are.equal("net:forward", lines[2]) -- Sequential's __index function -> Sequential -> nn.Module
      assert.are.equal("net:zeroGrad", lines[3])
      local words = {}
      for w in lines[4]:gmatch("%S+") do words[w] = true end
      assert.is_true(words["retort.rand"] and words["retort.randn"], lines[4])
      assert.are.equal("retort.plot", lines[5])      -- a submodule not loaded yet
      assert.are.equal("retort.nn.Linear", lines[6]) -- through a submodule loaded on the way
      assert.are.equal("string.upper", lines[7])
      assert.are.equal("while", lines[8])
      assert.are.equal("t:f", lines[9])             -- after ':' only functions
      assert.are.equal("t.f t.n", lines[10])         -- '_' names only when asked for
      assert.are.equal("t._h", lines[11])
      assert.are.equal("0\t0\t0", lines[12])
   end)

   it("completion never calls an __index function and survives cycles", function()
      local r = support.repl({
         "c = require('retort.repl').complete;",
         "called = 0",
         "p = setmetatable({a1 = 1}, {__index = function(t, k) called = called + 1 return {} end});",
         "table.concat(c('p.a'), ' ')", "#c('p.zz.y')",
         "loop = {}; setmetatable(loop, {__index = loop}); loop.k = 1;",
         "table.concat(c('loop.'), ' ')",
         "hidden = setmetatable({}, {__index = {m = print}, __metatable = false});",
         "table.concat(c('hidden:'), ' ')",
         "called",
      })
      assert.are.equal(0, r.status, r.stderr)
      assert.are.equal("0\np.a1\n0\nloop.k\nhidden:m\n0\n", r.stdout)
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
                       "strin\t.up\t('tab')\r", "t = retort.zeros(4, 2);\r", "t:nu\t()\r", "\4"},
                      {env = env, delay = 0.5})
   end)

   teardown(function() os.remove(history) end)

   it("shows the banner and the prompts", function()
      assert.truthy(r.stdout:find("retort 0.1.0 \u{2014} Lua 5.4 \u{2014} type help() or Ctrl-D to quit", 1, true),
                    r.stdout)
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

   it("completes tensor methods with Tab (through the metatable, no code run)", function()
      assert.truthy(r.stdout:find("t:numel()", 1, true), r.stdout)
      assert.truthy(r.stdout:find("\n8\r?\n"), r.stdout)
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
