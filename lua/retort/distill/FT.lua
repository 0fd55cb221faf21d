-- Factor transfer (Kim et al. 2018) as RepDistiller trains it. A paraphraser (an autoencoder on the
-- teacher's map) is trained first to reconstruct it (the init stage: MSE(decoder(encoder(ft)), ft));
-- then a translator on the student's map learns to produce the paraphraser's factor:
--   loss = mean |normalize(translator(fs)) - normalize(encoder(ft))|       (features.factorTransfer)
-- Weight 200. Factors have k * C_t channels (k = 0.5). Encoder: three 3x3 convs (C_t -> C_t ->
-- kC_t -> kC_t), decoder: three 3x3 convs back to C_t, each followed by LeakyReLU(0.1); the
-- translator is the encoder's shape on C_s with BatchNorm after each conv. (RepDistiller's decoder
-- uses 3x3 stride-1 padding-1 transposed convolutions, which compute the same family of functions as
-- these convolutions.) Phase "both": the init stage trains the paraphraser only (the student is
-- untouched), the main stage trains the translator and the student; the paraphraser is then frozen.
local retort = require "retort"
local nn = require "retort.nn"
local Method = require "retort.distill.Method"
local features = require "retort.distill.features"
local check = require "retort.distill.check"

local FT = nn.class("FT", Method)
FT.weight = 200
FT.phase = "both"
FT.initTrainsStudent = false
FT.initWeight = 1 -- the reconstruction loss is plain MSE

local function block(net, cin, cout, bn)
   net:add(nn.Conv2d(cin, cout, 3, {padding = 1}))
   if bn then net:add(nn.BatchNorm2d(cout)) end
   return net:add(nn.LeakyReLU(0.1))
end

function FT:setup(gs, hs)
   if #gs ~= 4 or #hs ~= 4 then
      error(("FT: needs feature maps (N, C, H, W) for both layers, got %s and %s"):format(check.shape(gs),
         check.shape(hs)), 3)
   end
   local ct, cs = hs[2], gs[2]
   local cf = math.max(1, math.floor(ct * (self.opts.k or 0.5)))
   local encoder = nn.Sequential()
   block(block(block(encoder, ct, ct), ct, cf), cf, cf)
   local decoder = nn.Sequential()
   block(block(block(decoder, cf, cf), cf, ct), ct, ct)
   self:addModule("paraphraser", nn.Sequential():add("encoder", encoder):add("decoder", decoder))
   local translator = nn.Sequential()
   block(block(block(translator, cs, cs, true), cs, cf, true), cf, cf, true)
   self:addModule("translator", translator)
   return self
end

local function built(self)
   if not self._modules.paraphraser then error("FT: not set up; give the Distiller a sample batch (sample = x)", 3) end
end

--- initLoss(fs, ft): the paraphraser's reconstruction error on the teacher's map.
function FT:initLoss(_, ft)
   built(self)
   ft = ft:detach()
   return retort.mseLoss(self:runChild("paraphraser", ft), ft)
end

--- initParameters(): the init stage trains the paraphraser alone.
function FT:initParameters() return self._modules.paraphraser:parameters() end

function FT:loss(fs, ft)
   built(self)
   local factor_t = retort.noGrad(function()
      return self._modules.paraphraser._modules.encoder:forward(ft:detach())
   end)
   return features.factorTransfer(self:runChild("translator", fs), factor_t, self.opts)
end

return FT
