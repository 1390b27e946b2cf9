// Asymmetric fake quantization, bit-exact with the scalar reference (src/backend/ref/quant.ts) and PyTorch:
// every step is its own float32 operation, so FMA contraction is off for this file and no fmadd is used.
#pragma GCC optimize("fp-contract=off")
#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(__AVX512F__) && defined(__AVX512DQ__)
// GCC 12 flags _mm512_undefined_ps() inside the intrinsic headers as maybe-uninitialized (a false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define GRANQ_QUANT_AVX512 1
#endif

#include "kernels.h"

namespace granq {
namespace {

constexpr int64_t kBlockFloats = 16384;   // rows per block: ~64 KiB of x, so the quantize pass re-reads from L2
constexpr int64_t kMaxBlockRows = 4096;   // caps the per-thread s/z scratch for tiny rows
constexpr float kZExact = 16777216.0f;    // |z| < 2^24: z = round(s m) + 2^(bits-1) is exact in float32

// Math.min / Math.max semantics (NaN propagates, -0 < +0), so ranges match the reference bit for bit.
inline float js_min(float a, float b) {
  if (a != a || b != b) return NAN;
  if (a == b) return std::signbit(a) ? a : b;
  return a < b ? a : b;
}
inline float js_max(float a, float b) {
  if (a != a || b != b) return NAN;
  if (a == b) return std::signbit(a) ? b : a;
  return a > b ? a : b;
}

void minmax_ref(const float* x, int64_t len, float* mn, float* mx) {
  float m = INFINITY, M = -INFINITY;
  for (int64_t i = 0; i < len; ++i) {
    m = js_min(m, x[i]);
    M = js_max(M, x[i]);
  }
  *mn = m;
  *mx = M;
}

#ifdef GRANQ_QUANT_AVX512
// Horizontal min (0x4) or max (0x5) of 16 lanes with VRANGEPS, which is commutative including signed zeros.
template <int Op>
inline float hrange(__m512 v) {
  v = _mm512_range_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E), Op);
  v = _mm512_range_ps(v, _mm512_shuffle_f32x4(v, v, 0xB1), Op);
  v = _mm512_range_ps(v, _mm512_permute_ps(v, 0x4E), Op);
  v = _mm512_range_ps(v, _mm512_permute_ps(v, 0xB1), Op);
  return _mm512_cvtss_f32(v);
}
#endif

// One row's min and max. VRANGEPS orders -0 < +0 like Math.min but drops NaN, so a running sum flags rows that
// may hold a NaN (or inf - inf) and those are rescanned with the scalar rule.
void minmax_row(const float* x, int64_t len, float* mn, float* mx) {
#ifdef GRANQ_QUANT_AVX512
  __m512 m0 = _mm512_set1_ps(INFINITY), m1 = m0, M0 = _mm512_set1_ps(-INFINITY), M1 = M0;
  __m512 s0 = _mm512_setzero_ps(), s1 = s0;
  int64_t i = 0;
  for (; i + 32 <= len; i += 32) {
    __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
    m0 = _mm512_range_ps(m0, a, 0x4);
    M0 = _mm512_range_ps(M0, a, 0x5);
    s0 = _mm512_add_ps(s0, a);
    m1 = _mm512_range_ps(m1, b, 0x4);
    M1 = _mm512_range_ps(M1, b, 0x5);
    s1 = _mm512_add_ps(s1, b);
  }
  for (; i < len; i += 16) {
    __mmask16 k = len - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (len - i)) - 1);
    __m512 a = _mm512_maskz_loadu_ps(k, x + i);
    m0 = _mm512_mask_range_ps(m0, k, m0, a, 0x4);
    M0 = _mm512_mask_range_ps(M0, k, M0, a, 0x5);
    s0 = _mm512_mask_add_ps(s0, k, s0, a);
  }
  m0 = _mm512_range_ps(m0, m1, 0x4);
  M0 = _mm512_range_ps(M0, M1, 0x5);
  s0 = _mm512_add_ps(s0, s1);
  if (_mm512_cmp_ps_mask(s0, s0, _CMP_UNORD_Q) != 0) return minmax_ref(x, len, mn, mx);
  *mn = hrange<0x4>(m0);
  *mx = hrange<0x5>(M0);
#else
  minmax_ref(x, len, mn, mx);
#endif
}

// Vectorized pre-scaling: s and z of `count` ranges at once, s = n * (1 / max(M - m, 1e-8)) (torch's reciprocal),
// z = round(s m) + 2^(bits-1).
void prescale(const float* mn, const float* mx, int64_t count, int bits, float* s, float* z) {
  const float n = float((1 << bits) - 1), half = float(1 << (bits - 1)), eps = static_cast<float>(1e-8);
  int64_t i = 0;
#ifdef GRANQ_QUANT_AVX512
  const __m512 vn = _mm512_set1_ps(n), vh = _mm512_set1_ps(half), ve = _mm512_set1_ps(eps), one = _mm512_set1_ps(1.0f);
  for (; i < count; i += 16) {
    __mmask16 k = count - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (count - i)) - 1);
    __m512 m = _mm512_maskz_loadu_ps(k, mn + i), M = _mm512_maskz_loadu_ps(k, mx + i);
    __m512 r = _mm512_max_ps(ve, _mm512_sub_ps(M, m));  // eps first: a NaN range stays NaN
    __m512 vs = _mm512_mul_ps(vn, _mm512_div_ps(one, r));
    __m512 R = _mm512_roundscale_ps(_mm512_mul_ps(vs, m), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm512_mask_storeu_ps(s + i, k, vs);
    _mm512_mask_storeu_ps(z + i, k, _mm512_add_ps(R, vh));
  }
#endif
  for (; i < count; ++i) {
    float r = mx[i] - mn[i];
    r = eps > r ? eps : r;
    s[i] = n * (1.0f / r);
    z[i] = std::nearbyint(s[i] * mn[i]) + half;
  }
}

// A code q - lo (q >= lo by construction) as unsigned 8-bit, saturated at 255; NaN gives 0.
inline uint8_t code_u8(double u) { return u >= 255.0 ? uint8_t(255) : (u > 0.0 ? uint8_t(u) : uint8_t(0)); }

// The reference's exact arithmetic for a range whose z = round(s m) + 2^(bits-1) is not a float32 (|s m| >= 2^24,
// e.g. a constant row at 8 bits): the reference keeps z in double there. Rare, so scalar.
void quant_run_exact(const float* x, float* y, int64_t len, float s, float m, int bits, bool clamp, uint8_t* codes) {
  const double z = double(std::nearbyint(s * m)) + double(1 << (bits - 1));
  const double lo = -double(1 << (bits - 1)), hi = double((1 << (bits - 1)) - 1);
  for (int64_t i = 0; i < len; ++i) {
    float sx = s * x[i];
    double q = std::nearbyint(float(double(sx) - z));
    if (clamp) q = q < lo ? lo : (q > hi ? hi : q);
    if (y) y[i] = float(q + z) / s;
    if (codes) codes[i] = code_u8(q - lo);
  }
}

// y = (round(s x - z) [clamped] + z) / s over one contiguous run, z exact in float32. y null: the codes alone (no
// division: most of the run's arithmetic).
template <bool Clamp>
void quant_run(const float* x, float* y, int64_t len, float s, float z, int bits, uint8_t* codes) {
  const float lo = -float(1 << (bits - 1)), hi = float((1 << (bits - 1)) - 1);
  int64_t i = 0;
#ifdef GRANQ_QUANT_AVX512
  const __m512 vs = _mm512_set1_ps(s), vz = _mm512_set1_ps(z), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  for (; i < len; i += 16) {
    __mmask16 k = len - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (len - i)) - 1);
    __m512 v = _mm512_maskz_loadu_ps(k, x + i);
    __m512 q = _mm512_roundscale_ps(_mm512_sub_ps(_mm512_mul_ps(vs, v), vz), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (Clamp) q = _mm512_min_ps(vhi, _mm512_max_ps(vlo, q));  // bound first: NaN propagates like Math.max
    if (y) _mm512_mask_storeu_ps(y + i, k, _mm512_div_ps(_mm512_add_ps(q, vz), vs));
    if (codes) {  // q - lo bounded to [0, 255] in float first (NaN: max_ps returns its second operand, 0)
      const __m512 u = _mm512_min_ps(_mm512_max_ps(_mm512_sub_ps(q, vlo), _mm512_setzero_ps()), _mm512_set1_ps(255.0f));
      _mm_mask_storeu_epi8(codes + i, k, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(u)));
    }
  }
#endif
  for (; i < len; ++i) {
    float q = std::nearbyint(s * x[i] - z);
    if (Clamp) {
      q = lo > q ? lo : q;  // NaN stays NaN, as in Math.min(hi, Math.max(lo, q))
      q = hi < q ? hi : q;
    }
    if (y) y[i] = (q + z) / s;
    if (codes) codes[i] = code_u8(double(q) - double(lo));
  }
}

void quant_any(const float* x, float* y, int64_t len, float s, float z, float m, int bits, bool clamp, uint8_t* codes = nullptr) {
  if (!(std::fabs(z) < kZExact)) return quant_run_exact(x, y, len, s, m, bits, clamp, codes);
  if (clamp) return quant_run<true>(x, y, len, s, z, bits, codes);
  quant_run<false>(x, y, len, s, z, bits, codes);
}

constexpr int kClipLanes = 16;

// E / s^2 of one clip candidate over one row (see quant_clip_ranges in kernels.h): clamped codes, float32 lanes.
double clip_error(const float* x, int64_t len, float s, float z, int bits) {
  const float lo = -float(1 << (bits - 1)), hi = float((1 << (bits - 1)) - 1);
  float acc[kClipLanes] = {};
  int64_t i = 0;
#ifdef GRANQ_QUANT_AVX512
  const __m512 vs = _mm512_set1_ps(s), vz = _mm512_set1_ps(z), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  __m512 va = _mm512_setzero_ps();
  for (; i < len; i += kClipLanes) {
    __mmask16 k = len - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (len - i)) - 1);
    __m512 sx = _mm512_mul_ps(vs, _mm512_maskz_loadu_ps(k, x + i));
    __m512 q = _mm512_roundscale_ps(_mm512_sub_ps(sx, vz), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    q = _mm512_min_ps(vhi, _mm512_max_ps(vlo, q));
    __m512 d = _mm512_sub_ps(_mm512_add_ps(q, vz), sx);
    va = _mm512_mask_add_ps(va, k, va, _mm512_mul_ps(d, d));
  }
  _mm512_storeu_ps(acc, va);
#endif
  for (; i < len; ++i) {
    const float sx = s * x[i];
    float q = std::nearbyint(sx - z);
    q = lo > q ? lo : q;
    q = hi < q ? hi : q;
    const float d = (q + z) - sx;
    acc[i % kClipLanes] += d * d;
  }
  double e = 0;
  for (int l = 0; l < kClipLanes; ++l) e += double(acc[l]);
  return e / (double(s) * double(s));
}

}  // namespace

void quant_clip_ranges(const QuantClipParams& p, const float* x, float* row_min, float* row_max) {
  parallel_for(p.rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* row = x + r * p.cols;
      float m, M;
      minmax_row(row, p.cols, &m, &M);
      row_min[r] = m;
      row_max[r] = M;
      if (!std::isfinite(m) || !std::isfinite(M)) continue;
      double best = INFINITY;
      for (int32_t j = 0; j < p.steps; ++j) {
        const float a = p.steps == 1 ? 1.0f : float(1.0 - double(j) * (1.0 - double(p.lowest)) / double(p.steps - 1));
        const float lo = a * m, hi = a * M;
        float s, z;
        prescale(&lo, &hi, 1, p.bits, &s, &z);
        if (!(std::fabs(z) < kZExact)) continue;
        const double e = clip_error(row, p.cols, s, z, p.bits);
        if (e < best) {
          best = e;
          row_min[r] = lo;
          row_max[r] = hi;
        }
      }
    }
  });
}

void quant_rows_fwd(const QuantRowsParams& p, const float* x, float* y, float* row_min, float* row_max, uint8_t* codes) {
  const int64_t cols = p.cols;
  const int64_t block = std::min(kMaxBlockRows, std::max<int64_t>(1, kBlockFloats / std::max<int64_t>(cols, 1)));
  parallel_for(
      p.rows,
      [&](int64_t begin, int64_t end) {
        float* scratch = thread_scratch(0, size_t(4 * block));
        for (int64_t r0 = begin; r0 < end; r0 += block) {
          const int64_t nr = std::min(block, end - r0);
          float* mn = row_min ? row_min + r0 : scratch;
          float* mx = row_max ? row_max + r0 : scratch + block;
          float* s = scratch + 2 * block;
          float* z = scratch + 3 * block;
          for (int64_t r = 0; r < nr; ++r) minmax_row(x + (r0 + r) * cols, cols, mn + r, mx + r);
          prescale(mn, mx, nr, p.bits, s, z);
          for (int64_t r = 0; r < nr; ++r) {
            const int64_t at = (r0 + r) * cols;
            quant_any(x + at, y ? y + at : nullptr, cols, s[r], z[r], mn[r], p.bits, p.clamp, codes ? codes + at : nullptr);
          }
        }
      },
      block);
}

void quant_channel_loop_fwd(int64_t n, int64_t c, int64_t hw, int32_t bits, const float* x, float* y) {
  // Shared by the workers of each step; slot 1 so it never aliases a worker's slot-0 scratch.
  float* scratch = thread_scratch(1, size_t(4 * n));
  float *mn = scratch, *mx = scratch + n, *s = scratch + 2 * n, *z = scratch + 3 * n;
  // Each step is its own parallel_for over the batch (grain 1 sample), as a per-channel loop of framework ops
  // would run: two pool synchronizations per channel, the cost GranQ's vectorization removes.
  const int64_t grain = 1;
  for (int64_t ch = 0; ch < c; ++ch) {
    parallel_for(
        n,
        [&](int64_t begin, int64_t end) {
          for (int64_t b = begin; b < end; ++b) minmax_row(x + (b * c + ch) * hw, hw, mn + b, mx + b);
        },
        grain);
    prescale(mn, mx, n, bits, s, z);
    parallel_for(
        n,
        [&](int64_t begin, int64_t end) {
          for (int64_t b = begin; b < end; ++b) {
            const int64_t at = (b * c + ch) * hw;
            quant_any(x + at, y + at, hw, s[b], z[b], mn[b], bits, false);
          }
        },
        grain);
  }
}

void quant_groups_fwd(const QuantGroupsParams& p, const float* mins, const float* maxs, const float* x, float* y, uint8_t* codes) {
  float* scratch = thread_scratch(1, size_t(2 * p.groups));
  float *s = scratch, *z = scratch + p.groups;
  prescale(mins, maxs, p.groups, p.bits, s, z);
  // Work items are pieces of (outer, group) runs, so one huge group (per-tensor) still spreads over the threads.
  const int64_t pieces = std::max<int64_t>(1, (p.inner + kBlockFloats - 1) / kBlockFloats);
  const int64_t piece_len = (p.inner + pieces - 1) / pieces;
  const int64_t items = p.outer * p.groups * pieces;
  parallel_for(
      items,
      [&](int64_t begin, int64_t end) {
        for (int64_t it = begin; it < end; ++it) {
          const int64_t run = it / pieces, g = run % p.groups;
          const int64_t from = (it % pieces) * piece_len, len = std::min(piece_len, p.inner - from);
          if (len <= 0) continue;
          const int64_t at = run * p.inner + from;
          quant_any(x + at, y ? y + at : nullptr, len, s[g], z[g], mins[g], p.bits, p.clamp, codes ? codes + at : nullptr);
        }
      },
      std::max<int64_t>(1, kBlockFloats / std::max<int64_t>(piece_len, 1)));
}

}  // namespace granq
