-- nn.ConvTranspose2d(in, out, k [, {stride = 1, padding = 0, bias = true}]): the transposed
-- convolution (the input-gradient of a Conv2d), as PyTorch's ConvTranspose2d without groups,
-- dilation or output padding. weight (in, out, kh, kw), bias (out);
--   out[n, o, y s - p + a, x s - p + b] += in[n, i, y, x] * weight[i, o, a, b]   (+ bias[o])
--   so H' = (H - 1) s - 2 p + kh.
-- It is computed from existing ops, so autograd and every device come for free: stride - 1 zeros go
-- between neighbouring input pixels (stack with zeros, view, narrow), then a stride-1 convolution
-- with the weight transposed to (out, in, kh, kw) and flipped in both spatial dims, padding k - 1 - p
-- (hence padding <= k - 1). The zeros cost (s^2 - 1) / s^2 of that convolution's work: fine for the
-- small maps it serves (RepDistiller's ConvReg upsamples a student map 2x onto a teacher's, with
-- k = 4, s = 2, p = 1). Initialisation as PyTorch: kaiming uniform (a = sqrt(5)) with fan_in taken
-- from weight dims 2.. (out * kh * kw), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
local retort = require "retort"
local Module = require "retort.nn.Module"
local init = require "retort.nn.initializers"

local ConvTranspose2d = Module.class("ConvTranspose2d", Module)

local function pair(v, name, default)
   if v == nil then v = default end
   if math.type(v) == "integer" then return {v, v} end
   if type(v) == "table" and #v == 2 and math.type(v[1]) == "integer" and math.type(v[2]) == "integer" then
      return {v[1], v[2]}
   end
   error(("nn.ConvTranspose2d: %s must be an integer or {h, w}, got %s"):format(name, tostring(v)), 4)
end

function ConvTranspose2d:__init(inChannels, outChannels, kernel, opts)
   Module.__init(self)
   opts = opts or {}
   if math.type(inChannels) ~= "integer" or math.type(outChannels) ~= "integer" then
      error("nn.ConvTranspose2d(in, out, k): integer channel counts expected", 3)
   end
   self.inChannels, self.outChannels = inChannels, outChannels
   self.kernel = pair(kernel, "kernel size")
   self.stride = pair(opts.stride, "stride", 1)
   self.padding = pair(opts.padding, "padding", 0)
   for d = 1, 2 do
      if self.stride[d] < 1 or self.padding[d] < 0 or self.padding[d] > self.kernel[d] - 1 then
         error(("nn.ConvTranspose2d: needs stride >= 1 and 0 <= padding <= kernel - 1, got stride %d, padding %d, "
                .. "kernel %d"):format(self.stride[d], self.padding[d], self.kernel[d]), 3)
      end
   end
   local w = retort.empty(inChannels, outChannels, self.kernel[1], self.kernel[2])
   local b = opts.bias ~= false and retort.empty(outChannels) or nil
   init.default(w, b)
   self:registerParameter("weight", w)
   self:registerParameter("bias", b)
end

-- (N, C, H, W) -> (N, C, (H - 1) sh + 1, (W - 1) sw + 1) with the input at every s-th position
local function spread(x, sh, sw)
   local n, c, h, w = table.unpack(x:shape())
   if sw > 1 then
      local parts, z = {x}, retort.zerosLike(x)
      for i = 2, sw do parts[i] = z end
      x = retort.stack(parts, 5):view(n, c, h, w * sw):narrow(4, 1, (w - 1) * sw + 1)
      w = (w - 1) * sw + 1
   end
   if sh > 1 then
      local parts, z = {x}, retort.zerosLike(x)
      for i = 2, sh do parts[i] = z end
      x = retort.stack(parts, 4):view(n, c, h * sh, w):narrow(3, 1, (h - 1) * sh + 1)
   end
   return x
end

local function reversed(k)
   local t = {}
   for i = 1, k do t[i] = k - i + 1 end
   return retort.tensor(t, "i64")
end

function ConvTranspose2d:apply(x)
   if x:dim() ~= 4 or x:size(2) ~= self.inChannels then
      error(("nn.ConvTranspose2d(%d -> %d): expected input (N, %d, H, W), got (%s)"):format(self.inChannels,
         self.outChannels, self.inChannels, table.concat(x:shape(), "x")), 3)
   end
   local kh, kw = self.kernel[1], self.kernel[2]
   local w = self.weight:transpose(1, 2)
   w = w:indexSelect(3, reversed(kh):to(w:device())):indexSelect(4, reversed(kw):to(w:device()))
   local pad = {kh - 1 - self.padding[1], kw - 1 - self.padding[2]}
   return spread(x, self.stride[1], self.stride[2]):conv2d(w, self.bias,
      {padding = pad[1] == pad[2] and pad[1] or pad})
end

function ConvTranspose2d:extraRepr()
   local s = ("%d -> %d, %dx%d"):format(self.inChannels, self.outChannels, self.kernel[1], self.kernel[2])
   local st, pd = self.stride, self.padding
   if st[1] ~= 1 or st[2] ~= 1 then s = s .. (", stride %d/%d"):format(st[1], st[2]) end
   if pd[1] ~= 0 or pd[2] ~= 0 then s = s .. (", pad %d/%d"):format(pd[1], pd[2]) end
   if not self.bias then s = s .. ", no bias" end
   return s
end

return {ConvTranspose2d = ConvTranspose2d}
