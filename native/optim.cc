// torch.optim.SGD and torch.optim.Adam (PyTorch 1.13, single-tensor, non-amsgrad, non-AdamW) update rules.
// Elementwise, split into fixed blocks so results never depend on the thread count.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "kernels.h"

namespace granq {

void sgd_step(const SgdParams& p, float* param, const float* grad, float* momentum_buf) {
  const float lr = p.lr, mom = p.momentum, damp = 1.f - p.dampening, wd = p.weight_decay;
  const bool use_mom = mom != 0.f, nesterov = p.nesterov, first = p.first_step;
  parallel_for_blocks(p.len, [&](int64_t b, int64_t e) {
    float* __restrict w = param;
    const float* __restrict g = grad;
    float* __restrict buf = momentum_buf;
    for (int64_t i = b; i < e; ++i) {
      float d = g[i];
      if (wd != 0.f) d = d + wd * w[i];
      if (use_mom) {
        const float nb = first ? d : mom * buf[i] + damp * d;  // the buffer starts as a clone of d
        buf[i] = nb;
        d = nesterov ? d + mom * nb : nb;
      }
      w[i] = w[i] - lr * d;
    }
  });
}

void adam_step(const AdamParams& p, float* param, const float* grad, float* exp_avg, float* exp_avg_sq) {
  // Scalars in double, as torch computes them in Python, then used as float32 tensor operands.
  const double step = double(p.step);
  const double bc1 = 1.0 - std::pow(double(p.beta1), step);
  const double bc2 = 1.0 - std::pow(double(p.beta2), step);
  const float step_size = float(double(p.lr) / bc1);
  const float bc2_sqrt = float(std::sqrt(bc2));
  const float w1 = 1.f - p.beta1, b2 = p.beta2, w2 = 1.f - p.beta2, eps = p.eps, wd = p.weight_decay;
  // The loop-invariant choices (weight decay, which side lerp interpolates from) are template arguments, so each
  // instance is a straight-line loop the compiler vectorizes; the arithmetic per element is unchanged.
  auto run = [&](auto with_wd, auto from_a) {
    parallel_for_blocks(p.len, [&](int64_t b, int64_t e) {
      float* __restrict w = param;
      const float* __restrict g = grad;
      float* __restrict m = exp_avg;
      float* __restrict v = exp_avg_sq;
      for (int64_t i = b; i < e; ++i) {
        float gi = g[i];
        if constexpr (decltype(with_wd)::value) gi = gi + wd * w[i];
        const float mo = m[i];
        const float mi = decltype(from_a)::value ? mo + w1 * (gi - mo) : gi - (gi - mo) * (1.f - w1);
        const float vi = b2 * v[i] + w2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        const float denom = std::sqrt(vi) / bc2_sqrt + eps;
        w[i] = w[i] - step_size * (mi / denom);
      }
    });
  };
  using T = std::true_type;
  using F = std::false_type;
  // m.lerp_(g, w1) in torch.lerp's two-sided form, exact at both ends of the weight range: a + w (b - a) for
  // w < 0.5, else b - (b - a)(1 - w).
  const bool from_a = w1 < 0.5f;
  if (wd != 0.f) {
    if (from_a) run(T{}, T{}); else run(T{}, F{});
  } else {
    if (from_a) run(F{}, T{}); else run(F{}, F{});
  }
}

}  // namespace granq
