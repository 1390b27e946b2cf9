// gemm: C = op(A) . op(B) + beta C. Packing absorbs the transposes; one register-blocked microkernel does the math.
// Threads take whole output tiles (fixed size, independent of the thread count), so results are bit-identical for
// any GRANQ_THREADS.
#include "gemm.h"

#include <algorithm>
#include <cstring>

#include "kernels.h"


namespace granq {
namespace gemm_detail {

void pack_a(int64_t m, int64_t kc, const float* a, int64_t rs, int64_t cs, float* dst) {
  for (int64_t i0 = 0; i0 < m; i0 += kMR) {
    const int64_t mr = std::min(kMR, m - i0);
    float* d = dst + i0 * kc;
    if (cs == 1) {
      // Row-major A: read each row sequentially, write strided into the panel.
      for (int64_t i = 0; i < mr; ++i) {
        const float* src = a + (i0 + i) * rs;
        for (int64_t p = 0; p < kc; ++p) d[p * kMR + i] = src[p];
      }
    } else {
      for (int64_t p = 0; p < kc; ++p)
        for (int64_t i = 0; i < mr; ++i) d[p * kMR + i] = a[(i0 + i) * rs + p * cs];
    }
    for (int64_t i = mr; i < kMR; ++i)
      for (int64_t p = 0; p < kc; ++p) d[p * kMR + i] = 0.f;
  }
}

void pack_b(int64_t kc, int64_t nr, const float* b, int64_t rs, int64_t cs, float* dst) {
  if (cs == 1) {
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = b + p * rs;
      float* d = dst + p * kNR;
      int64_t j = 0;
      for (; j < nr; ++j) d[j] = src[j];
      for (; j < kNR; ++j) d[j] = 0.f;
    }
  } else {
    // Transposed B: read each column sequentially.
    for (int64_t j = 0; j < nr; ++j) {
      const float* src = b + j * cs;
      for (int64_t p = 0; p < kc; ++p) dst[p * kNR + j] = src[p * rs];
    }
    for (int64_t p = 0; p < kc; ++p)
      for (int64_t j = nr; j < kNR; ++j) dst[p * kNR + j] = 0.f;
  }
}

namespace {

#if defined(__AVX512F__)
// 8 x 32 tile in 16 zmm accumulators; per k: 2 loads of B, 8 broadcasts of A, 16 FMAs.
void micro_avx512(int64_t kc, const float* pa, const float* pb, float* c, int64_t ldc, int64_t mr, int64_t nr,
                  bool acc) {
  micro_tile(kc, pa, [pb](int64_t p, __m512& b0, __m512& b1) {
    b0 = _mm512_load_ps(pb + p * kNR);
    b1 = _mm512_load_ps(pb + p * kNR + 16);
  }, c, ldc, mr, nr, acc);
}
#endif

// Portable twin of the microkernel: same packing, same per-element summation order over k.
[[maybe_unused]] void micro_ref(int64_t kc, const float* pa, const float* pb, float* c, int64_t ldc, int64_t mr, int64_t nr, bool acc) {
  float t[kMR][kNR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    for (int i = 0; i < kMR; ++i) {
      const float a = pa[i];
      for (int j = 0; j < kNR; ++j) t[i][j] += a * pb[j];
    }
    pa += kMR;
    pb += kNR;
  }
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j) c[i * ldc + j] = acc ? c[i * ldc + j] + t[i][j] : t[i][j];
}

}  // namespace

void gemm_panel(int64_t m, int64_t kc, const float* pa, const float* pb, float* c, int64_t ldc, int64_t nr, bool acc) {
  for (int64_t i0 = 0; i0 < m; i0 += kMR) {
#if defined(__AVX512F__)
    micro_avx512(kc, pa + i0 * kc, pb, c + i0 * ldc, ldc, std::min(kMR, m - i0), nr, acc);
#else
    micro_ref(kc, pa + i0 * kc, pb, c + i0 * ldc, ldc, std::min(kMR, m - i0), nr, acc);
#endif
  }
}

void gemm_st(int64_t m, int64_t n, int64_t k, const float* a, int64_t rsa, int64_t csa, const float* b, int64_t rsb,
             int64_t csb, float* c, int64_t ldc, bool acc) {
  const int64_t mpad = round_up(m, kMR);
  float* pb = thread_scratch(0, size_t(kKC * kNR));
  float* pa = thread_scratch(1, size_t(mpad * kKC));
  const int64_t nb = kc_blocks(k);
  for (int64_t blk = 0; blk < nb; ++blk) {
    const int64_t p0 = kc_begin(k, blk), kc = kc_begin(k, blk + 1) - p0;
    pack_a(m, kc, a + p0 * csa, rsa, csa, pa);
    const bool acc_blk = acc || blk > 0;
    for (int64_t j0 = 0; j0 < n; j0 += kNR) {
      const int64_t nr = std::min(kNR, n - j0);
      pack_b(kc, nr, b + p0 * rsb + j0 * csb, rsb, csb, pb);
      gemm_panel(m, kc, pa, pb, c + j0, ldc, nr, acc_blk);
    }
  }
}

}  // namespace gemm_detail

// Output tiles of kTileM x kTileN are independent; each is computed whole (all of k) by one thread.
void gemm(const GemmParams& p) {
  using namespace gemm_detail;
  constexpr int64_t kTileM = 128, kTileN = 512;
  const int64_t tm = (p.m + kTileM - 1) / kTileM, tn = (p.n + kTileN - 1) / kTileN;
  // op(A)(i, p) and op(B)(p, j) as strides.
  const int64_t rsa = p.trans_a ? 1 : p.k, csa = p.trans_a ? p.m : 1;
  const int64_t rsb = p.trans_b ? 1 : p.n, csb = p.trans_b ? p.k : 1;
  const bool acc = p.beta != 0.f;
  // A tile of fewer than ~256k multiply-adds is not worth waking a thread for.
  const int64_t tile_work = std::min(p.m, kTileM) * std::min(p.n, kTileN) * p.k;
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 18) / std::max<int64_t>(1, tile_work));
  parallel_for(
      tm * tn,
      [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t i0 = (t / tn) * kTileM, j0 = (t % tn) * kTileN;
          const int64_t mm = std::min(kTileM, p.m - i0), nn = std::min(kTileN, p.n - j0);
          gemm_st(mm, nn, p.k, p.a + i0 * rsa, rsa, csa, p.b + j0 * csb, rsb, csb, p.c + i0 * p.n + j0, p.n, acc);
        }
      },
      grain);
}

}  // namespace granq
