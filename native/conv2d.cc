// conv2d entry points (conv2d_fwd, conv2d_bwd_data, conv2d_bwd_weight): dispatch by groups, plus the generic path.
// conv2d as GEMM over implicit im2col: y_b[oc, oh*ow] = W[oc, ic*kh*kw] . col_b[ic*kh*kw, oh*ow], one image per task.
// Shapes the direct path takes (AVX-512, ow % 16 == 0 or ow == 8) go to conv2d-direct.cc, which loads the
// microkernel's B vectors straight from "phase planes" of the padded image. Backward data is the same kind of conv on
// dy (flipped weights; for stride > 1 one sub-conv per phase of dx, conv2d-direct.cc). Backward weight sums
// shape-fixed chunks of images whose partials are reduced in a fixed order. Other shapes (and builds without
// AVX-512) pack im2col panels for the gemm microkernel or use gemm + col2im, here. Grouped convolution runs these per
// group on the group's channel slice of every image; depthwise (one input channel per group) has direct loops of its
// own (conv2d-depthwise.cc). No result depends on the thread count.
#include <algorithm>
#include <vector>

#include "conv2d-impl.h"
#include "gemm.h"
#include "kernels.h"

namespace granq {
namespace {

using namespace gemm_detail;
using namespace conv_detail;

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

Geom fwd_geom(const Conv2dShape& s) { return {s.ic, s.ih, s.iw, s.kh, s.kw, s.stride, s.top(), s.left(), s.oh, s.ow}; }

// ---------- one group (the whole layer when groups == 1) ----------
// s is the group's shape (its ic and oc, groups 1); the pointers start at the group's first channel and xs / ys are
// the whole layer's image strides, so a group's channels are a strided slice of every image.

void fwd_group(const Conv2dShape& s, const float* x, int64_t xs, const float* w, const float* bias, float* y, int64_t ys) {
  conv_images(fwd_geom(s), s.oc, w, bias, s.n, x, xs, y, ys);
}

void bwd_data_group(const Conv2dShape& s, const float* dy, int64_t ys, const float* w, float* dx, int64_t xs) {
  const int64_t khw = s.kh * s.kw;
  if (s.stride == 1) {
    // dx = conv(dy, W') with W'[ic, oc, ky, kx] = W[oc, ic, kh-1-ky, kw-1-kx] and top/left padding k-1-pad.
    const Geom g = {s.oc, s.oh, s.ow, s.kh, s.kw, 1, s.kh - 1 - s.top(), s.kw - 1 - s.left(), s.ih, s.iw};
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
