// conv2d for depthwise shapes (groups == ic, any channel multiplier): forward, backward data and backward weight as
// direct loops over one (image, channel) plane per task. conv2d.cc dispatches here.
#include <algorithm>
#include <cstring>

#include "conv2d-impl.h"
#include "kernels.h"

namespace granq {
namespace conv_detail {
namespace {

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

}  // namespace

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

}  // namespace conv_detail
}  // namespace granq
