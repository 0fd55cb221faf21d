-- Nothing typed at the REPL's prompt may end the session except Ctrl-D or os.exit: a _PROMPT whose
-- __tostring raises (or that is not a string) falls back to the default prompt with a note, and the
-- session goes on to evaluate the next line. Driven through a pseudo-terminal (the prompt is only
-- shown on a terminal).
local support = require "support"

describe("the REPL survives what is typed at it", function()
   it("a _PROMPT whose __tostring raises", function()
      local r = support.pty({
         '_PROMPT = setmetatable({}, {__tostring = function() error("x") end})\r',
         "print(6 * 7)\r",
         '_PROMPT2 = setmetatable({}, {__tostring = function() return {} end})\r',
         "print(\r",
         "'still here')\r",
         "\4",
      }, {env = {RETORT_HISTORY = ""}})
      if not r then return pending("needs util-linux script for a pseudo-terminal") end
      assert.are.equal(0, r.status)
      assert.matches("_PROMPT cannot be shown", r.stdout, 1, true)
      assert.matches("42", r.stdout, 1, true)
      assert.matches("_PROMPT2 cannot be shown", r.stdout, 1, true)
      assert.matches("still here", r.stdout, 1, true)
   end)
end)
