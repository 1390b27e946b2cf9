// Single-threaded gemm building blocks shared by gemm.cc and conv2d*.cc (BLIS-style: packed panels + one microkernel).
// Packed A: MR-row panels, each kc x MR (column p holds rows i..i+MR). Packed B: one kc x NR micro-panel.
// Every output element is summed over k in increasing order, in KC blocks fixed by k alone, so results never depend
// on how callers split the work across threads.
#pragma once
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace granq {
namespace gemm_detail {

constexpr int64_t kMR = 8;    // rows per microkernel tile (broadcast from packed A)
constexpr int64_t kNR = 32;   // columns per tile: two 16-float vectors
constexpr int64_t kKC = 256;  // k-block: keeps one packed B micro-panel (kc x NR) in L1

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// K split into equal blocks of at most kKC (e.g. 288 -> 2 x 144, not 256 + 32). Block b covers [kc_begin(b), kc_begin(b+1)).
inline int64_t kc_blocks(int64_t k) { return (k + kKC - 1) / kKC; }
inline int64_t kc_begin(int64_t k, int64_t b) { return k * b / kc_blocks(k); }

// Packs op(A) rows [0, m), k in [0, kc) where element (i, p) is a[i*rs + p*cs], into ceil(m/MR) zero-padded panels.
void pack_a(int64_t m, int64_t kc, const float* a, int64_t rs, int64_t cs, float* dst);
// Packs B columns [0, nr), nr <= NR, k in [0, kc), element (p, j) at b[p*rs + j*cs], into one zero-padded micro-panel.
void pack_b(int64_t kc, int64_t nr, const float* b, int64_t rs, int64_t cs, float* dst);
// C[0..m, 0..nr) (= or +=) packed A (all its panels) . packed B micro-panel. C is row-major with leading dim ldc.
void gemm_panel(int64_t m, int64_t kc, const float* pa, const float* pb, float* c, int64_t ldc, int64_t nr, bool acc);
// C[m, n] (= or +=) A . B for strided A and B, one thread. Uses thread_scratch slots 0 (B panel) and 1 (A pack).
void gemm_st(int64_t m, int64_t n, int64_t k, const float* a, int64_t rsa, int64_t csa, const float* b, int64_t rsb,
             int64_t csb, float* c, int64_t ldc, bool acc);

#if defined(__AVX512F__)
// Writes (acc: adds to) an MR x 32 accumulator tile c0|c1 to C rows [0, mr), columns [0, nr); lanes past nr untouched.
inline void store_tile(__m512* c0, __m512* c1, float* c, int64_t ldc, int64_t mr, int64_t nr, bool acc) {
  const __mmask16 m0 = nr >= 16 ? __mmask16(0xffff) : __mmask16((1u << nr) - 1);
  const __mmask16 m1 = nr <= 16 ? __mmask16(0) : nr >= 32 ? __mmask16(0xffff) : __mmask16((1u << (nr - 16)) - 1);
#pragma GCC unroll 8
  for (int i = 0; i < kMR; ++i) {
    if (i >= mr) break;  // compile-time register indices, runtime row count
    float* ci = c + i * ldc;
    if (acc) {
      c0[i] = _mm512_add_ps(c0[i], _mm512_maskz_loadu_ps(m0, ci));
      c1[i] = _mm512_add_ps(c1[i], _mm512_maskz_loadu_ps(m1, ci + 16));
    }
    _mm512_mask_storeu_ps(ci, m0, c0[i]);
    _mm512_mask_storeu_ps(ci + 16, m1, c1[i]);
  }
}

// The one MR x 32 microkernel: for p in [0, k), load_b(p, b0, b1) gives step p's two B vectors and the MR
// accumulator rows c0|c1 take pa[p * MR + i] * (b0|b1) (A packed by pack_a); then the tile is stored (acc: added)
// to C rows [0, mr), columns [0, nr). Its callers differ only in where B comes from: a packed micro-panel (gemm)
// or the phase planes of an image (the direct convolution).
template <class LoadB>
inline void micro_tile(int64_t k, const float* pa, LoadB load_b, float* c, int64_t ldc, int64_t mr, int64_t nr,
                       bool acc) {
  __m512 c0[kMR], c1[kMR];
#pragma GCC unroll 8
  for (int i = 0; i < kMR; ++i) c0[i] = c1[i] = _mm512_setzero_ps();
  for (int64_t p = 0; p < k; ++p) {
    __m512 b0, b1;
    load_b(p, b0, b1);
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
#endif

}  // namespace gemm_detail
}  // namespace granq
