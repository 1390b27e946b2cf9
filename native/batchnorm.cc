// BatchNorm2d over [n, c, hw]: training statistics, eval transform and both backward passes (PyTorch 1.13 CPU).
// Statistics are per channel, summed in double in a fixed order, so results do not depend on the thread count.
// Every pass is split by (n, c) plane in order, as the tensor's producers (convolutions, split by image) split it: a
// thread reads the images its own core wrote. Split by channel instead, every thread read half its data from the
// other core's cache, and at two threads the statistics were slower than at one (batch 16, 2-core host).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels.h"

namespace granq {
namespace {

constexpr int kLanes = 8;  // independent double accumulators, lane l taking elements i = l mod 8: a fixed order

// Eight lanes as GCC vector types: written this way the loops below use full-width SIMD (GCC's auto-vectorizer left
// the float-to-double reductions scalar, and the ReLU-masked one branching per element).
typedef float F8 __attribute__((vector_size(32)));
typedef double D8 __attribute__((vector_size(64)));
inline D8 load_d8(const float* p) {
  F8 v;
  std::memcpy(&v, p, sizeof v);
  return __builtin_convertvector(v, D8);
}
inline D8 load_acc(const double* acc) {
  D8 v;
  std::memcpy(&v, acc, sizeof v);
  return v;
}
inline void store_acc(double* acc, D8 v) { std::memcpy(acc, &v, sizeof v); }

// sum(x[i]) and sum(x[i]^2) over one run.
inline void sum_sq_run(const float* __restrict x, int64_t len, double* __restrict acc, double* __restrict acc2) {
  D8 a = load_acc(acc), a2 = load_acc(acc2);
  int64_t i = 0;
  for (; i + kLanes <= len; i += kLanes) {
    const D8 v = load_d8(x + i);
    a += v;
    a2 += v * v;
  }
  store_acc(acc, a);
  store_acc(acc2, a2);
  for (; i < len; ++i) {
    const double v = double(x[i]);
    acc[i % kLanes] += v;
    acc2[i % kLanes] += v * v;
  }
}

// The gradient reaching the BN output: dy, or with a fused ReLU dy where the ReLU output y is positive (relu's
// backward, which masks by its input; input > 0 exactly where output > 0).
template <bool kRelu>
inline float masked(const float* __restrict dy, const float* __restrict y, int64_t i) {
  if constexpr (kRelu) return y[i] > 0.f ? dy[i] : 0.f;
  return dy[i];
}

// sum(dy) and sum(dy * (x - mean)) over one run.
template <bool kRelu>
inline void grad_run(const float* __restrict dy, const float* __restrict y, const float* __restrict x, int64_t len,
                     double mean, double* __restrict sdy, double* __restrict sdot) {
  D8 s = load_acc(sdy), t = load_acc(sdot);
  const D8 m = D8{} + mean;
  int64_t i = 0;
  for (; i + kLanes <= len; i += kLanes) {
    F8 gf;
    std::memcpy(&gf, dy + i, sizeof gf);
    if constexpr (kRelu) {
      F8 yf;
      std::memcpy(&yf, y + i, sizeof yf);
      gf = yf > 0.f ? gf : F8{};
    }
    const D8 g = __builtin_convertvector(gf, D8);
    s += g;
    t += g * (load_d8(x + i) - m);
  }
  store_acc(sdy, s);
  store_acc(sdot, t);
  for (; i < len; ++i) {
    double g = double(masked<kRelu>(dy, y, i));
    sdy[i % kLanes] += g;
    sdot[i % kLanes] += g * (double(x[i]) - mean);
  }
}

inline double lanes_total(const double* acc) {
  double t = 0;
  for (int l = 0; l < kLanes; ++l) t += acc[l];
  return t;
}

// Grain in channels / planes so that a thread gets at least ~32K elements.
inline int64_t grain_for(int64_t per_item) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, per_item)); }

// Pass 1 of every statistic below: run(p, acc, acc2) adds plane p's terms into two sets of kLanes accumulators, one
// plane per call, planes split over the threads. The partials live in the calling thread's scratch, [plane][2][kLanes]
// doubles, followed by `extra` floats for the caller (per-channel coefficients of pass 3).
template <class Run>
double* sum_planes(const BatchNormShape& s, int64_t extra, Run run) {
  const int64_t planes = s.n * s.c;
  double* part = reinterpret_cast<double*>(thread_scratch(3, size_t(planes * 4 * kLanes + extra)));
  parallel_for(
      planes,
      [&](int64_t b, int64_t e) {
        for (int64_t p = b; p < e; ++p) {
          double* acc = part + p * 2 * kLanes;
          std::fill(acc, acc + 2 * kLanes, 0.0);
          run(p, acc, acc + kLanes);
        }
      },
      grain_for(s.hw));
  return part;
}
inline float* extra_of(const BatchNormShape& s, double* part) {
  return reinterpret_cast<float*>(part + s.n * s.c * 2 * kLanes);
}

// Pass 2: channel c's two totals, each lane summed over n in order, then the lanes.
struct Totals {
  double a, b;
};
inline Totals channel_totals(const BatchNormShape& s, const double* part, int64_t c) {
  double a[kLanes] = {0}, b[kLanes] = {0};
  for (int64_t n = 0; n < s.n; ++n) {
    const double* q = part + (n * s.c + c) * 2 * kLanes;
    for (int l = 0; l < kLanes; ++l) {
      a[l] += q[l];
      b[l] += q[kLanes + l];
    }
  }
  return {lanes_total(a), lanes_total(b)};
}

// Sum and sum of squares of each plane (channel_totals then gives the channel's mean and, in double, the sum of squared
// deviations as E[x^2] - mean^2: nothing that matters is lost at these sizes).
double* moment_planes(const BatchNormShape& s, const float* x, int64_t extra) {
  return sum_planes(s, extra, [&](int64_t p, double* a, double* a2) { sum_sq_run(x + p * s.hw, s.hw, a, a2); });
}
struct Moments {
  double mean, sq_dev;
};
inline Moments channel_moments(const BatchNormShape& s, const double* part, int64_t c) {
  const auto [sum, sq] = channel_totals(s, part, c);
  const double m = double(s.n * s.hw);
  const double mean = sum / m;
  return {mean, std::max(0.0, sq - mean * mean * m)};
}

// sum(g) and sum(g * (x - mean[c])) of each plane, g the gradient reaching the BN output (grad_run).
double* grad_planes(const BatchNormShape& s, const float* dy, const float* y, const float* x, const float* mean,
                    int64_t extra) {
  return sum_planes(s, extra, [&](int64_t p, double* sdy, double* sdot) {
    const int64_t off = p * s.hw;
    const double m = double(mean[p % s.c]);
    if (y)
      grad_run<true>(dy + off, y + off, x + off, s.hw, m, sdy, sdot);
    else
      grad_run<false>(dy + off, nullptr, x + off, s.hw, m, sdy, sdot);
  });
}

// y = x * a + t over one plane at offset off, then relu(y) = (y < 0 ? 0 : y) when fused (NaN passes, as relu).
inline void affine_plane(const float* x, float a, float t, bool relu, float* y, int64_t off, int64_t len) {
  const float* __restrict xp = x + off;
  float* __restrict yp = y + off;
  if (relu) {
    for (int64_t i = 0; i < len; ++i) {
      const float v = xp[i] * a + t;
      yp[i] = v < 0.f ? 0.f : v;
    }
  } else {
    for (int64_t i = 0; i < len; ++i) yp[i] = xp[i] * a + t;
  }
}

// Training-mode dx over one plane: (g - mdy - (x - mean) * k) * a, g = dy masked by the fused ReLU's output y when
// y is given. In place (kInPlace), d holds dy on entry and dy is unused: each element is read, then overwritten.
template <bool kInPlace>
inline void dx_plane_train(const float* __restrict x, const float* __restrict y, const float* __restrict dy,
                           float* __restrict d, int64_t len, float mean, float mdy, float k, float a) {
  if (y) {
    for (int64_t i = 0; i < len; ++i) {
      const float g = kInPlace ? d[i] : dy[i];
      d[i] = ((y[i] > 0.f ? g : 0.f) - mdy - (x[i] - mean) * k) * a;
    }
  } else {
    for (int64_t i = 0; i < len; ++i) d[i] = ((kInPlace ? d[i] : dy[i]) - mdy - (x[i] - mean) * k) * a;
  }
}

// affine_plane over every plane with channel c's scale[c] and shift[c].
void affine_planes(const BatchNormShape& s, const float* x, const float* scale, const float* shift, bool relu, float* y) {
  parallel_for(
      s.n * s.c,
      [&](int64_t b, int64_t e) {
        for (int64_t p = b; p < e; ++p) affine_plane(x, scale[p % s.c], shift[p % s.c], relu, y, p * s.hw, s.hw);
      },
      grain_for(s.hw));
}

}  // namespace

void batchnorm_fwd_train(const BatchNormShape& s, const float* x, const float* gamma, const float* beta, float eps,
                         float momentum, float* running_mean, float* running_var, bool relu, float* y,
                         float* save_mean, float* save_invstd) {
  const int64_t m = s.n * s.hw;
  double* part = moment_planes(s, x, 2 * s.c);
  float* scale = extra_of(s, part);
  float* shift = scale + s.c;
  for (int64_t c = 0; c < s.c; ++c) {
    const auto [mean, var_sum] = channel_moments(s, part, c);
    const double var = var_sum / double(m);
    const double invstd = 1.0 / std::sqrt(var + double(eps));
    save_mean[c] = float(mean);
    save_invstd[c] = float(invstd);
    if (running_mean) {
      // torch divides by m - 1; with m == 1 that is 0/0 (torch's Python layer refuses it), we keep var.
      const double unbiased = m > 1 ? var_sum / double(m - 1) : var;
      const double mom = double(momentum);
      running_mean[c] = float(mom * mean + (1.0 - mom) * double(running_mean[c]));
      running_var[c] = float(mom * unbiased + (1.0 - mom) * double(running_var[c]));
    }
    const double g = gamma ? double(gamma[c]) : 1.0;
    const double bt = beta ? double(beta[c]) : 0.0;
    scale[c] = float(invstd * g);
    shift[c] = float(bt - mean * invstd * g);
  }
  affine_planes(s, x, scale, shift, relu, y);
}

void batchnorm_fwd_eval(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                        const float* running_mean, const float* running_var, float eps, bool relu, float* y) {
  float* scale = thread_scratch(0, size_t(2 * s.c));
  float* shift = scale + s.c;
  for (int64_t c = 0; c < s.c; ++c) {
    const double invstd = 1.0 / std::sqrt(double(running_var[c]) + double(eps));
    const double g = gamma ? double(gamma[c]) : 1.0;
    const double bt = beta ? double(beta[c]) : 0.0;
    scale[c] = float(invstd * g);
    shift[c] = float(bt - double(running_mean[c]) * invstd * g);
  }
  affine_planes(s, x, scale, shift, relu, y);
}

void batchnorm_bwd_train(const BatchNormShape& s, const float* dy, const float* y, const float* x,
                         const float* save_mean, const float* save_invstd, const float* gamma, float* dx, float* dgamma,
                         float* dbeta) {
  const int64_t m = s.n * s.hw;
  // Per channel: dx = (dy - mean(dy) - (x - mean) * k) * invstd * gamma, k = dot * invstd^2 / m (torch's form). dx
  // may be dy: the sums are complete before any dx is written.
  double* part = grad_planes(s, dy, y, x, save_mean, 3 * s.c);
  float* ca = extra_of(s, part);
  float* cmdy = ca + s.c;
  float* ck = cmdy + s.c;
  for (int64_t c = 0; c < s.c; ++c) {
    const double invstd = double(save_invstd[c]);
    const auto [sum_dy, dot] = channel_totals(s, part, c);
    if (dgamma) dgamma[c] = float(dot * invstd);
    if (dbeta) dbeta[c] = float(sum_dy);
    const double g = gamma ? double(gamma[c]) : 1.0;
    ca[c] = float(invstd * g);
    cmdy[c] = float(sum_dy / double(m));
    ck[c] = float(dot * invstd * invstd / double(m));
  }
  if (!dx) return;
  parallel_for(
      s.n * s.c,
      [&](int64_t b, int64_t e) {
        for (int64_t p = b; p < e; ++p) {
          const int64_t c = p % s.c, off = p * s.hw;
          const float* yp = y ? y + off : nullptr;
          if (dx == dy)
            dx_plane_train<true>(x + off, yp, nullptr, dx + off, s.hw, save_mean[c], cmdy[c], ck[c], ca[c]);
          else
            dx_plane_train<false>(x + off, yp, dy + off, dx + off, s.hw, save_mean[c], cmdy[c], ck[c], ca[c]);
        }
      },
      grain_for(s.hw));
}

void batchnorm_bwd_eval(const BatchNormShape& s, const float* dy, const float* y, const float* x,
                        const float* running_mean, const float* running_var, float eps, const float* gamma, float* dx,
                        float* dgamma, float* dbeta) {
  if (dgamma || dbeta) {
    double* part = grad_planes(s, dy, y, x, running_mean, 0);
    for (int64_t c = 0; c < s.c; ++c) {
      const double invstd = 1.0 / std::sqrt(double(running_var[c]) + double(eps));
      const auto [sum_dy, dot] = channel_totals(s, part, c);
      if (dgamma) dgamma[c] = float(dot * invstd);
      if (dbeta) dbeta[c] = float(sum_dy);
    }
  }
  if (!dx) return;
  float* scale = thread_scratch(0, size_t(s.c));
  for (int64_t c = 0; c < s.c; ++c) {
    const double invstd = 1.0 / std::sqrt(double(running_var[c]) + double(eps));
    scale[c] = float(invstd * (gamma ? double(gamma[c]) : 1.0));
  }
  parallel_for(
      s.n * s.c,
      [&](int64_t b, int64_t e) {
        for (int64_t p = b; p < e; ++p) {
          const float a = scale[p % s.c];
          float* __restrict dp = dx + p * s.hw;
          if (y) {  // fused ReLU; dx may be dy, so no __restrict here
            const float* yp = y + p * s.hw;
            const float* gp = dy + p * s.hw;
            float* dq = dx + p * s.hw;
            for (int64_t i = 0; i < s.hw; ++i) dq[i] = (yp[i] > 0.f ? gp[i] : 0.f) * a;
          } else if (dx == dy) {  // in place
            for (int64_t i = 0; i < s.hw; ++i) dp[i] *= a;
          } else {
            const float* __restrict gp = dy + p * s.hw;
            for (int64_t i = 0; i < s.hw; ++i) dp[i] = gp[i] * a;
          }
        }
      },
      grain_for(s.hw));
}

void channel_stats_fwd(const BatchNormShape& s, const float* x, float* stats) {
  const double* part = moment_planes(s, x, 0);
  const double m = double(s.n * s.hw);
  for (int64_t c = 0; c < s.c; ++c) {
    const auto [mean, sq_dev] = channel_moments(s, part, c);
    stats[c] = float(mean);
    stats[s.c + c] = float(sq_dev / m);
  }
}

void channel_stats_bwd(const BatchNormShape& s, const float* x, const float* stats, const float* dstats, float* dx) {
  const double m = double(s.n * s.hw);
  parallel_for(
      s.n * s.c,
      [&](int64_t b, int64_t e) {
        for (int64_t p = b; p < e; ++p) {
          const int64_t c = p % s.c;
          const float gm = float(double(dstats[c]) / m), gv = float(2.0 * double(dstats[s.c + c]) / m), mean = stats[c];
          const float* __restrict xp = x + p * s.hw;
          float* __restrict dp = dx + p * s.hw;
          for (int64_t i = 0; i < s.hw; ++i) dp[i] = gm + gv * (xp[i] - mean);
        }
      },
      grain_for(s.hw));
}

}  // namespace granq
