-- ChannelShuffle(groups): ShuffleNet's channel shuffle (Zhang et al. 2018), RepDistiller's ShuffleBlock:
-- (N, C, H, W) -> view (N, g, C/g, H, W) -> swap dims 2 and 3 -> (N, C, H, W), so that channel
-- k * (C/g) + j moves to j * g + k and the next grouped convolution sees every group. One copy (the
-- transposed view made contiguous); no parameters. groups = 1 passes the input through.
local nn = require "retort.nn"

local ChannelShuffle = nn.class("ChannelShuffle", nn.Module)

function ChannelShuffle:__init(groups)
   nn.Module.__init(self)
   if math.type(groups) ~= "integer" or groups < 1 then
      error("ChannelShuffle(groups): groups must be an integer >= 1", 3)
   end
   self.groups = groups
end

function ChannelShuffle:apply(x)
   local g = self.groups
   if g == 1 then return x end
   local n, c, h, w = table.unpack(x:shape())
   if x:dim() ~= 4 or c % g ~= 0 then
      error(("ChannelShuffle(%d): expected (N, C, H, W) with C divisible by %d, got (%s)"):format(g, g,
         table.concat(x:shape(), "x")), 3)
   end
   return x:view(n, g, c // g, h, w):transpose(2, 3):contiguous():view(n, c, h, w)
end

function ChannelShuffle:extraRepr() return ("%d groups"):format(self.groups) end

return ChannelShuffle
