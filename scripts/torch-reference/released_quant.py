"""What the PyTorch reference scripts share: the released quantizer functions (zsq-report A.2/A.3) with the bit width
as an argument, and a safetensors reader (float32 tensors only, as our model files). Imported by resnet20_ptq.py,
zsq_iter_bench.py and eval_resnet20b.py, which sit next to it."""
import json, struct

import numpy as np
import torch


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
