# PyTorch twins of every retort model whose PyTorch names retort knows (lua/retort/interop/torch_names.lua),
# for tests/lua/torch_interop_spec.lua and torch_cli_spec.lua. Each twin is the published architecture
# with the published module names, so that its state_dict() has exactly the keys a real checkpoint has:
# RepDistiller's models/resnet.py, wrn.py, vgg.py (with BN), mobilenetv2.py, ShuffleNetv1.py,
# ShuffleNetv2.py, resnetv2.py (written here from those files' structure, not copied), and for retort's
# own mlp and cnn a module with the attribute names docs/checkpoint.md gives (fc1, relu1, ...).
# Written independently of retort's Lua models: an import is checked by running both on one input.
#
#   python3 torch_twins.py make DIR NAME...    for each NAME: a twin with random weights and non-trivial
#       BatchNorm statistics, saved with torch.save as DIR/NAME.pth (bare, or under 'model', 'state_dict'
#       or 'net', in turn), the same tensors as the neutral file tools/torch_state.py writes
#       (DIR/NAME.tensors.h5, through that script's own function) and DIR/NAME.io.h5 (/x: an input batch,
#       /logits: the twin's output in evaluation mode)
#   python3 torch_twins.py check DIR NAME...   for each NAME: DIR/NAME.export.h5 (what retort exported)
#       through tools/torch_state.py to DIR/NAME.export.pth, then compared with DIR/NAME.pth: the same
#       container, keys in the same order, dtypes, shapes and bits; loaded (strict) into a twin, whose
#       logits are compared with the original's. Prints a Lua table {NAME = {problems = "...", delta = x}}.
# NAME is a key of TWINS below. Runs with Debian's python3-torch, python3-h5py and python3-numpy.
import importlib.util, math, os, sys
import h5py, torch, torch.nn as nn, torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def helper():
    spec = importlib.util.spec_from_file_location("torch_state", os.path.join(HERE, "..", "..", "tools", "torch_state.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def conv3x3(i, o, stride=1):
    return nn.Conv2d(i, o, 3, stride, 1, bias=False)


def shuffle(x, g):
    n, c, h, w = x.shape
    return x.view(n, g, c // g, h, w).transpose(1, 2).reshape(n, c, h, w)


# --- models/resnet.py -------------------------------------------------------------------------------
class ResBasic(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(inplanes, planes, stride), nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2, self.bn2 = conv3x3(planes, planes), nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class CifarResNet(nn.Module):
    def __init__(self, depth, f, num_classes=100):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1, self.bn1, self.relu = nn.Conv2d(3, f[0], 3, padding=1, bias=False), nn.BatchNorm2d(f[0]), nn.ReLU()
        self.inplanes = f[0]
        self.layer1 = self._layer(f[1], n, 1)
        self.layer2 = self._layer(f[2], n, 2)
        self.layer3 = self._layer(f[3], n, 2)
        self.avgpool = nn.AvgPool2d(8)
        self.fc = nn.Linear(f[3], num_classes)

    def _layer(self, planes, n, stride):
        down = None
        if stride != 1 or self.inplanes != planes:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        blocks = [ResBasic(self.inplanes, planes, stride, down)] + [ResBasic(planes, planes) for _ in range(n - 1)]
        self.inplanes = planes
        return nn.Sequential(*blocks)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.avgpool(x).flatten(1))


# --- models/wrn.py ----------------------------------------------------------------------------------
class WideBasic(nn.Module):
    def __init__(self, i, o, stride):
        super().__init__()
        self.bn1, self.relu1 = nn.BatchNorm2d(i), nn.ReLU()
        self.conv1 = nn.Conv2d(i, o, 3, stride, 1, bias=False)
        self.bn2, self.relu2 = nn.BatchNorm2d(o), nn.ReLU()
        self.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
        self.equalInOut = i == o
        self.convShortcut = None if self.equalInOut else nn.Conv2d(i, o, 1, stride, 0, bias=False)

    def forward(self, x):
        o = self.relu1(self.bn1(x))
        y = self.conv2(self.relu2(self.bn2(self.conv1(o))))
        return y + (x if self.equalInOut else self.convShortcut(o))


class NetworkBlock(nn.Module):
    def __init__(self, n, i, o, stride):
        super().__init__()
        self.layer = nn.Sequential(*[WideBasic(i if k == 0 else o, o, stride if k == 0 else 1) for k in range(n)])

    def forward(self, x):
        return self.layer(x)


class WideResNet(nn.Module):
    def __init__(self, depth, k, num_classes=100):
        super().__init__()
        w, n = [16, 16 * k, 32 * k, 64 * k], (depth - 4) // 6
        self.conv1 = nn.Conv2d(3, w[0], 3, 1, 1, bias=False)
        self.block1, self.block2, self.block3 = NetworkBlock(n, w[0], w[1], 1), NetworkBlock(n, w[1], w[2], 2), \
            NetworkBlock(n, w[2], w[3], 2)
        self.bn1, self.relu = nn.BatchNorm2d(w[3]), nn.ReLU()
        self.fc = nn.Linear(w[3], num_classes)

    def forward(self, x):
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        return self.fc(F.avg_pool2d(self.relu(self.bn1(x)), 8).flatten(1))


# --- models/vgg.py (batch_norm=True) -----------------------------------------------------------------
VGG_CFG = {'S': [[64], [128], [256], [512], [512]], 'A': [[64], [128], [256, 256], [512, 512], [512, 512]],
           'B': [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]]}


class VGG(nn.Module):
    def __init__(self, cfg, num_classes=100):
        super().__init__()
        c, i = VGG_CFG[cfg], 3
        for b in range(5):
            layers = []
            for v in c[b]:
                layers += [nn.Conv2d(i, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU()]
                i = v
            setattr(self, "block%d" % b, nn.Sequential(*layers[:-1]))
        for b in range(4):
            setattr(self, "pool%d" % b, nn.MaxPool2d(2, 2))
        self.pool4 = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x):
        for b in range(5):
            x = F.relu(getattr(self, "block%d" % b)(x))
            if b < 3:
                x = getattr(self, "pool%d" % b)(x)
        return self.classifier(self.pool4(x).flatten(1))


# --- models/mobilenetv2.py --------------------------------------------------------------------------
class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, t):
        super().__init__()
        h = inp * t
        self.use_res_connect = stride == 1 and inp == oup
        self.conv = nn.Sequential(nn.Conv2d(inp, h, 1, 1, 0, bias=False), nn.BatchNorm2d(h), nn.ReLU(),
                                  nn.Conv2d(h, h, 3, stride, 1, groups=h, bias=False), nn.BatchNorm2d(h), nn.ReLU(),
                                  nn.Conv2d(h, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup))

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, T, width, num_classes=100):
        super().__init__()
        i = int(32 * width)
        self.conv1 = nn.Sequential(nn.Conv2d(3, i, 3, 2, 1, bias=False), nn.BatchNorm2d(i), nn.ReLU())
        self.blocks = nn.ModuleList()
        for t, c, n, s in [[1, 16, 1, 1], [T, 24, 2, 1], [T, 32, 3, 2], [T, 64, 4, 2], [T, 96, 3, 1], [T, 160, 3, 2],
                           [T, 320, 1, 1]]:
            o, layers = int(c * width), []
            for k in range(n):
                layers.append(InvertedResidual(i, o, s if k == 0 else 1, t))
                i = o
            self.blocks.append(nn.Sequential(*layers))
        last = int(1280 * width) if width > 1.0 else 1280
        self.conv2 = nn.Sequential(nn.Conv2d(i, last, 1, 1, 0, bias=False), nn.BatchNorm2d(last), nn.ReLU())
        self.classifier = nn.Sequential(nn.Linear(last, num_classes))
        self.avgpool = nn.AvgPool2d(2, ceil_mode=True)

    def forward(self, x):
        x = self.conv1(x)
        for b in self.blocks:
            x = b(x)
        return self.classifier(self.avgpool(self.conv2(x)).flatten(1))


# --- models/ShuffleNetv1.py -------------------------------------------------------------------------
class ShuffleBlock(nn.Module):
    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        return shuffle(x, self.groups)


class SV1Bottleneck(nn.Module):
    def __init__(self, i, o, stride, groups):
        super().__init__()
        mid, g = int(o / 4), 1 if i == 24 else groups
        self.stride = stride
        self.conv1, self.bn1, self.shuffle1 = nn.Conv2d(i, mid, 1, groups=g, bias=False), nn.BatchNorm2d(mid), \
            ShuffleBlock(g)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3, self.bn3 = nn.Conv2d(mid, o, 1, groups=groups, bias=False), nn.BatchNorm2d(o)
        self.shortcut = nn.Sequential(nn.AvgPool2d(3, 2, 1)) if stride == 2 else nn.Sequential()

    def forward(self, x):
        y = self.shuffle1(F.relu(self.bn1(self.conv1(x))))
        y = self.bn3(self.conv3(F.relu(self.bn2(self.conv2(y)))))
        r = self.shortcut(x)
        return F.relu(torch.cat([y, r], 1) if self.stride == 2 else y + r)


class ShuffleV1(nn.Module):
    def __init__(self, num_classes=100):
        super().__init__()
        self.conv1, self.bn1, self.in_planes = nn.Conv2d(3, 24, 1, bias=False), nn.BatchNorm2d(24), 24
        self.layer1, self.layer2, self.layer3 = self._layer(240, 4), self._layer(480, 8), self._layer(960, 4)
        self.linear = nn.Linear(960, num_classes)

    def _layer(self, o, n):
        blocks = []
        for k in range(n):
            blocks.append(SV1Bottleneck(self.in_planes, o - (self.in_planes if k == 0 else 0), 2 if k == 0 else 1, 3))
            self.in_planes = o
        return nn.Sequential(*blocks)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(F.avg_pool2d(x, 4).flatten(1))


# --- models/ShuffleNetv2.py -------------------------------------------------------------------------
class SplitBlock(nn.Module):
    def forward(self, x):
        c = int(x.size(1) * 0.5)
        return x[:, :c], x[:, c:]


class SV2Basic(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.split, h = SplitBlock(), int(c * 0.5)
        self.conv1, self.bn1 = nn.Conv2d(h, h, 1, bias=False), nn.BatchNorm2d(h)
        self.conv2, self.bn2 = nn.Conv2d(h, h, 3, 1, 1, groups=h, bias=False), nn.BatchNorm2d(h)
        self.conv3, self.bn3 = nn.Conv2d(h, h, 1, bias=False), nn.BatchNorm2d(h)
        self.shuffle = ShuffleBlock(2)

    def forward(self, x):
        x1, x2 = self.split(x)
        y = F.relu(self.bn3(self.conv3(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x2))))))))
        return self.shuffle(torch.cat([x1, y], 1))


class SV2Down(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        m = o // 2
        self.conv1, self.bn1 = nn.Conv2d(i, i, 3, 2, 1, groups=i, bias=False), nn.BatchNorm2d(i)
        self.conv2, self.bn2 = nn.Conv2d(i, m, 1, bias=False), nn.BatchNorm2d(m)
        self.conv3, self.bn3 = nn.Conv2d(i, m, 1, bias=False), nn.BatchNorm2d(m)
        self.conv4, self.bn4 = nn.Conv2d(m, m, 3, 2, 1, groups=m, bias=False), nn.BatchNorm2d(m)
        self.conv5, self.bn5 = nn.Conv2d(m, m, 1, bias=False), nn.BatchNorm2d(m)
        self.shuffle = ShuffleBlock(2)

    def forward(self, x):
        left = F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        right = F.relu(self.bn5(self.conv5(self.bn4(self.conv4(F.relu(self.bn3(self.conv3(x))))))))
        return self.shuffle(torch.cat([left, right], 1))


class ShuffleV2(nn.Module):
    def __init__(self, num_classes=100):
        super().__init__()
        out, blocks = (116, 232, 464, 1024), (3, 7, 3)
        self.conv1, self.bn1, self.in_channels = nn.Conv2d(3, 24, 1, bias=False), nn.BatchNorm2d(24), 24
        for k in range(3):
            setattr(self, "layer%d" % (k + 1), nn.Sequential(SV2Down(self.in_channels, out[k]),
                                                             *[SV2Basic(out[k]) for _ in range(blocks[k])]))
            self.in_channels = out[k]
        self.conv2, self.bn2 = nn.Conv2d(out[2], out[3], 1, 1, 0, bias=False), nn.BatchNorm2d(out[3])
        self.linear = nn.Linear(out[3], num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.linear(F.avg_pool2d(x, 4).flatten(1))


# --- models/resnetv2.py -----------------------------------------------------------------------------
class V2Basic(nn.Module):
    expansion = 1

    def __init__(self, i, p, stride=1):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(i, p, 3, stride, 1, bias=False), nn.BatchNorm2d(p)
        self.conv2, self.bn2 = nn.Conv2d(p, p, 3, 1, 1, bias=False), nn.BatchNorm2d(p)
        self.shortcut = nn.Sequential()
        if stride != 1 or i != p:
            self.shortcut = nn.Sequential(nn.Conv2d(i, p, 1, stride, bias=False), nn.BatchNorm2d(p))

    def forward(self, x):
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + self.shortcut(x))


class V2Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, i, p, stride=1):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(i, p, 1, bias=False), nn.BatchNorm2d(p)
        self.conv2, self.bn2 = nn.Conv2d(p, p, 3, stride, 1, bias=False), nn.BatchNorm2d(p)
        self.conv3, self.bn3 = nn.Conv2d(p, 4 * p, 1, bias=False), nn.BatchNorm2d(4 * p)
        self.shortcut = nn.Sequential()
        if stride != 1 or i != 4 * p:
            self.shortcut = nn.Sequential(nn.Conv2d(i, 4 * p, 1, stride, bias=False), nn.BatchNorm2d(4 * p))

    def forward(self, x):
        y = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        return F.relu(self.bn3(self.conv3(y)) + self.shortcut(x))


class ResNetV2(nn.Module):
    def __init__(self, block, nb, num_classes=100):
        super().__init__()
        self.in_planes = 64
        self.conv1, self.bn1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64)
        for k, (p, s) in enumerate(zip([64, 128, 256, 512], [1, 2, 2, 2])):
            blocks = []
            for j in range(nb[k]):
                blocks.append(block(self.in_planes, p, s if j == 0 else 1))
                self.in_planes = p * block.expansion
            setattr(self, "layer%d" % (k + 1), nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.linear = nn.Linear(512 * block.expansion, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.linear(self.avgpool(x).flatten(1))


# --- retort's models.mlp and models.cnn, with the names docs/checkpoint.md gives ---------------------
class MLP(nn.Module):
    def __init__(self, sizes):
        super().__init__()
        self.flatten = nn.Flatten()
        self.n = len(sizes) - 1
        for k in range(self.n):
            setattr(self, "fc%d" % (k + 1), nn.Linear(sizes[k], sizes[k + 1]))
            if k < self.n - 1:
                setattr(self, "relu%d" % (k + 1), nn.ReLU())

    def forward(self, x):
        x = self.flatten(x)
        for k in range(1, self.n + 1):
            x = getattr(self, "fc%d" % k)(x)
            if k < self.n:
                x = getattr(self, "relu%d" % k)(x)
        return x


class CNN(nn.Module):
    def __init__(self, in_channels=1, size=28, channels=(32, 64), hidden=128, classes=10):
        super().__init__()
        c = in_channels
        for k, ch in enumerate(channels):
            setattr(self, "conv%d" % (k + 1), nn.Conv2d(c, ch, 3, padding=1))
            setattr(self, "relu%d" % (k + 1), nn.ReLU())
            setattr(self, "pool%d" % (k + 1), nn.MaxPool2d(2))
            c, size = ch, size // 2
        self.nconv = len(channels)
        self.flatten = nn.Flatten()
        self.fc1, self.relu, self.fc2 = nn.Linear(c * size * size, hidden), nn.ReLU(), nn.Linear(hidden, classes)

    def forward(self, x):
        for k in range(1, self.nconv + 1):
            x = getattr(self, "pool%d" % k)(getattr(self, "relu%d" % k)(getattr(self, "conv%d" % k)(x)))
        return self.fc2(self.relu(self.fc1(self.flatten(x))))


CIFAR = (3, 32, 32)
MNIST = (1, 28, 28)
# name -> (constructor, input shape); the spec maps each to its retort model (same name, except the
# mlp_* and cnn_* variants, whose retort options it gives)
TWINS = {
    'resnet8': (lambda: CifarResNet(8, [16, 16, 32, 64]), CIFAR),
    'resnet14': (lambda: CifarResNet(14, [16, 16, 32, 64]), CIFAR),
    'resnet20': (lambda: CifarResNet(20, [16, 16, 32, 64]), CIFAR),
    'resnet32': (lambda: CifarResNet(32, [16, 16, 32, 64]), CIFAR),
    'resnet44': (lambda: CifarResNet(44, [16, 16, 32, 64]), CIFAR),
    'resnet56': (lambda: CifarResNet(56, [16, 16, 32, 64]), CIFAR),
    'resnet110': (lambda: CifarResNet(110, [16, 16, 32, 64]), CIFAR),
    'resnet8x4': (lambda: CifarResNet(8, [32, 64, 128, 256]), CIFAR),
    'resnet32x4': (lambda: CifarResNet(32, [32, 64, 128, 256]), CIFAR),
    'wrn_16_1': (lambda: WideResNet(16, 1), CIFAR),
    'wrn_16_2': (lambda: WideResNet(16, 2), CIFAR),
    'wrn_40_1': (lambda: WideResNet(40, 1), CIFAR),
    'wrn_40_2': (lambda: WideResNet(40, 2), CIFAR),
    'vgg8': (lambda: VGG('S'), CIFAR),
    'vgg11': (lambda: VGG('A'), CIFAR),
    'vgg13': (lambda: VGG('B'), CIFAR),
    'MobileNetV2': (lambda: MobileNetV2(6, 0.5), CIFAR),
    'ShuffleV1': (lambda: ShuffleV1(), CIFAR),
    'ShuffleV2': (lambda: ShuffleV2(), CIFAR),
    'ResNet18': (lambda: ResNetV2(V2Basic, [2, 2, 2, 2]), CIFAR),
    'ResNet50': (lambda: ResNetV2(V2Bottleneck, [3, 4, 6, 3]), CIFAR),
    'mlp': (lambda: MLP([784, 1200, 1200, 10]), MNIST),
    'mlp_small': (lambda: MLP([784, 64, 32, 10]), MNIST),
    'cnn': (lambda: CNN(), MNIST),
}
CONTAINERS = ["", "model", "state_dict", "net"]


def randomise(net, shape, gen):
    """Random weights (torch.manual_seed is set by the caller), BatchNorm affine parameters away from 1 / 0, running statistics that are the
    batch statistics of one random batch (so activations stay of order 1 through 100+ layers) then
    perturbed, and a num_batches_tracked of its own per layer."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):  # He's normal (fan in); Linear keeps PyTorch's default draw
                m.weight.normal_(0, math.sqrt(2.0 / m.weight[0].numel()), generator=gen)
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                m.bias.uniform_(-0.2, 0.2, generator=gen)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.6, 1.4, generator=gen)
                m.bias.uniform_(-0.3, 0.3, generator=gen)
                m.momentum = 1.0
        net.train()
        net(torch.randn((8,) + shape, generator=gen))
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.add_(torch.randn(m.running_mean.shape, generator=gen) * 0.1 * m.running_var.sqrt())
                m.running_var.mul_(torch.empty(m.running_var.shape).uniform_(0.7, 1.4, generator=gen))
                m.num_batches_tracked.fill_(int(torch.randint(1, 100000, (1,), generator=gen)))
                m.momentum = 0.1
    return net.eval()


def make(out, names):
    h = helper()
    for k, name in enumerate(names):
        ctor, shape = TWINS[name]
        gen = torch.Generator().manual_seed(1000 + k)
        torch.manual_seed(k)
        net = randomise(ctor(), shape, gen)
        x = torch.randn((3,) + shape, generator=gen)
        with torch.no_grad():
            y = net(x)
        sd = net.state_dict()
        container = CONTAINERS[k % len(CONTAINERS)]
        obj = {container: sd, 'epoch': 240, 'best_acc': torch.tensor(75.5)} if container else sd
        path = os.path.join(out, name)
        torch.save(obj, path + ".pth")
        h.to_h5(path + ".pth", path + ".tensors.h5")
        with h5py.File(path + ".io.h5", "w") as f:
            f["x"], f["logits"] = x.numpy(), y.numpy()


def bits(t):
    return t.view(torch.int32) if t.dtype == torch.float32 else t


def check(out, names):
    h = helper()
    rows = []
    for name in names:
        path = os.path.join(out, name)
        problems = []
        h.to_pth(path + ".export.h5", path + ".export.pth")
        orig = torch.load(path + ".pth", weights_only=True)
        got = torch.load(path + ".export.pth", weights_only=True)
        container = next((c for c in CONTAINERS[1:] if c in orig and isinstance(orig, dict) and
                          isinstance(orig[c], dict)), "")
        want_sd = orig[container] if container else orig
        if container:
            if not (isinstance(got, dict) and list(got.keys()) == [container]):
                problems.append("container: expected {'%s': ...}, got keys %s" % (container, list(got.keys())))
            got = got.get(container, {})
        if list(got.keys()) != list(want_sd.keys()):
            problems.append("keys differ: only in the original %s; only in the export %s; order %s" % (
                sorted(set(want_sd) - set(got)), sorted(set(got) - set(want_sd)),
                "same" if sorted(got) == sorted(want_sd) else "n/a"))
        for k, t in want_sd.items():
            if k in got:
                g = got[k]
                if g.dtype != t.dtype or g.shape != t.shape or not torch.equal(bits(g), bits(t)):
                    problems.append("%s: %s %s vs %s %s%s" % (k, g.dtype, tuple(g.shape), t.dtype, tuple(t.shape),
                                    "" if g.shape != t.shape else ", max |diff| %g" % (g.double() - t.double()).abs().max()))
        delta = -1.0
        if not problems:
            ctor, shape = TWINS[name]
            net = ctor()
            net.load_state_dict(got, strict=True)
            net.eval()
            with h5py.File(path + ".io.h5", "r") as f:
                x, y = torch.from_numpy(f["x"][()]), torch.from_numpy(f["logits"][()])
            with torch.no_grad():
                delta = (net(x) - y).abs().max().item()
        rows.append('["%s"] = {problems = %s, delta = %.9g}' % (name, lua_str("; ".join(problems[:20])), delta))
    print("return {" + ",\n".join(rows) + "}")


def lua_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


if __name__ == "__main__":
    torch.set_num_threads(1)
    cmd, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
    {"make": make, "check": check}[cmd](out, names)
