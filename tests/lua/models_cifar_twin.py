# Minimal PyTorch twins of RepDistiller's CIFAR-100 models (its models/resnet.py, resnetv2.py, wrn.py,
# vgg.py, mobilenetv2.py, ShuffleNetv1.py, ShuffleNetv2.py): the same layers in the same arrangement,
# written independently of retort's Lua models, for tests/lua/models_cifar_spec.lua. For each model it
# prints, as a Lua table, the parameter count, the output shape for a (2, 3, 32, 32) input, and for each
# entry of the is_feat feature list (plain and preact=True) its shape and whether it holds negative
# values (post-ReLU maps never do; pre-activations of a random network always do).
#   /usr/bin/python3 tests/lua/models_cifar_twin.py      (Debian's python3-torch)
import torch, torch.nn as nn, torch.nn.functional as F

def conv(i, o, k, s=1, g=1, bias=False): return nn.Conv2d(i, o, k, s, (k - 1) // 2, groups=g, bias=bias)

class Basic(nn.Module):  # resnet.py / resnetv2.py BasicBlock
    def __init__(s, i, p, stride):
        super().__init__()
        s.c1, s.b1, s.c2, s.b2 = conv(i, p, 3, stride), nn.BatchNorm2d(p), conv(p, p, 3), nn.BatchNorm2d(p)
        s.sc = nn.Sequential(conv(i, p, 1, stride), nn.BatchNorm2d(p)) if stride != 1 or i != p else None
    def forward(s, x):
        pre = s.b2(s.c2(F.relu(s.b1(s.c1(x))))) + (s.sc(x) if s.sc is not None else x)
        return F.relu(pre), pre

class Bottle(nn.Module):  # resnetv2.py Bottleneck
    def __init__(s, i, p, stride):
        super().__init__()
        s.c1, s.b1, s.c2, s.b2 = conv(i, p, 1), nn.BatchNorm2d(p), conv(p, p, 3, stride), nn.BatchNorm2d(p)
        s.c3, s.b3 = conv(p, 4 * p, 1), nn.BatchNorm2d(4 * p)
        s.sc = nn.Sequential(conv(i, 4 * p, 1, stride), nn.BatchNorm2d(4 * p)) if stride != 1 or i != 4 * p else None
    def forward(s, x):
        o = F.relu(s.b2(s.c2(F.relu(s.b1(s.c1(x))))))
        pre = s.b3(s.c3(o)) + (s.sc(x) if s.sc is not None else x)
        return F.relu(pre), pre

def run_layer(layer, x):
    for b in layer: x, pre = b(x)
    return x, pre

class ResNet(nn.Module):  # resnet.py
    def __init__(s, depth, f, ncls=100):
        super().__init__(); n = (depth - 2) // 6
        s.c1, s.b1 = conv(3, f[0], 3), nn.BatchNorm2d(f[0])
        s.layers, i = nn.ModuleList(), f[0]
        for l in range(3):
            s.layers.append(nn.ModuleList([Basic(i if b == 0 else f[l + 1], f[l + 1], 2 if (b == 0 and l > 0) else 1) for b in range(n)])); i = f[l + 1]
        s.fc = nn.Linear(f[3], ncls)
    def forward(s, x):
        x = F.relu(s.b1(s.c1(x))); feats, pres = [x], [x]
        for layer in s.layers: x, pre = run_layer(layer, x); feats.append(x); pres.append(pre)
        x = F.avg_pool2d(x, 8).flatten(1); feats.append(x); pres.append(x)
        return s.fc(x), feats, pres

class ResNetV2(nn.Module):  # resnetv2.py
    def __init__(s, block, nb, ncls=100):
        super().__init__(); exp = 4 if block is Bottle else 1
        s.c1, s.b1, s.layers, i = conv(3, 64, 3), nn.BatchNorm2d(64), nn.ModuleList(), 64
        for l, p in enumerate([64, 128, 256, 512]):
            blocks = []
            for b in range(nb[l]): blocks.append(block(i, p, 2 if (b == 0 and l > 0) else 1)); i = p * exp
            s.layers.append(nn.ModuleList(blocks))
        s.fc = nn.Linear(512 * exp, ncls)
    def forward(s, x):
        x = F.relu(s.b1(s.c1(x))); feats, pres = [x], [x]
        for layer in s.layers: x, pre = run_layer(layer, x); feats.append(x); pres.append(pre)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1); feats.append(x); pres.append(x)
        return s.fc(x), feats, pres

class WBlock(nn.Module):  # wrn.py BasicBlock
    def __init__(s, i, o, stride):
        super().__init__(); s.eq = i == o
        s.bn1, s.c1, s.bn2, s.c2 = nn.BatchNorm2d(i), conv(i, o, 3, stride), nn.BatchNorm2d(o), conv(o, o, 3)
        s.sc = None if s.eq else conv(i, o, 1, stride)
    def forward(s, x):
        o = F.relu(s.bn1(x)); y = s.c2(F.relu(s.bn2(s.c1(o))))
        return y + (x if s.eq else s.sc(o))

class WRN(nn.Module):
    def __init__(s, depth, k, ncls=100):
        super().__init__(); n = (depth - 4) // 6; w = [16, 16 * k, 32 * k, 64 * k]
        s.c1 = conv(3, 16, 3)
        s.blocks = nn.ModuleList([nn.Sequential(*[WBlock(w[g] if b == 0 else w[g + 1], w[g + 1], 2 if (b == 0 and g > 0) else 1) for b in range(n)]) for g in range(3)])
        s.bn, s.fc = nn.BatchNorm2d(w[3]), nn.Linear(w[3], ncls)
    def forward(s, x):
        x = s.c1(x); feats = [x]
        for b in s.blocks: x = b(x); feats.append(x)
        pool = F.avg_pool2d(F.relu(s.bn(x)), 8).flatten(1)
        pres = [feats[0], s.blocks[1][0].bn1(feats[1]), s.blocks[2][0].bn1(feats[2]), s.bn(feats[3]), pool]
        return s.fc(pool), feats + [pool], pres

VGG_CFG = {'S': [[64], [128], [256], [512], [512]], 'A': [[64], [128], [256, 256], [512, 512], [512, 512]],
           'B': [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
           'D': [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
           'E': [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4]}

class VGG(nn.Module):  # vgg.py with batch_norm=True
    def __init__(s, cfg, ncls=100):
        super().__init__(); i = 3; s.blocks = nn.ModuleList()
        for c in VGG_CFG[cfg]:
            layers = []
            for v in c: layers += [nn.Conv2d(i, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU()]; i = v
            s.blocks.append(nn.Sequential(*layers[:-1]))
        s.fc = nn.Linear(512, ncls)
    def forward(s, x):
        feats, pres = [], []
        for b, blk in enumerate(s.blocks):
            pre = blk(x); x = F.relu(pre); feats.append(x); pres.append(x if b == 0 else pre)
            if b < 3: x = F.max_pool2d(x, 2, 2)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1); feats.append(x); pres.append(x)
        return s.fc(x), feats, pres

class IR(nn.Module):  # mobilenetv2.py InvertedResidual
    def __init__(s, i, o, stride, t):
        super().__init__(); h = i * t; s.res = stride == 1 and i == o
        s.conv = nn.Sequential(conv(i, h, 1), nn.BatchNorm2d(h), nn.ReLU(), conv(h, h, 3, stride, g=h), nn.BatchNorm2d(h),
                               nn.ReLU(), conv(h, o, 1), nn.BatchNorm2d(o))
    def forward(s, x): return x + s.conv(x) if s.res else s.conv(x)

class MobileNetV2(nn.Module):
    def __init__(s, T, w, ncls=100):
        super().__init__(); i = int(32 * w)
        s.conv1 = nn.Sequential(conv(3, i, 3, 2), nn.BatchNorm2d(i), nn.ReLU()); s.blocks = nn.ModuleList()
        for t, c, n, st in [[1, 16, 1, 1], [T, 24, 2, 1], [T, 32, 3, 2], [T, 64, 4, 2], [T, 96, 3, 1], [T, 160, 3, 2], [T, 320, 1, 1]]:
            o = int(c * w); layers = []
            for k in range(n): layers.append(IR(i, o, st if k == 0 else 1, t)); i = o
            s.blocks.append(nn.Sequential(*layers))
        last = int(1280 * w) if w > 1.0 else 1280
        s.conv2 = nn.Sequential(conv(i, last, 1), nn.BatchNorm2d(last), nn.ReLU()); s.fc = nn.Linear(last, ncls)
    def forward(s, x):
        x = s.conv1(x); feats = [x]
        for k, b in enumerate(s.blocks):
            x = b(x)
            if k in (1, 2, 4, 6): feats.append(x)
        x = F.avg_pool2d(s.conv2(x), 2, ceil_mode=True).flatten(1); feats.append(x)
        return s.fc(x), feats, feats

def shuffle(x, g):
    n, c, h, w = x.size(); return x.view(n, g, c // g, h, w).permute(0, 2, 1, 3, 4).reshape(n, c, h, w)

class SV1Block(nn.Module):  # ShuffleNetv1.py Bottleneck
    def __init__(s, i, o, stride, groups):
        super().__init__(); m = int(o / 4); s.g = 1 if i == 24 else groups; s.stride = stride
        s.c1, s.b1 = conv(i, m, 1, g=s.g), nn.BatchNorm2d(m)
        s.c2, s.b2 = conv(m, m, 3, stride, g=m), nn.BatchNorm2d(m)
        s.c3, s.b3 = conv(m, o, 1, g=groups), nn.BatchNorm2d(o)
    def forward(s, x):
        o = shuffle(F.relu(s.b1(s.c1(x))), s.g); o = s.b3(s.c3(F.relu(s.b2(s.c2(o)))))
        pre = torch.cat([o, F.avg_pool2d(x, 3, 2, 1)], 1) if s.stride == 2 else o + x
        return F.relu(pre), pre

class ShuffleV1(nn.Module):
    def __init__(s, ncls=100):
        super().__init__(); s.c1, s.b1, i = conv(3, 24, 1), nn.BatchNorm2d(24), 24; s.layers = nn.ModuleList()
        for o, n in zip([240, 480, 960], [4, 8, 4]):
            blocks = []
            for k in range(n): blocks.append(SV1Block(i, o - (i if k == 0 else 0), 2 if k == 0 else 1, 3)); i = o
            s.layers.append(nn.ModuleList(blocks))
        s.fc = nn.Linear(960, ncls)
    def forward(s, x):
        x = F.relu(s.b1(s.c1(x))); feats, pres = [x], [x]
        for layer in s.layers: x, pre = run_layer(layer, x); feats.append(x); pres.append(pre)
        x = F.avg_pool2d(x, 4).flatten(1); feats.append(x); pres.append(x)
        return s.fc(x), feats, pres

class SV2Block(nn.Module):  # ShuffleNetv2.py BasicBlock
    def __init__(s, c):
        super().__init__(); s.c = int(c * 0.5); h = s.c
        s.c1, s.b1, s.c2, s.b2, s.c3, s.b3 = conv(h, h, 1), nn.BatchNorm2d(h), conv(h, h, 3, g=h), nn.BatchNorm2d(h), conv(h, h, 1), nn.BatchNorm2d(h)
    def forward(s, x):
        x1, x2 = x[:, :s.c], x[:, s.c:]
        p = s.b3(s.c3(s.b2(s.c2(F.relu(s.b1(s.c1(x2)))))))
        return shuffle(torch.cat([x1, F.relu(p)], 1), 2), torch.cat([x1, p], 1)

class SV2Down(nn.Module):
    def __init__(s, i, o):
        super().__init__(); m = o // 2
        s.l = nn.Sequential(conv(i, i, 3, 2, g=i), nn.BatchNorm2d(i), conv(i, m, 1), nn.BatchNorm2d(m), nn.ReLU())
        s.r = nn.Sequential(conv(i, m, 1), nn.BatchNorm2d(m), nn.ReLU(), conv(m, m, 3, 2, g=m), nn.BatchNorm2d(m),
                            conv(m, m, 1), nn.BatchNorm2d(m), nn.ReLU())
    def forward(s, x): return shuffle(torch.cat([s.l(x), s.r(x)], 1), 2), None

class ShuffleV2(nn.Module):
    def __init__(s, ncls=100):
        super().__init__(); s.c1, s.b1, i = conv(3, 24, 1), nn.BatchNorm2d(24), 24; s.layers = nn.ModuleList()
        for o, n in zip([116, 232, 464], [3, 7, 3]):
            s.layers.append(nn.ModuleList([SV2Down(i, o)] + [SV2Block(o) for _ in range(n)])); i = o
        s.c2, s.b2, s.fc = conv(464, 1024, 1), nn.BatchNorm2d(1024), nn.Linear(1024, ncls)
    def forward(s, x):
        x = F.relu(s.b1(s.c1(x))); feats, pres = [x], [x]
        for layer in s.layers: x, pre = run_layer(layer, x); feats.append(x); pres.append(pre)
        x = F.avg_pool2d(F.relu(s.b2(s.c2(x))), 4).flatten(1); feats.append(x); pres.append(x)
        return s.fc(x), feats, pres

MODELS = {
    'resnet8x4': lambda: ResNet(8, [32, 64, 128, 256]), 'resnet32x4': lambda: ResNet(32, [32, 64, 128, 256]),
    'resnet20': lambda: ResNet(20, [16, 16, 32, 64]), 'resnet110': lambda: ResNet(110, [16, 16, 32, 64]),
    'wrn_40_2': lambda: WRN(40, 2), 'wrn_16_2': lambda: WRN(16, 2), 'wrn_40_1': lambda: WRN(40, 1),
    'vgg8': lambda: VGG('S'), 'vgg11': lambda: VGG('A'), 'vgg13': lambda: VGG('B'), 'vgg16': lambda: VGG('D'),
    'vgg19': lambda: VGG('E'), 'mobile_half': lambda: MobileNetV2(6, 0.5), 'ShuffleV1': ShuffleV1,
    'ShuffleV2': ShuffleV2, 'ResNet50': lambda: ResNetV2(Bottle, [3, 4, 6, 3]), 'ResNet18': lambda: ResNetV2(Basic, [2, 2, 2, 2]),
}
def lua_shapes(ts): return "{" + ",".join("{" + ",".join(str(d) for d in t.shape) + "}" for t in ts) + "}"
def lua_neg(ts): return "{" + ",".join("true" if t.min().item() < 0 else "false" for t in ts) + "}"
out = []
torch.manual_seed(0)
x = torch.randn(2, 3, 32, 32)
for name, ctor in MODELS.items():
    net = ctor().eval()
    with torch.no_grad(): y, feats, pres = net(x)
    out.append('["%s"] = {count = %d, out = {%d, %d}, feat = %s, pre = %s, featNeg = %s, preNeg = %s}' % (
        name, sum(p.numel() for p in net.parameters()), y.shape[0], y.shape[1], lua_shapes(feats), lua_shapes(pres),
        lua_neg(feats), lua_neg(pres)))
print("return {" + ",\n".join(out) + "}")
