// Integer convolution of integer inference (see kernels.h qconv2d): codes times codes with exact integer partial
// sums, then a float epilogue that applies each partial sum's scale.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__) && defined(__AVX512VNNI__)
#include <immintrin.h>
#define GRANQ_QCONV_VNNI 1
#endif

#include "kernels.h"


namespace granq {
namespace {

// The in-bounds kernel taps of output position (oy, ox): [ky0, ky1) x [kx0, kx1).
struct Taps {
  int64_t ky0, ky1, kx0, kx1;
  int64_t count() const { return (ky1 - ky0) * (kx1 - kx0); }
};
Taps taps_of(const QconvParams& p, int64_t oy, int64_t ox) {
  const int64_t iy = oy * p.stride - p.pad, ix = ox * p.stride - p.pad;
  return {std::max<int64_t>(0, -iy), std::min<int64_t>(p.k, p.h - iy), std::max<int64_t>(0, -ix), std::min<int64_t>(p.k, p.w - ix)};
}

// Sum of the weight codes w[0..k*k) over the taps t.
int64_t tap_sum(const int8_t* w, int64_t k, const Taps& t) {
  int64_t s = 0;
  for (int64_t ky = t.ky0; ky < t.ky1; ++ky)
    for (int64_t kx = t.kx0; kx < t.kx1; ++kx) s += w[ky * k + kx];
  return s;
}

// The epilogue's float32 order is the definition (kernels.h): every product and sum rounds on its own. GCC contracts
// a * b + c into a fused multiply-add by default (generic vector code from intrinsics too), so each product goes
// through an empty asm the compiler cannot see through (the embedded-rounding intrinsics would too, 25% slower).
inline float mul_rounded(float a, float b) {
  float r = a * b;
#if defined(__x86_64__) || defined(__i386__)
  __asm__("" : "+x"(r));
#else
  __asm__("" : "+r"(r));
#endif
  return r;
}
#ifdef GRANQ_QCONV_VNNI
inline __m512 mul_rounded(__m512 a, __m512 b) {
  __m512 r = _mm512_mul_ps(a, b);
  __asm__("" : "+v"(r));
  return r;
}
inline __m512 add_rounded(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
#endif

// T = sum over the taps of (wq + wz)(a + base), from its parts, in the order kernels.h fixes.
inline float total(int64_t s, int64_t a_sum, int64_t w_sum, int64_t cnt, double wz, double base) {
  if (wz == 0.0 && base == 0.0) return float(s);
  return float(((double(s) + wz * double(a_sum)) + base * double(w_sum)) + (wz * base) * double(cnt));
}

// The activation codes as zero-padded planes [n, c, hp, wp]: the taps of a kernel row are consecutive bytes, read 4 at
// a time (a tap group) straight from the plane, so there is no im2col; wp leaves room for the last group's extra bytes
// (their weights are 0). Padding is the code 0, which is the value 0 only where base = 0 (the slow path corrects).
struct Planes {
  int64_t hp, wp, groups;  // groups of 4 taps per kernel row
  uint8_t* data;
  const uint8_t* at(int64_t plane, int64_t y, int64_t x) const { return data + (plane * hp + y) * wp + x; }
};

// The planes live in one buffer per calling thread, kept from call to call: a fresh one per call cost its page faults
// (a few MB at batch 64), more than filling it. Valid until the thread's next qconv2d.
Planes pad_planes(const QconvParams& p, const uint8_t* x) {
  static thread_local std::vector<uint8_t> buffer;
  Planes pl;
  pl.groups = (p.k + 3) / 4;
  pl.hp = p.h + 2 * p.pad;
  pl.wp = p.w + 2 * p.pad + 4 * pl.groups - p.k + 1;
  const size_t bytes = size_t(p.n * p.c * pl.hp * pl.wp);
  if (buffer.size() < bytes) buffer.resize(bytes);
  pl.data = buffer.data();
  parallel_for(p.n * p.c, [&](int64_t b0, int64_t b1) {
    const int64_t plane = pl.hp * pl.wp;
    std::memset(pl.data + b0 * plane, 0, size_t((b1 - b0) * plane));
    for (int64_t b = b0; b < b1; ++b)
      for (int64_t y = 0; y < p.h; ++y)
        std::memcpy(pl.data + (b * pl.hp + y + p.pad) * pl.wp + p.pad, x + (b * p.h + y) * p.w, size_t(p.w));
  });
  return pl;
}

// Sum of the codes under the k x k window at (row y0, col x0) of a padded plane (padding reads 0).
int64_t window_sum(const Planes& pl, int64_t plane, int64_t y0, int64_t x0, int64_t k) {
  int64_t s = 0;
  for (int64_t ky = 0; ky < k; ++ky) {
    const uint8_t* r = pl.at(plane, y0 + ky, x0);
    for (int64_t kx = 0; kx < k; ++kx) s += r[kx];
  }
  return s;
}

// A [n, oh, ow]: the sum of the codes of every channel under each output's window (padding reads 0), from one
// plane per sample that sums the channels: c h w + oh ow k k additions instead of c k k per output.
std::vector<int64_t> window_sums_all(const QconvParams& p, const uint8_t* x) {
  std::vector<int64_t> out(size_t(p.n * p.oh * p.ow));
  const int64_t hp = p.h + 2 * p.pad, wp = p.w + 2 * p.pad;
  parallel_for(p.n, [&](int64_t n0, int64_t n1) {
    std::vector<int32_t> sum(size_t(hp * wp)), hsum(size_t(hp * p.ow));
    for (int64_t n = n0; n < n1; ++n) {
      std::fill(sum.begin(), sum.end(), 0);
      for (int64_t i = 0; i < p.c; ++i)
        for (int64_t y = 0; y < p.h; ++y) {
          const uint8_t* src = x + ((n * p.c + i) * p.h + y) * p.w;
          int32_t* d = sum.data() + (y + p.pad) * wp + p.pad;
          for (int64_t xx = 0; xx < p.w; ++xx) d[xx] += src[xx];
        }
      // Separable: the k taps of each plane row at every output column, then k of those rows per output row (the
      // integer sums are exact in any order).
      for (int64_t y = 0; y < hp; ++y) {
        const int32_t* r = sum.data() + y * wp;
        int32_t* h = hsum.data() + y * p.ow;
        for (int64_t ox = 0; ox < p.ow; ++ox) h[ox] = 0;
        for (int64_t kx = 0; kx < p.k; ++kx)
          for (int64_t ox = 0; ox < p.ow; ++ox) h[ox] += r[ox * p.stride + kx];
      }
      for (int64_t oy = 0; oy < p.oh; ++oy) {
        int64_t* o = out.data() + (n * p.oh + oy) * p.ow;
        for (int64_t ox = 0; ox < p.ow; ++ox) o[ox] = 0;
        for (int64_t ky = 0; ky < p.k; ++ky) {
          const int32_t* h = hsum.data() + (oy * p.stride + ky) * p.ow;
          for (int64_t ox = 0; ox < p.ow; ++ox) o[ox] += h[ox];
        }
      }
    }
  });
  return out;
}

// Weights packed for vpdpbusd per (input channel, block of 16 outputs, kernel row, tap group): 16 outputs x 4 taps.
std::vector<int8_t> pack_weights(const QconvParams& p, const int8_t* w, int64_t groups) {
  const int64_t o16 = (p.o + 15) / 16, kk = p.k * p.k;
  std::vector<int8_t> pk(size_t(p.c * o16 * p.k * groups * 64), 0);
  for (int64_t i = 0; i < p.c; ++i)
    for (int64_t o = 0; o < p.o; ++o)
      for (int64_t ky = 0; ky < p.k; ++ky)
        for (int64_t kx = 0; kx < p.k; ++kx)
          pk[size_t((((i * o16 + o / 16) * p.k + ky) * groups + kx / 4) * 64 + (o % 16) * 4 + kx % 4)] = w[(o * p.c + i) * kk + ky * p.k + kx];
  return pk;
}

// The whole-reduction mode's codes as zero-padded planes of 4 interleaved channels, [n][ceil(c / 4)][hp][wp][4]: the
// 4 bytes at one pixel are 4 channels' codes, so one vpdpbusd broadcast feeds 4 channels of one tap and every byte
// lane does work (a 3x3 kernel row's 3 taps filled 3 of the 4 lanes of the per-channel layout; a 1x1 kernel, 1).
// Channels past c are code 0 with weight 0. Padding is the code 0, as in Planes.
struct Planes4 {
  int64_t cg, hp, wp;
  uint8_t* data;
  const uint8_t* at(int64_t n, int64_t g, int64_t y, int64_t x) const { return data + (((n * cg + g) * hp + y) * wp + x) * 4; }
};

Planes4 pad_planes4(const QconvParams& p, const uint8_t* x) {
  static thread_local std::vector<uint8_t> buffer;
  Planes4 pl;
  pl.cg = (p.c + 3) / 4;
  pl.hp = p.h + 2 * p.pad;
  pl.wp = p.w + 2 * p.pad;
  const size_t bytes = size_t(p.n * pl.cg * pl.hp * pl.wp * 4);
  if (buffer.size() < bytes) buffer.resize(bytes);
  pl.data = buffer.data();
  parallel_for(p.n * pl.cg, [&](int64_t b0, int64_t b1) {
    const int64_t plane = pl.hp * pl.wp * 4;
    std::memset(pl.data + b0 * plane, 0, size_t((b1 - b0) * plane));
    static const uint8_t zeros[1] = {0};
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t n = b / pl.cg, g = b % pl.cg;
      for (int64_t y = 0; y < p.h; ++y) {
        const uint8_t* src[4];
        int64_t step[4];
        for (int l = 0; l < 4; ++l) {
          const int64_t i = g * 4 + l;
          src[l] = i < p.c ? x + ((n * p.c + i) * p.h + y) * p.w : zeros;
          step[l] = i < p.c ? 1 : 0;
        }
        uint8_t* dst = pl.data + ((b * pl.hp + y + p.pad) * pl.wp + p.pad) * 4;
        int64_t xx = 0;
#ifdef GRANQ_QCONV_VNNI
        if (step[3]) {  // all 4 channels real: 16 pixels at a time
          for (; xx + 16 <= p.w; xx += 16) {
            const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src[0] + xx));
            const __m128i bb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src[1] + xx));
            const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src[2] + xx));
            const __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src[3] + xx));
            const __m128i ab0 = _mm_unpacklo_epi8(a, bb), ab1 = _mm_unpackhi_epi8(a, bb);
            const __m128i cd0 = _mm_unpacklo_epi8(c, d), cd1 = _mm_unpackhi_epi8(c, d);
            __m128i* out = reinterpret_cast<__m128i*>(dst + xx * 4);
            _mm_storeu_si128(out + 0, _mm_unpacklo_epi16(ab0, cd0));
            _mm_storeu_si128(out + 1, _mm_unpackhi_epi16(ab0, cd0));
            _mm_storeu_si128(out + 2, _mm_unpacklo_epi16(ab1, cd1));
            _mm_storeu_si128(out + 3, _mm_unpackhi_epi16(ab1, cd1));
          }
        }
#endif
        for (; xx < p.w; ++xx)
          for (int l = 0; l < 4; ++l) dst[xx * 4 + l] = src[l][xx * step[l]];
      }
    }
  });
  return pl;
}

// Weights for Planes4: [ceil(c / 4)][ceil(o / 16)][k][k][16 outputs][4 channels], zero padded (qconvPackedWeights
// with perInput false writes the same).
std::vector<int8_t> pack_weights4(const QconvParams& p, const int8_t* w) {
  const int64_t o16 = (p.o + 15) / 16, cg = (p.c + 3) / 4, kk = p.k * p.k;
  std::vector<int8_t> pk(size_t(cg * o16 * kk * 64), 0);
  for (int64_t i = 0; i < p.c; ++i)
    for (int64_t o = 0; o < p.o; ++o)
      for (int64_t t = 0; t < kk; ++t)
        pk[size_t((((i / 4) * o16 + o / 16) * kk + t) * 64 + (o % 16) * 4 + i % 4)] = w[(o * p.c + i) * kk + t];
  return pk;
}

// Most output positions of one row that the whole-reduction mode keeps in registers at once.
constexpr int64_t kBlock = 8;

#ifdef GRANQ_QCONV_VNNI
// v[j][b] += the int32 partial sums of channel `plane` at the NB positions x0 + j stride of one output row (plane
// row y0 on), for OB blocks of 16 outputs whose packed weights start at pk (kg64 bytes apart): each weight vector is
// loaded once for the NB positions, each broadcast of 4 codes once for the OB blocks.
template <int NB, int OB>
inline void channel_sums(const Planes& pl, const int8_t* pk, int64_t kg64, int64_t plane, int64_t y0, int64_t x0, int64_t stride, int64_t k,
                         __m512i (&v)[NB][OB]) {
  for (int64_t ky = 0; ky < k; ++ky) {
    const uint8_t* r = pl.at(plane, y0 + ky, x0);
    for (int64_t g = 0; g < pl.groups; ++g) {
      __m512i w[OB];
#pragma GCC unroll 4
      for (int b = 0; b < OB; ++b) w[b] = _mm512_loadu_si512(pk + b * kg64 + (ky * pl.groups + g) * 64);
#pragma GCC unroll 8
      for (int j = 0; j < NB; ++j) {
        int32_t four;
        std::memcpy(&four, r + j * stride + g * 4, 4);
        const __m512i bc = _mm512_set1_epi32(four);
#pragma GCC unroll 4
        for (int b = 0; b < OB; ++b) v[j][b] = _mm512_dpbusd_epi32(v[j][b], bc, w[b]);
      }
    }
  }
}

// v[j][b] += the int32 sums over 4 channels (group g) and every tap at the NB positions x0 + j stride of one output
// row (plane row y0 on), for OB blocks of 16 outputs whose packed weights (pack_weights4) start at pk, k k 64 bytes
// apart. K: the kernel size when known at compile time (the loops unroll), else 0 and k.
template <int NB, int OB, int K>
inline void group_sums(const Planes4& pl, const int8_t* pk, int64_t n, int64_t g, int64_t y0, int64_t x0, int64_t stride, int64_t k_,
                       __m512i (&v)[NB][OB]) {
  const int64_t k = K ? K : k_, kk64 = k * k * 64;
  for (int64_t ky = 0; ky < k; ++ky) {
    const uint8_t* r = pl.at(n, g, y0 + ky, x0);
    for (int64_t kx = 0; kx < k; ++kx) {
      __m512i w[OB];
      for (int b = 0; b < OB; ++b) w[b] = _mm512_loadu_si512(pk + b * kk64 + (ky * k + kx) * 64);
      for (int j = 0; j < NB; ++j) {
        int32_t four;
        std::memcpy(&four, r + (j * stride + kx) * 4, 4);
        const __m512i bc = _mm512_set1_epi32(four);
#pragma GCC unroll 4
        for (int b = 0; b < OB; ++b) v[j][b] = _mm512_dpbusd_epi32(v[j][b], bc, w[b]);
      }
    }
  }
}
#endif

[[maybe_unused]] void channel_sums_ref(const QconvParams& p, const QconvOperands& in, const Planes& pl, int64_t plane, int64_t i, int64_t y0, int64_t x0, int32_t* s) {
  const int64_t kk = p.k * p.k;
  for (int64_t o = 0; o < p.o; ++o) {
    const int8_t* w = in.w + (o * p.c + i) * kk;
    int32_t t = 0;
    for (int64_t ky = 0; ky < p.k; ++ky) {
      const uint8_t* r = pl.at(plane, y0 + ky, x0);
      for (int64_t kx = 0; kx < p.k; ++kx) t += int32_t(r[kx]) * int32_t(w[ky * p.k + kx]);
    }
    s[o] = t;
  }
}

// The weight code sums W over the in-bounds taps, per input channel and output, for each class of output position
// (positions whose in-bounds taps are the same: one class inside, a few at the borders): w [c][ny][nx][16 ceil(o / 16)].
struct TapClasses {
  std::vector<int64_t> ycls, xcls;  // class of each output row / column
  int64_t ny = 0, nx = 0, o16 = 0;
  std::vector<int32_t> w;
  const int32_t* at(int64_t i, int64_t oy, int64_t ox) const { return w.data() + ((i * ny + ycls[size_t(oy)]) * nx + xcls[size_t(ox)]) * o16 * 16; }
};

TapClasses tap_classes(const QconvParams& p, const int8_t* w) {
  TapClasses tc;
  tc.o16 = (p.o + 15) / 16;
  // Distinct [lo, hi) tap ranges along one axis, and each output index's class.
  auto classes = [&](int64_t outs, bool rows, std::vector<int64_t>& cls, std::vector<std::pair<int64_t, int64_t>>& ranges) {
    for (int64_t j = 0; j < outs; ++j) {
      const Taps t = rows ? taps_of(p, j, 0) : taps_of(p, 0, j);
      const std::pair<int64_t, int64_t> r = rows ? std::make_pair(t.ky0, t.ky1) : std::make_pair(t.kx0, t.kx1);
      const auto it = std::find(ranges.begin(), ranges.end(), r);
      cls.push_back(it - ranges.begin());
      if (it == ranges.end()) ranges.push_back(r);
    }
  };
  std::vector<std::pair<int64_t, int64_t>> yr, xr;
  classes(p.oh, true, tc.ycls, yr);
  classes(p.ow, false, tc.xcls, xr);
  tc.ny = int64_t(yr.size());
  tc.nx = int64_t(xr.size());
  tc.w.assign(size_t(p.c * tc.ny * tc.nx * tc.o16 * 16), 0);
  for (int64_t i = 0; i < p.c; ++i)
    for (int64_t a = 0; a < tc.ny; ++a)
      for (int64_t b = 0; b < tc.nx; ++b)
        for (int64_t o = 0; o < p.o; ++o) {
          const int64_t v = tap_sum(w + (o * p.c + i) * p.k * p.k, p.k, Taps{yr[size_t(a)].first, yr[size_t(a)].second, xr[size_t(b)].first, xr[size_t(b)].second});
          tc.w[size_t(((i * tc.ny + a) * tc.nx + b) * tc.o16 * 16 + o)] = int32_t(v);
        }
  return tc;
}

// One output row (n, oy) of the per-input-channel mode into acc [ow, o] (before bias).
// fast[i]: kFast (no offsets: T = S), kBaseOnly (weights without offsets, |base| < 2^40: T = S + base W exactly, with
// W the sum of the channel's weight codes over the position's in-bounds taps, from TapClasses), kSlow (total() lane by lane).
constexpr uint8_t kSlow = 0, kFast = 1, kBaseOnly = 2;

void per_input_row(const QconvParams& p, const QconvOperands& in, const Planes& pl, const int8_t* pk, const float* f,
                   const uint8_t* fast, const TapClasses& tc, int64_t n, int64_t oy, float* acc, int32_t* s) {
  const int64_t y0 = oy * p.stride, kk = p.k * p.k;
  // A slow channel (an offset is not 0): T from its parts in double (kernels.h), for outputs [o0, o1).
  auto slow = [&](int64_t i, int64_t ox, int64_t o0, int64_t o1, float* a) {
    const Taps t = taps_of(p, oy, ox);
    const int64_t x0 = ox * p.stride, a_sum = window_sum(pl, n * p.c + i, y0, x0, p.k), cnt = t.count();
    const double base = in.xbase[n * p.c + i];
    for (int64_t o = o0; o < o1; ++o) {
      const int64_t w_sum = base == 0.0 ? 0 : tap_sum(in.w + (o * p.c + i) * kk, p.k, t);
      a[o - o0] += mul_rounded(f[i * p.o + o], total(s[o], a_sum, w_sum, cnt, in.wz[o * p.c + i], base));
    }
  };
#ifdef GRANQ_QCONV_VNNI
  const int64_t o16 = (p.o + 15) / 16, kg64 = p.k * pl.groups * 64, per_channel = o16 * kg64;
  // NB output positions from ox0 x OB blocks of 16 outputs from ob0, all in registers: each packed weight vector
  // is loaded once for the NB positions and each broadcast of 4 codes once for the OB blocks.
  // The rare channels with an offset (kBaseOnly, kSlow) add into a copy of the accumulators (ta), so that `a` and `v`
  // never have their address taken and stay in registers on the fast path (GCC keeps an address-taken array on the
  // stack: a load, an add and a store per accumulator per channel).
  auto offset_channel = [&](auto nb_c, auto ob_c, int64_t i, int64_t ox0, int64_t ob0, const __mmask16* m, const int64_t* lanes,
                            __m512 (&ta)[decltype(nb_c)::value][decltype(ob_c)::value], const __m512i (&tv)[decltype(nb_c)::value][decltype(ob_c)::value]) {
    constexpr int NB = decltype(nb_c)::value, OB = decltype(ob_c)::value;
    if (fast[i] == kBaseOnly) {
      const __m512d base = _mm512_set1_pd(in.xbase[n * p.c + i]);
      for (int b = 0; b < OB; ++b) {
        const __m512 fi = _mm512_maskz_loadu_ps(m[b], f + i * p.o + (ob0 + b) * 16);
        __m512d bw_lo = _mm512_setzero_pd(), bw_hi = _mm512_setzero_pd();
        const int32_t* wf_prev = nullptr;
        for (int j = 0; j < NB; ++j) {
          const int32_t* wf = tc.at(i, oy, ox0 + j) + (ob0 + b) * 16;
          if (wf != wf_prev) {  // base W for this position's class (the same along an interior block)
            bw_lo = _mm512_mul_pd(base, _mm512_maskz_cvtepi32_pd(__mmask8(0xff), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wf))));
            bw_hi = _mm512_mul_pd(base, _mm512_maskz_cvtepi32_pd(__mmask8(0xff), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wf + 8))));
            wf_prev = wf;
          }
          const __m256 lo = _mm512_maskz_cvtpd_ps(__mmask8(0xff), _mm512_add_pd(_mm512_maskz_cvtepi32_pd(__mmask8(0xff), _mm512_maskz_extracti64x4_epi64(__mmask8(0xf), tv[j][b], 0)), bw_lo));
          const __m256 hi = _mm512_maskz_cvtpd_ps(__mmask8(0xff), _mm512_add_pd(_mm512_maskz_cvtepi32_pd(__mmask8(0xff), _mm512_maskz_extracti64x4_epi64(__mmask8(0xf), tv[j][b], 1)), bw_hi));
          const __m512 t = _mm512_maskz_mov_ps(m[b], _mm512_maskz_insertf32x8(__mmask16(0xffff), _mm512_castps256_ps512(lo), hi, 1));
          ta[j][b] = add_rounded(ta[j][b], mul_rounded(fi, t));
        }
      }
    } else {
      for (int j = 0; j < NB; ++j)
        for (int b = 0; b < OB; ++b) {
          float lane[16];
          const int64_t o0 = (ob0 + b) * 16;
          _mm512_storeu_ps(lane, ta[j][b]);
          _mm512_mask_storeu_epi32(s + o0, m[b], tv[j][b]);
          slow(i, ox0 + j, o0, o0 + lanes[b], lane);
          ta[j][b] = _mm512_maskz_loadu_ps(m[b], lane);
        }
    }
  };
  // NB output positions from ox0 x OB blocks of 16 outputs from ob0, all in registers: each packed weight vector
  // is loaded once for the NB positions and each broadcast of 4 codes once for the OB blocks.
  auto block = [&](auto nb_c, auto ob_c, int64_t ox0, int64_t ob0) {
    constexpr int NB = decltype(nb_c)::value, OB = decltype(ob_c)::value;
    __mmask16 m[OB];
    int64_t lanes[OB];
    for (int b = 0; b < OB; ++b) {
      lanes[b] = std::min<int64_t>(16, p.o - (ob0 + b) * 16);
      m[b] = __mmask16((1u << lanes[b]) - 1);
    }
    __m512 a[NB][OB];
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j)
#pragma GCC unroll 4
      for (int b = 0; b < OB; ++b) a[j][b] = _mm512_setzero_ps();
    for (int64_t i = 0; i < p.c; ++i) {
      __m512i v[NB][OB];
#pragma GCC unroll 8
      for (int j = 0; j < NB; ++j)
#pragma GCC unroll 4
        for (int b = 0; b < OB; ++b) v[j][b] = _mm512_setzero_si512();
      channel_sums<NB, OB>(pl, pk + i * per_channel + ob0 * kg64, kg64, n * p.c + i, y0, ox0 * p.stride, p.stride, p.k, v);
      if (fast[i] == kFast) {
#pragma GCC unroll 4
        for (int b = 0; b < OB; ++b) {
          const __m512 fi = _mm512_maskz_loadu_ps(m[b], f + i * p.o + (ob0 + b) * 16);
#pragma GCC unroll 8
          for (int j = 0; j < NB; ++j) a[j][b] = add_rounded(a[j][b], mul_rounded(fi, _mm512_maskz_cvtepi32_ps(m[b], v[j][b])));
        }
      } else {
        __m512 ta[NB][OB];
        __m512i tv[NB][OB];
#pragma GCC unroll 8
        for (int j = 0; j < NB; ++j)
#pragma GCC unroll 4
          for (int b = 0; b < OB; ++b) {
            ta[j][b] = a[j][b];
            tv[j][b] = v[j][b];
          }
        offset_channel(nb_c, ob_c, i, ox0, ob0, m, lanes, ta, tv);
#pragma GCC unroll 8
        for (int j = 0; j < NB; ++j)
#pragma GCC unroll 4
          for (int b = 0; b < OB; ++b) a[j][b] = ta[j][b];
      }
    }
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j)
#pragma GCC unroll 4
      for (int b = 0; b < OB; ++b) _mm512_mask_storeu_ps(acc + (ox0 + j) * p.o + (ob0 + b) * 16, m[b], a[j][b]);
  };
  // Registers: NB x OB accumulators and as many sums (<= 32 zmm with the weights and the broadcast).
  auto row = [&](auto ob_c, auto nb_c, int64_t ob0) {
    int64_t ox0 = 0;
    for (; ox0 + decltype(nb_c)::value <= p.ow; ox0 += decltype(nb_c)::value) block(nb_c, ob_c, ox0, ob0);
    for (; ox0 < p.ow; ++ox0) block(std::integral_constant<int, 1>{}, ob_c, ox0, ob0);
  };
  for (int64_t ob0 = 0; ob0 < o16;) {
    const int64_t ob = std::min<int64_t>(4, o16 - ob0);
    if (ob == 4) row(std::integral_constant<int, 4>{}, std::integral_constant<int, 2>{}, ob0);
    else if (ob == 3) row(std::integral_constant<int, 3>{}, std::integral_constant<int, 2>{}, ob0);
    else if (ob == 2) row(std::integral_constant<int, 2>{}, std::integral_constant<int, 4>{}, ob0);
    else row(std::integral_constant<int, 1>{}, std::integral_constant<int, 8>{}, ob0);
    ob0 += ob;
  }
#else
  for (int64_t ox = 0; ox < p.ow; ++ox) {
    float* a = acc + ox * p.o;
    std::fill(a, a + p.o, 0.0f);
    for (int64_t i = 0; i < p.c; ++i) {
      channel_sums_ref(p, in, pl, n * p.c + i, i, y0, ox * p.stride, s);
      if (fast[i] == kFast) {
        for (int64_t o = 0; o < p.o; ++o) a[o] += mul_rounded(f[i * p.o + o], float(s[o]));
      } else {
        slow(i, ox, 0, p.o, a);
      }
    }
  }
  (void)pk;
#endif
}

// One output row (n, oy) of the whole-reduction mode into acc [ow, o] (before bias): int32 sums over every channel
// and tap, one scale.
// asum: window_sums_all when a weight offset is not 0 (the wz A terms), else null.
// pl4 (VNNI builds) or pl (the scalar twin): the codes; pk: the weights packed for pl4 (pack_weights4).
void whole_row(const QconvParams& p, const QconvOperands& in, const Planes4& pl4, const Planes& pl, const int8_t* pk, const int64_t* wk,
               const int64_t* asum, const double* wzo, const float* f, int64_t n, int64_t oy, float* acc, int32_t* s, int32_t* tmp) {
  const int64_t y0 = oy * p.stride;
  const double base = in.xbase[n * p.c];
  const bool need_a = asum != nullptr;
  double wz_max = 0.0;
  for (int64_t o = 0; o < p.o; ++o) wz_max = std::max(wz_max, std::fabs(wzo[o]));
  // With no activation offset, T = S + wz A exactly when |wz| A stays below 2^52 (A <= 255 c k k): an integer, so
  // total()'s double sum is that integer whatever the order (its +-0 terms change no non-zero value, and a zero sum
  // is +0 both ways).
  const bool exact_wz = base == 0.0 && wz_max * 255.0 * double(p.c * p.k * p.k) < 4503599627370496.0;
  // 8 positions for up to 2 blocks of 16 outputs, 4 for more (at most 16 sums in registers).
  const int64_t blk = (p.o + 15) / 16 <= 2 ? kBlock : kBlock / 2;
  for (int64_t ox0 = 0; ox0 < p.ow; ox0 += blk) {
    const int64_t nb = std::min(blk, p.ow - ox0);
    int32_t* sb = s;  // [nb, o]
#ifdef GRANQ_QCONV_VNNI
    const int64_t o16 = (p.o + 15) / 16, kk64 = p.k * p.k * 64, per_group = o16 * kk64;
    // NB positions from ox0 + j0 x OB blocks of 16 outputs: int32 sums over every channel and tap, in registers.
    auto sums = [&](auto nb_c, auto ob_c, int64_t j0, int64_t ob0) {
      constexpr int NB = decltype(nb_c)::value, OB = decltype(ob_c)::value;
      __m512i v[NB][OB];
#pragma GCC unroll 8
      for (int j = 0; j < NB; ++j)
#pragma GCC unroll 4
        for (int b = 0; b < OB; ++b) v[j][b] = _mm512_setzero_si512();
      const int64_t x0 = (ox0 + j0) * p.stride;
      for (int64_t g = 0; g < pl4.cg; ++g) {
        const int8_t* w = pk + g * per_group + ob0 * kk64;
        if (p.k == 3) group_sums<NB, OB, 3>(pl4, w, n, g, y0, x0, p.stride, 3, v);
        else if (p.k == 1) group_sums<NB, OB, 1>(pl4, w, n, g, y0, x0, p.stride, 1, v);
        else group_sums<NB, OB, 0>(pl4, w, n, g, y0, x0, p.stride, p.k, v);
      }
      for (int j = 0; j < NB; ++j)
        for (int b = 0; b < OB; ++b) {
          const int64_t lanes = std::min<int64_t>(16, p.o - (ob0 + b) * 16);
          _mm512_mask_storeu_epi32(sb + (j0 + j) * p.o + (ob0 + b) * 16, __mmask16((1u << lanes) - 1), v[j][b]);
        }
    };
    for (int64_t ob0 = 0; ob0 < o16;) {
      const int64_t ob = std::min<int64_t>(4, o16 - ob0);
      auto go = [&](auto ob_c) {
        if (nb == 8 && decltype(ob_c)::value <= 2) {
          sums(std::integral_constant<int, 8>{}, ob_c, 0, ob0);
        } else if (nb == 4) {
          sums(std::integral_constant<int, 4>{}, ob_c, 0, ob0);
        } else {
          for (int64_t j = 0; j < nb; ++j) sums(std::integral_constant<int, 1>{}, ob_c, j, ob0);
        }
      };
      if (ob == 4) go(std::integral_constant<int, 4>{});
      else if (ob == 3) go(std::integral_constant<int, 3>{});
      else if (ob == 2) go(std::integral_constant<int, 2>{});
      else go(std::integral_constant<int, 1>{});
      ob0 += ob;
    }
    (void)tmp;
    (void)pl;
#else
    for (int64_t j = 0; j < nb; ++j) {
      std::fill(sb + j * p.o, sb + (j + 1) * p.o, 0);
      for (int64_t i = 0; i < p.c; ++i) {
        channel_sums_ref(p, in, pl, n * p.c + i, i, y0, (ox0 + j) * p.stride, tmp);
        for (int64_t o = 0; o < p.o; ++o) sb[j * p.o + o] += tmp[o];
      }
    }
    (void)pk;
    (void)pl4;
#endif
    for (int64_t j = 0; j < nb; ++j) {
      const int64_t ox = ox0 + j;
      if (base == 0.0 && !need_a) {  // no offsets: T = S, y = f S (the same products as total()'s float(s))
        for (int64_t o = 0; o < p.o; ++o) acc[ox * p.o + o] = f[o] * float(sb[j * p.o + o]);  // a lone product: nothing to contract
        continue;
      }
      const int64_t a_sum = need_a ? asum[(n * p.oh + oy) * p.ow + ox] : 0;
      if (exact_wz) {
        const double a = double(a_sum);
        for (int64_t o = 0; o < p.o; ++o) acc[ox * p.o + o] = f[o] * float(double(sb[j * p.o + o]) + wzo[o] * a);
        continue;
      }
      const Taps t = taps_of(p, oy, ox);
      for (int64_t o = 0; o < p.o; ++o) {
        int64_t w_sum = 0;
        if (base != 0.0)
          for (int64_t ky = t.ky0; ky < t.ky1; ++ky)
            for (int64_t kx = t.kx0; kx < t.kx1; ++kx) w_sum += wk[o * p.k * p.k + ky * p.k + kx];
        acc[ox * p.o + o] = mul_rounded(f[o], total(sb[j * p.o + o], a_sum, w_sum, p.c * t.count(), wzo[o], base));
      }
    }
  }
}

// GCC 12 warns that the intrinsics' own undefined-value idiom (__Y = __Y) may be used uninitialized once the tile
// transpose below is inlined; every lane it reads is written first.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// y[o][ox] (o's rows P floats apart) = acc[ox][o] + bias[o], clamped at 0 with relu (!(v > 0) gives 0: NaN and -0
// too, as max(v, +0) does). With AVX-512, 16 x 16 tiles transposed in registers (64 shuffles) instead of a strided
// scalar read per output.
void store_row(const QconvParams& p, const float* acc, const float* bias, float* y, int64_t P) {
#ifdef GRANQ_QCONV_VNNI
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t o0 = 0; o0 < p.o; o0 += 16) {
    const int64_t lanes = std::min<int64_t>(16, p.o - o0);
    const __mmask16 lm = __mmask16((1u << lanes) - 1);
    for (int64_t x0 = 0; x0 < p.ow; x0 += 16) {
      const int64_t cnt = std::min<int64_t>(16, p.ow - x0);
      const __mmask16 cm = __mmask16((1u << cnt) - 1);
      __m512 r[16], t[16];
      for (int j = 0; j < 16; ++j) r[j] = j < cnt ? _mm512_maskz_loadu_ps(lm, acc + (x0 + j) * p.o + o0) : zero;
      // Rows j = positions, lanes = outputs -> rows = outputs, lanes = positions.
      for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
      }
      for (int m = 0; m < 4; ++m) {
        const __m512d a = _mm512_castps_pd(t[4 * m]), b = _mm512_castps_pd(t[4 * m + 1]);
        const __m512d c = _mm512_castps_pd(t[4 * m + 2]), d = _mm512_castps_pd(t[4 * m + 3]);
        r[4 * m] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * m + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * m + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * m + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
      }
      // r[4 m + k], 128-bit lane L: column 4 L + k of rows 4 m .. 4 m + 3.
      for (int k = 0; k < 4; ++k) {
        const __m512 x01 = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x44), x23 = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xEE);
        const __m512 y01 = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x44), y23 = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xEE);
        t[k] = _mm512_shuffle_f32x4(x01, y01, 0x88);
        t[4 + k] = _mm512_shuffle_f32x4(x01, y01, 0xDD);
        t[8 + k] = _mm512_shuffle_f32x4(x23, y23, 0x88);
        t[12 + k] = _mm512_shuffle_f32x4(x23, y23, 0xDD);
      }
      for (int k = 0; k < lanes; ++k) {
        __m512 v = _mm512_add_ps(t[k], _mm512_set1_ps(bias[o0 + k]));
        if (p.relu) v = _mm512_max_ps(v, zero);
        _mm512_mask_storeu_ps(y + (o0 + k) * P + x0, cm, v);
      }
    }
  }
#else
  for (int64_t o = 0; o < p.o; ++o)
    for (int64_t ox = 0; ox < p.ow; ++ox) {
      const float v = acc[ox * p.o + o] + bias[o];
      y[o * P + ox] = p.relu && !(v > 0.0f) ? 0.0f : v;
    }
#endif
}
#pragma GCC diagnostic pop

}  // namespace

void qconv2d(const QconvParams& p, const QconvOperands& in) {
  const int64_t P = p.oh * p.ow, kk = p.k * p.k;
  // The per-input mode (and the scalar twin) reads per-channel planes; the whole mode on VNNI, 4 interleaved channels.
#ifdef GRANQ_QCONV_VNNI
  const bool four = !p.per_input;
#else
  const bool four = false;
#endif
  const Planes pl = four ? Planes{0, 0, 0, nullptr} : pad_planes(p, in.x);
  const Planes4 pl4 = four ? pad_planes4(p, in.x) : Planes4{0, 0, 0, nullptr};
  std::vector<int8_t> packed;
  if (!in.wpk) packed = four ? pack_weights4(p, in.w) : pack_weights(p, in.w, pl.groups);
  const int8_t* pk = in.wpk ? in.wpk : packed.data();
  // f: per sample [c, o] in the per-input mode, [o] otherwise; kept per calling thread from call to call (a fresh
  // MB-sized vector costs its zero fill and page faults, single-threaded). Valid until the thread's next qconv2d.
  static thread_local std::vector<float> f_buffer;
  const size_t f_size = size_t(p.per_input ? p.n * p.c * p.o : p.n * p.o);
  if (f_buffer.size() < f_size) f_buffer.resize(f_size);
  float* const f = f_buffer.data();
  std::vector<uint8_t> fast;
  std::vector<int64_t> wk;
  TapClasses tc;  // per-input mode with activation offsets: W per class of position
  std::vector<int64_t> asum;  // whole mode with weight offsets: window_sums_all
  std::vector<double> wzo;    // whole mode: the weight offset of each output
  // f = (1 / wscale) (1 / xscale): one division per scale, then products.
  std::vector<float> rx(size_t(p.n * p.c));
  for (int64_t j = 0; j < p.n * p.c; ++j) rx[size_t(j)] = 1.0f / in.xscale[j];
  if (p.per_input) {
    // Per sample: f [c, o] (1 / wscale written transposed, [c, o], once, so each row is one contiguous product), and
    // which channels have no offsets (their T is the int32 sum itself); whether a channel's weight offsets are all 0
    // does not depend on the sample.
    std::vector<float> rwt(size_t(p.c * p.o));
    std::vector<uint8_t> wz_zero(size_t(p.c), 1);
    for (int64_t o = 0; o < p.o; ++o)
      for (int64_t i = 0; i < p.c; ++i) {
        rwt[size_t(i * p.o + o)] = 1.0f / in.wscale[o * p.c + i];
        if (in.wz[o * p.c + i] != 0.0) wz_zero[size_t(i)] = 0;
      }
    fast.resize(size_t(p.n * p.c));
    parallel_for(p.n, [&](int64_t n0, int64_t n1) {
      for (int64_t ni = n0 * p.c; ni < n1 * p.c; ++ni) {
        const int64_t i = ni % p.c;
        const float r = rx[size_t(ni)];
        const float* w = rwt.data() + i * p.o;
        float* fo = f + ni * p.o;
        for (int64_t o = 0; o < p.o; ++o) fo[o] = w[o] * r;
        const bool z = wz_zero[size_t(i)] != 0;
        fast[size_t(ni)] = z && in.xbase[ni] == 0.0 ? kFast : (z && std::fabs(in.xbase[ni]) < 1099511627776.0 ? kBaseOnly : kSlow);
      }
    });
    bool base_only = false;
    for (int64_t ni = 0; ni < p.n * p.c && !base_only; ++ni) base_only = fast[size_t(ni)] == kBaseOnly;
    if (base_only) tc = tap_classes(p, in.w);
  } else {
    wzo.resize(size_t(p.o));  // wz is constant along the channels here: one entry per output, contiguous
    bool need_a = false;
    for (int64_t o = 0; o < p.o; ++o) {
      wzo[size_t(o)] = in.wz[o * p.c];
      need_a = need_a || wzo[size_t(o)] != 0.0;
    }
    if (need_a) asum = window_sums_all(p, in.x);
    std::vector<float> rw(size_t(p.o));  // wscale is constant along the channels too
    for (int64_t o = 0; o < p.o; ++o) rw[size_t(o)] = 1.0f / in.wscale[o * p.c];
    for (int64_t n = 0; n < p.n; ++n)
      for (int64_t o = 0; o < p.o; ++o) f[n * p.o + o] = rw[size_t(o)] * rx[size_t(n * p.c)];
    wk.assign(size_t(p.o * kk), 0);  // weight codes summed over the input channels, per tap
    for (int64_t o = 0; o < p.o; ++o)
      for (int64_t i = 0; i < p.c; ++i)
        for (int64_t t = 0; t < kk; ++t) wk[size_t(o * kk + t)] += in.w[(o * p.c + i) * kk + t];
  }
  parallel_for(p.n * p.oh, [&](int64_t b0, int64_t b1) {
    std::vector<float> acc(size_t(p.ow * p.o));
    std::vector<int32_t> s(size_t(kBlock * p.o + 16)), tmp(size_t(p.o + 16));
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t n = b / p.oh, oy = b % p.oh;
      if (p.per_input) {
        per_input_row(p, in, pl, pk, f + n * p.c * p.o, fast.data() + n * p.c, tc, n, oy, acc.data(), s.data());
      } else {
        whole_row(p, in, pl4, pl, pk, wk.data(), asum.empty() ? nullptr : asum.data(), wzo.data(), f + n * p.o, n, oy, acc.data(), s.data(), tmp.data());
      }
      store_row(p, acc.data(), in.bias, in.y + n * p.o * P + oy * p.ow, P);
    }
  });
}

}  // namespace granq
