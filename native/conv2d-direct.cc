// conv2d's direct path (AVX-512 builds only; others compile this file empty and use the im2col path of conv2d.cc):
// the microkernel loads its B vectors straight from "phase planes" of the padded image, so no im2col is materialised.
// Forward (conv_image_direct), backward data for stride > 1 (one stride-1 sub-conv per phase of dx) and the weight
// gradient (a dot-product kernel over output positions on the phase planes, per chunk of images). Stride-1 backward
// data is a forward conv of dy and comes here through conv2d.cc. No result depends on the thread count.
#include <algorithm>
#include <cstring>
#include <vector>

#include "conv2d-impl.h"
#include "gemm.h"
#include "kernels.h"

namespace granq {
namespace conv_detail {

using namespace gemm_detail;

#if defined(__AVX512F__)
namespace {

// ---------- direct path: B vectors loaded straight from "phase planes" of the padded image, no im2col ----------
// For stride s the zero-padded image splits into s*s planes, plane (a, b)[ic][r][c] = xpad[ic][r*s + a][c*s + b], so
// every tap (ky, kx) reads plane (ky % s, kx % s) at offset (ky / s, kx / s) with unit stride. A tile of 32 outputs
// is two 16-wide runs of one output row (ow % 16 == 0) or four 8-wide rows (ow == 8).
struct Planes {
  int64_t s, pa, pb, hh, wh;  // stride, phases used per axis, plane rows and columns
  int64_t plane() const { return hh * wh; }
};

Planes planes_of(const Geom& g) {
  return {g.stride, std::min(g.stride, g.kh), std::min(g.stride, g.kw), g.oh + (g.kh - 1) / g.stride,
          g.ow + (g.kw - 1) / g.stride};
}

}  // namespace

bool direct_ok(const Geom& g) {
  const Planes P = planes_of(g);
  return (g.ow % 16 == 0 || g.ow == 8) && P.pa * P.pb * g.c * P.plane() < (int64_t(1) << 30);
}

// Offset of tap p = (ic, ky, kx) inside the phase planes.
void tap_offsets(const Geom& g, int32_t* off) {
  const Planes P = planes_of(g);
  for (int64_t p = 0, ic = 0; ic < g.c; ++ic)
    for (int64_t ky = 0; ky < g.kh; ++ky)
      for (int64_t kx = 0; kx < g.kw; ++kx, ++p)
        off[p] = int32_t((((ky % P.s) * P.pb + kx % P.s) * g.c + ic) * P.plane() + (ky / P.s) * P.wh + kx / P.s);
}

namespace {

// The first min(r, 16) lanes.
inline __mmask16 lanes(int64_t r) { return r >= 16 ? __mmask16(0xffff) : __mmask16((1u << r) - 1); }

// dst[c] for c in [0, wh): src[c - lo] inside [lo, hi), zero outside: one zero-padded row in 16-wide masked stores
// (cheaper than a memcpy and two fill calls per row). Reads src[0, hi - lo) only.
inline void pad_row(float* dst, int64_t wh, const float* src, int64_t lo, int64_t hi) {
  const __m512 z = _mm512_setzero_ps();
  for (int64_t c = 0; c < lo; c += 16) _mm512_mask_storeu_ps(dst + c, lanes(lo - c), z);
  for (int64_t c = lo; c < hi; c += 16) {
    const __mmask16 m = lanes(hi - c);
    _mm512_mask_storeu_ps(dst + c, m, _mm512_maskz_loadu_ps(m, src + (c - lo)));
  }
  for (int64_t c = hi; c < wh; c += 16) _mm512_mask_storeu_ps(dst + c, lanes(wh - c), z);
}

void build_planes_s2(const Geom& g, const float* x, float* dst);

void build_planes(const Geom& g, const float* x, float* dst) {
  const Planes P = planes_of(g);
  if (P.s == 2 && g.pad_w < 16) return build_planes_s2(g, x, dst);
  for (int64_t a = 0; a < P.pa; ++a)
    for (int64_t b = 0; b < P.pb; ++b) {
      // Columns c with 0 <= c*s + b - pad_w < iw; the rest is zero padding.
      const int64_t lo = std::min(P.wh, std::max<int64_t>(0, (g.pad_w - b + P.s - 1) / P.s));
      const int64_t hi = std::max(lo, std::min(P.wh, (g.iw + g.pad_w - b + P.s - 1) / P.s));
      for (int64_t ic = 0; ic < g.c; ++ic) {
        const float* xc = x + ic * g.ih * g.iw;
        for (int64_t r = 0; r < P.hh; ++r, dst += P.wh) {
          const int64_t h = r * P.s + a - g.pad_h;
          if (h < 0 || h >= g.ih) {
            std::fill(dst, dst + P.wh, 0.f);
            continue;
          }
          const int64_t o = h * g.iw + b - g.pad_w;  // column c reads xc[o + c * s]
          if (P.s == 1) {
            pad_row(dst, P.wh, xc + o + lo, lo, hi);
            continue;
          }
          std::fill(dst, dst + lo, 0.f);
          if (P.s == 2) {
            for (int64_t c = lo; c < hi; ++c) dst[c] = xc[o + 2 * c];  // constant stride: vectorised
          } else {
            for (int64_t c = lo; c < hi; ++c) dst[c] = xc[o + c * P.s];
          }
          std::fill(dst + hi, dst + P.wh, 0.f);
        }
      }
    }
}

// build_planes for stride 2: each padded row is split into its even and odd columns with two permutes per 16 outputs.
void build_planes_s2(const Geom& g, const float* x, float* dst) {
  const Planes P = planes_of(g);
  const int64_t wv = round_up(P.wh, 16), plane = P.plane();
  float* tmp = thread_scratch(0, size_t(2 * wv + 16));  // one zero-padded input row: tmp[t] = xpad[h][t]
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const int64_t len = std::min(g.iw, 2 * wv - g.pad_w);  // input columns that land in tmp
  std::fill(tmp, tmp + 2 * wv + 16, 0.f);
  for (int64_t a = 0; a < P.pa; ++a)
    for (int64_t ic = 0; ic < g.c; ++ic)
      for (int64_t r = 0; r < P.hh; ++r) {
        float* d0 = dst + ((a * P.pb) * g.c + ic) * plane + r * P.wh;
        float* d1 = P.pb > 1 ? dst + ((a * P.pb + 1) * g.c + ic) * plane + r * P.wh : d0;
        const int64_t h = 2 * r + a - g.pad_h;
        if (h < 0 || h >= g.ih) {
          std::fill(d0, d0 + P.wh, 0.f);
          if (P.pb > 1) std::fill(d1, d1 + P.wh, 0.f);
          continue;
        }
        const float* xrow = x + (ic * g.ih + h) * g.iw;
        for (int64_t t = 0; t < len; t += 16) {  // the zero borders of tmp are never written
          const __mmask16 m = lanes(len - t);
          _mm512_mask_storeu_ps(tmp + g.pad_w + t, m, _mm512_maskz_loadu_ps(m, xrow + t));
        }
        for (int64_t c0 = 0; c0 < P.wh; c0 += 16) {
          const __mmask16 m = lanes(P.wh - c0);
          const __m512 v0 = _mm512_loadu_ps(tmp + 2 * c0), v1 = _mm512_loadu_ps(tmp + 2 * c0 + 16);
          _mm512_mask_storeu_ps(d0 + c0, m, _mm512_permutex2var_ps(v0, even, v1));
          if (P.pb > 1) _mm512_mask_storeu_ps(d1 + c0, m, _mm512_permutex2var_ps(v0, odd, v1));
        }
      }
}

// One MR x 32 output tile over all k taps. base[] are the plane offsets of the tile's 2 (or 4 half-) rows.
template <bool kHalf>
void micro_direct(int64_t k, const float* pa, const int32_t* off, const float* planes, const int64_t* base, float* c,
                  int64_t ldc, int64_t mr, int64_t nr, bool acc) {
  const float *s0 = planes + base[0], *s1 = planes + base[1];
  const float *s2 = planes + base[kHalf ? 2 : 0], *s3 = planes + base[kHalf ? 3 : 1];
  micro_tile(k, pa, [=](int64_t p, __m512& b0, __m512& b1) {
    const int64_t o = off[p];
    if (kHalf) {
      b0 = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(s0 + o)), _mm256_loadu_ps(s1 + o), 1);
      b1 = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(s2 + o)), _mm256_loadu_ps(s3 + o), 1);
    } else {
      b0 = _mm512_loadu_ps(s0 + o);
      b1 = _mm512_loadu_ps(s1 + o);
    }
  }, c, ldc, mr, nr, acc);
}

// y[m, oh*ow] = W . im2col(x) (+ bias) for one image; pa is W packed as one k-block (pack_a over all of k).
// y[m, n] (+ bias) = A . B for output positions laid out in rows of `ow` (n = rows * ow), where tap p of position
// (r, q) reads planes[off[p] + r * wh + q]. pa is A packed as one k-block (pack_a over all of k).
void direct_tiles(int64_t k, int64_t m, int64_t n, int64_t ow, int64_t wh, const float* pa, const int32_t* off,
                  const float* planes, const float* bias, float* y) {
  const bool half = ow == 8;
  const int64_t run = half ? 8 : 16;
  for (int64_t j0 = 0; j0 < n; j0 += kNR) {
    const int64_t nr = std::min(kNR, n - j0);
    int64_t base[4] = {0, 0, 0, 0};
    for (int v = 0; v < (half ? 4 : 2); ++v) {
      const int64_t j = j0 + v * run;
      base[v] = j < n ? (j / ow) * wh + j % ow : base[0];  // past the end: any valid row, masked at the store
    }
    if (bias)
      for (int64_t i = 0; i < m; ++i) std::fill(y + i * n + j0, y + i * n + j0 + nr, bias[i]);
    for (int64_t i0 = 0; i0 < m; i0 += kMR) {
      const int64_t mr = std::min(kMR, m - i0);
      if (half)
        micro_direct<true>(k, pa + i0 * k, off, planes, base, y + i0 * n + j0, n, mr, nr, bias != nullptr);
      else
        micro_direct<false>(k, pa + i0 * k, off, planes, base, y + i0 * n + j0, n, mr, nr, bias != nullptr);
    }
  }
}

}  // namespace

void conv_image_direct(const Geom& g, int64_t m, const float* pa, const int32_t* off, const float* x,
                       const float* bias, float* y) {
  const Planes P = planes_of(g);
  float* planes = thread_scratch(2, size_t(P.pa * P.pb * g.c * P.plane()));
  build_planes(g, x, planes);
  direct_tiles(g.k(), m, g.n(), g.ow, P.wh, pa, off, planes, bias, y);
}

// ---------- backward data for stride s > 1, one stride-1 conv per phase of dx ----------
// dx[ic, s*r + a, s*q + b] = sum over oc and the taps with ky = a + pad - s*ty, kx = b + pad - s*tx of
// dy[oc, r + ty, q + tx] . w[oc, ic, ky, kx]: a stride-1 correlation of dy (zero outside) with a sub-kernel.
// (PhaseConv and StridedBwd: conv2d-impl.h)

namespace {

int64_t pc_n(const PhaseConv& pc) { return pc.rows * pc.cols; }

}  // namespace

StridedBwd plan_strided_bwd(const Conv2dShape& s, const float* w) {
  StridedBwd sb;
  const int64_t st = s.stride, khw = s.kh * s.kw;
  // Tap offsets t = (a + pad - k) / s over all phases and taps, for the padding of dy.
  int64_t ty_lo = 0, ty_hi = 0, tx_lo = 0, tx_hi = 0, rows_max = 0, cols_max = 0;
  for (int64_t a = 0; a < std::min(st, s.ih); ++a)
    for (int64_t ky = 0; ky < s.kh; ++ky)
      if ((a + s.pad - ky) % st == 0) ty_lo = std::min(ty_lo, (a + s.pad - ky) / st), ty_hi = std::max(ty_hi, (a + s.pad - ky) / st);
  for (int64_t b = 0; b < std::min(st, s.iw); ++b)
    for (int64_t kx = 0; kx < s.kw; ++kx)
      if ((b + s.pad - kx) % st == 0) tx_lo = std::min(tx_lo, (b + s.pad - kx) / st), tx_hi = std::max(tx_hi, (b + s.pad - kx) / st);
  rows_max = (s.ih + st - 1) / st;
  cols_max = (s.iw + st - 1) / st;
  sb.lo_y = ty_lo;
  sb.lo_x = tx_lo;
  sb.hh = rows_max + ty_hi - ty_lo;
  sb.wh = cols_max + tx_hi - tx_lo;
  for (int64_t a = 0; a < std::min(st, s.ih); ++a)
    for (int64_t b = 0; b < std::min(st, s.iw); ++b) {
      PhaseConv pc;
      pc.a = a, pc.b = b, pc.rows = (s.ih - a + st - 1) / st, pc.cols = (s.iw - b + st - 1) / st;
      if (!(pc.cols % 16 == 0 || pc.cols == 8)) sb.ok = false;
      std::vector<float> sub;  // [ic, taps] row-major, taps ordered (oc, ky, kx)
      std::vector<int64_t> taps;
      for (int64_t o = 0; o < s.oc; ++o)
        for (int64_t ky = 0; ky < s.kh; ++ky)
          for (int64_t kx = 0; kx < s.kw; ++kx) {
            if ((a + s.pad - ky) % st != 0 || (b + s.pad - kx) % st != 0) continue;
            const int64_t ty = (a + s.pad - ky) / st, tx = (b + s.pad - kx) / st;
            pc.off.push_back(int32_t((o * sb.hh + ty - sb.lo_y) * sb.wh + tx - sb.lo_x));
            taps.push_back((o * s.ic) * khw + ky * s.kw + kx);
          }
      const int64_t k = int64_t(taps.size());
      sub.resize(size_t(s.ic * k));
      for (int64_t i = 0; i < s.ic; ++i)
        for (int64_t t = 0; t < k; ++t) sub[i * k + t] = w[taps[t] + i * khw];
      pc.pa.resize(size_t(round_up(s.ic, kMR) * std::max<int64_t>(k, 1)));
      if (k > 0) pack_a(s.ic, k, sub.data(), k, 1, pc.pa.data());
      sb.phases.push_back(std::move(pc));
    }
  if (s.oc * sb.hh * sb.wh >= (int64_t(1) << 30)) sb.ok = false;  // offsets are int32
  return sb;
}

void bwd_data_strided_image(const Conv2dShape& s, const StridedBwd& sb, const float* dy, float* dx) {
  float* planes = thread_scratch(2, size_t(s.oc * sb.hh * sb.wh));
  for (int64_t o = 0; o < s.oc; ++o)
    for (int64_t r = 0; r < sb.hh; ++r) {
      float* d = planes + (o * sb.hh + r) * sb.wh;
      const int64_t h = r + sb.lo_y;
      const int64_t lo = std::min(sb.wh, std::max<int64_t>(0, -sb.lo_x));
      const int64_t hi = std::max(lo, std::min(sb.wh, s.ow - sb.lo_x));
      if (h < 0 || h >= s.oh) {
        std::fill(d, d + sb.wh, 0.f);
        continue;
      }
      pad_row(d, sb.wh, dy + (o * s.oh + h) * s.ow + lo + sb.lo_x, lo, hi);
    }
  // Phase outputs of one phase row a (b = 0 .. s-1) side by side, so dx rows are written whole.
  const int64_t cmax = (s.iw + s.stride - 1) / s.stride, rmax = (s.ih + s.stride - 1) / s.stride;
  float* out = thread_scratch(1, size_t(s.stride * s.ic * rmax * cmax));
  const size_t nb = size_t(std::min(s.stride, s.iw));
  for (size_t p0 = 0; p0 < sb.phases.size(); p0 += nb) {
    for (size_t pb = 0; pb < nb; ++pb) {
      const PhaseConv& pc = sb.phases[p0 + pb];
      const int64_t n = pc.rows * pc.cols, k = int64_t(pc.off.size());
      float* o = out + pb * s.ic * rmax * cmax;
      if (k > 0)
        direct_tiles(k, s.ic, n, pc.cols, sb.wh, pc.pa.data(), pc.off.data(), planes, nullptr, o);
      else
        std::fill(o, o + s.ic * n, 0.f);
    }
    const PhaseConv& p0c = sb.phases[p0];
    const int64_t n = p0c.rows * p0c.cols, plane = s.ic * rmax * cmax;
    for (int64_t i = 0; i < s.ic; ++i)
      for (int64_t r = 0; r < p0c.rows; ++r) {
        float* drow = dx + (i * s.ih + s.stride * r + p0c.a) * s.iw;
        const float* src = out + i * n + r * p0c.cols;
        if (s.stride == 2 && nb == 2 && s.iw == 2 * p0c.cols) {
          for (int64_t q = 0; q < p0c.cols; ++q) {  // interleave the two column phases (vectorised)
            drow[2 * q] = src[q];
            drow[2 * q + 1] = src[plane + q];
          }
        } else {
          for (size_t pb = 0; pb < nb; ++pb) {
            const int64_t cols = sb.phases[p0 + pb].cols;
            const float* sp = out + pb * plane + i * pc_n(sb.phases[p0 + pb]) + r * cols;
            for (int64_t q = 0; q < cols; ++q) drow[q * s.stride + int64_t(pb)] = sp[q];
          }
        }
      }
  }
}

// ---------- weight gradient on the phase planes: dot products over output positions ----------
// part[oc, tap] = sum over images and positions of dy[oc, pos] * col[tap, pos]. A 4 oc x 6 tap tile keeps 24 vector
// accumulators over 16 positions at a time (10 loads per 24 FMAs), summed across lanes once per image group.
// (kDwOc, kDwTap: conv2d-impl.h)

namespace {

struct PosVec {
  int64_t dy;        // offset of the 16 positions in a dy row
  int64_t base[2];   // plane offsets of the (one 16-wide, or two 8-wide) input runs; base[1] < 0: upper half absent
};

// Sum of the 16 lanes. GCC 12's shuffle/extract intrinsics start from `__m512 __Y = __Y` (an intentionally undefined
// pass-through) and trip a false -Wmaybe-uninitialized when inlined.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
inline float lane_sum(__m512 v) {
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4e));
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xb1));
  __m128 q = _mm512_castps512_ps128(v);
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
}

template <bool kHalf>
void dw_tile(int64_t nimg, int64_t nvec, const PosVec* vecs, const float* const* dyrow, int64_t dy_img,
             const float* planes, int64_t plane_img, const int32_t* off, float out[kDwOc][kDwTap]) {
  __m512 acc[kDwOc][kDwTap];
#pragma GCC unroll 8
  for (int i = 0; i < kDwOc; ++i)
#pragma GCC unroll 6
    for (int j = 0; j < kDwTap; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nimg; ++b) {
    // The image's tap and dy row pointers, hoisted out of the position loop (fewer address computations per FMA).
    const float* tp[kDwTap];
#pragma GCC unroll 6
    for (int j = 0; j < kDwTap; ++j) tp[j] = planes + b * plane_img + off[j];
    const float* dr[kDwOc];
#pragma GCC unroll 8
    for (int i = 0; i < kDwOc; ++i) dr[i] = dyrow[i] + b * dy_img;
    for (int64_t v = 0; v < nvec; ++v) {
      const PosVec& pv = vecs[v];
      __m512 col[kDwTap];
      __mmask16 mask = 0xffff;
#pragma GCC unroll 6
      for (int j = 0; j < kDwTap; ++j) {
        const float* s = tp[j];
        if (kHalf) {
          const __m256 hi = pv.base[1] >= 0 ? _mm256_loadu_ps(s + pv.base[1]) : _mm256_setzero_ps();
          col[j] = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(s + pv.base[0])), hi, 1);
        } else {
          col[j] = _mm512_loadu_ps(s + pv.base[0]);
        }
      }
      if (kHalf && pv.base[1] < 0) mask = 0x00ff;
#pragma GCC unroll 8
      for (int i = 0; i < kDwOc; ++i) {
        const __m512 d = _mm512_maskz_loadu_ps(mask, dr[i] + pv.dy);
#pragma GCC unroll 6
        for (int j = 0; j < kDwTap; ++j) acc[i][j] = _mm512_fmadd_ps(d, col[j], acc[i][j]);
      }
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < kDwOc; ++i)
#pragma GCC unroll 6
    for (int j = 0; j < kDwTap; ++j) out[i][j] = lane_sum(acc[i][j]);
}

}  // namespace

// part[oc, k] = weight gradient of images [0, nimg) (one chunk) for `oc` output channels, computed on this thread;
// dy holds those channels' rows at image stride dy_img (a slice of all the layer's channels).
void dw_chunk_direct(const Geom& g, int64_t oc, const int32_t* off, int64_t nimg, const float* x, int64_t xs,
                     const float* dy, int64_t dy_img, float* part) {
  const Planes P = planes_of(g);
  const int64_t k = g.k(), n = g.n(), plane_img = P.pa * P.pb * g.c * P.plane();
  float* planes = thread_scratch(2, size_t(nimg * plane_img));
  for (int64_t b = 0; b < nimg; ++b) build_planes(g, x + b * xs, planes + b * plane_img);
  // dy regrouped as [oc][image][pos]: a tile's rows are then contiguous instead of image strides apart, which are
  // multiples of 4 KiB and made the rows of all images collide in the same L1 sets.
  float* dyc = thread_scratch(1, size_t(oc * nimg * n));
  for (int64_t o = 0; o < oc; ++o)
    for (int64_t b = 0; b < nimg; ++b) std::memcpy(dyc + (o * nimg + b) * n, dy + b * dy_img + o * n, size_t(n) * sizeof(float));
  const bool half = g.ow == 8;
  PosVec vecs[64];
  const int64_t nvec = (n + 15) / 16;  // direct_ok: n <= 2^30 but ow % 16 == 0 or 8; vectors handled in blocks of 64
  for (int64_t v0 = 0; v0 < nvec; v0 += 64) {
    const int64_t nv = std::min<int64_t>(64, nvec - v0);
    for (int64_t v = 0; v < nv; ++v) {
      const int64_t j = (v0 + v) * 16;
      PosVec& pv = vecs[v];
      pv.dy = j;
      if (half) {
        pv.base[0] = (j / 8) * P.wh;
        pv.base[1] = j + 8 < n ? ((j + 8) / 8) * P.wh : -1;
      } else {
        pv.base[0] = (j / g.ow) * P.wh + j % g.ow;
        pv.base[1] = 0;
      }
    }
    auto tile = [&](int64_t o0, int64_t t0) {
      int32_t toff[kDwTap];
      for (int j = 0; j < kDwTap; ++j) toff[j] = off[std::min<int64_t>(t0 + j, k - 1)];
      const float* dyrow[kDwOc];
      for (int i = 0; i < kDwOc; ++i) dyrow[i] = dyc + std::min(o0 + i, oc - 1) * nimg * n;  // past oc: repeat, discarded
      float out[kDwOc][kDwTap];
      if (half)
        dw_tile<true>(nimg, nv, vecs, dyrow, n, planes, plane_img, toff, out);
      else
        dw_tile<false>(nimg, nv, vecs, dyrow, n, planes, plane_img, toff, out);
      for (int i = 0; i < kDwOc && o0 + i < oc; ++i)
        for (int j = 0; j < kDwTap && t0 + j < k; ++j) {
          float& dst = part[(o0 + i) * k + t0 + j];
          dst = v0 == 0 ? out[i][j] : dst + out[i][j];
        }
    };
    // Few output channels: taps outer, so one input channel's planes stay in L1 while all of dy (small) streams
    // from L2. Many: oc tiles outer, so their dy rows stay in L1 and the planes stream.
    if (oc * nimg * n <= 32768) {
      for (int64_t t0 = 0; t0 < k; t0 += kDwTap)
        for (int64_t o0 = 0; o0 < oc; o0 += kDwOc) tile(o0, t0);
    } else {
      for (int64_t o0 = 0; o0 < oc; o0 += kDwOc)
        for (int64_t t0 = 0; t0 < k; t0 += kDwTap) tile(o0, t0);
    }
  }
}
#endif

}  // namespace conv_detail
}  // namespace granq
