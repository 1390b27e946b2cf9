// BatchNorm2d over [n, c, hw]: training statistics, eval transform and both backward passes (PyTorch 1.13 CPU).
// Statistics are per channel, summed in double in a fixed order, so results do not depend on the thread count:
// reductions are split by channel, elementwise passes by (n, c) plane.
#include <algorithm>
#include <cmath>

#include "kernels.h"

namespace granq {
namespace {

constexpr int kLanes = 8;  // independent double accumulators: vectorizable, and a fixed order

// sum(x[i]) and sum(x[i]^2) over one run.
inline void sum_sq_run(const float* __restrict x, int64_t len, double* __restrict acc, double* __restrict acc2) {
  int64_t i = 0;
  for (; i + kLanes <= len; i += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const double v = double(x[i + l]);
      acc[l] += v;
      acc2[l] += v * v;
    }
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
  int64_t i = 0;
  for (; i + kLanes <= len; i += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      double g = double(masked<kRelu>(dy, y, i + l));
      sdy[l] += g;
      sdot[l] += g * (double(x[i + l]) - mean);
    }
  for (; i < len; ++i) {
    double g = double(masked<kRelu>(dy, y, i));
    sdy[i % kLanes] += g;
    sdot[i % kLanes] += g * (double(x[i]) - mean);
  }
}

// grad_run over channel c's n planes.
inline void channel_grad(const BatchNormShape& s, const float* dy, const float* y, const float* x, int64_t c,
                         double mean, double* sdy, double* sdot) {
  const int64_t cstride = s.c * s.hw;
  for (int64_t n = 0; n < s.n; ++n) {
    const int64_t off = n * cstride + c * s.hw;
    if (y)
      grad_run<true>(dy + off, y + off, x + off, s.hw, mean, sdy, sdot);
    else
      grad_run<false>(dy + off, nullptr, x + off, s.hw, mean, sdy, sdot);
  }
}

inline double lanes_total(const double* acc) {
  double t = 0;
  for (int l = 0; l < kLanes; ++l) t += acc[l];
  return t;
}

// Mean and sum of squared deviations of channel c over (n, hw), in one pass: in double, E[x^2] - mean^2 loses
// nothing that matters at these sizes, and a second read of the channel is saved.
struct Moments {
  double mean, sq_dev;
};
inline Moments channel_moments(const BatchNormShape& s, const float* x, int64_t c) {
  double acc[kLanes] = {0}, acc2[kLanes] = {0};
  for (int64_t n = 0; n < s.n; ++n) sum_sq_run(x + (n * s.c + c) * s.hw, s.hw, acc, acc2);
  const double m = double(s.n * s.hw);
  const double mean = lanes_total(acc) / m;
  return {mean, std::max(0.0, lanes_total(acc2) - mean * mean * m)};
}

// Grain in channels / planes so that a thread gets at least ~32K elements.
inline int64_t grain_for(int64_t per_item) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, per_item)); }

// y = x * scale[c] + shift[c] over every plane, then relu(y) = (y < 0 ? 0 : y) when fused (NaN passes, as relu).
void affine_planes(const BatchNormShape& s, const float* x, const float* scale, const float* shift, bool relu, float* y) {
  parallel_for(
      s.n * s.c,
      [&](int64_t b, int64_t e) {
        for (int64_t p = b; p < e; ++p) {
          const int64_t c = p % s.c;
          const float a = scale[c], t = shift[c];
          const float* __restrict xp = x + p * s.hw;
          float* __restrict yp = y + p * s.hw;
          if (relu) {
            for (int64_t i = 0; i < s.hw; ++i) {
              const float v = xp[i] * a + t;
              yp[i] = v < 0.f ? 0.f : v;
            }
          } else {
            for (int64_t i = 0; i < s.hw; ++i) yp[i] = xp[i] * a + t;
          }
        }
      },
      grain_for(s.hw));
}

}  // namespace

void batchnorm_fwd_train(const BatchNormShape& s, const float* x, const float* gamma, const float* beta, float eps,
                         float momentum, float* running_mean, float* running_var, bool relu, float* y,
                         float* save_mean, float* save_invstd) {
  const int64_t m = s.n * s.hw;
  // scale/shift live in thread_scratch of the calling thread; workers only read them.
  float* scale = thread_scratch(0, size_t(2 * s.c));
  float* shift = scale + s.c;
  parallel_for(
      s.c,
      [&](int64_t b, int64_t e) {
        for (int64_t c = b; c < e; ++c) {
          const auto [mean, var_sum] = channel_moments(s, x, c);
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
      },
      grain_for(m));
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
  // Per channel: dx = (dy - mean(dy) - (x - mean) * k) * invstd * gamma, k = dot * invstd^2 / m (torch's form).
  float* coef = thread_scratch(0, size_t(3 * s.c));  // [a, b, k]: dx = (dy - b - (x - mean) * k) * a
  parallel_for(
      s.c,
      [&](int64_t b, int64_t e) {
        for (int64_t c = b; c < e; ++c) {
          const double mean = double(save_mean[c]), invstd = double(save_invstd[c]);
          double sdy[kLanes] = {0}, sdot[kLanes] = {0};
          channel_grad(s, dy, y, x, c, mean, sdy, sdot);
          const double sum_dy = lanes_total(sdy), dot = lanes_total(sdot);
          if (dgamma) dgamma[c] = float(dot * invstd);
          if (dbeta) dbeta[c] = float(sum_dy);
          const double g = gamma ? double(gamma[c]) : 1.0;
          coef[c] = float(invstd * g);
          coef[s.c + c] = float(sum_dy / double(m));
          coef[2 * s.c + c] = float(dot * invstd * invstd / double(m));
        }
      },
      grain_for(m));
  if (!dx) return;
  parallel_for(
      s.n * s.c,
      [&](int64_t b, int64_t e) {
        for (int64_t p = b; p < e; ++p) {
          const int64_t c = p % s.c;
          const float a = coef[c], mdy = coef[s.c + c], k = coef[2 * s.c + c], mean = save_mean[c];
          const float* __restrict xp = x + p * s.hw;
          float* __restrict dp = dx + p * s.hw;
          if (y) {  // fused ReLU; dx may be dy (each element is read, then overwritten), so no __restrict here
            const float* yp = y + p * s.hw;
            const float* gp = dy + p * s.hw;
            float* dq = dx + p * s.hw;
            for (int64_t i = 0; i < s.hw; ++i) dq[i] = ((yp[i] > 0.f ? gp[i] : 0.f) - mdy - (xp[i] - mean) * k) * a;
          } else if (dx == dy) {  // in place: each dy element is read, then overwritten by its dx
            for (int64_t i = 0; i < s.hw; ++i) dp[i] = (dp[i] - mdy - (xp[i] - mean) * k) * a;
          } else {
            const float* __restrict gp = dy + p * s.hw;
            for (int64_t i = 0; i < s.hw; ++i) dp[i] = (gp[i] - mdy - (xp[i] - mean) * k) * a;
          }
        }
      },
      grain_for(s.hw));
}

void batchnorm_bwd_eval(const BatchNormShape& s, const float* dy, const float* y, const float* x,
                        const float* running_mean, const float* running_var, float eps, const float* gamma, float* dx,
                        float* dgamma, float* dbeta) {
  const int64_t m = s.n * s.hw;
  if (dgamma || dbeta) {
    parallel_for(
        s.c,
        [&](int64_t b, int64_t e) {
          for (int64_t c = b; c < e; ++c) {
            const double mean = double(running_mean[c]);
            const double invstd = 1.0 / std::sqrt(double(running_var[c]) + double(eps));
            double sdy[kLanes] = {0}, sdot[kLanes] = {0};
            channel_grad(s, dy, y, x, c, mean, sdy, sdot);
            if (dgamma) dgamma[c] = float(lanes_total(sdot) * invstd);
            if (dbeta) dbeta[c] = float(lanes_total(sdy));
          }
        },
        grain_for(m));
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
  const int64_t m = s.n * s.hw;
  parallel_for(
      s.c,
      [&](int64_t b, int64_t e) {
        for (int64_t c = b; c < e; ++c) {
          const auto [mean, sq_dev] = channel_moments(s, x, c);
          stats[c] = float(mean);
          stats[s.c + c] = float(sq_dev / double(m));
        }
      },
      grain_for(m));
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
