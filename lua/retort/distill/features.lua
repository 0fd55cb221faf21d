-- Losses between student and teacher feature maps (RepDistiller's distiller_zoo formulas, one
-- pair of layers per call). fs is the student's feature, ft the teacher's (detached here: the
-- teacher never enters the graph). When spatial sizes differ, the larger map is average-pooled to
-- the smaller one first, as RepDistiller does.
local retort = require "retort"
local check = require "retort.distill.check"

local M = {}

local EPS_NORM = 1e-12 -- F.normalize's eps

local function flat(x) return x:reshape(x:size(1), -1) end

-- x / max(||x||_2 over dim, eps), like F.normalize
local function normalize(x, dim) return x / x:norm(2, dim, true):clamp(EPS_NORM) end
M.normalize = normalize

-- Pool the spatially larger of two (N, C, H, W) maps to the other's size.
local function match_spatial(fs, ft)
   local sh, sw, th, tw = fs:size(3), fs:size(4), ft:size(3), ft:size(4)
   if sh * sw > th * tw then
      fs = fs:adaptiveAvgPool2d(th, tw)
   elseif sh * sw < th * tw then
      ft = ft:adaptiveAvgPool2d(sh, sw)
   end
   return fs, ft
end
M.matchSpatial = match_spatial

-- Huber loss with beta = 1, mean (F.smooth_l1_loss)
local function smooth_l1(a, b)
   local d = a - b
   local ad = d:abs()
   return retort.where(ad:lt(1), d * d * 0.5, ad - 0.5):mean()
end

--- hint(fs, ft): mean squared error over all elements (FitNets' hint loss, without the 1/2).
function M.hint(fs, ft)
   check.features("hint", fs, ft)
   if not check.sameShape(fs, ft) then
      error(("hint: the guided output %s and the hint %s differ in shape; join them with a regressor "
             .. "(retort.distill.FitNet)"):format(check.shape(fs), check.shape(ft)), 2)
   end
   return retort.mseLoss(fs, ft:detach())
end

-- attention map: rows of normalize(mean over channels of f^p), (N, H*W), one fused core op
local function attention(f, p) return f:attentionMap(p) end
M.attention = attention

--- at(fs, ft, {p = 2}): attention transfer (Zagoruyko & Komodakis 2017):
---   mean over (N, H*W) of (at(fs) - at(ft))^2,  at(f) = normalize(mean_c f^p)
function M.at(fs, ft, opts)
   local p = check.options("at", 3, opts, {"p"}).p or 2
   check.features("at", fs, ft, 4)
   fs, ft = match_spatial(fs, ft:detach())
   return (attention(fs, p) - attention(ft, p)):pow(2):mean()
end

-- row-normalised batch similarity (Gram) matrix of flattened features, (N, N)
local function similarity(f)
   return normalize(flat(f):pairwise("gram"), 2)
end

--- sp(fs, ft): similarity-preserving KD (Tung & Mori 2019): ||G_t - G_s||_F^2 / N^2 with
--- G = row-normalised f f^T over the batch.
function M.sp(fs, ft)
   check.features("sp", fs, ft)
   local n = fs:size(1)
   local d = similarity(ft:detach()) - similarity(fs)
   return (d * d):sum() / (n * n)
end

--- pkt(fs, ft): probabilistic knowledge transfer (Passalis & Tefas 2018), cosine kernel:
---   P = (cos + 1) / 2 row-normalised; mean over (N, N) of P_t * log((P_t + eps) / (P_s + eps)), eps = 1e-7
function M.pkt(fs, ft)
   check.features("pkt", fs, ft)
   local eps = 1e-7
   local function probs(f)
      local k = (flat(f):pairwise("cosine", eps) + 1) * 0.5
      return k / k:sum(2, true)
   end
   local ps, pt = probs(fs), probs(ft:detach())
   return (pt * ((pt + eps) / (ps + eps)):log()):mean()
end

-- pairwise Euclidean distances of rows (N, N), clamped at eps before the square root, 0 diagonal
local function pdist(e) return e:pairwise("distance", 1e-12) end

-- cosines of the angles at every anchor i between (e_j - e_i) and (e_k - e_i), flattened (N^3)
local function angles(e)
   local n, d = e:size(1), e:size(2)
   local diff = normalize(e:view(1, n, d) - e:view(n, 1, d), 3) -- diff[i][j] = e_j - e_i
   return diff:bmm(diff:transpose(2, 3)):reshape(-1)
end

--- rkd(fs, ft, {distance = 25, angle = 50}): relational KD (Park et al. 2019), RepDistiller weights:
---   distance * smoothL1(psi_D(s), psi_D(t)) + angle * smoothL1(psi_A(s), psi_A(t))
--- psi_D: pairwise distances divided by their mean over distinct pairs; psi_A: angle cosines.
function M.rkd(fs, ft, opts)
   opts = check.options("rkd", 3, opts, {"distance", "angle"})
   local wd, wa = opts.distance or 25, opts.angle or 50
   check.features("rkd", fs, ft)
   local n = fs:size(1)
   if n < 2 then error(("rkd: needs at least 2 samples in the batch, got %d"):format(n), 2) end
   local s, t = flat(fs), flat(ft:detach())
   local loss = nil
   if wd ~= 0 then
      local pairs = n * (n - 1)
      local ds, dt = pdist(s), pdist(t)
      ds = ds / (ds:sum() / pairs)
      dt = dt / (dt:sum() / pairs)
      loss = smooth_l1(ds, dt) * wd
   end
   if wa ~= 0 then
      local la = smooth_l1(angles(s), angles(t)) * wa
      loss = loss and loss + la or la
   end
   return loss or (fs:sum() * 0)
end

--- nst(fs, ft): neuron selectivity transfer (Huang & Wang 2017), squared MMD with the polynomial
--- kernel k(a, b) = (a . b)^2 between the channels' normalised spatial activation patterns:
---   mean k(t, t) + mean k(s, s) - 2 mean k(s, t)
function M.nst(fs, ft)
   check.features("nst", fs, ft, 4)
   fs, ft = match_spatial(fs, ft:detach())
   local s = normalize(fs:reshape(fs:size(1), fs:size(2), -1), 3)
   local t = normalize(ft:reshape(ft:size(1), ft:size(2), -1), 3)
   local function poly(a, b) return b:bmm(a:transpose(2, 3)):pow(2):mean() end
   return poly(t, t) + poly(s, s) - poly(s, t) * 2
end

-- flow of solution procedure between two maps of one network: (N, C1, C2) = f1 f2^T / (H W), the
-- larger map pooled to the smaller's size first
local function fsp_matrix(f1, f2)
   if f1:size(3) * f1:size(4) > f2:size(3) * f2:size(4) then
      f1 = f1:adaptiveAvgPool2d(f2:size(3), f2:size(4))
   elseif f1:size(3) * f1:size(4) < f2:size(3) * f2:size(4) then
      f2 = f2:adaptiveAvgPool2d(f1:size(3), f1:size(4))
   end
   local n, hw = f1:size(1), f1:size(3) * f1:size(4)
   local a = f1:reshape(n, f1:size(2), -1)
   local b = f2:reshape(n, f2:size(2), -1)
   return a:bmm(b:transpose(2, 3)) / hw
end

--- fsp(fs1, fs2, ft1, ft2): FSP matrices (Yim et al. 2017) between two student maps and two
--- teacher maps; mean squared difference.
function M.fsp(fs1, fs2, ft1, ft2)
   check.features("fsp", fs1, fs2, 4)
   check.features("fsp", ft1, ft2, 4)
   local gs, gt = fsp_matrix(fs1, fs2), fsp_matrix(ft1:detach(), ft2:detach())
   if not check.sameShape(gs, gt) then
      error(("fsp: student FSP matrix %s and teacher's %s differ: the paired layers need equal channel counts"):format(
         check.shape(gs), check.shape(gt)), 2)
   end
   return (gs - gt):pow(2):mean()
end

--- cc(es, et): correlation congruence as RepDistiller implements it, on embeddings (N, D):
---   delta = |es - et|; mean over consecutive rows i of sum_j delta[i, j] * delta[i + 1, j]
function M.cc(es, et)
   check.features("cc", es, et, 2)
   local n = es:size(1)
   if n < 2 then error(("cc: needs at least 2 samples in the batch, got %d"):format(n), 2) end
   local delta = (es - et:detach()):abs()
   return (delta:narrow(1, 1, n - 1) * delta:narrow(1, 2, n - 1)):sum(2):mean()
end

--- ab(fs, ft, {margin = 1}): activation-boundary loss (Heo et al. 2019) as RepDistiller writes it,
--- on pre-activation maps of equal shape (the AB method's connector makes them meet):
---   sum over all elements of (fs + m)^2 [fs > -m and ft <= 0] + (fs - m)^2 [fs <= m and ft > 0],
---   divided by the batch size. (RepDistiller's further * 3/1000 is the AB method's weight.)
function M.ab(fs, ft, opts)
   local m = check.options("ab", 3, opts, {"margin"}).margin or 1
   check.features("ab", fs, ft)
   if not check.sameShape(fs, ft) then
      error(("ab: the student map %s and the teacher's %s differ in shape; join them with the AB method's "
             .. "connector (retort.distill.AB)"):format(check.shape(fs), check.shape(ft)), 2)
   end
   ft = ft:detach()
   local off = retort.where(ft:le(0), retort.where(fs:gt(-m), (fs + m):pow(2), 0), 0)
   local on = retort.where(ft:gt(0), retort.where(fs:le(m), (fs - m):pow(2), 0), 0)
   return (off + on):sum() / fs:size(1)
end

--- factorTransfer(fs, ft, {p = 1}): factor transfer (Kim et al. 2018), RepDistiller's FactorTransfer
--- on the translator's (student) and paraphraser's (teacher) factors, the larger map pooled first:
---   mean |normalize(flat fs) - normalize(flat ft)|^p    (p = 1: mean absolute difference)
function M.factorTransfer(fs, ft, opts)
   local p = check.options("factorTransfer", 3, opts, {"p"}).p or 1
   check.features("factorTransfer", fs, ft, 4)
   fs, ft = match_spatial(fs, ft:detach())
   local d = normalize(flat(fs), 2) - normalize(flat(ft), 2)
   if d:size(2) ~= fs:size(2) * fs:size(3) * fs:size(4) or fs:size(2) ~= ft:size(2) then
      error(("factorTransfer: the factors %s and %s differ in channels"):format(check.shape(fs), check.shape(ft)), 2)
   end
   if p == 1 then return d:abs():mean() end
   return d:pow(p):mean()
end

-- NCE loss of CRD's ContrastLoss on the scores x (N, 1 + K): column 1 is the positive pair, the
-- rest K negatives drawn uniformly from nData examples (noise probability Pn = 1 / nData):
--   -(sum_i log(x_i0 / (x_i0 + K Pn + eps)) + sum_ik log(K Pn / (x_ik + K Pn + eps))) / N
local NCE_EPS = 1e-7
local function nce(x, n_data)
   local n, k = x:size(1), x:size(2) - 1
   local kpn = k / n_data
   local pos = x:narrow(2, 1, 1)
   local neg = x:narrow(2, 2, k)
   local log_d1 = (pos / (pos + (kpn + NCE_EPS))):log():sum()
   local log_d0 = ((neg + (kpn + NCE_EPS)):reciprocal() * kpn):log():sum()
   return -(log_d1 + log_d0) / n
end

--- crd(es, et, memoryS, memoryT, idx, {T = 0.07, nData, Zs, Zt}) -> loss, Zs, Zt: contrastive
--- representation distillation (Tian et al. 2020) as RepDistiller's CRDLoss computes it, given the
--- embedded (normalised) student and teacher features es, et (N, D), the memory banks (nData, D) of
--- past student and teacher embeddings, and idx (N, 1 + K) i64: per sample its own dataset index then
--- K negatives. Each embedding is scored against the other network's memory:
---   out_t = exp(memoryS[idx] . et / T) / Zt,  out_s = exp(memoryT[idx] . es / T) / Zs
---   loss = nce(out_s) + nce(out_t)
--- Zs, Zt (the normalising constants) are fixed on the first batch as mean(exp(...)) * nData, as
--- RepDistiller does; pass them back in afterwards (numbers, or one-element tensors on the memories'
--- device, which spare a GPU a wait). The memories are constants here (no gradient).
function M.crd(es, et, memory_s, memory_t, idx, opts)
   opts = check.options("crd", 6, opts, {"T", "nData", "Zs", "Zt"})
   check.features("crd", es, et, 2)
   check.tensor("crd", 3, memory_s, "student memory")
   check.tensor("crd", 4, memory_t, "teacher memory")
   check.tensor("crd", 5, idx, "sample indices")
   local n, d = es:size(1), es:size(2)
   if et:size(2) ~= d or memory_s:dim() ~= 2 or memory_s:size(2) ~= d or not check.sameShape(memory_s, memory_t) then
      error(("crd: embeddings %s, %s and memories %s, %s must share the embedding size"):format(check.shape(es),
         check.shape(et), check.shape(memory_s), check.shape(memory_t)), 2)
   end
   if idx:dim() ~= 2 or idx:size(1) ~= n or idx:size(2) < 2 then
      error(("crd: idx must be (batch, 1 + negatives) = (%d, >= 2), got %s"):format(n, check.shape(idx)), 2)
   end
   local T = opts.T or 0.07
   local n_data = opts.nData or memory_s:size(1)
   local k1 = idx:size(2)
   local flat_idx = idx:reshape(-1)
   local ws = memory_s:detach():indexSelect(1, flat_idx):view(n, k1, d)
   local wt = memory_t:detach():indexSelect(1, flat_idx):view(n, k1, d)
   local out_t = (ws:bmm(et:view(n, d, 1)):view(n, k1) / T):exp()
   local out_s = (wt:bmm(es:view(n, d, 1)):view(n, k1) / T):exp()
   local zs = opts.Zs or out_s:detach():mean():item() * n_data
   local zt = opts.Zt or out_t:detach():mean():item() * n_data
   return nce(out_s / zs, n_data) + nce(out_t / zt, n_data), zs, zt
end

return M
