#!/usr/bin/env python3
"""PyTorch reference timing of the speed figures that are not the ZSQ iteration (not part of the build or the tests):
the counterparts of `npm run bench -- fp` (bench/fp.ts) and `granq bench quant` (src/cli/bench-quant.ts).

  forward_b64, forward_b256   the FP option-A ResNet-20 (random weights), eval mode, no grad: images/s
  train_b64                   one training step at batch 64: forward, cross-entropy, backward, SGD (lr 0.01, Nesterov
                              momentum 0.9, weight decay 1e-4): images/s
  act_quant_granq_b64_ms      the released row quantizer (released_quant.rows, k bits: one range per (sample, channel)
                              row) on the 19 post-ReLU activations of one forward at batch 64, in turn: milliseconds

Median of --runs timed runs after --warmup. Needs Debian's PyTorch (`apt-get install python3-torch`; run with
/usr/bin/python3). scripts/torch-reference/speed_ab.sh interleaves it with granq's figures.

  /usr/bin/python3 scripts/torch-reference/speed_bench.py [--threads 2] [--runs 15] [--warmup 3] [--bits 3] [--json]
"""
import argparse, json, statistics, time

import torch
import torch.nn as nn
import torch.nn.functional as F

from released_quant import ResNet20A, rows

ap = argparse.ArgumentParser()
ap.add_argument('--threads', type=int, default=2)
ap.add_argument('--runs', type=int, default=15)
ap.add_argument('--warmup', type=int, default=3)
ap.add_argument('--bits', type=int, default=3, help='bit width of the quantizer figure (granq bench quant: 3)')
ap.add_argument('--json', action='store_true', help='print one JSON line last on stdout')
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)


def median_seconds(fn):
    for _ in range(a.warmup):
        fn()
    ts = []
    for _ in range(a.runs):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


model = ResNet20A(10)
out = {'threads': a.threads, 'torch': torch.__version__}
model.eval()
with torch.no_grad():
    for b in (64, 256):
        x = torch.randn(b, 3, 32, 32)
        out[f'forward_b{b}'] = b / median_seconds(lambda: model(x))

model.train()
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)
x = torch.randn(64, 3, 32, 32)
y = torch.randint(0, 10, (64,))


def step():
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()


out['train_b64'] = 64 / median_seconds(step)

# The 19 activations the quantizers see: every ReLU's output of one eval-mode forward at batch 64.
acts = []
hooks = [m.register_forward_hook(lambda m, i, o: acts.append(o.detach().clone())) for m in model.modules() if isinstance(m, nn.ReLU)]
model.eval()
with torch.no_grad():
    model(torch.randn(64, 3, 32, 32))
for h in hooks:
    h.remove()
assert len(acts) == 19, len(acts)
with torch.no_grad():
    out['act_quant_granq_b64_ms'] = 1000 * median_seconds(lambda: [rows(t, a.bits) for t in acts])

for k, v in out.items():
    print(f'{k}: {v:.3f}' if isinstance(v, float) else f'{k}: {v}', flush=True)
if a.json:
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}))
