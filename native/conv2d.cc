// conv2d as GEMM over implicit im2col: y_b[oc, oh*ow] = W[oc, ic*kh*kw] . col_b[ic*kh*kw, oh*ow].
// The forward packs col_b straight from the image into the microkernel's B panels (no col buffer). Backward data with
// stride 1 is the same forward conv on dy with flipped, transposed weights; other strides use dcol = W^T dy + col2im.
// Backward weight sums fixed chunks of images into partials reduced in a fixed order: results never depend on the
// thread count.
#include <algorithm>
#include <cstring>

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

}  // namespace

void conv2d_fwd(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  const Geom g = fwd_geom(s);
  float* pa = thread_scratch(3, size_t(round_up(s.oc, kMR) * g.k()));
  pack_weights(s.oc, g.k(), w, pa);
  const int64_t xs = s.ic * s.ih * s.iw, ys = s.oc * s.oh * s.ow;
  parallel_for(s.n, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) conv_image(g, s.oc, pa, x + b * xs, bias, y + b * ys);
  });
}

void conv2d_bwd_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const int64_t xs = s.ic * s.ih * s.iw, ys = s.oc * s.oh * s.ow, khw = s.kh * s.kw;
  if (s.stride == 1) {
    // dx = conv(dy, W') with W'[ic, oc, ky, kx] = W[oc, ic, kh-1-ky, kw-1-kx] and padding k-1-pad.
    const Geom g = {s.oc, s.oh, s.ow, s.kh, s.kw, 1, s.kh - 1 - s.pad, s.kw - 1 - s.pad, s.ih, s.iw};
    float* wt = thread_scratch(2, size_t(s.ic * s.oc * khw));
    for (int64_t o = 0; o < s.oc; ++o)
      for (int64_t i = 0; i < s.ic; ++i)
        for (int64_t r = 0; r < khw; ++r) wt[(i * s.oc + o) * khw + (khw - 1 - r)] = w[(o * s.ic + i) * khw + r];
    float* pa = thread_scratch(3, size_t(round_up(s.ic, kMR) * g.k()));
    pack_weights(s.ic, g.k(), wt, pa);
    parallel_for(s.n, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) conv_image(g, s.ic, pa, dy + b * ys, nullptr, dx + b * xs);
    });
    return;
  }
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

void conv2d_bwd_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* dbias) {
  const Geom g = fwd_geom(s);
  const int64_t k = g.k(), n = g.n(), xs = s.ic * s.ih * s.iw, ys = s.oc * n, wlen = s.oc * k;
  // Fixed chunk size (not derived from the thread count) keeps the summation order fixed.
  constexpr int64_t kChunk = 4;
  const int64_t nchunks = (s.n + kChunk - 1) / kChunk;
  float* part = thread_scratch(3, size_t(nchunks * wlen));
  parallel_for(nchunks, [&](int64_t c0, int64_t c1) {
    float* col = thread_scratch(2, size_t(k * n));
    for (int64_t c = c0; c < c1; ++c) {
      for (int64_t b = c * kChunk; b < std::min(s.n, (c + 1) * kChunk); ++b) {
        im2col(g, x + b * xs, col);
        // part_c[oc, k] (+)= dy_b[oc, n] . col_b[k, n]^T
        gemm_st(s.oc, k, n, dy + b * ys, n, 1, col, 1, n, part + c * wlen, k, b > c * kChunk);
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
