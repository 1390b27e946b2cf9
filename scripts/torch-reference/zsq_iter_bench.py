#!/usr/bin/env python3
"""PyTorch reference timing of ONE zero-shot QAT training iteration (not part of the build or the tests).

The counterpart of `granq bench iter` (src/cli/bench-iter.ts): ResNet-20 (option A) teacher, W4A4 student with the
released GranQ row quantizer (slice weights, per-(sample, channel) activations; zsq-report A.2/A.3), the GDFQ/AdaDFQ
CIFAR generator and the AdaDFQ/GranQ losses and optimizers (zsq-report A.6, B.2), warm-up over (the student is
updated). Needs Debian's PyTorch 1.13 (`apt-get install python3-torch`, then run with /usr/bin/python3).

Per iteration:
  z ~ N(0, I), labels y -> images = G(z, y); teacher(images) with BNS hooks; student(images)
  generator step: margin(t - s) + 0.2 CE(t - s, y) + 0.1 CE(t + s, y) + BNS -> backward into G -> Adam
  student step:   -T^2 mean(entropy(softmax((t.detach() - s) / T))), T = 20 -> backward into the student -> SGD

Variants:
  default            granq's structure (src/zsq/trainer.ts): teacher and student forward once; the one graph serves
                     both backward passes (backward(inputs=generator params, retain_graph=True), then
                     backward(inputs=student params)), so no weight gradients are computed for the student in the
                     generator step and no image gradients in the student step.
  --released         the released code's structure (GranQ-main/CIFAR/trainer.py, same as AdaDFQ): teacher once;
                     student forward on images, loss_G.backward() (into everything that requires grad, student
                     weights included; their gradients are then zeroed), Adam step; then the student forward AGAIN
                     on images.detach() with the teacher logits of the first pass detached, loss_S.backward(), SGD.
  --released --teacher-twice
                     as --released, and the teacher is also run again on images.detach() (hooks on) for the student
                     step, i.e. "teacher and student forward twice".
The numbers are the same in all variants (the student is not updated until after its second forward).

  /usr/bin/python3 scripts/torch-reference/zsq_iter_bench.py [--batch 16,200] [--warmup 3] [--runs 10]
      [--released [--teacher-twice]] [--bits 4] [--threads 2] [--json] [--check]
"""
import argparse, copy, json, math, os, statistics, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F

from released_quant import load_safetensors, ResNet20A, rows

ap = argparse.ArgumentParser()
ap.add_argument('--batch', default='16,200', help='comma-separated batch sizes')
ap.add_argument('--warmup', type=int, default=3, help='untimed iterations first (per batch size)')
ap.add_argument('--runs', type=int, default=10, help='timed iterations per batch size (median, min)')
ap.add_argument('--released', action='store_true', help="the released code's structure (student forward twice)")
ap.add_argument('--teacher-twice', action='store_true', help='with --released: also run the teacher again for the student step')
ap.add_argument('--bits', type=int, default=4, help='W = A bits')
ap.add_argument('--threads', type=int, default=2)
ap.add_argument('--model', default='../shared/models/resnet20_cifar10_akamaster.safetensors',
                help='teacher weights if the file exists (else random init; the work does not depend on them)')
ap.add_argument('--random-init', action='store_true', help='do not load --model')
ap.add_argument('--seed', type=int, default=2)
ap.add_argument('--json', action='store_true', help='print one JSON line with the rows as the last line of stdout')
ap.add_argument('--check', action='store_true',
                help='first check that the default and --released variants give the same losses and updates')
a = ap.parse_args()
if a.teacher_twice and not a.released:
    ap.error('--teacher-twice needs --released')
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
K = a.bits
NUM_CLASSES = 10
LATENT = 100


# ---- the released row quantizer (as resnet20_ptq.py), identity STE --------------------------------------------------

class RowsSTE(torch.autograd.Function):
    """Forward: the row quantizer; backward: the gradient unchanged (released STE: no clipping mask)."""

    @staticmethod
    def forward(ctx, x):
        return rows(x, K)

    @staticmethod
    def backward(ctx, g):
        return g


# ---- models -----------------------------------------------------------------------------------------------------------

class QConv2d(nn.Conv2d):
    """Weight re-quantized from the FP master copy at every forward (slice rule), STE."""

    def forward(self, x):
        return self._conv_forward(x, RowsSTE.apply(self.weight), self.bias)


class QLinear(nn.Linear):
    def forward(self, x):
        return F.linear(x, RowsSTE.apply(self.weight), self.bias)


class QuantAct(nn.Module):
    """GranQ activation quantizer: per-(sample, channel) rows, recomputed at every forward, STE."""

    def forward(self, x):
        return RowsSTE.apply(x)


def quantize_model(model):
    """Every Conv2d -> QConv2d, Linear -> QLinear, ReLU -> Sequential(ReLU, QuantAct) (released quantize_model)."""
    for name, m in list(model.named_children()):
        if type(m) is nn.Conv2d:
            q = QConv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, bias=m.bias is not None)
            q.load_state_dict(m.state_dict())
            setattr(model, name, q)
        elif type(m) is nn.Linear:
            q = QLinear(m.in_features, m.out_features, bias=m.bias is not None)
            q.load_state_dict(m.state_dict())
            setattr(model, name, q)
        elif type(m) is nn.ReLU:
            setattr(model, name, nn.Sequential(nn.ReLU(), QuantAct()))
        else:
            quantize_model(m)
    return model


class Generator(nn.Module):
    """GDFQ / AdaDFQ CIFAR generator (zsq-report A.6); BatchNorm2d(c, 0.8): 0.8 is eps."""

    def __init__(self, num_classes=10, latent=LATENT, init_size=8):
        super().__init__()
        self.init_size = init_size
        self.label_emb = nn.Embedding(num_classes, latent)
        self.l1 = nn.Sequential(nn.Linear(latent, 128 * init_size ** 2))
        self.conv_blocks0 = nn.Sequential(nn.BatchNorm2d(128))
        self.conv_blocks1 = nn.Sequential(nn.Conv2d(128, 128, 3, stride=1, padding=1), nn.BatchNorm2d(128, 0.8),
                                          nn.LeakyReLU(0.2, inplace=True))
        self.conv_blocks2 = nn.Sequential(nn.Conv2d(128, 64, 3, stride=1, padding=1), nn.BatchNorm2d(64, 0.8),
                                          nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(64, 3, 3, stride=1, padding=1),
                                          nn.Tanh(), nn.BatchNorm2d(3, affine=False))

    def forward(self, z, labels):
        out = self.l1(torch.mul(self.label_emb(labels), z))
        img = self.conv_blocks0(out.view(out.shape[0], 128, self.init_size, self.init_size))
        img = self.conv_blocks1(F.interpolate(img, scale_factor=2))
        return self.conv_blocks2(F.interpolate(img, scale_factor=2))


# ---- losses (zsq-report A.6) --------------------------------------------------------------------------------------------

def compute_entropy(logits, T=1.0):
    # released compute_entropy: sum p * -log_softmax
    p = F.softmax(logits / T, dim=-1)
    return torch.sum(p * (-F.log_softmax(logits / T, dim=-1)), 1)


def margin_loss(t, s, lower=0.1, upper=0.8):
    """AdaDFQ marginal_loss, batch-size independent (clamp at 0 instead of the hard-coded zeros vector); the
    denominator floored at 1e-8 as granq's."""
    h = compute_entropy(t - s)
    hmin = h.min()
    hn = (h - hmin) / torch.clamp(math.log(t.shape[1]) - hmin, min=1e-8)
    return torch.mean(torch.clamp(lower - hn, min=0)) + torch.mean(torch.clamp(hn - upper, min=0))


def student_loss(t, s, T=20.0):
    return -(T * T) * torch.mean(compute_entropy(t - s, T))


class BNS:
    """Forward hooks on every teacher BatchNorm2d: batch mean and biased variance of the BN input (released
    hook_fn_forward); loss = mean over layers of MSE(mean, running_mean) + MSE(var, running_var)."""

    def __init__(self, teacher):
        self.terms = []
        self.active = True
        self.handles = [m.register_forward_hook(self.hook) for m in teacher.modules() if isinstance(m, nn.BatchNorm2d)]
        self.layers = len(self.handles)

    def hook(self, module, inputs, output):
        if not self.active:
            return
        x = inputs[0]
        mean = x.mean([0, 2, 3])
        var = x.var([0, 2, 3], unbiased=False)
        self.terms.append(F.mse_loss(mean, module.running_mean) + F.mse_loss(var, module.running_var))

    def value(self):
        assert len(self.terms) == self.layers, (len(self.terms), self.layers)
        return torch.stack(self.terms).sum() / len(self.terms)


# ---- the iteration ------------------------------------------------------------------------------------------------------

class Bench:
    def __init__(self, teacher):
        self.teacher = teacher
        self.student = quantize_model(copy.deepcopy(teacher))
        for p in self.student.parameters():
            p.requires_grad_(True)
        self.student.eval()  # frozen BN statistics; weights and BN affine train
        self.gen = Generator(NUM_CLASSES).train()
        self.bns = BNS(teacher)
        self.gparams = list(self.gen.parameters())
        self.sparams = list(self.student.parameters())
        self.optG = torch.optim.Adam(self.gparams, lr=1e-3, betas=(0.5, 0.999))
        self.optS = torch.optim.SGD(self.sparams, lr=1e-4, momentum=0.9, weight_decay=1e-4, nesterov=True)

    def generator_loss(self, t, s, y):
        margin = margin_loss(t, s)
        ds = F.cross_entropy(t - s, y)
        as_ = F.cross_entropy(t + s, y)
        return margin + 1.0 * (0.2 * ds + 0.1 * as_) + 1.0 * self.bns.value()

    def iteration(self, batch, released=False, teacher_twice=False):
        z = torch.randn(batch, LATENT)
        y = torch.randint(0, NUM_CLASSES, (batch,))
        images = self.gen(z, y)
        self.bns.terms = []
        self.bns.active = True
        t = self.teacher(images)
        self.bns.active = False
        s = self.student(images)
        lossG = self.generator_loss(t, s, y)
        self.optG.zero_grad()
        if not released:
            # granq: one graph, two backward passes.
            lossG.backward(inputs=self.gparams, retain_graph=True)
            self.optG.step()
            lossS = student_loss(t.detach(), s)
            self.optS.zero_grad()
            lossS.backward(inputs=self.sparams)
            self.optS.step()
        else:
            # released trainer.py: backward_G (student weight grads computed too), then forward(images.detach(), ...)
            lossG.backward()
            self.optG.step()
            x = images.detach()
            if teacher_twice:
                self.bns.terms = []
                self.bns.active = True  # the released hooks are unconditional
                t = self.teacher(x)
                self.bns.active = False
            s = self.student(x)
            lossS = student_loss(t.detach(), s)
            self.optS.zero_grad()
            lossS.backward()
            self.optS.step()
        return lossG.item(), lossS.item()


def make_teacher():
    teacher = ResNet20A(NUM_CLASSES)
    src = 'random init'
    if not a.random_init and os.path.exists(a.model):
        sd = load_safetensors(a.model)
        sd = {k: v for k, v in sd.items() if k in teacher.state_dict()}
        teacher.load_state_dict(sd, strict=False)
        src = a.model
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher, src


def check_variants():
    """Same seed, 3 iterations of each variant: same losses and the same student / generator afterwards."""
    results = []
    for released, twice in [(False, False), (True, False), (True, True)]:
        torch.manual_seed(123)
        teacher, _ = make_teacher()
        b = Bench(teacher)
        losses = [b.iteration(8, released, twice) for _ in range(3)]
        params = torch.cat([p.detach().flatten() for p in b.sparams + b.gparams])
        results.append((losses, params))
    for (l, p), name in zip(results[1:], ['released', 'released+teacher-twice']):
        dl = max(abs(x - y) for u, v in zip(results[0][0], l) for x, y in zip(u, v))
        dp = float((p - results[0][1]).abs().max())
        print(f'check {name} vs default: max |loss diff| {dl:.3g}, max |param diff| {dp:.3g}', file=sys.stderr)


def main():
    if a.check:
        check_variants()
    teacher, src = make_teacher()
    variant = 'released (teacher x2, student x2)' if a.teacher_twice else (
        'released (teacher x1, student x2)' if a.released else 'granq structure (teacher x1, student x1)')
    print(f'torch {torch.__version__} zsq iteration: ResNet-20 (option A), W{K}A{K} granq/slice, {variant}, '
          f'{torch.get_num_threads()} threads, teacher {src}, median of {a.runs} after {a.warmup} warm-up', file=sys.stderr)
    out = []
    for batch in [int(x) for x in a.batch.split(',')]:
        b = Bench(teacher)
        for _ in range(a.warmup):
            b.iteration(batch, a.released, a.teacher_twice)
        times = []
        for _ in range(a.runs):
            t0 = time.perf_counter()
            b.iteration(batch, a.released, a.teacher_twice)
            times.append(time.perf_counter() - t0)
        for h in b.bns.handles:
            h.remove()
        med = sorted(times)[len(times) // 2]  # the same median as granq's timeIt (upper middle for even runs)
        row = {'batch': batch, 'ms': round(med * 1000, 1), 'min_ms': round(min(times) * 1000, 1),
               'it_per_s': round(1 / med, 3)}
        out.append(row)
        print(f'batch {batch:4d}: {row["ms"]} ms per iteration (min {row["min_ms"]}), {row["it_per_s"]} it/s', file=sys.stderr)
    print('| batch | ms / iteration (median) | min ms | iterations / s |\n|---:|---:|---:|---:|')
    for r in out:
        print(f'| {r["batch"]} | {r["ms"]} | {r["min_ms"]} | {r["it_per_s"]} |')
    if a.json:
        print(json.dumps({'torch': torch.__version__, 'threads': torch.get_num_threads(), 'bits': K,
                          'variant': 'released-teacher-twice' if a.teacher_twice else ('released' if a.released else 'default'),
                          'rows': out}))


main()
