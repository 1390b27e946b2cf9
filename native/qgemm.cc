// Integer GEMM of integer inference (see kernels.h): c[m, n] = sum_k a[m, k] (u8) * b[n, k] (s8), int32, exact.
#include <algorithm>
#include <cstring>
#include <vector>

#if defined(__AVX512F__) && defined(__AVX512VNNI__)
#include <immintrin.h>
#define GRANQ_QGEMM_VNNI 1
#endif

#include "kernels.h"

namespace granq {
namespace {

[[maybe_unused]] void qgemm_rows_ref(const QgemmParams& p, const uint8_t* a, const int8_t* b, int32_t* c, int64_t m0, int64_t m1) {
  for (int64_t i = m0; i < m1; ++i) {
    const uint8_t* ar = a + i * p.k;
    for (int64_t j = 0; j < p.n; ++j) {
      const int8_t* br = b + j * p.k;
      int32_t s = 0;
      for (int64_t t = 0; t < p.k; ++t) s += int32_t(ar[t]) * int32_t(br[t]);
      c[i * p.n + j] = s;
    }
  }
}

}  // namespace

void qgemm_u8s8(const QgemmParams& p, const uint8_t* a, const int8_t* b, int32_t* c) {
#ifdef GRANQ_QGEMM_VNNI
  // b packed as [column block of 16][k group of 4][16 columns][4 k], zero padded: one 64-byte vector per
  // (block, group), the s8 operand of vpdpbusd; a row of a supplies the u8 operand, 4 k at a time, broadcast.
  const int64_t k4 = (p.k + 3) / 4, n16 = (p.n + 15) / 16;
  std::vector<int8_t> packed(size_t(n16 * k4 * 64), 0);
  for (int64_t j = 0; j < p.n; ++j)
    for (int64_t t = 0; t < p.k; ++t) packed[size_t(((j / 16) * k4 + t / 4) * 64 + (j % 16) * 4 + t % 4)] = b[j * p.k + t];
  // Four rows of a per pass, so each packed b vector is loaded once for four vpdpbusd.
  constexpr int64_t kRows = 4;
  const int64_t blocks = (p.m + kRows - 1) / kRows;
  parallel_for(
      blocks,
      [&](int64_t b0, int64_t b1) {
        std::vector<uint8_t> rows(size_t(kRows * k4 * 4), 0);  // the rows of a, zero padded to whole k groups
        for (int64_t blk = b0; blk < b1; ++blk) {
          const int64_t i0 = blk * kRows, nr = std::min(kRows, p.m - i0);
          std::fill(rows.begin(), rows.end(), uint8_t(0));
          for (int64_t r = 0; r < nr; ++r) std::memcpy(rows.data() + r * k4 * 4, a + (i0 + r) * p.k, size_t(p.k));
          for (int64_t jb = 0; jb < n16; ++jb) {
            const int8_t* pk = packed.data() + jb * k4 * 64;
            __m512i acc[kRows] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
            for (int64_t g = 0; g < k4; ++g) {
              const __m512i w = _mm512_loadu_si512(pk + g * 64);
              for (int64_t r = 0; r < kRows; ++r) {
                int32_t four;
                std::memcpy(&four, rows.data() + r * k4 * 4 + g * 4, 4);
                acc[r] = _mm512_dpbusd_epi32(acc[r], _mm512_set1_epi32(four), w);
              }
            }
            const int64_t cols = std::min<int64_t>(16, p.n - jb * 16);
            for (int64_t r = 0; r < nr; ++r) _mm512_mask_storeu_epi32(c + (i0 + r) * p.n + jb * 16, __mmask16((1u << cols) - 1), acc[r]);
          }
        }
      },
      1);
#else
  parallel_for(p.m, [&](int64_t m0, int64_t m1) { qgemm_rows_ref(p, a, b, c, m0, m1); }, 1);
#endif
}

}  // namespace granq
