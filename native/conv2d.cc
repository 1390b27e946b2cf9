// conv2d as GEMM over implicit im2col: y_b[oc, oh*ow] = W[oc, ic*kh*kw] . col_b[ic*kh*kw, oh*ow], one image per task.
// Fast path (AVX-512, ow % 16 == 0 or ow == 8): the microkernel loads its B vectors straight from "phase planes" of the
// padded image, so no im2col is materialised. Backward data is the same kind of conv on dy (flipped weights; for
// stride > 1 one sub-conv per phase of dx). Backward weight is a dot-product kernel over output positions, summed
// over shape-fixed chunks of images whose partials are reduced in a fixed order. Other shapes (and builds without
// AVX-512) pack im2col panels for the gemm microkernel or use gemm + col2im. Grouped convolution runs these per group
// on the group's channel slice of every image; depthwise (one input channel per group) has direct loops of its own.
// No result depends on the thread count.
#include <algorithm>
#include <cstring>
#include <vector>

#include "gemm.h"
#include "kernels.h"

namespace granq {
namespace {

using namespace gemm_detail;

// One image's conv geometry (pads may differ per axis for the flipped backward conv).
struct Geom {
  int64_t c, ih, iw, kh, kw, stride, pad_h, pad_w, oh, ow;
  int64_t k() const { return c * kh * kw; }
  int64_t n() const { return oh * ow; }
};

// Packs rows [p0, p0+kc) x columns [j0, j0+nr) of the image's im2col matrix into one B micro-panel.
// Columns are split into runs that share an output row, so stride-1 rows become bounded copies.
void pack_im2col(const Geom& g, const float* x, int64_t p0, int64_t kc, int64_t j0, int64_t nr, float* dst) {
  struct Run {
    int64_t oh, ow0, len, off;
  } runs[kNR];
  int nruns = 0;
  for (int64_t j = j0; j < j0 + nr;) {
    const int64_t oh = j / g.ow, ow0 = j % g.ow, len = std::min(g.ow - ow0, j0 + nr - j);
    runs[nruns++] = {oh, ow0, len, j - j0};
    j += len;
  }
  const int64_t khw = g.kh * g.kw;
  int64_t ic = p0 / khw, ky = (p0 % khw) / g.kw, kx = p0 % g.kw;
  for (int64_t p = 0; p < kc; ++p) {
    float* d = dst + p * kNR;
    const float* xc = x + ic * g.ih * g.iw;
    for (int r = 0; r < nruns; ++r) {
      const Run& run = runs[r];
      float* ds = d + run.off;
      const int64_t h = run.oh * g.stride + ky - g.pad_h;
      if (h < 0 || h >= g.ih) {
        for (int64_t q = 0; q < run.len; ++q) ds[q] = 0.f;
        continue;
      }
      const float* row = xc + h * g.iw;
      const int64_t w0 = run.ow0 * g.stride + kx - g.pad_w;
      if (g.stride == 1) {
        // Valid q: 0 <= w0 + q < iw.
        const int64_t lo = std::min(run.len, std::max<int64_t>(0, -w0));
        const int64_t hi = std::max(lo, std::min(run.len, g.iw - w0));
        for (int64_t q = 0; q < lo; ++q) ds[q] = 0.f;
        for (int64_t q = lo; q < hi; ++q) ds[q] = row[w0 + q];
        for (int64_t q = hi; q < run.len; ++q) ds[q] = 0.f;
      } else {
        for (int64_t q = 0; q < run.len; ++q) {
          const int64_t w = w0 + q * g.stride;
          ds[q] = (w >= 0 && w < g.iw) ? row[w] : 0.f;
        }
      }
    }
    for (int64_t j = nr; j < kNR; ++j) d[j] = 0.f;
    if (++kx == g.kw) {
      kx = 0;
      if (++ky == g.kh) ky = 0, ++ic;
    }
  }
}

// Packs the [m, k] row-major weight matrix for every k-block: block b starts at pa + round_up(m, MR) * kc_begin(b).
void pack_weights(int64_t m, int64_t k, const float* w, float* pa) {
  const int64_t mpad = round_up(m, kMR);
  for (int64_t b = 0; b < kc_blocks(k); ++b) {
    const int64_t p0 = kc_begin(k, b);
    pack_a(m, kc_begin(k, b + 1) - p0, w + p0, k, 1, pa + mpad * p0);
  }
}

// y[m, oh*ow] = W . im2col(x) (+ bias per row) for one image, with W pre-packed by pack_weights.
void conv_image(const Geom& g, int64_t m, const float* pa, const float* x, const float* bias, float* y) {
  const int64_t k = g.k(), n = g.n(), mpad = round_up(m, kMR), nb = kc_blocks(k);
  float* pb = thread_scratch(0, size_t(kKC * kNR));
  for (int64_t j0 = 0; j0 < n; j0 += kNR) {
    const int64_t nr = std::min(kNR, n - j0);
    if (bias)
      for (int64_t i = 0; i < m; ++i) std::fill(y + i * n + j0, y + i * n + j0 + nr, bias[i]);
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t p0 = kc_begin(k, b), kc = kc_begin(k, b + 1) - p0;
      pack_im2col(g, x, p0, kc, j0, nr, pb);
      gemm_panel(m, kc, pa + mpad * p0, pb, y + j0, n, nr, bias != nullptr || b > 0);
    }
  }
}

#if defined(__AVX512F__)
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
          std::fill(dst, dst + lo, 0.f);
          const int64_t o = h * g.iw + b - g.pad_w;  // column c reads xc[o + c * s]
          if (P.s == 1) {
            std::memcpy(dst + lo, xc + o + lo, size_t(hi - lo) * sizeof(float));
          } else if (P.s == 2) {
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
          const __mmask16 m = len - t >= 16 ? __mmask16(0xffff) : __mmask16((1u << (len - t)) - 1);
          _mm512_mask_storeu_ps(tmp + g.pad_w + t, m, _mm512_maskz_loadu_ps(m, xrow + t));
        }
        for (int64_t c0 = 0; c0 < P.wh; c0 += 16) {
          const __mmask16 m = P.wh - c0 >= 16 ? __mmask16(0xffff) : __mmask16((1u << (P.wh - c0)) - 1);
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
  __m512 c0[kMR], c1[kMR];
#pragma GCC unroll 8
  for (int i = 0; i < kMR; ++i) c0[i] = c1[i] = _mm512_setzero_ps();
  const float *s0 = planes + base[0], *s1 = planes + base[1];
  const float *s2 = planes + base[kHalf ? 2 : 0], *s3 = planes + base[kHalf ? 3 : 1];
  for (int64_t p = 0; p < k; ++p) {
    const int64_t o = off[p];
    __m512 b0, b1;
    if (kHalf) {
      b0 = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(s0 + o)), _mm256_loadu_ps(s1 + o), 1);
      b1 = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(s2 + o)), _mm256_loadu_ps(s3 + o), 1);
    } else {
      b0 = _mm512_loadu_ps(s0 + o);
      b1 = _mm512_loadu_ps(s1 + o);
    }
#pragma GCC unroll 8
    for (int i = 0; i < kMR; ++i) {
      const __m512 a = _mm512_set1_ps(pa[i]);
      c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
    }
    pa += kMR;
  }
  store_tile(c0, c1, c, ldc, mr, nr, acc);
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
struct PhaseConv {
  int64_t a, b, rows, cols;  // phase and its output size
  std::vector<int32_t> off;  // per tap: offset into the padded dy planes
  std::vector<float> pa;     // packed sub-kernel [ic, taps]
};

struct StridedBwd {
  int64_t lo_y, lo_x, hh, wh;  // padded dy planes: row r holds dy row r + lo_y (zero outside), likewise columns
  std::vector<PhaseConv> phases;
  bool ok = true;  // every phase has a width the direct kernel takes
};

int64_t pc_n(const PhaseConv& pc) { return pc.rows * pc.cols; }

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
      std::fill(d, d + lo, 0.f);
      std::memcpy(d + lo, dy + (o * s.oh + h) * s.ow + lo + sb.lo_x, size_t(hi - lo) * sizeof(float));
      std::fill(d + hi, d + sb.wh, 0.f);
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
constexpr int kDwOc = 4, kDwTap = 6;

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
    const float* pl = planes + b * plane_img;
    for (int64_t v = 0; v < nvec; ++v) {
      const PosVec& pv = vecs[v];
      __m512 col[kDwTap];
      __mmask16 mask = 0xffff;
#pragma GCC unroll 6
      for (int j = 0; j < kDwTap; ++j) {
        const float* s = pl + off[j];
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
        const __m512 d = _mm512_maskz_loadu_ps(mask, dyrow[i] + b * dy_img + pv.dy);
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

// y_b = W . im2col(x_b) (+ bias) for every image, W given as a row-major [m, k] matrix; images in parallel.
void conv_images(const Geom& g, int64_t m, const float* w, const float* bias, int64_t nimg, const float* x,
                 int64_t xs, float* y, int64_t ys) {
  const int64_t k = g.k();
  float* pa = thread_scratch(3, size_t(round_up(m, kMR) * k));
#if defined(__AVX512F__)
  if (direct_ok(g)) {
    pack_a(m, k, w, k, 1, pa);
    std::vector<int32_t> off(static_cast<size_t>(k));
    tap_offsets(g, off.data());
    parallel_for(nimg, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) conv_image_direct(g, m, pa, off.data(), x + b * xs, bias, y + b * ys);
    });
    return;
  }
#endif
  pack_weights(m, k, w, pa);
  parallel_for(nimg, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) conv_image(g, m, pa, x + b * xs, bias, y + b * ys);
  });
}

// Explicit im2col of one image: col[k, oh*ow].
void im2col(const Geom& g, const float* x, float* col) {
  const int64_t n = g.n();
  for (int64_t p = 0, ic = 0; ic < g.c; ++ic)
    for (int64_t ky = 0; ky < g.kh; ++ky)
      for (int64_t kx = 0; kx < g.kw; ++kx, ++p) {
        float* d = col + p * n;
        const float* xc = x + ic * g.ih * g.iw;
        for (int64_t oh = 0; oh < g.oh; ++oh) {
          const int64_t h = oh * g.stride + ky - g.pad_h;
          float* drow = d + oh * g.ow;
          if (h < 0 || h >= g.ih) {
            std::fill(drow, drow + g.ow, 0.f);
            continue;
          }
          for (int64_t ow = 0; ow < g.ow; ++ow) {
            const int64_t w = ow * g.stride + kx - g.pad_w;
            drow[ow] = (w >= 0 && w < g.iw) ? xc[h * g.iw + w] : 0.f;
          }
        }
      }
}

// dx = col2im(dcol): scatter-add each column entry back to its input pixel (dx overwritten).
void col2im(const Geom& g, const float* col, float* x) {
  const int64_t n = g.n();
  std::fill(x, x + g.c * g.ih * g.iw, 0.f);
  for (int64_t p = 0, ic = 0; ic < g.c; ++ic)
    for (int64_t ky = 0; ky < g.kh; ++ky)
      for (int64_t kx = 0; kx < g.kw; ++kx, ++p) {
        const float* d = col + p * n;
        float* xc = x + ic * g.ih * g.iw;
        for (int64_t oh = 0; oh < g.oh; ++oh) {
          const int64_t h = oh * g.stride + ky - g.pad_h;
          if (h < 0 || h >= g.ih) continue;
          for (int64_t ow = 0; ow < g.ow; ++ow) {
            const int64_t w = ow * g.stride + kx - g.pad_w;
            if (w >= 0 && w < g.iw) xc[h * g.iw + w] += d[oh * g.ow + ow];
          }
        }
      }
}

Geom fwd_geom(const Conv2dShape& s) { return {s.ic, s.ih, s.iw, s.kh, s.kw, s.stride, s.pad, s.pad, s.oh, s.ow}; }

// ---------- one group (the whole layer when groups == 1) ----------
// s is the group's shape (its ic and oc, groups 1); the pointers start at the group's first channel and xs / ys are
// the whole layer's image strides, so a group's channels are a strided slice of every image.

void fwd_group(const Conv2dShape& s, const float* x, int64_t xs, const float* w, const float* bias, float* y, int64_t ys) {
  conv_images(fwd_geom(s), s.oc, w, bias, s.n, x, xs, y, ys);
}

void bwd_data_group(const Conv2dShape& s, const float* dy, int64_t ys, const float* w, float* dx, int64_t xs) {
  const int64_t khw = s.kh * s.kw;
  if (s.stride == 1) {
    // dx = conv(dy, W') with W'[ic, oc, ky, kx] = W[oc, ic, kh-1-ky, kw-1-kx] and padding k-1-pad.
    const Geom g = {s.oc, s.oh, s.ow, s.kh, s.kw, 1, s.kh - 1 - s.pad, s.kw - 1 - s.pad, s.ih, s.iw};
    float* wt = thread_scratch(2, size_t(s.ic * s.oc * khw));
    for (int64_t o = 0; o < s.oc; ++o)
      for (int64_t i = 0; i < s.ic; ++i)
        for (int64_t r = 0; r < khw; ++r) wt[(i * s.oc + o) * khw + (khw - 1 - r)] = w[(o * s.ic + i) * khw + r];
    conv_images(g, s.ic, wt, nullptr, s.n, dy, ys, dx, xs);
    return;
  }
#if defined(__AVX512F__)
  {
    const StridedBwd sb = plan_strided_bwd(s, w);
    if (sb.ok) {
      parallel_for(s.n, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) bwd_data_strided_image(s, sb, dy + b * ys, dx + b * xs);
      });
      return;
    }
  }
#endif
  const Geom g = fwd_geom(s);
  const int64_t k = g.k(), n = g.n();
  parallel_for(s.n, [&](int64_t b0, int64_t b1) {
    float* dcol = thread_scratch(2, size_t(k * n));
    for (int64_t b = b0; b < b1; ++b) {
      gemm_st(k, n, s.oc, w, 1, k, dy + b * ys, n, 1, dcol, n, false);  // dcol = W^T dy_b
      col2im(g, dcol, dx + b * xs);
    }
  });
}

void bwd_weight_group(const Conv2dShape& s, const float* x, int64_t xs, const float* dy, int64_t ys, float* dw) {
  const Geom g = fwd_geom(s);
  const int64_t k = g.k(), n = g.n(), wlen = s.oc * k;
  bool direct = false;
#if defined(__AVX512F__)
  direct = direct_ok(g);
#endif
  // Images per partial: fixed by the shape alone (never by the thread count), so the summation order is fixed.
  // The direct path takes about 1024 positions per chunk to amortise its lane sums.
  const int64_t chunk = direct ? std::max<int64_t>(1, std::min<int64_t>(16, 2048 / n)) : 4;
  const int64_t nchunks = (s.n + chunk - 1) / chunk;
  float* part = thread_scratch(3, size_t(nchunks * wlen));
  std::vector<int32_t> off(direct ? static_cast<size_t>(k) : 0);
#if defined(__AVX512F__)
  if (direct) tap_offsets(g, off.data());
#endif
  // When the chunks do not divide evenly among the threads (a batch-16 8x8 layer is one chunk), the direct path also
  // splits each chunk's output channels into `parts` groups of whole kDwOc tiles, as few as balance needs: every
  // group re-reads the chunk's planes. Each weight's sum is the same whichever group computes it.
  int64_t parts = 1;
#if defined(__AVX512F__)
  const int64_t oc_tiles = (s.oc + kDwOc - 1) / kDwOc, nt = num_threads();
  if (direct)
    while (parts < oc_tiles && (nchunks * parts) % nt != 0 && nchunks * parts < 4 * nt) ++parts;
  const int64_t tiles_per_part = (oc_tiles + parts - 1) / parts;
#endif
  parallel_for(nchunks * parts, [&](int64_t w0, int64_t w1) {
    for (int64_t wi = w0; wi < w1; ++wi) {
      const int64_t c = wi / parts, b0 = c * chunk, nb = std::min(s.n, b0 + chunk) - b0;
#if defined(__AVX512F__)
      if (direct) {
        const int64_t o0 = std::min(s.oc, (wi % parts) * tiles_per_part * kDwOc);
        const int64_t o1 = std::min(s.oc, o0 + tiles_per_part * kDwOc);
        if (o1 > o0)
          dw_chunk_direct(g, o1 - o0, off.data(), nb, x + b0 * xs, xs, dy + b0 * ys + o0 * n, ys, part + c * wlen + o0 * k);
        continue;
      }
#endif
      float* col = thread_scratch(2, size_t(k * n));
      for (int64_t b = b0; b < b0 + nb; ++b) {
        im2col(g, x + b * xs, col);
        // part_c[oc, k] (+)= dy_b[oc, n] . col_b[k, n]^T
        gemm_st(s.oc, k, n, dy + b * ys, n, 1, col, 1, n, part + c * wlen, k, b > b0);
      }
    }
  });
  parallel_for(wlen, [&](int64_t e0, int64_t e1) {
    for (int64_t e = e0; e < e1; ++e) {
      float acc = part[e];
      for (int64_t c = 1; c < nchunks; ++c) acc += part[c * wlen + e];
      dw[e] = acc;
    }
  }, 4096);
}

// ---------- depthwise (ic / groups == 1): direct loops over one (image, channel) plane per task ----------
// Output channel o reads input channel o / mult (mult = oc / ic, the channel multiplier). Each task copies its input
// plane into a zero-padded scratch plane (or accumulates its input gradient there), so every tap is a full row of
// ow outputs with no bounds checks (vectorised over the row). Every output element sums its taps in one fixed order
// and every weight its terms in one fixed order, whatever the thread count.
struct DwPad {
  int64_t ph, pw;  // padded plane rows and columns
  explicit DwPad(const Conv2dShape& s) : ph(s.ih + 2 * s.pad), pw(s.iw + 2 * s.pad) {}
  int64_t size() const { return ph * pw; }
};

// dst (ph x pw) = the plane src (ih x iw) with a zero border of `pad`.
void dw_pad_plane(const Conv2dShape& s, const DwPad& P, const float* src, float* dst) {
  std::fill(dst, dst + s.pad * P.pw, 0.f);
  for (int64_t h = 0; h < s.ih; ++h) {
    float* d = dst + (h + s.pad) * P.pw;
    std::fill(d, d + s.pad, 0.f);
    std::memcpy(d + s.pad, src + h * s.iw, size_t(s.iw) * sizeof(float));
    std::fill(d + s.pad + s.iw, d + P.pw, 0.f);
  }
  std::fill(dst + (s.ih + s.pad) * P.pw, dst + P.size(), 0.f);
}

void depthwise_fwd(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  const int64_t mult = s.oc / s.ic, khw = s.kh * s.kw, ihw = s.ih * s.iw, ohw = s.oh * s.ow, st = s.stride, ow = s.ow;
  const DwPad P(s);
  parallel_for(s.n * s.oc, [&](int64_t p0, int64_t p1) {
    float* xp = thread_scratch(0, size_t(P.size()));
    int64_t last = -1;  // the input plane now in xp (consecutive outputs of one input channel share it)
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t b = p / s.oc, o = p % s.oc, src = b * s.ic + o / mult;
      if (src != last) dw_pad_plane(s, P, x + src * ihw, xp), last = src;
      float* __restrict yc = y + p * ohw;
      const float* wo = w + o * khw;
      std::fill(yc, yc + ohw, bias ? bias[o] : 0.f);
      for (int64_t oy = 0; oy < s.oh; ++oy) {
        float* __restrict yr = yc + oy * ow;
        for (int64_t ky = 0; ky < s.kh; ++ky) {
          const float* __restrict xr = xp + (oy * st + ky) * P.pw;
          for (int64_t kx = 0; kx < s.kw; ++kx) {
            const float wv = wo[ky * s.kw + kx];
            if (st == 1)
              for (int64_t q = 0; q < ow; ++q) yr[q] += wv * xr[q + kx];
            else
              for (int64_t q = 0; q < ow; ++q) yr[q] += wv * xr[q * st + kx];
          }
        }
      }
    }
  });
}

void depthwise_bwd_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const int64_t mult = s.oc / s.ic, khw = s.kh * s.kw, ihw = s.ih * s.iw, ohw = s.oh * s.ow, st = s.stride, ow = s.ow;
  const DwPad P(s);
  parallel_for(s.n * s.ic, [&](int64_t p0, int64_t p1) {
    float* xp = thread_scratch(0, size_t(P.size()));
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t b = p / s.ic, i = p % s.ic;
      std::fill(xp, xp + P.size(), 0.f);
      for (int64_t j = 0; j < mult; ++j) {
        const int64_t o = i * mult + j;
        const float* __restrict dyc = dy + (b * s.oc + o) * ohw;
        const float* wo = w + o * khw;
        for (int64_t oy = 0; oy < s.oh; ++oy) {
          const float* __restrict dyr = dyc + oy * ow;
          for (int64_t ky = 0; ky < s.kh; ++ky) {
            float* __restrict xr = xp + (oy * st + ky) * P.pw;
            for (int64_t kx = 0; kx < s.kw; ++kx) {
              const float wv = wo[ky * s.kw + kx];
              if (st == 1)
                for (int64_t q = 0; q < ow; ++q) xr[q + kx] += wv * dyr[q];
              else
                for (int64_t q = 0; q < ow; ++q) xr[q * st + kx] += wv * dyr[q];
            }
          }
        }
      }
      float* xc = dx + p * ihw;
      for (int64_t h = 0; h < s.ih; ++h) std::memcpy(xc + h * s.iw, xp + (h + s.pad) * P.pw + s.pad, size_t(s.iw) * sizeof(float));
    }
  });
}

// dw[o, tap] = sum over images and output rows of a per-column partial acc[tap][q] (vectorised over q), then the
// columns summed in order. One output channel per task.
void depthwise_bwd_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw) {
  const int64_t mult = s.oc / s.ic, khw = s.kh * s.kw, ihw = s.ih * s.iw, ohw = s.oh * s.ow, st = s.stride, ow = s.ow;
  const DwPad P(s);
  parallel_for(s.oc, [&](int64_t o0, int64_t o1) {
    float* acc = thread_scratch(0, size_t(khw * ow));
    float* xp = thread_scratch(1, size_t(P.size()));
    for (int64_t o = o0; o < o1; ++o) {
      std::fill(acc, acc + khw * ow, 0.f);
      for (int64_t b = 0; b < s.n; ++b) {
        dw_pad_plane(s, P, x + (b * s.ic + o / mult) * ihw, xp);
        const float* __restrict dyc = dy + (b * s.oc + o) * ohw;
        for (int64_t oy = 0; oy < s.oh; ++oy) {
          const float* __restrict dyr = dyc + oy * ow;
          for (int64_t ky = 0; ky < s.kh; ++ky) {
            const float* __restrict xr = xp + (oy * st + ky) * P.pw;
            for (int64_t kx = 0; kx < s.kw; ++kx) {
              float* __restrict ar = acc + (ky * s.kw + kx) * ow;
              if (st == 1)
                for (int64_t q = 0; q < ow; ++q) ar[q] += dyr[q] * xr[q + kx];
              else
                for (int64_t q = 0; q < ow; ++q) ar[q] += dyr[q] * xr[q * st + kx];
            }
          }
        }
      }
      for (int64_t t = 0; t < khw; ++t) {
        float sum = 0.f;
        for (int64_t q = 0; q < ow; ++q) sum += acc[t * ow + q];
        dw[o * khw + t] = sum;
      }
    }
  });
}

// The shape of one group: its channels, groups 1.
Conv2dShape group_shape(const Conv2dShape& s) {
  Conv2dShape g = s;
  g.ic = s.ic / s.groups;
  g.oc = s.oc / s.groups;
  g.groups = 1;
  return g;
}

}  // namespace

void conv2d_fwd(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  const int64_t xs = s.ic * s.ih * s.iw, ys = s.oc * s.oh * s.ow;
  if (s.groups == 1) return fwd_group(s, x, xs, w, bias, y, ys);
  if (s.groups == s.ic) return depthwise_fwd(s, x, w, bias, y);
  const Conv2dShape g = group_shape(s);
  for (int64_t gi = 0; gi < s.groups; ++gi)
    fwd_group(g, x + gi * g.ic * s.ih * s.iw, xs, w + gi * g.oc * g.ic * s.kh * s.kw, bias ? bias + gi * g.oc : nullptr,
              y + gi * g.oc * s.oh * s.ow, ys);
}

void conv2d_bwd_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const int64_t xs = s.ic * s.ih * s.iw, ys = s.oc * s.oh * s.ow;
  if (s.groups == 1) return bwd_data_group(s, dy, ys, w, dx, xs);
  if (s.groups == s.ic) return depthwise_bwd_data(s, dy, w, dx);
  const Conv2dShape g = group_shape(s);
  for (int64_t gi = 0; gi < s.groups; ++gi)
    bwd_data_group(g, dy + gi * g.oc * s.oh * s.ow, ys, w + gi * g.oc * g.ic * s.kh * s.kw, dx + gi * g.ic * s.ih * s.iw, xs);
}

void conv2d_bwd_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* dbias) {
  const int64_t xs = s.ic * s.ih * s.iw, ys = s.oc * s.oh * s.ow, n = s.oh * s.ow;
  if (s.groups == 1) {
    bwd_weight_group(s, x, xs, dy, ys, dw);
  } else if (s.groups == s.ic) {
    depthwise_bwd_weight(s, x, dy, dw);
  } else {
    const Conv2dShape g = group_shape(s);
    for (int64_t gi = 0; gi < s.groups; ++gi)
      bwd_weight_group(g, x + gi * g.ic * s.ih * s.iw, xs, dy + gi * g.oc * n, ys, dw + gi * g.oc * g.ic * s.kh * s.kw);
  }
  if (dbias) {
    for (int64_t o = 0; o < s.oc; ++o) {
      double acc = 0;
      for (int64_t b = 0; b < s.n; ++b)
        for (const float* d = dy + b * ys + o * n; d < dy + b * ys + (o + 1) * n; ++d) acc += *d;
      dbias[o] = float(acc);
    }
  }
}

}  // namespace granq
