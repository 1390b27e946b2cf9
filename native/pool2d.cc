// Average pooling (no padding), nearest upsampling by an integer factor and channel padding, forward and
// backward. Every kernel splits work by (n, c) plane; inside a plane the summation order is fixed.
#include <algorithm>
#include <cstring>

#include "kernels.h"

namespace granq {
namespace {

// Planes per thread so that a thread gets at least ~32K elements.
inline int64_t plane_grain(int64_t per_plane) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, per_plane)); }

}  // namespace

// k == 1 is subsampling, x[:, :, ::s, ::s] (option-A shortcuts): a strided copy (sum 0 + v and v / 1 are exact).
void subsample_fwd(const Pool2dShape& s, const float* x, float* y) {
  const int64_t shape[4] = {1, s.n * s.c, s.oh, s.ow};
  const int64_t stride[4] = {0, s.ih * s.iw, s.stride * s.iw, s.stride};
  copy_strided(shape, stride, x, y);
}

void subsample_bwd(const Pool2dShape& s, const float* dy, float* dx) {
  const int64_t isz = s.ih * s.iw, osz = s.oh * s.ow, st = s.stride;
  parallel_for(
      s.n * s.c,
      [&](int64_t b, int64_t e) {
        for (int64_t p = b; p < e; ++p) {
          std::fill(dx + p * isz, dx + (p + 1) * isz, 0.f);
          for (int64_t oy = 0; oy < s.oh; ++oy) {
            float* __restrict dr = dx + p * isz + oy * st * s.iw;
            const float* __restrict gr = dy + p * osz + oy * s.ow;
            for (int64_t ox = 0; ox < s.ow; ++ox) dr[ox * st] = gr[ox];
          }
        }
      },
      plane_grain(isz));
}

void avgpool2d_fwd(const Pool2dShape& s, const float* x, float* y) {
  if (s.k == 1) return subsample_fwd(s, x, y);
  const float div = float(s.k * s.k);
  const int64_t isz = s.ih * s.iw, osz = s.oh * s.ow;
  parallel_for(
      s.n * s.c,
      [&](int64_t b, int64_t e) {
        for (int64_t p = b; p < e; ++p) {
          const float* xp = x + p * isz;
          float* yp = y + p * osz;
          for (int64_t oy = 0; oy < s.oh; ++oy)
            for (int64_t ox = 0; ox < s.ow; ++ox) {
              const float* w = xp + oy * s.stride * s.iw + ox * s.stride;
              float sum = 0.f;  // float accumulation in window row-major order, as torch's CPU kernel
              for (int64_t ky = 0; ky < s.k; ++ky)
                for (int64_t kx = 0; kx < s.k; ++kx) sum += w[ky * s.iw + kx];
              yp[oy * s.ow + ox] = sum / div;
            }
        }
      },
      plane_grain(isz));
}

void avgpool2d_bwd(const Pool2dShape& s, const float* dy, float* dx) {
  if (s.k == 1) return subsample_bwd(s, dy, dx);
  const float div = float(s.k * s.k);
  const int64_t isz = s.ih * s.iw, osz = s.oh * s.ow;
  parallel_for(
      s.n * s.c,
      [&](int64_t b, int64_t e) {
        for (int64_t p = b; p < e; ++p) {
          float* dp = dx + p * isz;
          const float* gp = dy + p * osz;
          std::fill(dp, dp + isz, 0.f);
          for (int64_t oy = 0; oy < s.oh; ++oy)
            for (int64_t ox = 0; ox < s.ow; ++ox) {
              const float g = gp[oy * s.ow + ox] / div;
              float* w = dp + oy * s.stride * s.iw + ox * s.stride;
              for (int64_t ky = 0; ky < s.k; ++ky)
                for (int64_t kx = 0; kx < s.k; ++kx) w[ky * s.iw + kx] += g;
            }
        }
      },
      plane_grain(isz));
}

void upsample_nearest_fwd(int64_t n, int64_t c, int64_t ih, int64_t iw, int64_t scale, const float* x, float* y) {
  const int64_t ow = iw * scale, osz = ih * scale * ow;
  parallel_for(
      n * c,
      [&](int64_t b, int64_t e) {
        for (int64_t p = b; p < e; ++p) {
          const float* xp = x + p * ih * iw;
          float* yp = y + p * osz;
          for (int64_t i = 0; i < ih; ++i) {
            float* __restrict row = yp + i * scale * ow;
            const float* __restrict src = xp + i * iw;
            if (scale == 2) {
              // The generator's case; written so the compiler vectorizes it (no division per element).
              for (int64_t j = 0; j < iw; ++j) row[2 * j] = row[2 * j + 1] = src[j];
            } else {
              for (int64_t j = 0; j < iw; ++j)
                for (int64_t q = 0; q < scale; ++q) row[j * scale + q] = src[j];
            }
            for (int64_t r = 1; r < scale; ++r) std::memcpy(row + r * ow, row, size_t(ow) * sizeof(float));
          }
        }
      },
      plane_grain(osz));
}

void upsample_nearest_bwd(int64_t n, int64_t c, int64_t ih, int64_t iw, int64_t scale, const float* dy, float* dx) {
  const int64_t ow = iw * scale, osz = ih * scale * ow;
  parallel_for(
      n * c,
      [&](int64_t b, int64_t e) {
        for (int64_t p = b; p < e; ++p) {
          const float* gp = dy + p * osz;
          float* dp = dx + p * ih * iw;
          for (int64_t i = 0; i < ih; ++i) {
            const float* __restrict blk = gp + i * scale * ow;
            float* __restrict out = dp + i * iw;
            // Each scale x scale block summed row-major: the order torch's loop over outputs adds them in.
            if (scale == 2) {
              const float* __restrict r1 = blk + ow;
              for (int64_t j = 0; j < iw; ++j) out[j] = (((0.f + blk[2 * j]) + blk[2 * j + 1]) + r1[2 * j]) + r1[2 * j + 1];
            } else {
              for (int64_t j = 0; j < iw; ++j) {
                float sum = 0.f;
                for (int64_t r = 0; r < scale; ++r)
                  for (int64_t q = 0; q < scale; ++q) sum += blk[r * ow + j * scale + q];
                out[j] = sum;
              }
            }
          }
        }
      },
      plane_grain(osz));
}

void pad_channels_fwd(int64_t n, int64_t c, int64_t hw, int64_t before, int64_t after, const float* x, float* y) {
  const int64_t oc = before + c + after;
  parallel_for(
      n,
      [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          float* yp = y + i * oc * hw;
          std::fill(yp, yp + before * hw, 0.f);
          std::memcpy(yp + before * hw, x + i * c * hw, size_t(c * hw) * sizeof(float));
          std::fill(yp + (before + c) * hw, yp + oc * hw, 0.f);
        }
      },
      plane_grain(oc * hw));
}

void pad_channels_bwd(int64_t n, int64_t c, int64_t hw, int64_t before, int64_t after, const float* dy, float* dx) {
  const int64_t oc = before + c + after;
  parallel_for(
      n,
      [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i)
          std::memcpy(dx + i * c * hw, dy + (i * oc + before) * hw, size_t(c * hw) * sizeof(float));
      },
      plane_grain(c * hw));
}

}  // namespace granq
