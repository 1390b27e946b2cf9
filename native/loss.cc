// Row-wise softmax / log-softmax (forward and backward) and embedding lookup. Rows are independent and each row's
// sums run in double in index order, so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels.h"

namespace granq {
namespace {

inline int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, cols)); }

}  // namespace

void softmax_fwd(int64_t rows, int64_t cols, bool log, const float* x, float* y) {
  parallel_for(
      rows,
      [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
          const float* xr = x + r * cols;
          float* yr = y + r * cols;
          float mx = xr[0];
          for (int64_t i = 1; i < cols; ++i) mx = xr[i] > mx ? xr[i] : mx;
          double sum = 0;
          if (log) {
            for (int64_t i = 0; i < cols; ++i) sum += double(std::exp(xr[i] - mx));
            const float lse = float(std::log(sum));
            for (int64_t i = 0; i < cols; ++i) yr[i] = (xr[i] - mx) - lse;
          } else {
            for (int64_t i = 0; i < cols; ++i) {
              yr[i] = std::exp(xr[i] - mx);
              sum += double(yr[i]);
            }
            const float inv = float(1.0 / sum);
            for (int64_t i = 0; i < cols; ++i) yr[i] *= inv;
          }
        }
      },
      row_grain(cols));
}

void softmax_bwd(int64_t rows, int64_t cols, bool log, const float* y, const float* dy, float* dx) {
  parallel_for(
      rows,
      [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
          const float* yr = y + r * cols;
          const float* gr = dy + r * cols;
          float* dr = dx + r * cols;
          double sum = 0;
          if (log) {
            // dx = dy - softmax * sum(dy), softmax = exp(log-softmax)
            for (int64_t i = 0; i < cols; ++i) sum += double(gr[i]);
            const float s = float(sum);
            for (int64_t i = 0; i < cols; ++i) dr[i] = gr[i] - std::exp(yr[i]) * s;
          } else {
            // dx = y * (dy - sum(dy * y))
            for (int64_t i = 0; i < cols; ++i) sum += double(gr[i]) * double(yr[i]);
            const float s = float(sum);
            for (int64_t i = 0; i < cols; ++i) dr[i] = yr[i] * (gr[i] - s);
          }
        }
      },
      row_grain(cols));
}

void embedding_fwd(int64_t n, int64_t num, int64_t dim, const int32_t* idx, const float* weight, float* y) {
  // Indices were range-checked in addon.cc.
  parallel_for(
      n,
      [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i)
          std::memcpy(y + i * dim, weight + int64_t(idx[i]) * dim, size_t(dim) * sizeof(float));
      },
      row_grain(dim));
}

void embedding_bwd(int64_t n, int64_t num, int64_t dim, const int32_t* idx, const float* dy, float* dweight) {
  // Split by columns of dweight: every thread walks all indices in order, so each element accumulates in index
  // order whatever the thread count.
  const int64_t kCols = 64;
  const int64_t blocks = (dim + kCols - 1) / kCols;
  parallel_for(
      blocks,
      [&](int64_t b, int64_t e) {
        const int64_t c0 = b * kCols, c1 = std::min(dim, e * kCols);
        for (int64_t i = 0; i < n; ++i) {
          const float* __restrict g = dy + i * dim;
          float* __restrict w = dweight + int64_t(idx[i]) * dim;
          for (int64_t j = c0; j < c1; ++j) w[j] += g[j];
        }
      },
      std::max<int64_t>(1, 32768 / std::max<int64_t>(1, n * kCols)));
}

}  // namespace granq
