"""PyTorch reference builds of the model zoo, from ``torch.nn`` layers only (torchvision is not
installed here): the same architectures, module names and state-dict keys as torchvision's
``alexnet``, ``vgg*``, ``googlenet``, ``resnet*`` and ``mobilenet_v2``, plus the zoo's own
``zfnet``, ``lenet5`` and CIFAR ResNets. ``tests/test_models.py`` copies their weights into
tinygrad_cnn's models and compares outputs and gradients.

The tests in this file check the references themselves against torchvision's published
parameter counts, so that a mistake in a reference cannot hide a mistake in the zoo. They build
on torch's ``meta`` device: shapes only, nothing allocated.
"""
from __future__ import annotations

from collections import namedtuple

import pytest

torch = pytest.importorskip("torch")
tnn = torch.nn
F = torch.nn.functional


# ---------------------------------------------------------------------- AlexNet / ZFNet / LeNet
def t_alexnet(num_classes=1000):
    m = tnn.Module()
    m.features = tnn.Sequential(
        tnn.Conv2d(3, 64, 11, 4, 2), tnn.ReLU(), tnn.MaxPool2d(3, 2),
        tnn.Conv2d(64, 192, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(3, 2),
        tnn.Conv2d(192, 384, 3, padding=1), tnn.ReLU(), tnn.Conv2d(384, 256, 3, padding=1), tnn.ReLU(),
        tnn.Conv2d(256, 256, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(3, 2))
    m.avgpool = tnn.AdaptiveAvgPool2d((6, 6))
    m.classifier = tnn.Sequential(tnn.Dropout(), tnn.Linear(9216, 4096), tnn.ReLU(), tnn.Dropout(),
                                  tnn.Linear(4096, 4096), tnn.ReLU(), tnn.Linear(4096, num_classes))
    return _seq_head(m)


def t_zfnet(num_classes=1000, lrn=False):
    norm = [tnn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)] if lrn else []
    m = tnn.Module()
    m.features = tnn.Sequential(
        tnn.Conv2d(3, 96, 7, 2, 1), tnn.ReLU(), tnn.MaxPool2d(3, 2, ceil_mode=True), *norm,
        tnn.Conv2d(96, 256, 5, 2), tnn.ReLU(), tnn.MaxPool2d(3, 2, ceil_mode=True), *norm,
        tnn.Conv2d(256, 384, 3, padding=1), tnn.ReLU(), tnn.Conv2d(384, 384, 3, padding=1), tnn.ReLU(),
        tnn.Conv2d(384, 256, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(3, 2, ceil_mode=True))
    m.avgpool = tnn.AdaptiveAvgPool2d((6, 6))
    m.classifier = tnn.Sequential(tnn.Dropout(), tnn.Linear(9216, 4096), tnn.ReLU(), tnn.Dropout(),
                                  tnn.Linear(4096, 4096), tnn.ReLU(), tnn.Linear(4096, num_classes))
    return _seq_head(m)


def t_lenet5(num_classes=10):
    m = tnn.Module()
    m.features = tnn.Sequential(tnn.Conv2d(1, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2, 2),
                                tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2, 2))
    m.classifier = tnn.Sequential(tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(),
                                  tnn.Linear(84, num_classes))
    m.forward = lambda x: m.classifier(m.features(x).flatten(1))
    return m


def _seq_head(m):
    def forward(x):
        x = m.avgpool(m.features(x))
        return m.classifier(torch.flatten(x, 1))
    m.forward = forward
    return m


# ---------------------------------------------------------------------- VGG
VGG_CFGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def t_vgg(cfg, batch_norm=False, num_classes=1000):
    layers, c = [], 3
    for v in VGG_CFGS[cfg]:
        if v == "M":
            layers.append(tnn.MaxPool2d(2, 2))
        else:
            layers += [tnn.Conv2d(c, v, 3, padding=1)] + ([tnn.BatchNorm2d(v)] if batch_norm else []) + [tnn.ReLU()]
            c = v
    m = tnn.Module()
    m.features = tnn.Sequential(*layers)
    m.avgpool = tnn.AdaptiveAvgPool2d((7, 7))
    m.classifier = tnn.Sequential(tnn.Linear(25088, 4096), tnn.ReLU(), tnn.Dropout(), tnn.Linear(4096, 4096),
                                  tnn.ReLU(), tnn.Dropout(), tnn.Linear(4096, num_classes))
    return _seq_head(m)


# ---------------------------------------------------------------------- ResNet (ImageNet)
class TBasicBlock(tnn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, width=64):
        super().__init__()
        self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.relu = tnn.ReLU()
        self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class TBottleneck(tnn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, width_per_group=64):
        super().__init__()
        width = int(planes * (width_per_group / 64.0)) * groups
        self.conv1 = tnn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(width)
        self.conv2 = tnn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = tnn.BatchNorm2d(width)
        self.conv3 = tnn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = tnn.BatchNorm2d(planes * 4)
        self.relu = tnn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class TResNet(tnn.Module):
    def __init__(self, block, layers, num_classes=1000, groups=1, width_per_group=64):
        super().__init__()
        self.inplanes = 64
        self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = tnn.BatchNorm2d(64)
        self.relu = tnn.ReLU()
        self.maxpool = tnn.MaxPool2d(3, 2, 1)
        for i, (planes, n) in enumerate(zip([64, 128, 256, 512], layers)):
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or self.inplanes != planes * block.expansion:
                down = tnn.Sequential(tnn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                      tnn.BatchNorm2d(planes * block.expansion))
            blocks = [block(self.inplanes, planes, stride, down, groups, width_per_group)]
            self.inplanes = planes * block.expansion
            blocks += [block(self.inplanes, planes, 1, None, groups, width_per_group) for _ in range(1, n)]
            setattr(self, f"layer{i + 1}", tnn.Sequential(*blocks))
        self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
        self.fc = tnn.Linear(512 * block.expansion, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


RESNET_LAYERS = {18: (TBasicBlock, [2, 2, 2, 2]), 34: (TBasicBlock, [3, 4, 6, 3]),
                 50: (TBottleneck, [3, 4, 6, 3]), 101: (TBottleneck, [3, 4, 23, 3]),
                 152: (TBottleneck, [3, 8, 36, 3])}


def t_resnet(depth, num_classes=1000, **kw):
    block, layers = RESNET_LAYERS[depth]
    return TResNet(block, layers, num_classes, **kw)


# ---------------------------------------------------------------------- CIFAR ResNets
class TCifarBlock(tnn.Module):
    def __init__(self, inp, planes, stride, shortcut):
        super().__init__()
        self.conv1 = tnn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.relu = tnn.ReLU()
        self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.pad = None
        self.downsample = None
        if stride != 1 or inp != planes:
            if shortcut == "A":
                extra = planes - inp
                self.pad = (stride, extra // 2, extra - extra // 2)
            else:
                self.downsample = tnn.Sequential(tnn.Conv2d(inp, planes, 1, stride, bias=False),
                                                 tnn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        if self.pad is not None:
            s, before, after = self.pad
            identity = F.pad(x[:, :, ::s, ::s], (0, 0, 0, 0, before, after))
        elif self.downsample is not None:
            identity = self.downsample(x)
        else:
            identity = x
        return self.relu(out + identity)


class TCifarResNet(tnn.Module):
    def __init__(self, n, num_classes=10, shortcut="A"):
        super().__init__()
        self.conv1 = tnn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(16)
        self.relu = tnn.ReLU()
        inp = 16
        for i, planes in enumerate([16, 32, 64]):
            blocks = []
            for j in range(n):
                blocks.append(TCifarBlock(inp, planes, 2 if (i > 0 and j == 0) else 1, shortcut))
                inp = planes
            setattr(self, f"layer{i + 1}", tnn.Sequential(*blocks))
        self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
        self.fc = tnn.Linear(64, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# ---------------------------------------------------------------------- GoogLeNet
TGoogLeNetOutputs = namedtuple("TGoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])


class TBasicConv2d(tnn.Module):
    def __init__(self, cin, cout, **kw):
        super().__init__()
        self.conv = tnn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = tnn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class TInception(tnn.Module):
    def __init__(self, cin, c1, c3r, c3, c5r, c5, pp):
        super().__init__()
        self.branch1 = TBasicConv2d(cin, c1, kernel_size=1)
        self.branch2 = tnn.Sequential(TBasicConv2d(cin, c3r, kernel_size=1),
                                      TBasicConv2d(c3r, c3, kernel_size=3, padding=1))
        self.branch3 = tnn.Sequential(TBasicConv2d(cin, c5r, kernel_size=1),
                                      TBasicConv2d(c5r, c5, kernel_size=3, padding=1))
        self.branch4 = tnn.Sequential(tnn.MaxPool2d(3, 1, 1, ceil_mode=True), TBasicConv2d(cin, pp, kernel_size=1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class TInceptionAux(tnn.Module):
    def __init__(self, cin, num_classes, dropout=0.7):
        super().__init__()
        self.conv = TBasicConv2d(cin, 128, kernel_size=1)
        self.fc1 = tnn.Linear(2048, 1024)
        self.fc2 = tnn.Linear(1024, num_classes)
        self.dropout = tnn.Dropout(dropout)

    def forward(self, x):
        x = torch.flatten(self.conv(F.adaptive_avg_pool2d(x, (4, 4))), 1)
        return self.fc2(self.dropout(F.relu(self.fc1(x))))


class TGoogLeNet(tnn.Module):
    def __init__(self, num_classes=1000, aux_logits=True, transform_input=False, dropout=0.2, dropout_aux=0.7):
        super().__init__()
        self.aux_logits, self.transform_input = aux_logits, transform_input
        self.conv1 = TBasicConv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = tnn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = TBasicConv2d(64, 64, kernel_size=1)
        self.conv3 = TBasicConv2d(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = tnn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception3a = TInception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = TInception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = tnn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception4a = TInception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = TInception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = TInception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = TInception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = TInception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = tnn.MaxPool2d(2, 2, ceil_mode=True)
        self.inception5a = TInception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = TInception(832, 384, 192, 384, 48, 128, 128)
        if aux_logits:
            self.aux1 = TInceptionAux(512, num_classes, dropout_aux)
            self.aux2 = TInceptionAux(528, num_classes, dropout_aux)
        else:
            self.aux1 = self.aux2 = None
        self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
        self.dropout = tnn.Dropout(dropout)
        self.fc = tnn.Linear(1024, num_classes)

    def forward(self, x):
        if self.transform_input:
            x = torch.cat([torch.unsqueeze(x[:, 0], 1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5,
                           torch.unsqueeze(x[:, 1], 1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5,
                           torch.unsqueeze(x[:, 2], 1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5], 1)
        x = self.maxpool2(self.conv3(self.conv2(self.maxpool1(self.conv1(x)))))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if (self.aux1 is not None and self.training) else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if (self.aux2 is not None and self.training) else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))
        if self.training and self.aux_logits:
            # torchvision's order: (logits, output of aux1, output of aux2), whatever the field names say
            return TGoogLeNetOutputs(x, aux1, aux2)
        return x


# ---------------------------------------------------------------------- MobileNetV2
def _make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _cna(cin, cout, k=3, stride=1, groups=1):
    return tnn.Sequential(tnn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                          tnn.BatchNorm2d(cout), tnn.ReLU6())


class TInvertedResidual(tnn.Module):
    def __init__(self, inp, oup, stride, t):
        super().__init__()
        hidden = int(round(inp * t))
        self.use_res = stride == 1 and inp == oup
        layers = [_cna(inp, hidden, 1)] if t != 1 else []
        layers += [_cna(hidden, hidden, 3, stride, groups=hidden), tnn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
                   tnn.BatchNorm2d(oup)]
        self.conv = tnn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class TMobileNetV2(tnn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
                   [6, 320, 1, 1]]
        cin = _make_divisible(32)
        feats = [_cna(3, cin, stride=2)]
        for t, c, n, s in setting:
            for i in range(n):
                feats.append(TInvertedResidual(cin, _make_divisible(c), s if i == 0 else 1, t))
                cin = _make_divisible(c)
        feats.append(_cna(cin, 1280, 1))
        self.features = tnn.Sequential(*feats)
        self.classifier = tnn.Sequential(tnn.Dropout(0.2), tnn.Linear(1280, num_classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


# ---------------------------------------------------------------------- registry
TORCH_BUILDERS = {
    "alexnet": t_alexnet, "zfnet": t_zfnet, "lenet5": t_lenet5,
    "vgg11": lambda **k: t_vgg("A", False, **k), "vgg11_bn": lambda **k: t_vgg("A", True, **k),
    "vgg13": lambda **k: t_vgg("B", False, **k), "vgg13_bn": lambda **k: t_vgg("B", True, **k),
    "vgg16": lambda **k: t_vgg("D", False, **k), "vgg16_bn": lambda **k: t_vgg("D", True, **k),
    "vgg19": lambda **k: t_vgg("E", False, **k), "vgg19_bn": lambda **k: t_vgg("E", True, **k),
    "resnet18": lambda **k: t_resnet(18, **k), "resnet34": lambda **k: t_resnet(34, **k),
    "resnet50": lambda **k: t_resnet(50, **k), "resnet101": lambda **k: t_resnet(101, **k),
    "resnet152": lambda **k: t_resnet(152, **k),
    "resnext50_32x4d": lambda **k: t_resnet(50, groups=32, width_per_group=4, **k),
    "wide_resnet50_2": lambda **k: t_resnet(50, width_per_group=128, **k),
    "googlenet": TGoogLeNet, "mobilenet_v2": TMobileNetV2,
    "resnet20": lambda **k: TCifarResNet(3, **k), "resnet32": lambda **k: TCifarResNet(5, **k),
    "resnet44": lambda **k: TCifarResNet(7, **k), "resnet56": lambda **k: TCifarResNet(9, **k),
    "resnet110": lambda **k: TCifarResNet(18, **k),
}

# torchvision's documented counts (and the CIFAR/LeNet/ZFNet counts, derived by hand in the
# model docstrings: conv k*k*cin*cout + cout, BN 2*c, FC in*out + out)
TORCHVISION_COUNTS = {
    "alexnet": 61_100_840, "vgg11": 132_863_336, "vgg11_bn": 132_868_840, "vgg13": 133_047_848,
    "vgg13_bn": 133_053_736, "vgg16": 138_357_544, "vgg16_bn": 138_365_992, "vgg19": 143_667_240,
    "vgg19_bn": 143_678_248, "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808, "resnext50_32x4d": 25_028_904,
    "wide_resnet50_2": 68_883_240, "mobilenet_v2": 3_504_872,
}


def meta_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(TORCHVISION_COUNTS))
def test_reference_matches_torchvision_count(name):
    with torch.device("meta"):
        ref = TORCH_BUILDERS[name]()
    assert meta_count(ref) == TORCHVISION_COUNTS[name]


def test_reference_googlenet_counts():
    with torch.device("meta"):
        assert meta_count(TGoogLeNet(aux_logits=False)) == 6_624_904
        assert meta_count(TGoogLeNet(aux_logits=True)) == 13_004_888


def test_reference_small_nets_counts():
    # LeNet-5: 6*25+6 + 16*6*25+16 + 400*120+120 + 120*84+84 + 84*10+10
    assert meta_count(t_lenet5()) == 156 + 2416 + 48120 + 10164 + 850 == 61_706
    # ResNet-20 with option-A shortcuts: "0.27M" in He et al. 2016, Table 6
    assert meta_count(TCifarResNet(3)) == 269_722
    assert [round(meta_count(TCifarResNet(n)) / 1e6, 2) for n in (5, 7, 9)] == [0.46, 0.66, 0.85]
    assert round(meta_count(TCifarResNet(18)) / 1e6, 1) == 1.7


def test_reference_forward_shapes():
    with torch.no_grad():
        assert TCifarResNet(3).eval()(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
        assert t_lenet5().eval()(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
        feats = t_zfnet().features
        x = torch.zeros(1, 3, 224, 224)
        sizes = []
        for layer in feats:
            x = layer(x)
            if isinstance(layer, (tnn.Conv2d, tnn.MaxPool2d)):
                sizes.append(x.shape[-1])
        # Zeiler & Fergus 2013, Fig. 2: 110 -> 55 -> 26 -> 13 -> 13 -> 13 -> 13 -> 6
        assert sizes == [110, 55, 26, 13, 13, 13, 13, 6]
