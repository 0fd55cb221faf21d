-- nn.ConvTranspose2d against its definition written as a naive scatter loop here (several strides,
-- paddings and non-square kernels), against PyTorch's F.conv_transpose2d on the same weights (Debian's
-- python3-torch; pending without it), its gradients against central finite differences (f64), and
-- RepDistiller's ConvReg that uses it to double a student map onto a teacher's (FitNet convreg, AB).
local retort = require "retort"
local support = require "support"
local nn = retort.nn

-- out[n, o, y s - p + a, x s - p + b] += in[n, i, y, x] * w[i, o, a, b], plus bias[o]
local function naive(x, w, b, s, p)
   local X, W, B = x:totable(), w:totable(), b and b:totable()
   local n, ci, h, wd = table.unpack(x:shape())
   local _, co, kh, kw = table.unpack(w:shape())
   local oh, ow = (h - 1) * s[1] - 2 * p[1] + kh, (wd - 1) * s[2] - 2 * p[2] + kw
   local out = {}
   for ni = 1, n do
      out[ni] = {}
      for o = 1, co do
         local plane = {}
         for r = 1, oh do
            plane[r] = {}
            for c = 1, ow do plane[r][c] = B and B[o] or 0 end
         end
         for i = 1, ci do
            for y = 0, h - 1 do
               for xx = 0, wd - 1 do
                  for a = 0, kh - 1 do
                     for bb = 0, kw - 1 do
                        local r, c = y * s[1] - p[1] + a, xx * s[2] - p[2] + bb
                        if r >= 0 and r < oh and c >= 0 and c < ow then
                           plane[r + 1][c + 1] = plane[r + 1][c + 1] + X[ni][i][y + 1][xx + 1] * W[i][o][a + 1][bb + 1]
                        end
                     end
                  end
               end
            end
         end
         out[ni][o] = plane
      end
   end
   return out
end

local function max_diff(a, b)
   if type(a) == "number" then return math.abs(a - b) end
   local m = 0
   for i = 1, #a do m = math.max(m, max_diff(a[i], b[i])) end
   return m
end

describe("nn.ConvTranspose2d", function()
   it("computes the transposed convolution's definition", function()
      retort.manualSeed(3)
      for _, c in ipairs{{k = 4, s = 2, p = 1}, {k = 3, s = 1, p = 0}, {k = 3, s = 2, p = 2},
                         {k = {2, 3}, s = {3, 1}, p = {1, 0}}, {k = 1, s = 2, p = 0, bias = false}} do
         local m = nn.ConvTranspose2d(3, 2, c.k, {stride = c.s, padding = c.p, bias = c.bias}):double()
         local x = retort.randn(2, 3, 4, 5, "f64")
         local y = m(x)
         local s = type(c.s) == "table" and c.s or {c.s, c.s}
         local p = type(c.p) == "table" and c.p or {c.p, c.p}
         local want = naive(x, m.weight, m.bias, s, p)
         assert.are.same({2, 2, #want[1][1], #want[1][1][1]}, y:shape())
         assert.is_true(max_diff(y:totable(), want) < 1e-12, "k " .. tostring(c.k))
      end
   end)

   it("matches PyTorch's conv_transpose2d", function()
      if support.sh("/usr/bin/python3 -c 'import torch'").status ~= 0 then
         return pending("python3-torch is not installed for /usr/bin/python3")
      end
      retort.manualSeed(4)
      local m = nn.ConvTranspose2d(3, 5, 4, {stride = 2, padding = 1}):double()
      local x = retort.randn(2, 3, 3, 4, "f64")
      local function lua_list(t) return "[" .. table.concat(t:view(-1):totable(), ",") .. "]" end
      local script = support.tmpfile(([[
import torch, torch.nn.functional as F
x = torch.tensor(%s, dtype=torch.float64).view(2, 3, 3, 4)
w = torch.tensor(%s, dtype=torch.float64).view(3, 5, 4, 4)
b = torch.tensor(%s, dtype=torch.float64)
print(" ".join(repr(v) for v in F.conv_transpose2d(x, w, b, stride=2, padding=1).flatten().tolist()))
]]):format(lua_list(x), lua_list(m.weight), lua_list(m.bias)), ".py")
      local r = support.sh("/usr/bin/python3 " .. script)
      os.remove(script)
      assert.are.equal(0, r.status, r.stderr)
      local y = m(x):view(-1):totable()
      local i = 0
      for v in r.stdout:gmatch("%S+") do
         i = i + 1
         assert.is_true(math.abs(tonumber(v) - y[i]) < 1e-12, ("element %d: %s vs %g"):format(i, v, y[i]))
      end
      assert.are.equal(#y, i)
      assert.are.same({2, 5, 6, 8}, m(x):shape())
   end)

   it("has gradients that match central finite differences (f64)", function()
      retort.manualSeed(5)
      local m = nn.ConvTranspose2d(2, 2, 3, {stride = 2, padding = 1}):double()
      local x = retort.randn(1, 2, 3, 3, "f64"):requiresGrad()
      local target = retort.randn(m(x):shape(), "f64")
      local function loss() return (m(x) * target):sum() end
      loss():backward()
      for _, e in ipairs{{"weight", m.weight}, {"bias", m.bias}, {"input", x}} do
         local t = e[2]
         local flat, grad = t:view(-1), t.grad:clone():view(-1)
         for i = 1, t:numel() do
            local v, plus, minus = flat:get(i), nil, nil
            retort.noGrad(function()
               flat:set(i, v + 1e-6); plus = loss():item()
               flat:set(i, v - 1e-6); minus = loss():item()
               flat:set(i, v)
            end)
            local fd = (plus - minus) / 2e-6
            assert.is_true(math.abs(fd - grad:get(i)) <= 1e-6 * math.max(1, math.abs(fd)),
               ("%s[%d]: analytic %.10g, numeric %.10g"):format(e[1], i, grad:get(i), fd))
         end
      end
   end)

   it("refuses a padding it cannot express", function()
      local ok, err = pcall(nn.ConvTranspose2d, 2, 2, 3, {stride = 2, padding = 3})
      assert.is_false(ok)
      assert.matches("padding <= kernel - 1", err, 1, true)
   end)

   it("lets RepDistiller's ConvReg double a student map onto a teacher's (FitNet convreg, AB)", function()
      retort.manualSeed(6)
      local f = retort.distill.FitNet{variant = "convreg"}
      f:setup({2, 16, 8, 8}, {2, 32, 16, 16})
      assert.are.equal("ConvTranspose2d", f:get("regressor.1").__typename)
      local fs, ft = retort.randn(2, 16, 8, 8), retort.randn(2, 32, 16, 16)
      local loss = f:loss(fs, ft)
      assert.are.same({}, loss:shape())
      local ab = retort.distill.AB{}
      ab:setup({2, 16, 8, 8}, {2, 32, 16, 16})
      assert.are.same({}, ab:loss(fs, ft):shape())
   end)
end)
