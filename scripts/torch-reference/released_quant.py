"""What the PyTorch reference scripts share: the released quantizer functions (zsq-report A.2/A.3) with the bit width
as an argument, a safetensors reader (float32 tensors only, as our model files) and the option-A ResNet-20. Imported
by resnet20_ptq.py, zsq_iter_bench.py, speed_bench.py and eval_resnet20b.py, which sit next to it."""
import json, struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def load_safetensors(path, dtype=torch.float32):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        blob = f.read()
    out = {}
    for k, v in header.items():
        if k == '__metadata__':
            continue
        lo, hi = v['data_offsets']
        out[k] = torch.from_numpy(np.frombuffer(blob[lo:hi], dtype=np.float32).reshape(v['shape']).copy()).to(dtype)
    return out


def qparams(mn, mx, k):
    # ZeroQ/GDFQ asymmetric_linear_quantization_params, as in the released code.
    n = 2 ** k - 1
    s = n / torch.clamp(mx - mn, min=1e-8)
    return s, torch.round(s * mn) + 2 ** (k - 1)


def rows(x, k):
    """The released AsymmetricQuantFunction: one (min, max) per (sample, channel) row of a 4-D tensor (per (out, in)
    kernel slice of a conv weight), per row of a 2-D tensor; no clamp."""
    v = x.reshape(x.shape[0], x.shape[1], -1) if x.dim() == 4 else x
    shape = (x.shape[0], x.shape[1], 1, 1) if x.dim() == 4 else (x.shape[0], 1)
    s, z = qparams(v.min(dim=-1)[0].reshape(shape), v.max(dim=-1)[0].reshape(shape), k)
    return (torch.round(s * x - z) + z) / s


def per_out_channel(w, k):
    """GDFQ's weight quantizer: one range per output channel, codes clamped to the signed k-bit grid."""
    v = w.reshape(w.shape[0], -1)
    shape = [-1] + [1] * (w.dim() - 1)
    s, z = qparams(v.min(dim=1)[0].reshape(shape), v.max(dim=1)[0].reshape(shape), k)
    return (torch.clamp(torch.round(s * w - z), -2 ** (k - 1), 2 ** (k - 1) - 1) + z) / s


# ---- the option-A ResNet-20 -------------------------------------------------------------------------------------------

class ShortcutA(nn.Module):
    def __init__(self, pad):
        super().__init__()
        self.pad = pad

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlockA(nn.Module):
    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU()
        self.shortcut = ShortcutA(planes // 4) if stride != 1 or inp != planes else nn.Identity()

    def forward(self, x):
        o = self.relu1(self.bn1(self.conv1(x)))
        o = self.bn2(self.conv2(o))
        return self.relu2(o + self.shortcut(x))


class ResNet20A(nn.Module):
    """akamaster/pytorch_resnet_cifar10 ResNet-20 (option-A shortcuts); state-dict keys as the safetensors file."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        inp, layers = 16, []
        for planes, stride in [(16, 1), (32, 2), (64, 2)]:
            blocks = []
            for b in range(3):
                blocks.append(BasicBlockA(inp, planes, stride if b == 0 else 1))
                inp = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.avg_pool2d(x, x.shape[3]).flatten(1)
        return self.linear(x)
