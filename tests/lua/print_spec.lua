-- tostring(tensor): Torch7-style layout, exact strings for small tensors of each dtype, shared
-- scale factors, column blocks, truncation of large tensors, and the footer.
local retort = require "retort"

describe("tostring", function()
   it("prints f32 matrices with 4 decimals and aligned columns", function()
      assert.are.equal(" 1.0000  2.0000\n 3.0000  4.0000\n[retort.FloatTensor of size 2x2]",
                       tostring(retort.tensor{{1, 2}, {3, 4}}))
      assert.are.equal("  1.5000  -2.0000\n 10.0000   0.2500\n[retort.FloatTensor of size 2x2]",
                       tostring(retort.tensor{{1.5, -2}, {10, 0.25}}))
   end)

   it("prints vectors one value per line", function()
      assert.are.equal(" 0.5000\n-1.2500\n[retort.DoubleTensor of size 2]",
                       tostring(retort.tensor({0.5, -1.25}, "f64")))
   end)

   it("prints integer dtypes without decimals", function()
      assert.are.equal("  1   2\n  3  40\n[retort.LongTensor of size 2x2]",
                       tostring(retort.tensor({{1, 2}, {3, 40}}, "i64")))
      assert.are.equal("   1\n   2\n 255\n[retort.ByteTensor of size 3]",
                       tostring(retort.tensor({1, 2, 255}, "u8")))
      assert.are.equal(" -5\n 12\n[retort.LongTensor of size 2]", tostring(retort.tensor({-5, 12}, "i64")))
   end)

   it("prints 0-dim tensors as the value and '(scalar)'", function()
      assert.are.equal("3.5000\n[retort.FloatTensor of size (scalar)]", tostring(retort.tensor(3.5)))
      assert.are.equal("6\n[retort.LongTensor of size (scalar)]", tostring(retort.tensor({1, 2, 3}, "i64"):sum()))
   end)

   it("uses a common scale factor for small or large magnitudes", function()
      assert.are.equal("0.001 *\n 1.0000\n 2.0000\n[retort.DoubleTensor of size 2]",
                       tostring(retort.tensor({0.001, 0.002}, "f64")))
      assert.are.equal("1e+06 *\n 1.0000\n 2.5000\n[retort.DoubleTensor of size 2]",
                       tostring(retort.tensor({1e6, 2.5e6}, "f64")))
   end)

   it("switches to exponent notation across many magnitudes", function()
      assert.are.equal(" 1.0000e+00\n 1.0000e+06\n[retort.DoubleTensor of size 2]",
                       tostring(retort.tensor({1, 1e6}, "f64")))
   end)

   it("prints nan and infinities", function()
      assert.are.equal("    nan\n    inf\n   -inf\n 1.0000\n[retort.DoubleTensor of size 4]",
                       tostring(retort.tensor({0 / 0, math.huge, -math.huge, 1}, "f64")))
   end)

   it("prints higher dims as (i,.,.) slices", function()
      local x = retort.tensor({{{1, 2}, {3, 4}}, {{5, 6}, {7, 8}}}, "i64")
      assert.are.equal("(1,.,.) = \n  1  2\n  3  4\n\n(2,.,.) = \n  5  6\n  7  8\n[retort.LongTensor of size 2x2x2]",
                       tostring(x))
      local y = retort.zeros(2, 1, 1, 1, "u8")
      assert.are.equal("(1,1,.,.) = \n  0\n\n(2,1,.,.) = \n  0\n[retort.ByteTensor of size 2x1x1x1]", tostring(y))
   end)

   it("splits wide matrices into column blocks", function()
      local s = tostring(retort.ones(2, 30))
      assert.truthy(s:find("Columns 1 to 10\n", 1, true))
      assert.truthy(s:find("\nColumns 21 to 30\n", 1, true))
      for line in s:gmatch("[^\n]+") do
         assert.is_true(#line <= 80, line)
      end
   end)

   it("prints empty tensors as the footer only", function()
      assert.are.equal("[retort.FloatTensor of size 0]", tostring(retort.zeros(0)))
      assert.are.equal("[retort.FloatTensor of size 2x0]", tostring(retort.zeros(2, 0)))
   end)

   it("truncates large tensors", function()
      local x = retort.zeros(2000, 2000)
      x:set(1, 1, 1)
      x:set(2000, 2000, 2)
      local s = tostring(x)
      local lines = {}
      for line in s:gmatch("[^\n]+") do lines[#lines + 1] = line end
      assert.are.equal(8, #lines)
      assert.are.equal(" 1.0000  0.0000  0.0000 ...  0.0000  0.0000  0.0000", lines[1])
      assert.are.equal("...", lines[4])
      assert.are.equal(" 0.0000  0.0000  0.0000 ...  0.0000  0.0000  2.0000", lines[7])
      assert.are.equal("[retort.FloatTensor of size 2000x2000]", lines[8])

      local v = retort.arange(1, 2000, "i64")
      assert.are.equal("    1\n    2\n    3\n...\n 1998\n 1999\n 2000\n[retort.LongTensor of size 2000]",
                       tostring(v))

      local t = retort.zeros(10, 10, 20)
      local st = tostring(t)
      assert.truthy(st:find("(3,.,.) = \n", 1, true))
      assert.truthy(st:find("\n...\n\n(8,.,.) = \n", 1, true))
      assert.is_nil(st:find("(4,.,.)", 1, true))
      assert.truthy(st:find("%[retort.FloatTensor of size 10x10x20%]$"))
   end)

   it("shows autograd state in the footer", function()
      local x = retort.tensor{1, 2}:requiresGrad()
      assert.are.equal(" 1.0000\n 2.0000\n[retort.FloatTensor of size 2, requires grad]", tostring(x))
      local y = x * 2
      assert.truthy(tostring(y):find("%[retort%.FloatTensor of size 2, grad_fn=%w+%]$"), tostring(y))
   end)

   it("prints strided views correctly", function()
      local x = retort.tensor{{1, 2}, {3, 4}}:t()
      assert.are.equal(" 1.0000  3.0000\n 2.0000  4.0000\n[retort.FloatTensor of size 2x2]", tostring(x))
   end)

   it("prints a closed tensor", function()
      local s
      do
         local x <close> = retort.zeros(1)
         s = x
      end
      assert.are.equal("retort.Tensor (closed)", tostring(s))
   end)
end)
