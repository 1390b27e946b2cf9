#!/usr/bin/env python3
"""PyTorch cross-check of granq's PTQ figures (not part of the build or the tests).

Runs the option-A ResNet-20 teacher with the released GranQ quantizer (zsq-report A.2/A.3) written directly in
PyTorch, on the CIFAR-10 test set, and prints top-1; optionally saves the logits for a per-image comparison with
granq. Needs Debian's PyTorch 1.13 (`apt-get install python3-torch`, then run with /usr/bin/python3).

  /usr/bin/python3 scripts/torch-reference/resnet20_ptq.py --bits 3 [--weight slice|channel] [--linear-fp]
      [--float64] [--no-mkldnn] [--limit N] [--save logits.npy]
"""
import argparse, json, os, struct

import numpy as np
import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument('--model', default='../shared/models/resnet20_cifar10_akamaster.safetensors')
ap.add_argument('--data', default='../shared/data/cifar-10-batches-bin/test_batch.bin')
ap.add_argument('--bits', type=int, default=0, help='W=A bits; 0 = full precision')
ap.add_argument('--weight', choices=['slice', 'channel'], default='slice',
                help='slice: the released row quantizer on (out,in) kernel slices; channel: GDFQ per output channel with the clamp')
ap.add_argument('--linear-fp', action='store_true', help='leave the final Linear weight unquantized')
ap.add_argument('--float64', action='store_true', help='compute everything in float64')
ap.add_argument('--no-mkldnn', action='store_true', help="use PyTorch's native convolution instead of oneDNN's")
ap.add_argument('--limit', type=int, default=10000)
ap.add_argument('--save', help='write the logits [N,10] (float32) to this .npy file')
a = ap.parse_args()
torch.set_num_threads(os.cpu_count() or 1)
if a.no_mkldnn:
    torch.backends.mkldnn.enabled = False
dt = torch.float64 if a.float64 else torch.float32
K = a.bits


def load_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        blob = f.read()
    out = {}
    for k, v in header.items():
        if k == '__metadata__':
            continue
        lo, hi = v['data_offsets']
        out[k] = torch.from_numpy(np.frombuffer(blob[lo:hi], dtype=np.float32).reshape(v['shape']).copy()).to(dt)
    return out


def qparams(mn, mx):
    # ZeroQ/GDFQ asymmetric_linear_quantization_params, as in the released code.
    n = 2 ** K - 1
    s = n / torch.clamp(mx - mn, min=1e-8)
    return s, torch.round(s * mn) + 2 ** (K - 1)


def rows(x):
    """The released AsymmetricQuantFunction: one (min, max) per (sample, channel) row of a 4-D tensor (per (out, in)
    kernel slice of a conv weight), per row of a 2-D tensor; no clamp."""
    v = x.reshape(x.shape[0], x.shape[1], -1) if x.dim() == 4 else x
    shape = (x.shape[0], x.shape[1], 1, 1) if x.dim() == 4 else (x.shape[0], 1)
    s, z = qparams(v.min(dim=-1)[0].reshape(shape), v.max(dim=-1)[0].reshape(shape))
    return (torch.round(s * x - z) + z) / s


def per_out_channel(w):
    """GDFQ's weight quantizer: one range per output channel, codes clamped to the signed k-bit grid."""
    v = w.reshape(w.shape[0], -1)
    shape = [-1] + [1] * (w.dim() - 1)
    s, z = qparams(v.min(dim=1)[0].reshape(shape), v.max(dim=1)[0].reshape(shape))
    return (torch.clamp(torch.round(s * w - z), -2 ** (K - 1), 2 ** (K - 1) - 1) + z) / s


W = load_safetensors(a.model)
QW = dict(W)
if K:
    for k, v in W.items():
        is_conv = k.endswith('weight') and v.dim() == 4
        is_linear = k == 'linear.weight'
        if is_conv or (is_linear and not a.linear_fp):
            QW[k] = rows(v) if a.weight == 'slice' else per_out_channel(v)


def act(x):
    return rows(x) if K else x


def bn(x, p):
    return F.batch_norm(x, W[p + '.running_mean'], W[p + '.running_var'], W[p + '.weight'], W[p + '.bias'], False, 0.0, 1e-5)


def forward(x):
    x = act(F.relu(bn(F.conv2d(x, QW['conv1.weight'], None, 1, 1), 'bn1')))
    for layer, width in zip([1, 2, 3], [16, 32, 64]):
        for b in range(3):
            p = f'layer{layer}.{b}'
            stride = 2 if b == 0 and layer > 1 else 1
            o = act(F.relu(bn(F.conv2d(x, QW[p + '.conv1.weight'], None, stride, 1), p + '.bn1')))
            o = bn(F.conv2d(o, QW[p + '.conv2.weight'], None, 1, 1), p + '.bn2')
            # option-A shortcut: subsample, zero-pad the channel axis by width/4 on each side
            sc = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, width // 4, width // 4)) if stride == 2 else x
            x = act(F.relu(o + sc))
    x = F.avg_pool2d(x, x.shape[3]).flatten(1)
    return F.linear(x, QW['linear.weight'], W['linear.bias'])


raw = np.fromfile(a.data, dtype=np.uint8).reshape(-1, 3073)[: a.limit]
labels = torch.from_numpy(raw[:, 0].astype(np.int64))
pixels = torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy())
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
logits = []
with torch.no_grad():
    for i in range(0, len(raw), 500):
        x = ((pixels[i:i + 500].float() / 255.0 - mean) / std).to(dt)  # float32 preprocessing, as the fixtures
        logits.append(forward(x).float())
L = torch.cat(logits)
correct = int((L.argmax(1) == labels).sum())
print(json.dumps({'torch': torch.__version__, 'bits': K, 'weight': a.weight, 'linear_fp': a.linear_fp,
                  'float64': a.float64, 'mkldnn': not a.no_mkldnn, 'images': len(raw), 'correct': correct,
                  'top1': round(100 * correct / len(raw), 2)}))
if a.save:
    np.save(a.save, L.numpy())
