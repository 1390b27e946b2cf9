// Elementwise kernels: unary forward/backward, broadcasting binary ops, axpby and strided copy.
// Work is split into fixed blocks (parallel_for_blocks), so which elements a vector body or a scalar tail handles
// never depends on the thread count: results are bit-identical for any GRANQ_THREADS.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels.h"

namespace granq {
namespace {

// Each block works on its own copy of f: a capture (leaky_relu's alpha) read through a reference could alias y, so
// GCC reloaded it every element and kept the loop scalar (leaky_relu ran 40x slower than relu).
template <class F>
void map1(int64_t len, const float* x, float* y, F f) {
  parallel_for_blocks(len, [&](int64_t b, int64_t e) {
    const F fl = f;
    const float* __restrict xp = x;
    float* __restrict yp = y;
    for (int64_t i = b; i < e; ++i) yp[i] = fl(xp[i]);
  });
}

template <class F>
void map2(int64_t len, const float* u, const float* v, float* y, F f) {
  if (y == v) {  // in place over v (a backward writing dx over dy): v is read and written through one pointer
    parallel_for_blocks(len, [&](int64_t b, int64_t e) {
      const F fl = f;
      const float* __restrict up = u;
      float* __restrict yp = y;
      for (int64_t i = b; i < e; ++i) yp[i] = fl(up[i], yp[i]);
    });
    return;
  }
  parallel_for_blocks(len, [&](int64_t b, int64_t e) {
    const F fl = f;
    const float* __restrict up = u;
    const float* __restrict vp = v;
    float* __restrict yp = y;
    for (int64_t i = b; i < e; ++i) yp[i] = fl(up[i], vp[i]);
  });
}

template <BinaryOp op>
inline float apply(float a, float b) {
  if constexpr (op == BinaryOp::add) return a + b;
  if constexpr (op == BinaryOp::sub) return a - b;
  if constexpr (op == BinaryOp::mul) return a * b;
  return a / b;
}

// One run along the innermost (collapsed) dim; the unit-stride and broadcast cases get their own loops.
template <BinaryOp op>
void binary_run(const float* a, int64_t as, const float* b, int64_t bs, float* __restrict y, int64_t n) {
  if (as == 1 && bs == 1) {
    const float* __restrict ap = a;
    const float* __restrict bp = b;
    for (int64_t i = 0; i < n; ++i) y[i] = apply<op>(ap[i], bp[i]);
  } else if (as == 1 && bs == 0) {
    const float* __restrict ap = a;
    const float bv = *b;
    for (int64_t i = 0; i < n; ++i) y[i] = apply<op>(ap[i], bv);
  } else if (as == 0 && bs == 1) {
    const float* __restrict bp = b;
    const float av = *a;
    for (int64_t i = 0; i < n; ++i) y[i] = apply<op>(av, bp[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = apply<op>(a[i * as], b[i * bs]);
  }
}

// Shape with size-1 dims dropped and neighbours merged where both operands stay linear; dim 3 is innermost.
struct Collapsed {
  int nd = 0;
  int64_t shape[4], sa[4], sb[4];  // index 0 = innermost
};

Collapsed collapse(const int64_t shape[4], const int64_t sa[4], const int64_t sb[4]) {
  Collapsed c;
  for (int i = 3; i >= 0; --i) {
    if (shape[i] == 1) continue;
    if (c.nd > 0) {
      const int k = c.nd - 1;
      if (sa[i] == c.sa[k] * c.shape[k] && sb[i] == c.sb[k] * c.shape[k]) {
        c.shape[k] *= shape[i];
        continue;
      }
    }
    c.shape[c.nd] = shape[i];
    c.sa[c.nd] = sa[i];
    c.sb[c.nd] = sb[i];
    ++c.nd;
  }
  if (c.nd == 0) {
    c.nd = 1;
    c.shape[0] = 1;
    c.sa[0] = c.sb[0] = 0;
  }
  return c;
}

// Walks the contiguous output indices [0, len) of a collapsed shape in runs along its innermost dimension, in
// parallel blocks: fn(i, cnt, ao, bo) for outputs [i, i + cnt), whose two inputs start at offsets ao and bo and step
// by c.sa[0] and c.sb[0].
template <class Fn>
void for_each_run(const Collapsed& c, int64_t len, Fn&& fn) {
  const int64_t inner = c.shape[0];
  parallel_for_blocks(len, [&](int64_t begin, int64_t end) {
    int64_t i = begin;
    while (i < end) {
      const int64_t j = i % inner;
      int64_t row = i / inner, ao = j * c.sa[0], bo = j * c.sb[0];
      for (int d = 1; d < c.nd; ++d) {
        const int64_t q = row % c.shape[d];
        row /= c.shape[d];
        ao += q * c.sa[d];
        bo += q * c.sb[d];
      }
      const int64_t cnt = std::min(inner - j, end - i);
      fn(i, cnt, ao, bo);
      i += cnt;
    }
  });
}

template <BinaryOp op>
void binary_impl(const Collapsed& c, int64_t len, const float* a, const float* b, float* y) {
  for_each_run(c, len, [&](int64_t i, int64_t cnt, int64_t ao, int64_t bo) {
    binary_run<op>(a + ao, c.sa[0], b + bo, c.sb[0], y + i, cnt);
  });
}

}  // namespace

void unary_fwd(UnaryOp op, int64_t len, const float* x, float* y, float alpha, float beta) {
  switch (op) {
    case UnaryOp::relu: return map1(len, x, y, [](float v) { return v < 0.f ? 0.f : v; });  // NaN passes, as torch
    case UnaryOp::leaky_relu: return map1(len, x, y, [=](float v) { return v > 0.f ? v : v * alpha; });
    case UnaryOp::tanh: return map1(len, x, y, [](float v) { return std::tanh(v); });
    case UnaryOp::exp: return map1(len, x, y, [](float v) { return std::exp(v); });
    case UnaryOp::log: return map1(len, x, y, [](float v) { return std::log(v); });
    case UnaryOp::affine: return map1(len, x, y, [=](float v) { return alpha * v + beta; });
    case UnaryOp::sqrt: return map1(len, x, y, [](float v) { return std::sqrt(v); });
    case UnaryOp::hardtanh:  // NaN passes, as torch
      return map1(len, x, y, [=](float v) { return v < alpha ? alpha : (v > beta ? beta : v); });
  }
}

void unary_bwd(UnaryOp op, int64_t len, const float* x, const float* y, const float* dy, float* dx, float alpha,
               float beta) {
  switch (op) {
    case UnaryOp::relu: return map2(len, x, dy, dx, [](float v, float g) { return v > 0.f ? g : 0.f; });
    case UnaryOp::leaky_relu: return map2(len, x, dy, dx, [=](float v, float g) { return v > 0.f ? g : g * alpha; });
    case UnaryOp::tanh: return map2(len, y, dy, dx, [](float t, float g) { return g * (1.f - t * t); });
    case UnaryOp::exp: return map2(len, y, dy, dx, [](float t, float g) { return g * t; });
    case UnaryOp::log: return map2(len, x, dy, dx, [](float v, float g) { return g / v; });
    case UnaryOp::affine:
      if (dx == dy) return map2(len, dy, dx, dx, [=](float, float g) { return g * alpha; });
      return map1(len, dy, dx, [=](float g) { return g * alpha; });
    case UnaryOp::sqrt: return map2(len, y, dy, dx, [](float t, float g) { return g / (2.f * t); });
    case UnaryOp::hardtanh:
      return map2(len, x, dy, dx, [=](float v, float g) { return v > alpha && v < beta ? g : 0.f; });
  }
}

void binary_fwd(BinaryOp op, const Strided4& s, const float* a, const float* b, float* y) {
  const int64_t len = s.shape[0] * s.shape[1] * s.shape[2] * s.shape[3];
  const Collapsed c = collapse(s.shape, s.a_stride, s.b_stride);
  switch (op) {
    case BinaryOp::add: return binary_impl<BinaryOp::add>(c, len, a, b, y);
    case BinaryOp::sub: return binary_impl<BinaryOp::sub>(c, len, a, b, y);
    case BinaryOp::mul: return binary_impl<BinaryOp::mul>(c, len, a, b, y);
    case BinaryOp::div: return binary_impl<BinaryOp::div>(c, len, a, b, y);
  }
}

void add_relu_fwd(int64_t len, const float* a, const float* b, float* y) {
  map2(len, a, b, y, [](float u, float v) {
    const float t = u + v;
    return t < 0.f ? 0.f : t;  // relu's own form: NaN passes
  });
}

void axpby(int64_t len, float alpha, const float* x, float beta, float* y) {
  // beta == 0 overwrites: y may hold garbage (NaN * 0 would be NaN).
  if (beta == 0.f) return map1(len, x, y, [=](float v) { return alpha * v; });
  parallel_for_blocks(len, [&, alpha, beta](int64_t b, int64_t e) {
    const float* __restrict xp = x;
    float* __restrict yp = y;
    for (int64_t i = b; i < e; ++i) yp[i] = alpha * xp[i] + beta * yp[i];
  });
}

void copy_strided(const int64_t shape[4], const int64_t stride[4], const float* x, float* y) {
  const int64_t len = shape[0] * shape[1] * shape[2] * shape[3];
  const int64_t contiguous[4] = {shape[1] * shape[2] * shape[3], shape[2] * shape[3], shape[3], 1};
  const Collapsed c = collapse(shape, stride, contiguous);
  const int64_t st = c.sa[0];
  for_each_run(c, len, [&](int64_t i, int64_t cnt, int64_t xo, int64_t) {
    const float* xp = x + xo;
    float* __restrict yp = y + i;
    if (st == 1) {
      std::memcpy(yp, xp, size_t(cnt) * sizeof(float));
    } else if (st == 0) {
      std::fill(yp, yp + cnt, *xp);
    } else {
      for (int64_t k = 0; k < cnt; ++k) yp[k] = xp[k * st];
    }
  });
}

void phase_merge2(int64_t rows, int64_t h, int64_t w, const float* x, float* y) {
  const int64_t hw = h * w, plane = rows * hw;
  parallel_for(rows * h, [&](int64_t begin, int64_t end) {
    for (int64_t ri = begin; ri < end; ++ri) {  // ri = r * h + i: output rows 2i and 2i + 1 of plane r
      const int64_t r = ri / h, i = ri % h;
      for (int64_t a = 0; a < 2; ++a) {
        const float* __restrict p0 = x + (2 * a) * plane + r * hw + i * w;
        const float* __restrict p1 = p0 + plane;
        float* __restrict d = y + (r * 2 * h + 2 * i + a) * 2 * w;
        for (int64_t j = 0; j < w; ++j) {
          d[2 * j] = p0[j];
          d[2 * j + 1] = p1[j];
        }
      }
    }
  }, 16);
}

void phase_split2(int64_t rows, int64_t h, int64_t w, const float* x, float* y, float* framed, int64_t channels) {
  const int64_t hw = h * w, plane = rows * hw, fw = w + 1, fplane = (h + 1) * fw;
  parallel_for(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      float* f[4] = {nullptr, nullptr, nullptr, nullptr};
      if (framed) {
        const int64_t n = r / channels, c = r % channels;
        for (int64_t ab = 0; ab < 4; ++ab) {
          f[ab] = framed + ((n * 4 + ab) * channels + c) * fplane;
          // The frame: the row and the column that phase (a, b) does not cover.
          const int64_t a = ab / 2, b = ab % 2;
          std::fill(f[ab] + (a ? 0 : h) * fw, f[ab] + (a ? 0 : h) * fw + fw, 0.f);
          for (int64_t i = 0; i <= h; ++i) f[ab][i * fw + (b ? 0 : w)] = 0.f;
        }
      }
      for (int64_t i = 0; i < h; ++i)
        for (int64_t a = 0; a < 2; ++a) {
          const float* __restrict s = x + (r * 2 * h + 2 * i + a) * 2 * w;
          float* __restrict d0 = y + (2 * a) * plane + r * hw + i * w;
          float* __restrict d1 = d0 + plane;
          for (int64_t j = 0; j < w; ++j) {
            d0[j] = s[2 * j];
            d1[j] = s[2 * j + 1];
          }
          if (framed) {
            std::memcpy(f[2 * a] + (i + a) * fw, d0, size_t(w) * sizeof(float));
            std::memcpy(f[2 * a + 1] + (i + a) * fw + 1, d1, size_t(w) * sizeof(float));
          }
        }
    }
  }, 4);
}

}  // namespace granq
