-- The tensor surface of the Lua binding (DESIGN.md §3): constructors, shapes, views that share
-- storage, dtype conversion, 1-based indexing, broadcasting, reductions, memory behaviour.
local retort = require "retort"

local function close_to(a, b, tol)
   return math.abs(a - b) <= (tol or 1e-5) * math.max(1, math.abs(a), math.abs(b))
end

-- Deep comparison of nested number tables with a tolerance.
local function assert_table_near(expected, got, tol, path)
   path = path or "x"
   assert.are.equal("table", type(got), path .. " is not a table")
   assert.are.equal(#expected, #got, path .. ": length")
   for i = 1, #expected do
      local e, g = expected[i], got[i]
      if type(e) == "table" then
         assert_table_near(e, g, tol, path .. "[" .. i .. "]")
      else
         assert.is_true(close_to(e, g, tol), ("%s[%d]: expected %s, got %s"):format(path, i, e, g))
      end
   end
end

describe("retort.tensor", function()
   it("builds tensors from nested tables (f32 by default)", function()
      local x = retort.tensor{{1, 2, 3}, {4, 5, 6}}
      assert.are.same({2, 3}, x:shape())
      assert.are.equal("f32", x:dtype())
      assert.are.equal("retort.FloatTensor", x:type())
      assert.are.equal("cpu", x:device())
      assert.are.same({{1, 2, 3}, {4, 5, 6}}, x:totable())
      assert.are.equal(2, x:dim())
      assert.are.equal(6, x:numel())
      assert.are.equal(3, x:size(2))
      assert.are.equal(3, x:size(-1))
      assert.are.same({2, 3}, x:size())
      assert.are.same({3, 1}, x:stride())
      assert.is_true(x:isContiguous())
   end)

   it("accepts dtype names", function()
      for name, dt in pairs{f32 = "f32", float = "f32", f64 = "f64", double = "f64", i64 = "i64",
                            long = "i64", u8 = "u8", byte = "u8"} do
         local x = retort.tensor({1, 2, 3}, name)
         assert.are.equal(dt, x:dtype())
         assert.are.same({1, 2, 3}, x:totable())
      end
      assert.are.equal("retort.DoubleTensor", retort.tensor({1}, "f64"):type())
      assert.are.equal("retort.LongTensor", retort.tensor({1}, "i64"):type())
      assert.are.equal("retort.ByteTensor", retort.tensor({1}, "u8"):type())
   end)

   it("keeps i64 values exact and returns Lua integers for integer dtypes", function()
      local big = math.tointeger(2^53) + 1 -- no double holds it
      local x = retort.tensor({big, -7}, "i64")
      assert.are.equal(big, x:get(1))
      assert.are.equal(math.type(x:get(2)), "integer")
      assert.are.equal(big, x:totable()[1])
   end)

   it("makes 0-dim tensors from numbers", function()
      local s = retort.tensor(3.5)
      assert.are.equal(0, s:dim())
      assert.are.same({}, s:shape())
      assert.are.equal(3.5, s:item())
      assert.are.equal(1, s:numel())
   end)

   it("handles empty tables", function()
      assert.are.same({0}, retort.tensor{}:shape())
      assert.are.same({2, 0}, retort.tensor{{}, {}}:shape())
   end)

   it("reports ragged tables clearly", function()
      local ok, err = pcall(retort.tensor, {{1, 2}, {3, 4, 5}})
      assert.is_false(ok)
      assert.truthy(err:find("retort.tensor: ragged nested table: row 2 has 3 elements, expected 2", 1, true))
      ok, err = pcall(retort.tensor, {{1, 2}, 3})
      assert.is_false(ok)
      assert.truthy(err:find("ragged nested table", 1, true))
      ok, err = pcall(retort.tensor, {1, "a"})
      assert.is_false(ok)
      assert.truthy(err:find("entry 2 is a string", 1, true))
   end)

   it("copies an existing tensor", function()
      local x = retort.tensor{1, 2}
      local y = retort.tensor(x)
      y:fill_(9)
      assert.are.same({1, 2}, x:totable())
      assert.are.equal("f64", retort.tensor(x, "f64"):dtype())
   end)
end)

describe("filled constructors", function()
   it("take sizes as varargs or a table, and a trailing dtype", function()
      assert.are.same({2, 3}, retort.zeros(2, 3):shape())
      assert.are.same({2, 3}, retort.zeros{2, 3}:shape())
      assert.are.same({{0, 0}}, retort.zeros(1, 2):totable())
      assert.are.same({{1, 1}, {1, 1}}, retort.ones{2, 2}:totable())
      assert.are.equal("i64", retort.ones(3, "i64"):dtype())
      assert.are.equal("f64", retort.zeros({3}, "f64"):dtype())
      assert.are.same({4}, retort.zeros(4):shape())
      assert.are.same({2, 2}, retort.empty(2, 2):shape())
      assert.are.same({{7, 7, 7}, {7, 7, 7}}, retort.full({2, 3}, 7):totable())
      assert.are.same({{2.5, 2.5}}, retort.full(1, 2, 2.5):totable())
      assert.are.equal("i64", retort.full({2}, 3, "i64"):dtype())
      assert.are.equal(0, retort.zeros():dim())
   end)
end)

describe("random constructors", function()
   it("are reproducible under manualSeed", function()
      retort.manualSeed(7)
      local a = retort.randn(3, 4):totable()
      retort.manualSeed(7)
      local b = retort.randn{3, 4}:totable()
      assert.are.same(a, b)
      local c = retort.randn(3, 4):totable()
      assert.are_not.same(a, c)
   end)

   it("rand draws from [0, 1)", function()
      retort.manualSeed(1)
      local x = retort.rand(1000)
      assert.is_true(x:min():item() >= 0)
      assert.is_true(x:max():item() < 1)
      assert.is_true(close_to(x:mean():item(), 0.5, 0.1))
      assert.are.equal("f64", retort.rand(2, "f64"):dtype())
   end)

   it("randn has about zero mean and unit variance", function()
      retort.manualSeed(2)
      local x = retort.randn(10000)
      assert.is_true(math.abs(x:mean():item()) < 0.05)
      local var = (x * x):mean():item()
      assert.is_true(math.abs(var - 1) < 0.05)
   end)

   it("randperm is a permutation of 1..n", function()
      local p = retort.randperm(10)
      assert.are.equal("i64", p:dtype())
      local v = p:totable()
      table.sort(v)
      assert.are.same({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, v)
   end)

   it("randint includes both bounds", function()
      retort.manualSeed(3)
      local x = retort.randint(1, 3, {2000})
      assert.are.equal("i64", x:dtype())
      assert.are.same({2000}, x:shape())
      assert.are.equal(1, x:min():item())
      assert.are.equal(3, x:max():item())
      assert.are.same({2, 5}, retort.randint(0, 9, 2, 5):shape())
   end)
end)

describe("arange", function()
   it("includes its end like Torch7's range", function()
      assert.are.same({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, retort.arange(1, 10):totable())
      assert.are.same({1, 2, 3}, retort.arange(3):totable())
      assert.are.same({0, 2, 4}, retort.arange(0, 5, 2):totable())
      assert.are.same({5, 4, 3}, retort.arange(5, 3, -1):totable())
      assert.are.equal(11, retort.arange(0, 1, 0.1):numel())
      assert.are.equal("i64", retort.arange(1, 4, "i64"):dtype())
      assert.are.equal("f32", retort.arange(1, 4):dtype())
   end)
end)

describe("views", function()
   it("share storage with their source", function()
      local x = retort.zeros(2, 3)
      local v = x:view(6)
      v:fill_(5)
      assert.are.same({{5, 5, 5}, {5, 5, 5}}, x:totable())
      x:narrow(2, 2, 2):fill_(1)
      assert.are.same({{5, 1, 1}, {5, 1, 1}}, x:totable())
      x:select(1, 2):fill_(3)
      assert.are.same({{5, 1, 1}, {3, 3, 3}}, x:totable())
      x:transpose(1, 2):select(1, 1):fill_(0)
      assert.are.same({{0, 1, 1}, {0, 3, 3}}, x:totable())
   end)

   it("view/reshape accept varargs, tables and -1", function()
      local x = retort.arange(1, 6)
      assert.are.same({{1, 2, 3}, {4, 5, 6}}, x:view(2, 3):totable())
      assert.are.same({{1, 2}, {3, 4}, {5, 6}}, x:view{3, -1}:totable())
      assert.are.same({2, 3}, x:reshape(-1, 3):shape())
      local t = x:view(2, 3):t()
      assert.is_false(t:isContiguous())
      assert.are.same({{1, 4}, {2, 5}, {3, 6}}, t:reshape(3, 2):totable())
   end)

   it("narrow and select are 1-based", function()
      local x = retort.tensor{{1, 2, 3}, {4, 5, 6}}
      assert.are.same({{2, 3}, {5, 6}}, x:narrow(2, 2, 2):totable())
      assert.are.same({{4, 5, 6}}, x:narrow(1, 2, 1):totable())
      assert.are.same({4, 5, 6}, x:select(1, 2):totable())
      assert.are.same({3, 6}, x:select(2, 3):totable())
      assert.are.same({3, 6}, x:select(2, -1):totable())
   end)

   it("transpose, t, permute", function()
      local x = retort.tensor{{1, 2, 3}, {4, 5, 6}}
      assert.are.same({{1, 4}, {2, 5}, {3, 6}}, x:t():totable())
      assert.are.same({{1, 4}, {2, 5}, {3, 6}}, x:transpose(1, 2):totable())
      local y = retort.arange(1, 24):view(2, 3, 4)
      local p = y:permute(3, 1, 2)
      assert.are.same({4, 2, 3}, p:shape())
      assert.are.equal(y:get(2, 3, 4), p:get(4, 2, 3))
      assert.are.same({4, 2, 3}, y:permute{-1, 1, 2}:shape())
   end)

   it("expand, unsqueeze, squeeze, flatten", function()
      local x = retort.tensor{1, 2, 3}
      assert.are.same({{1, 2, 3}, {1, 2, 3}}, x:expand(2, 3):totable())
      assert.are.same({{1, 2, 3}, {1, 2, 3}}, x:view(1, 3):expand(2, -1):totable())
      assert.are.same({1, 3}, x:unsqueeze(1):shape())
      assert.are.same({3, 1}, x:unsqueeze(2):shape())
      assert.are.same({3, 1}, x:unsqueeze(-1):shape())
      local y = retort.zeros(1, 3, 1)
      assert.are.same({3}, y:squeeze():shape())
      assert.are.same({3, 1}, y:squeeze(1):shape())
      assert.are.same({1, 3}, y:squeeze(3):shape())
      local z = retort.zeros(2, 3, 4)
      assert.are.same({24}, z:flatten():shape())
      assert.are.same({2, 12}, z:flatten(2):shape())
      assert.are.same({6, 4}, z:flatten(1, 2):shape())
   end)

   it("contiguous copies strided views; clone never shares; detach does", function()
      local x = retort.tensor{{1, 2}, {3, 4}}
      local c = x:t():contiguous()
      assert.is_true(c:isContiguous())
      assert.are.same({{1, 3}, {2, 4}}, c:totable())
      local k = x:clone()
      k:fill_(0)
      assert.are.same({{1, 2}, {3, 4}}, x:totable())
      local d = x:detach()
      d:fill_(9)
      assert.are.same({{9, 9}, {9, 9}}, x:totable())
   end)
end)

describe("dtype and device conversion", function()
   it("converts between dtypes", function()
      local x = retort.tensor{1.7, -2.2, 3}
      assert.are.equal("f64", x:double():dtype())
      local l = x:long()
      assert.are.equal("i64", l:dtype())
      assert.are.same({1, -2, 3}, l:totable())
      assert.are.equal("u8", retort.tensor{1, 2}:byte():dtype())
      assert.are.equal("f32", l:float():dtype())
      assert.are.equal("f64", x:to("double"):dtype())
      assert.are.equal("i64", x:to(l):dtype())
      assert.are.equal(x, x:float()) -- a no-op conversion returns the tensor itself
      assert.are.equal(x, x:cpu())
   end)
end)

describe("element access", function()
   it("get/set use 1-based indices (negative count from the end)", function()
      local x = retort.zeros(2, 3)
      x:set(2, 3, 7)
      x:set(1, -1, 4)
      assert.are.equal(7, x:get(2, 3))
      assert.are.equal(7, x:get(-1, -1))
      assert.are.same({{0, 0, 4}, {0, 0, 7}}, x:totable())
      assert.are.equal(x, x:set(1, 1, 1))
   end)

   it("x[i] selects along dim 1", function()
      local x = retort.tensor{{1, 2}, {3, 4}}
      assert.are.same({3, 4}, x[2]:totable())
      assert.are.equal(4, x[2][2])
      assert.are.equal(2, #x)
      x[1] = 0
      assert.are.same({{0, 0}, {3, 4}}, x:totable())
      x[2] = retort.tensor{5, 6}
      assert.are.same({{0, 0}, {5, 6}}, x:totable())
      local v = retort.tensor({10, 20, 30}, "i64")
      assert.are.equal(30, v[3])
      assert.are.equal(30, v[-1])
   end)

   it("item returns a number", function()
      assert.are.equal(6, retort.tensor{{1, 2, 3}}:sum():item())
      assert.are.equal("integer", math.type(retort.tensor({1, 2}, "i64"):sum():item()))
      assert.are.equal(5, retort.tensor{5}:item())
   end)
end)

describe("arithmetic", function()
   local a = retort.tensor{{1, 2, 3}, {4, 5, 6}}
   local b = retort.tensor{10, 20, 30}

   it("broadcasts like NumPy", function()
      assert.are.same({{11, 22, 33}, {14, 25, 36}}, (a + b):totable())
      assert.are.same({{-9, -18, -27}, {-6, -15, -24}}, (a - b):totable())
      assert.are.same({{10, 40, 90}, {40, 100, 180}}, (a * b):totable())
      assert_table_near({{0.1, 0.1, 0.1}, {0.4, 0.25, 0.2}}, (a / b):totable())
      local col = retort.tensor{{1}, {2}}
      assert.are.same({{10, 20, 30}, {20, 40, 60}}, (col * b):totable())
      assert.are.same({2, 3}, (col + b):shape())
   end)

   it("mixes numbers on either side", function()
      local x = retort.tensor{1, 2, 4}
      assert.are.same({3, 4, 6}, (x + 2):totable())
      assert.are.same({3, 4, 6}, (2 + x):totable())
      assert.are.same({-1, 0, 2}, (x - 2):totable())
      assert.are.same({1, 0, -2}, (2 - x):totable())
      assert.are.same({3, 6, 12}, (x * 3):totable())
      assert.are.same({3, 6, 12}, (3 * x):totable())
      assert.are.same({0.5, 1, 2}, (x / 2):totable())
      assert.are.same({4, 2, 1}, (4 / x):totable())
      assert.are.same({-1, -2, -4}, (-x):totable())
      assert.are.same({1, 4, 16}, (x ^ 2):totable())
      assert.are.same({3, 4, 6}, x:add(2):totable())
      assert.are.same({0, 1, 3}, x:sub(1):totable())
      assert.are.same({2, 4, 8}, x:mul(2):totable())
      assert.are.same({0.25, 0.5, 1}, x:div(4):totable())
      local third = (retort.tensor{1} / 3):item()
      assert.are.equal((retort.tensor{1} / retort.tensor{3}):item(), third)
   end)

   it("unary math", function()
      local x = retort.tensor({-1, 0, 4}, "f64")
      assert_table_near({math.exp(-1), 1, math.exp(4)}, x:exp():totable())
      assert_table_near({0, 0, 4}, x:relu():totable())
      assert_table_near({1, 0, 4}, x:abs():totable())
      assert_table_near({1, 0, -4}, x:neg():totable())
      assert_table_near({2}, retort.tensor{4}:sqrt():totable())
      assert_table_near({math.log(4)}, retort.tensor{4}:log():totable())
      assert_table_near({0.25}, retort.tensor{4}:reciprocal():totable())
      assert_table_near({1 / (1 + math.exp(1)), 0.5}, retort.tensor{-1, 0}:sigmoid():totable())
      -- Lua 5.4 has no math.tanh: the closed form (e^2v - 1) / (e^2v + 1) is the reference
      local function tanh(v) return (math.exp(2 * v) - 1) / (math.exp(2 * v) + 1) end
      assert_table_near({tanh(-2), tanh(-0.5), 0, tanh(1), tanh(3)}, retort.tensor{-2, -0.5, 0, 1, 3}:tanh():totable())
      assert_table_near({tanh(-2), tanh(1)}, retort.tensor({-2, 1}, "f64"):tanh():totable(), 1e-12)
      assert_table_near({1, 16}, retort.tensor{1, 2}:pow(4):totable())
      assert_table_near({0, 0, 2}, x:clamp(0, 2):totable())
      assert_table_near({-1, 0, 2}, x:clamp(nil, 2):totable())
      assert_table_near({0, 0, 4}, x:clamp(0):totable())
      assert_table_near({0, 0, 4}, x:maximum(0):totable())
      assert_table_near({-1, 0, 1}, x:minimum(retort.tensor({1, 1, 1}, "f64")):totable())
      assert_table_near({-2.5, 0.5, 12.5}, x:affine(3, 0.5):totable())
      assert_table_near({-3, 0, 12}, x:affine(3):totable())
      local w = retort.tensor({1, 2}, "f64"):requiresGrad()
      w:affine(-2, 7):sum():backward()
      assert_table_near({-2, -2}, w.grad:totable())
   end)

   it("comparisons give u8 tensors", function()
      local x = retort.tensor{1, 2, 3}
      local e = x:eq(2)
      assert.are.equal("u8", e:dtype())
      assert.are.same({0, 1, 0}, e:totable())
      assert.are.same({1, 0, 1}, x:ne(2):totable())
      assert.are.same({1, 0, 0}, x:lt(2):totable())
      assert.are.same({1, 1, 0}, x:le(2):totable())
      assert.are.same({0, 0, 1}, x:gt(2):totable())
      assert.are.same({0, 1, 1}, x:ge(2):totable())
      assert.are.same({1, 1, 1}, x:eq(retort.tensor{1, 2, 3}):totable())
   end)

   it("== is identity, not element-wise equality", function()
      local x = retort.tensor{1}
      local y = retort.tensor{1}
      assert.is_true(x == x)
      assert.is_false(x == y)
      assert.is_true(x ~= y)
   end)
end)

describe("reductions", function()
   local x = retort.tensor{{1, 5, 3}, {4, 2, 6}}

   it("reduce everything to 0-dim tensors", function()
      assert.are.equal(0, x:sum():dim())
      assert.are.equal(21, x:sum():item())
      assert.are.equal(3.5, x:mean():item())
      assert.are.equal(6, x:max():item())
      assert.are.equal(1, x:min():item())
      assert.is_true(close_to(math.sqrt(91), x:norm():item()))
      assert.is_true(close_to(21, x:norm(1):item()))
   end)

   it("reduce along 1-based dims", function()
      assert.are.same({5, 7, 9}, x:sum(1):totable())
      assert.are.same({9, 12}, x:sum(2):totable())
      assert.are.same({{9}, {12}}, x:sum(2, true):totable())
      assert.are.same({9, 12}, x:sum(-1):totable())
      assert.are.same({3, 4}, x:mean(2):totable())
      assert_table_near({math.sqrt(35), math.sqrt(56)}, x:norm(2, 2):totable())
      local lse = x:logsumexp(2):totable()
      assert.is_true(close_to(lse[1], math.log(math.exp(1) + math.exp(5) + math.exp(3))))
   end)

   it("max/min with a dim return values and 1-based indices", function()
      local v, i = x:max(2)
      assert.are.same({5, 6}, v:totable())
      assert.are.equal("i64", i:dtype())
      assert.are.same({2, 3}, i:totable())
      v, i = x:min(1)
      assert.are.same({1, 2, 3}, v:totable())
      assert.are.same({1, 2, 1}, i:totable())
      assert.are.same({2, 3}, x:argmax(2):totable())
      assert.are.same({1, 2}, x:argmin(2):totable())
      assert.are.same({2, 1, 2}, x:argmax(1):totable())
      assert.are.equal(6, x:argmax():item())
   end)
end)

describe("softmax family", function()
   it("softmax rows sum to one and T softens", function()
      local x = retort.tensor{{1, 2, 3}, {1, 1, 1}}
      local p = x:softmax(2)
      assert_table_near({1, 1}, p:sum(2):totable())
      assert_table_near({1 / 3, 1 / 3, 1 / 3}, p:totable()[2])
      local e = {math.exp(1), math.exp(2), math.exp(3)}
      local z = e[1] + e[2] + e[3]
      assert_table_near({e[1] / z, e[2] / z, e[3] / z}, p:totable()[1])
      local pT = x:softmax(2, 4):totable()[1]
      assert.is_true(pT[3] < p:totable()[1][3])
      assert_table_near(x:div(4):softmax(2):totable(), x:softmax(2, 4):totable())
      assert_table_near(p:totable(), x:softmax():totable())
   end)

   it("logSoftmax is the log of softmax", function()
      local x = retort.tensor({{1, 2, 3}, {-1, 0, 5}}, "f64")
      assert_table_near(x:softmax(2, 2):log():totable(), x:logSoftmax(2, 2):totable(), 1e-9)
   end)
end)

describe("linear algebra", function()
   it("matmul, bmm and linear match hand-computed values", function()
      local a = retort.tensor{{1, 2}, {3, 4}}
      local b = retort.tensor{{5, 6}, {7, 8}}
      assert.are.same({{19, 22}, {43, 50}}, a:matmul(b):totable())
      assert.are.same({{17, 23}, {39, 53}}, a:matmul(b:t()):totable())
      local w = retort.tensor{{1, 0}, {0, 1}, {1, 1}}
      local bias = retort.tensor{1, 2, 3}
      assert.are.same({{2, 4, 6}, {4, 6, 10}}, a:linear(w, bias):totable())
      assert.are.same({{1, 2, 3}, {3, 4, 7}}, a:linear(w):totable())
      local A = retort.stack({a, b})
      local B = retort.stack({b, a})
      assert.are.same({{{19, 22}, {43, 50}}, {{23, 34}, {31, 46}}}, A:bmm(B):totable())
   end)
end)

describe("indexing with 1-based index tensors", function()
   local x = retort.tensor{{1, 2, 3}, {4, 5, 6}}

   it("indexSelect", function()
      local idx = retort.tensor({3, 1}, "i64")
      assert.are.same({{3, 1}, {6, 4}}, x:indexSelect(2, idx):totable())
      assert.are.same({{4, 5, 6}}, x:indexSelect(1, retort.tensor({2}, "i64")):totable())
   end)

   it("gather picks class scores by 1-based label", function()
      local labels = retort.tensor({{3}, {1}}, "i64")
      assert.are.same({{3}, {4}}, x:gather(2, labels):totable())
   end)

   it("scatterAdd adds at 1-based positions", function()
      local z = retort.zeros(2, 3)
      local idx = retort.tensor({{1, 1}, {3, 2}}, "i64")
      local src = retort.tensor{{1, 2}, {3, 4}}
      assert.are.same({{3, 0, 0}, {0, 4, 3}}, z:scatterAdd(2, idx, src):totable())
      assert.are.same({{0, 0, 0}, {0, 0, 0}}, z:totable())
   end)

   it("indexCopy_ replaces rows at 1-based positions in place", function()
      local m = retort.zeros(4, 2)
      local same = m:indexCopy_(1, retort.tensor({4, 2}, "i64"), retort.tensor{{1, 2}, {3, 4}})
      assert.is_true(rawequal(same, m))
      assert.are.same({{0, 0}, {3, 4}, {0, 0}, {1, 2}}, m:totable())
      local ok, err = pcall(function() m:indexCopy_(1, retort.tensor({5}, "i64"), retort.tensor{{1, 2}}) end)
      assert.is_false(ok)
      assert.matches("indexCopy_: index 5 at position 1 out of range [1, 4] (1-based)", err, 1, true)
      local p = retort.zeros(2, 2):requiresGrad()
      ok, err = pcall(function() p:indexCopy_(1, retort.tensor({1}, "i64"), retort.ones(1, 2)) end)
      assert.is_false(ok)
      assert.matches("in-place write to a tensor that requires grad", err, 1, true)
   end)
end)

describe("joining", function()
   it("cat, stack and where", function()
      local a, b = retort.tensor{{1, 2}}, retort.tensor{{3, 4}}
      assert.are.same({{1, 2}, {3, 4}}, retort.cat({a, b}, 1):totable())
      assert.are.same({{1, 2}, {3, 4}}, retort.cat{a, b}:totable())
      assert.are.same({{1, 2, 3, 4}}, retort.cat({a, b}, 2):totable())
      assert.are.same({2, 1, 2}, retort.stack({a, b}):shape())
      assert.are.same({1, 2, 2}, retort.stack({a, b}, 2):shape())
      assert.are.same({1, 2, 2}, retort.stack({a, b}, 3):shape())
      local c = retort.tensor({1, 0, 1}, "u8")
      local x, y = retort.tensor{1, 2, 3}, retort.tensor{10, 20, 30}
      assert.are.same({1, 20, 3}, retort.where(c, x, y):totable())
      assert.are.same({1, 0, 3}, retort.where(c, x, 0):totable())
      assert.are.same({1, 1, 1}, retort.where(x:gt(0), 1, 0):totable())
   end)
end)

describe("in-place methods", function()
   it("modify and return self", function()
      local x = retort.zeros(2, 2)
      assert.are.equal(x, x:fill_(2))
      assert.are.equal(x, x:add_(1))
      assert.are.same({{3, 3}, {3, 3}}, x:totable())
      assert.are.equal(x, x:mul_(2))
      assert.are.same({{6, 6}, {6, 6}}, x:totable())
      x:add_(retort.tensor{1, 2}, 10)
      assert.are.same({{16, 26}, {16, 26}}, x:totable())
      x:sub_(retort.tensor{1, 2}, 10)
      assert.are.same({{6, 6}, {6, 6}}, x:totable())
      x:copy_(retort.tensor{{1, 2}, {3, 4}})
      assert.are.same({{1, 2}, {3, 4}}, x:totable())
      assert.are.equal(x, x:zero_())
      assert.are.same({{0, 0}, {0, 0}}, x:totable())
   end)

   it("fill with random values", function()
      retort.manualSeed(5)
      local x = retort.empty(1000):uniform_(-2, -1)
      assert.is_true(x:min():item() >= -2 and x:max():item() < -1)
      local n = retort.empty(5000):normal_(3, 0.5)
      assert.is_true(math.abs(n:mean():item() - 3) < 0.05)
      local b = retort.empty(5000):bernoulli_(0.25)
      assert.is_true(math.abs(b:mean():item() - 0.25) < 0.05)
      assert.are.same({0, 1}, (function()
         local seen = {}
         for _, v in ipairs(b:totable()) do seen[v + 1] = v end
         return seen
      end)())
   end)
end)

describe("module", function()
   it("exposes helpers", function()
      assert.is_true(retort.isTensor(retort.zeros(1)))
      assert.is_false(retort.isTensor({}))
      assert.is_false(retort.isTensor(nil))
      assert.are.equal("string", type(retort.version))
      assert.truthy(retort.version:match("^%d+%.%d+%.%d+"))
      local n = retort.getNumThreads()
      assert.are.equal("number", type(n))
      retort.setNumThreads(1)
      assert.are.equal(1, retort.getNumThreads())
      retort.setNumThreads(n)
      assert.are.equal("number", type(retort.memoryInUse()))
      assert.are.equal("number", type(retort.memoryInUse("cpu")))
      assert.is_nil(retort.noSuchThing)
      assert.are.equal("function", type(retort.Tensor.matmul))
   end)

   it("lets Lua add tensor methods through retort.Tensor", function()
      retort.Tensor.twice = function(self) return self * 2 end
      assert.are.same({2, 4}, retort.tensor{1, 2}:twice():totable())
      retort.Tensor.twice = nil
   end)
end)

describe("fingerprint", function()
   -- FNV-1a 64 written out in Lua (integers wrap as uint64): the independent reference
   local function fnv(bytes, h)
      h = h or -3750763034362895579 -- 0xcbf29ce484222325
      for i = 1, #bytes do h = (h ~ bytes:byte(i)) * 0x100000001b3 end
      return h
   end
   local function tensor_bytes(dtype, fmt, shape, values)
      local parts = {dtype .. "\0", string.pack("<i8", #shape)}
      for _, d in ipairs(shape) do parts[#parts + 1] = string.pack("<i8", d) end
      for _, v in ipairs(values) do parts[#parts + 1] = string.pack(fmt, v) end
      return table.concat(parts)
   end

   it("is FNV-1a over dtype, shape and row-major elements, chained over the arguments", function()
      local t = retort.tensor({{1.5, -2}, {3, 0.25}, {7, 8}})
      local want = fnv(tensor_bytes("f32", "<f", {3, 2}, {1.5, -2, 3, 0.25, 7, 8}))
      assert.are.equal(("%016x"):format(want), retort.core.fingerprint(t))
      local y = retort.tensor({4, 0, 9}, "i64")
      local chained = fnv("teacher\0", fnv(tensor_bytes("i64", "<i8", {3}, {4, 0, 9}), want))
      assert.are.equal(("%016x"):format(chained), retort.core.fingerprint(t, y, "teacher"))
   end)

   it("depends on the values and the shape, not on strides", function()
      local a = retort.arange(1, 12):view(3, 4)
      local at = a:t()
      assert.are.equal(retort.core.fingerprint(at:contiguous()), retort.core.fingerprint(at))
      assert.are_not.equal(retort.core.fingerprint(a), retort.core.fingerprint(a:view(4, 3)))
      assert.are_not.equal(retort.core.fingerprint(a), retort.core.fingerprint(a:double()))
      local b = a:clone(); b:set(2, 2, 0)
      assert.are_not.equal(retort.core.fingerprint(a), retort.core.fingerprint(b))
      local ok, err = pcall(retort.core.fingerprint, a, 3)
      assert.is_false(ok); assert.matches("bad argument #2 .*tensor or string expected, got number", err)
   end)
end)

describe("memory", function()
   it("releases on close", function()
      local before = retort.memoryInUse()
      do
         local x <close> = retort.zeros(1000, 1000) -- luacheck: ignore 211 (to-be-closed)
         assert.is_true(retort.memoryInUse() >= before + 4000000)
      end
      assert.is_true(retort.memoryInUse() < before + 4000000)
   end)

   it("applies GC pressure so loops of temporaries do not balloon", function()
      collectgarbage()
      local peak = 0
      for _ = 1, 20000 do
         retort.empty(1000, 100) -- a 400 KB temporary, dropped at once: 8 GB in total if nothing were collected
         local m = retort.memoryInUse()
         if m > peak then peak = m end
      end
      assert.is_true(peak < 1024 * 1024 * 1024, ("peak %.1f MB"):format(peak / 2^20))
   end)
end)

describe("plain lua5.4", function()
   local build = os.getenv("RETORT_BUILD_DIR") or "build"
   local so = build .. "/lib/retort/core.so"
   local f = io.open(so, "rb")
   local have = f ~= nil
   if f then f:close() end
   -- A sanitizer build's module needs the ASan runtime loaded first (CMake passes its path).
   local preload = os.getenv("RETORT_ASAN_RUNTIME")
   local lua = preload and ("LD_PRELOAD='%s' lua5.4"):format(preload) or "lua5.4"

   local function run(code)
      local out = os.tmpname()
      local cmd = ("LUA_CPATH='%s/lib/?.so;;' LUA_PATH='lua/?.lua;lua/?/init.lua;;' %s -e %q > %s 2>&1"):format(
         build, lua, code, out)
      local ok = os.execute(cmd)
      local h = io.open(out)
      local text = h:read("a")
      h:close()
      os.remove(out)
      return ok, text
   end

   it("can require retort with the built module on its paths", function()
      if not have then
         pending("no " .. so .. " (set RETORT_BUILD_DIR)")
         return
      end
      local ok, text = run([[local r = require 'retort'; io.write(tostring(r.tensor{1,2}:sum():item()))]])
      assert.is_true(ok, text)
      assert.are.equal("3.0", text)
   end)

   it("creates no globals", function()
      if not have then
         pending("no " .. so)
         return
      end
      local ok, text = run([[
         local before = {}
         for k in pairs(_G) do before[k] = true end
         local r = require 'retort'
         local x = r.randn(3, 3):requiresGrad()
         x:matmul(x):sum():backward()
         local _ = tostring(x), r.noGrad(function() return 1 end)
         local new = {}
         for k in pairs(_G) do if not before[k] then new[#new + 1] = tostring(k) end end
         io.write('new:', table.concat(new, ','))]])
      assert.is_true(ok, text)
      assert.are.equal("new:", text)
   end)
end)
