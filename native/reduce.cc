// Reductions over masked axes of a contiguous 4-D tensor (sum in double, max/min propagating NaN) and the
// max/min backward that splits the gradient evenly between ties. Each output is computed by one thread in a
// fixed order, so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#ifdef __AVX512F__
// GCC 12 warns falsely about _mm512_max_ps/_mm512_min_ps (their internal undefined passthrough operand).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#endif

#include "kernels.h"

namespace granq {
namespace {

constexpr int kLanes = 8;
constexpr int64_t kChunk = 256;  // kept-inner elements per work item

// The input viewed as alternating groups: size-1 dims dropped, neighbours with the same mask merged.
// kept[]/red[] list each kind's groups outermost first, with their element strides.
struct Groups {
  int nk = 0, nr = 0;
  int64_t ksize[4], kstride[4], rsize[4], rstride[4];
  bool inner_reduced = false;  // the innermost group is reduced (contiguous rows)
  int64_t kcount = 1, rcount = 1;
};

Groups make_groups(const int64_t shape[4], const bool mask[4]) {
  int64_t size[4], stride[4];
  bool red[4];
  int n = 0;
  int64_t st = 1;
  for (int i = 3; i >= 0; --i) {  // innermost first
    if (shape[i] != 1) {
      if (n > 0 && red[n - 1] == mask[i]) {
        size[n - 1] *= shape[i];
      } else {
        size[n] = shape[i];
        stride[n] = st;
        red[n] = mask[i];
        ++n;
      }
    }
    st *= shape[i];
  }
  Groups g;
  g.inner_reduced = n > 0 && red[0];
  for (int i = n - 1; i >= 0; --i) {
    if (red[i]) {
      g.rsize[g.nr] = size[i];
      g.rstride[g.nr++] = stride[i];
      g.rcount *= size[i];
    } else {
      g.ksize[g.nk] = size[i];
      g.kstride[g.nk++] = stride[i];
      g.kcount *= size[i];
    }
  }
  return g;
}

// Flat offset of the q-th combination (row-major) of the listed groups.
inline int64_t offset_of(int64_t q, int cnt, const int64_t* size, const int64_t* stride) {
  int64_t off = 0;
  for (int d = cnt - 1; d >= 0; --d) {
    off += (q % size[d]) * stride[d];
    q /= size[d];
  }
  return off;
}

inline float pick(ReduceOp op, float acc, float v) {
  if (v != v) return v;  // NaN wins, as torch.amax/amin
  if (op == ReduceOp::max) return v > acc ? v : acc;
  return v < acc ? v : acc;
}

// Innermost group reduced: each output sums contiguous rows; outputs are split across threads.
void reduce_rows(ReduceOp op, const Groups& g, const float* x, float* y) {
  const int64_t inner = g.rsize[g.nr - 1];
  const int nouter = g.nr - 1;  // reduced groups above the contiguous row
  const int64_t rows = g.rcount / inner;
  parallel_for(
      g.kcount,
      [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) {
          const float* base = x + offset_of(o, g.nk, g.ksize, g.kstride);
          if (op == ReduceOp::sum) {
            double acc[kLanes] = {0};
            for (int64_t r = 0; r < rows; ++r) {
              const float* __restrict p = base + offset_of(r, nouter, g.rsize, g.rstride);
              int64_t i = 0;
              for (; i + kLanes <= inner; i += kLanes)
                for (int l = 0; l < kLanes; ++l) acc[l] += double(p[i + l]);
              for (; i < inner; ++i) acc[0] += double(p[i]);
            }
            double t = 0;
            for (int l = 0; l < kLanes; ++l) t += acc[l];
            y[o] = float(t);
          } else {
            float acc = base[0];
            for (int64_t r = 0; r < rows; ++r) {
              const float* p = base + offset_of(r, nouter, g.rsize, g.rstride);
              for (int64_t i = 0; i < inner; ++i) acc = pick(op, acc, p[i]);
            }
            y[o] = acc;
          }
        }
      },
      std::max<int64_t>(1, 32768 / g.rcount));
}

// Innermost group kept: accumulate whole reduced slices into a contiguous chunk of outputs.
void reduce_cols(ReduceOp op, const Groups& g, const float* x, float* y) {
  const int64_t inner = g.ksize[g.nk - 1];
  const int64_t chunks = (inner + kChunk - 1) / kChunk;
  const int nouter = g.nk - 1;
  parallel_for(
      (g.kcount / inner) * chunks,
      [&](int64_t b, int64_t e) {
        double acc[kChunk];
        float facc[kChunk];
        for (int64_t w = b; w < e; ++w) {
          const int64_t o = w / chunks, j0 = (w % chunks) * kChunk, len = std::min(kChunk, inner - j0);
          const float* base = x + offset_of(o, nouter, g.ksize, g.kstride) + j0;
          float* out = y + o * inner + j0;
          if (op == ReduceOp::sum) {
            std::fill(acc, acc + len, 0.0);
            for (int64_t r = 0; r < g.rcount; ++r) {
              const float* __restrict p = base + offset_of(r, g.nr, g.rsize, g.rstride);
              for (int64_t i = 0; i < len; ++i) acc[i] += double(p[i]);
            }
            for (int64_t i = 0; i < len; ++i) out[i] = float(acc[i]);
          } else {
            std::copy(base, base + len, facc);
            for (int64_t r = 0; r < g.rcount; ++r) {
              const float* p = base + offset_of(r, g.nr, g.rsize, g.rstride);
              for (int64_t i = 0; i < len; ++i) facc[i] = pick(op, facc[i], p[i]);
            }
            std::copy(facc, facc + len, out);
          }
        }
      },
      std::max<int64_t>(1, 32768 / (g.rcount * kChunk)));
}

// Every axis reduced: the tensor is one contiguous run. Fixed chunks (not derived from the thread count) are reduced
// in parallel with vectorizable lanes, and the partials combined in chunk order, so the result is thread-independent.
// This is the layer-wise quantizer's observe (one min and one max per tensor), so it runs at memory speed.
float reduce_all(ReduceOp op, int64_t len, const float* x) {
  constexpr int64_t kAllChunk = 16384;
  constexpr int kL = 16;
  const int64_t nchunks = (len + kAllChunk - 1) / kAllChunk;
  double* part = reinterpret_cast<double*>(thread_scratch(0, size_t(2 * nchunks)));
  parallel_for(
      nchunks,
      [&](int64_t b, int64_t e) {
        for (int64_t c = b; c < e; ++c) {
          const float* __restrict p = x + c * kAllChunk;
          const int64_t n = std::min(kAllChunk, len - c * kAllChunk);
          int64_t i = 0;
          if (op == ReduceOp::sum) {
            double acc[kLanes] = {0};
            for (; i + kLanes <= n; i += kLanes)
              for (int l = 0; l < kLanes; ++l) acc[l] += double(p[i + l]);
            for (; i < n; ++i) acc[0] += double(p[i]);
            double t = 0;
            for (int l = 0; l < kLanes; ++l) t += acc[l];
            part[c] = t;
            continue;
          }
          // Lanes of max/min (vmaxps/vminps); z picks up NaN from any NaN or infinity (x * 0), in which case the
          // chunk is rescanned with the scalar rule that propagates NaN.
          float m[kL], z[kL];
#ifdef __AVX512F__
          __m512 mv = _mm512_set1_ps(p[0]), zv = _mm512_setzero_ps();
          const __m512 zero = _mm512_setzero_ps();
          if (op == ReduceOp::max) {
            for (; i + kL <= n; i += kL) {
              const __m512 v = _mm512_loadu_ps(p + i);
              mv = _mm512_max_ps(v, mv);
              zv = _mm512_add_ps(zv, _mm512_mul_ps(v, zero));
            }
          } else {
            for (; i + kL <= n; i += kL) {
              const __m512 v = _mm512_loadu_ps(p + i);
              mv = _mm512_min_ps(v, mv);
              zv = _mm512_add_ps(zv, _mm512_mul_ps(v, zero));
            }
          }
          _mm512_storeu_ps(m, mv);
          _mm512_storeu_ps(z, zv);
#else
          for (int l = 0; l < kL; ++l) m[l] = p[0], z[l] = 0.f;
          if (op == ReduceOp::max) {
            for (; i + kL <= n; i += kL)
              for (int l = 0; l < kL; ++l) {
                const float v = p[i + l];
                m[l] = v > m[l] ? v : m[l];
                z[l] += v * 0.f;
              }
          } else {
            for (; i + kL <= n; i += kL)
              for (int l = 0; l < kL; ++l) {
                const float v = p[i + l];
                m[l] = v < m[l] ? v : m[l];
                z[l] += v * 0.f;
              }
          }
#endif
          float acc = m[0], zs = 0.f;
          for (int l = 0; l < kL; ++l) acc = pick(op, acc, m[l]), zs += z[l];
          if (zs != 0.f) {
            acc = p[0];
            i = 0;
          }
          for (; i < n; ++i) acc = pick(op, acc, p[i]);
          part[c] = double(acc);
        }
      },
      4);
  if (op == ReduceOp::sum) {
    double t = 0;
    for (int64_t c = 0; c < nchunks; ++c) t += part[c];
    return float(t);
  }
  float acc = float(part[0]);
  for (int64_t c = 1; c < nchunks; ++c) acc = pick(op, acc, float(part[c]));
  return acc;
}

}  // namespace

void reduce_fwd(ReduceOp op, const int64_t shape[4], const bool mask[4], const float* x, float* y) {
  const Groups g = make_groups(shape, mask);
  if (g.nr == 0) {  // nothing to reduce: a copy
    std::copy(x, x + g.kcount, y);
  } else if (g.nk == 0) {
    y[0] = reduce_all(op, g.rcount, x);
  } else if (g.inner_reduced) {
    reduce_rows(op, g, x, y);
  } else {
    reduce_cols(op, g, x, y);
  }
}

void reduce_minmax_bwd(const int64_t shape[4], const bool mask[4], const float* x, const float* y, const float* dy,
                       float* dx) {
  const Groups g = make_groups(shape, mask);
  // Outputs are independent; each visits its reduced group twice (count ties, then write).
  parallel_for(
      g.kcount,
      [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) {
          const int64_t base = offset_of(o, g.nk, g.ksize, g.kstride);
          const float target = y[o];
          int64_t ties = 0;
          for (int64_t r = 0; r < g.rcount; ++r) ties += x[base + offset_of(r, g.nr, g.rsize, g.rstride)] == target;
          const float share = ties > 0 ? dy[o] / float(ties) : 0.f;
          for (int64_t r = 0; r < g.rcount; ++r) {
            const int64_t k = base + offset_of(r, g.nr, g.rsize, g.rstride);
            dx[k] = x[k] == target ? share : 0.f;
          }
        }
      },
      std::max<int64_t>(1, 8192 / g.rcount));
}

}  // namespace granq
