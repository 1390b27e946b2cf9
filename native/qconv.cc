// Integer convolution of integer inference (see kernels.h qconv2d): codes times codes with exact integer partial
// sums, then a float epilogue that applies each partial sum's scale.
#include <algorithm>
#include <cstring>
#include <vector>

#if defined(__AVX512F__) && defined(__AVX512VNNI__)
#include <immintrin.h>
#define GRANQ_QCONV_VNNI 1
#endif

#include "kernels.h"

// The epilogue's float32 order is the definition (kernels.h): every product and sum rounds on its own, so no
// contraction into fused multiply-adds in this file (GCC contracts by default, vector intrinsics included).
#pragma GCC optimize("fp-contract=off")

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

// T = sum over the taps of (wq + wz)(a + base), from its parts, in the order kernels.h fixes.
inline float total(int64_t s, int64_t a_sum, int64_t w_sum, int64_t cnt, double wz, double base) {
  if (wz == 0.0 && base == 0.0) return float(s);
  return float(((double(s) + wz * double(a_sum)) + base * double(w_sum)) + (wz * base) * double(cnt));
}

// Codes of channel plane `plane` [h, w] under output positions [p0, p0 + np) into rows of `stride` bytes (k*k
// taps, zero where out of bounds and after the taps).
void im2col_plane(const QconvParams& p, const uint8_t* plane, int64_t p0, int64_t np, uint8_t* rows, int64_t stride) {
  for (int64_t r = 0; r < np; ++r) {
    const int64_t pos = p0 + r, oy = pos / p.ow, ox = pos % p.ow;
    uint8_t* row = rows + r * stride;
    std::memset(row, 0, size_t(stride));
    const Taps t = taps_of(p, oy, ox);
    const int64_t iy = oy * p.stride - p.pad, ix = ox * p.stride - p.pad;
    for (int64_t ky = t.ky0; ky < t.ky1; ++ky)
      for (int64_t kx = t.kx0; kx < t.kx1; ++kx) row[ky * p.k + kx] = plane[(iy + ky) * p.w + ix + kx];
  }
}

int64_t row_sum(const uint8_t* row, int64_t len) {
  int64_t s = 0;
  for (int64_t t = 0; t < len; ++t) s += row[t];
  return s;
}

constexpr int64_t kTile = 32;  // output positions per work item of the per-input-channel path

// One sample's positions [p0, p0 + np), per input channel: exact partial sums of each channel, scaled, summed.
void per_input_tile(const QconvParams& p, const QconvOperands& in, int64_t n, int64_t p0, int64_t np, const int8_t* packed,
                    int64_t k4, float* acc /* [np, o] */) {
  const int64_t kk = p.k * p.k, stride = k4 * 4;
  std::vector<uint8_t> rows(size_t(np * stride));
  std::vector<float> f(size_t(p.o));
  std::vector<int32_t> s(size_t(p.o));
  std::fill(acc, acc + np * p.o, 0.0f);
  for (int64_t i = 0; i < p.c; ++i) {
    const int64_t ni = n * p.c + i;
    im2col_plane(p, in.x + ni * p.h * p.w, p0, np, rows.data(), stride);
    const double base = in.xbase[ni];
    bool fast = base == 0.0;
    for (int64_t o = 0; o < p.o; ++o) {
      f[size_t(o)] = 1.0f / (in.wscale[o * p.c + i] * in.xscale[ni]);
      fast = fast && in.wz[o * p.c + i] == 0.0;
    }
    for (int64_t r = 0; r < np; ++r) {
      const uint8_t* row = rows.data() + r * stride;
#ifdef GRANQ_QCONV_VNNI
      const int8_t* pk = packed + i * ((p.o + 15) / 16) * k4 * 64;
      for (int64_t ob = 0; ob * 16 < p.o; ++ob) {
        __m512i v = _mm512_setzero_si512();
        for (int64_t g = 0; g < k4; ++g) {
          int32_t four;
          std::memcpy(&four, row + g * 4, 4);
          v = _mm512_dpbusd_epi32(v, _mm512_set1_epi32(four), _mm512_loadu_si512(pk + (ob * k4 + g) * 64));
        }
        const int64_t lanes = std::min<int64_t>(16, p.o - ob * 16);
        const __mmask16 m = __mmask16((1u << lanes) - 1);
        if (fast) {
          float* a = acc + r * p.o + ob * 16;
          const __m512 t = _mm512_maskz_cvtepi32_ps(m, v);
          _mm512_mask_storeu_ps(a, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, a), _mm512_mul_ps(_mm512_maskz_loadu_ps(m, f.data() + ob * 16), t)));
        } else {
          _mm512_mask_storeu_epi32(s.data() + ob * 16, m, v);
        }
      }
#else
      (void)packed;
      for (int64_t o = 0; o < p.o; ++o) {
        const int8_t* wr = in.w + (o * p.c + i) * kk;
        int32_t t = 0;
        for (int64_t j = 0; j < kk; ++j) t += int32_t(row[j]) * int32_t(wr[j]);
        if (fast) acc[r * p.o + o] += f[size_t(o)] * float(t);
        s[size_t(o)] = t;
      }
#endif
      if (fast) continue;
      const int64_t pos = p0 + r;
      const Taps t = taps_of(p, pos / p.ow, pos % p.ow);
      const int64_t a_sum = row_sum(row, kk), cnt = t.count();
      for (int64_t o = 0; o < p.o; ++o) {
        const double wz = in.wz[o * p.c + i];
        const int64_t w_sum = base == 0.0 ? 0 : tap_sum(in.w + (o * p.c + i) * kk, p.k, t);
        acc[r * p.o + o] += f[size_t(o)] * total(s[size_t(o)], a_sum, w_sum, cnt, wz, base);
      }
    }
  }
}

}  // namespace

void qconv2d(const QconvParams& p, const QconvOperands& in) {
  const int64_t P = p.oh * p.ow, kk = p.k * p.k;
  if (p.per_input) {
    const int64_t k4 = (kk + 3) / 4;
    std::vector<int8_t> packed;
#ifdef GRANQ_QCONV_VNNI
    // Per input channel i: [block of 16 outputs][group of 4 taps][16 outputs][4 taps], zero padded.
    const int64_t o16 = (p.o + 15) / 16;
    packed.assign(size_t(p.c * o16 * k4 * 64), 0);
    for (int64_t i = 0; i < p.c; ++i)
      for (int64_t o = 0; o < p.o; ++o)
        for (int64_t t = 0; t < kk; ++t)
          packed[size_t(((i * o16 + o / 16) * k4 + t / 4) * 64 + (o % 16) * 4 + t % 4)] = in.w[(o * p.c + i) * kk + t];
#endif
    const int64_t tiles = (P + kTile - 1) / kTile;
    parallel_for(p.n * tiles, [&](int64_t b0, int64_t b1) {
      std::vector<float> acc(size_t(kTile * p.o));
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t n = b / tiles, p0 = (b % tiles) * kTile, np = std::min(kTile, P - p0);
        per_input_tile(p, in, n, p0, np, packed.data(), k4, acc.data());
        for (int64_t o = 0; o < p.o; ++o)
          for (int64_t r = 0; r < np; ++r) in.y[(n * p.o + o) * P + p0 + r] = acc[size_t(r * p.o + o)] + in.bias[o];
      }
    });
    return;
  }
  // One scale and offset per (sample, output channel): one integer GEMM over the whole reduction c*k*k.
  const int64_t K = p.c * kk;
  std::vector<uint8_t> cols(size_t(P * K));
  std::vector<int32_t> s(size_t(P * p.o));
  std::vector<int64_t> wk(size_t(p.o * kk), 0);  // weight codes summed over the input channels, per tap
  for (int64_t o = 0; o < p.o; ++o)
    for (int64_t i = 0; i < p.c; ++i)
      for (int64_t t = 0; t < kk; ++t) wk[size_t(o * kk + t)] += in.w[(o * p.c + i) * kk + t];
  std::vector<int8_t> wt(size_t(p.o * K));  // [o, tap, i]: the im2col row order below
  for (int64_t o = 0; o < p.o; ++o)
    for (int64_t i = 0; i < p.c; ++i)
      for (int64_t t = 0; t < kk; ++t) wt[size_t(o * K + t * p.c + i)] = in.w[(o * p.c + i) * kk + t];
  for (int64_t n = 0; n < p.n; ++n) {
    parallel_for((P + kTile - 1) / kTile, [&](int64_t b0, int64_t b1) {
      std::vector<uint8_t> rows(size_t(kTile * kk));
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t p0 = b * kTile, np = std::min(kTile, P - p0);
        for (int64_t i = 0; i < p.c; ++i) {
          im2col_plane(p, in.x + (n * p.c + i) * p.h * p.w, p0, np, rows.data(), kk);
          for (int64_t r = 0; r < np; ++r)
            for (int64_t t = 0; t < kk; ++t) cols[size_t((p0 + r) * K + t * p.c + i)] = rows[size_t(r * kk + t)];
        }
      }
    });
    qgemm_u8s8({P, p.o, K}, cols.data(), wt.data(), s.data());
    const double base = in.xbase[n * p.c];
    parallel_for(P, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const Taps t = taps_of(p, r / p.ow, r % p.ow);
        const int64_t a_sum = row_sum(cols.data() + r * K, K), cnt = p.c * t.count();
        for (int64_t o = 0; o < p.o; ++o) {
          const double wz = in.wz[o * p.c];
          int64_t w_sum = 0;
          if (base != 0.0)
            for (int64_t ky = t.ky0; ky < t.ky1; ++ky)
              for (int64_t kx = t.kx0; kx < t.kx1; ++kx) w_sum += wk[size_t(o * kk + ky * p.k + kx)];
          const float f = 1.0f / (in.wscale[o * p.c] * in.xscale[n * p.c]);
          in.y[(n * p.o + o) * P + r] = f * total(s[size_t(r * p.o + o)], a_sum, w_sum, cnt, wz, base) + in.bias[o];
        }
      }
    }, 64);
  }
}

}  // namespace granq
