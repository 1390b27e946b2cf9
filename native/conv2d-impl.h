// Internal to the conv2d family: what conv2d.cc (entry points, im2col/gemm and group paths), conv2d-direct.cc (the
// AVX-512 direct path on phase planes) and conv2d-depthwise.cc (depthwise loops) share. Not a public interface:
// callers use the conv2d_* declarations in kernels.h.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels.h"

namespace granq {
namespace conv_detail {

// One image's conv geometry (pads may differ per axis for the flipped backward conv).
struct Geom {
  int64_t c, ih, iw, kh, kw, stride, pad_h, pad_w, oh, ow;
  int64_t k() const { return c * kh * kw; }
  int64_t n() const { return oh * ow; }
};

// ---------- conv2d-depthwise.cc: groups == ic ----------
void depthwise_fwd(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y);
void depthwise_bwd_data(const Conv2dShape& s, const float* dy, const float* w, float* dx);
void depthwise_bwd_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw);

#if defined(__AVX512F__)
// ---------- conv2d-direct.cc: the direct path (AVX-512 builds only) ----------
// Whether the direct kernel takes this geometry (ow % 16 == 0 or ow == 8, plane offsets fit in int32).
bool direct_ok(const Geom& g);
// Offset of tap p = (ic, ky, kx) inside the phase planes (k entries).
void tap_offsets(const Geom& g, int32_t* off);
// y[m, oh*ow] = W . im2col(x) (+ bias) for one image; pa is W packed as one k-block (pack_a over all of k).
void conv_image_direct(const Geom& g, int64_t m, const float* pa, const int32_t* off, const float* x,
                       const float* bias, float* y);

// Backward data for stride s > 1, one stride-1 conv per phase of dx.
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

StridedBwd plan_strided_bwd(const Conv2dShape& s, const float* w);
void bwd_data_strided_image(const Conv2dShape& s, const StridedBwd& sb, const float* dy, float* dx);

// Weight gradient on the phase planes: a tile is kDwOc output channels x kDwTap taps.
constexpr int kDwOc = 4, kDwTap = 6;

// part[oc, k] = weight gradient of images [0, nimg) (one chunk) for `oc` output channels, computed on this thread.
void dw_chunk_direct(const Geom& g, int64_t oc, const int32_t* off, int64_t nimg, const float* x, int64_t xs,
                     const float* dy, int64_t dy_img, float* part);
#endif

}  // namespace conv_detail
}  // namespace granq
