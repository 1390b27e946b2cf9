#!/usr/bin/env python3
"""PyTorch cross-check of granq's PTQ figures (not part of the build or the tests).

Runs the option-A ResNet-20 teacher with the released GranQ quantizer (zsq-report A.2/A.3) written directly in
PyTorch, on the CIFAR-10 test set, and prints top-1; optionally saves the logits for a per-image comparison with
granq. Needs Debian's PyTorch 1.13 (`apt-get install python3-torch`, then run with /usr/bin/python3).

  /usr/bin/python3 scripts/torch-reference/resnet20_ptq.py --bits 3 [--weight slice|channel] [--linear-fp]
      [--float64] [--no-mkldnn] [--limit N] [--save logits.npy]
"""
import argparse, json, os

import numpy as np
import torch
import torch.nn.functional as F

from released_quant import load_safetensors, per_out_channel, rows

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


W = load_safetensors(a.model, dt)
QW = dict(W)
if K:
    for k, v in W.items():
        is_conv = k.endswith('weight') and v.dim() == 4
        is_linear = k == 'linear.weight'
        if is_conv or (is_linear and not a.linear_fp):
            QW[k] = rows(v, K) if a.weight == 'slice' else per_out_channel(v, K)


def act(x):
    return rows(x, K) if K else x


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
