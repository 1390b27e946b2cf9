// The only .cc file that sees Node-API (with args.h, its argument checker). Every export takes one params object;
// each field is checked through Args (type, integer range, typed-array kind and exact length) so kernels receive only
// consistent pointers. A bad argument becomes a JS TypeError/RangeError naming the function, the field, what was
// expected and what came.
#include <napi.h>
#include <algorithm>

#include <cmath>
#include <string>

#include "alloc.h"
#include "args.h"
#include "kernels.h"

namespace granq {
namespace {

// ---------- threads ----------
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  if (info.Length() != 1 || !info[0].IsNumber())
    throw Napi::TypeError::New(info.Env(), "setThreads: expected one integer");
  int n = info[0].As<Napi::Number>().Int32Value();
  if (n < 1 || n > 256) throw Napi::RangeError::New(info.Env(), "setThreads: expected an integer in [1, 256]");
  set_num_threads(n);
  return info.Env().Undefined();
}
Napi::Value NumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), num_threads()); }

// ---------- gemm ----------
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Args a(info, "gemm");
  GemmParams p;
  p.m = a.dim("m");
  p.n = a.dim("n");
  p.k = a.dim("k");
  p.trans_a = a.flag("transA");
  p.trans_b = a.flag("transB");
  p.beta = a.num("beta");
  if (p.beta != 0.f && p.beta != 1.f) a.fail_range("beta", "0 or 1", std::to_string(p.beta));
  p.a = a.f32("a", a.prod({p.m, p.k}));
  p.b = a.f32("b", a.prod({p.k, p.n}));
  p.c = a.f32("c", a.prod({p.m, p.n}));
  gemm(p);
  return info.Env().Undefined();
}

// ---------- conv2d ----------
Conv2dShape conv_shape(Args& a) {
  Conv2dShape s;
  s.n = a.dim("n");
  s.ic = a.dim("ic");
  s.ih = a.dim("ih");
  s.iw = a.dim("iw");
  s.oc = a.dim("oc");
  s.kh = a.dim("kh");
  s.kw = a.dim("kw");
  s.stride = a.dim("stride");
  s.pad = a.dim("pad", 0, 1 << 20);
  s.oh = a.dim("oh");
  s.ow = a.dim("ow");
  s.groups = a.has("groups") ? a.dim("groups") : 1;
  if (s.ic % s.groups != 0 || s.oc % s.groups != 0)
    a.fail_range("groups", "a divisor of ic (" + std::to_string(s.ic) + ") and oc (" + std::to_string(s.oc) + ")",
                 std::to_string(s.groups));
  if (s.pad >= s.kh || s.pad >= s.kw) a.fail("pad must be smaller than the kernel");
  if (a.has("padTop") || a.has("padLeft")) {
    // Top/left padding of its own: the bottom/right padding is what oh/ow leave, each in [0, kernel - 1].
    s.pad_t = a.has("padTop") ? a.dim("padTop", 0, s.kh - 1) : s.pad;
    s.pad_l = a.has("padLeft") ? a.dim("padLeft", 0, s.kw - 1) : s.pad;
    if (s.stride != 1 || s.groups != 1) a.fail("padTop/padLeft need stride 1 and groups 1");
    const int64_t pb = s.oh - 1 + s.kh - s.pad_t - s.ih, pr = s.ow - 1 + s.kw - s.pad_l - s.iw;
    if (pb < 0 || pb >= s.kh || pr < 0 || pr >= s.kw)
      a.fail("oh/ow: with padTop " + std::to_string(s.pad_t) + " and padLeft " + std::to_string(s.pad_l) +
             " expected " + std::to_string(s.ih + s.pad_t - s.kh + 1) + ".." + std::to_string(s.ih + s.pad_t) + " x " +
             std::to_string(s.iw + s.pad_l - s.kw + 1) + ".." + std::to_string(s.iw + s.pad_l) + ", got " +
             std::to_string(s.oh) + "x" + std::to_string(s.ow));
    return s;
  }
  int64_t eh = s.ih + 2 * s.pad - s.kh, ew = s.iw + 2 * s.pad - s.kw;
  if (eh < 0 || ew < 0) a.fail("kernel larger than the padded input");
  if (s.oh != eh / s.stride + 1 || s.ow != ew / s.stride + 1)
    a.fail("oh/ow: expected " + std::to_string(eh / s.stride + 1) + "x" + std::to_string(ew / s.stride + 1) + ", got " +
           std::to_string(s.oh) + "x" + std::to_string(s.ow));
  return s;
}

Napi::Value Conv2dFwd(const Napi::CallbackInfo& info) {
  Args a(info, "conv2dFwd");
  Conv2dShape s = conv_shape(a);
  const float* x = a.f32("x", a.prod({s.n, s.ic, s.ih, s.iw}));
  const float* w = a.f32("weight", a.prod({s.oc, s.ic / s.groups, s.kh, s.kw}));
  const float* b = a.f32_opt("bias", s.oc);
  float* y = a.f32("y", a.prod({s.n, s.oc, s.oh, s.ow}));
  conv2d_fwd(s, x, w, b, y);
  return info.Env().Undefined();
}

Napi::Value Conv2dBwdData(const Napi::CallbackInfo& info) {
  Args a(info, "conv2dBwdData");
  Conv2dShape s = conv_shape(a);
  const float* dy = a.f32("dy", a.prod({s.n, s.oc, s.oh, s.ow}));
  const float* w = a.f32("weight", a.prod({s.oc, s.ic / s.groups, s.kh, s.kw}));
  float* dx = a.f32("dx", a.prod({s.n, s.ic, s.ih, s.iw}));
  conv2d_bwd_data(s, dy, w, dx);
  return info.Env().Undefined();
}

Napi::Value Conv2dBwdWeight(const Napi::CallbackInfo& info) {
  Args a(info, "conv2dBwdWeight");
  Conv2dShape s = conv_shape(a);
  const float* x = a.f32("x", a.prod({s.n, s.ic, s.ih, s.iw}));
  const float* dy = a.f32("dy", a.prod({s.n, s.oc, s.oh, s.ow}));
  float* dw = a.f32("dweight", a.prod({s.oc, s.ic / s.groups, s.kh, s.kw}));
  float* db = a.f32_opt("dbias", s.oc);
  conv2d_bwd_weight(s, x, dy, dw, db);
  return info.Env().Undefined();
}

// ---------- batchnorm ----------
BatchNormShape bn_shape(Args& a) {
  BatchNormShape s;
  s.n = a.dim("n");
  s.c = a.dim("c");
  s.hw = a.dim("hw");
  return s;
}

Napi::Value BatchNormFwdTrain(const Napi::CallbackInfo& info) {
  Args a(info, "batchNormFwdTrain");
  BatchNormShape s = bn_shape(a);
  int64_t len = a.prod({s.n, s.c, s.hw});
  const float* x = a.f32("x", len);
  const float* g = a.f32_opt("gamma", s.c);
  const float* b = a.f32_opt("beta", s.c);
  float eps = a.num("eps"), momentum = a.num("momentum");
  float* rm = a.f32_opt("runningMean", s.c);
  float* rv = a.f32_opt("runningVar", s.c);
  if ((rm == nullptr) != (rv == nullptr)) a.fail("runningMean and runningVar: give both or neither");
  const bool relu = a.flag("relu");
  float* y = a.f32("y", len);
  float* sm = a.f32("saveMean", s.c);
  float* si = a.f32("saveInvstd", s.c);
  batchnorm_fwd_train(s, x, g, b, eps, momentum, rm, rv, relu, y, sm, si);
  return info.Env().Undefined();
}

Napi::Value BatchNormFwdEval(const Napi::CallbackInfo& info) {
  Args a(info, "batchNormFwdEval");
  BatchNormShape s = bn_shape(a);
  int64_t len = a.prod({s.n, s.c, s.hw});
  const float* x = a.f32("x", len);
  const float* g = a.f32_opt("gamma", s.c);
  const float* b = a.f32_opt("beta", s.c);
  const float* rm = a.f32("runningMean", s.c);
  const float* rv = a.f32("runningVar", s.c);
  float eps = a.num("eps");
  const bool relu = a.flag("relu");
  float* y = a.f32("y", len);
  batchnorm_fwd_eval(s, x, g, b, rm, rv, eps, relu, y);
  return info.Env().Undefined();
}

Napi::Value BatchNormBwdTrain(const Napi::CallbackInfo& info) {
  Args a(info, "batchNormBwdTrain");
  BatchNormShape s = bn_shape(a);
  int64_t len = a.prod({s.n, s.c, s.hw});
  const float* dy = a.f32("dy", len);
  const float* y = a.f32_opt("y", len);
  const float* x = a.f32("x", len);
  const float* sm = a.f32("saveMean", s.c);
  const float* si = a.f32("saveInvstd", s.c);
  const float* g = a.f32_opt("gamma", s.c);
  float* dx = a.f32_opt("dx", len);
  float* dg = a.f32_opt("dgamma", s.c);
  float* db = a.f32_opt("dbeta", s.c);
  if (y && y == dx) a.fail("y (the fused ReLU's output) and dx must be different buffers");
  batchnorm_bwd_train(s, dy, y, x, sm, si, g, dx, dg, db);
  return info.Env().Undefined();
}

Napi::Value BatchNormBwdEval(const Napi::CallbackInfo& info) {
  Args a(info, "batchNormBwdEval");
  BatchNormShape s = bn_shape(a);
  int64_t len = a.prod({s.n, s.c, s.hw});
  const float* dy = a.f32("dy", len);
  const float* y = a.f32_opt("y", len);
  const float* x = a.f32("x", len);
  const float* rm = a.f32("runningMean", s.c);
  const float* rv = a.f32("runningVar", s.c);
  float eps = a.num("eps");
  const float* g = a.f32_opt("gamma", s.c);
  float* dx = a.f32_opt("dx", len);
  float* dg = a.f32_opt("dgamma", s.c);
  float* db = a.f32_opt("dbeta", s.c);
  if (y && y == dx) a.fail("y (the fused ReLU's output) and dx must be different buffers");
  batchnorm_bwd_eval(s, dy, y, x, rm, rv, eps, g, dx, dg, db);
  return info.Env().Undefined();
}

Napi::Value ChannelStatsFwd(const Napi::CallbackInfo& info) {
  Args a(info, "channelStatsFwd");
  BatchNormShape s = bn_shape(a);
  const float* x = a.f32("x", a.prod({s.n, s.c, s.hw}));
  float* stats = a.f32("stats", a.prod({2, s.c}));
  channel_stats_fwd(s, x, stats);
  return info.Env().Undefined();
}

Napi::Value ChannelStatsBwd(const Napi::CallbackInfo& info) {
  Args a(info, "channelStatsBwd");
  BatchNormShape s = bn_shape(a);
  int64_t len = a.prod({s.n, s.c, s.hw});
  const float* x = a.f32("x", len);
  const float* stats = a.f32("stats", a.prod({2, s.c}));
  const float* dstats = a.f32("dstats", 2 * s.c);
  float* dx = a.f32("dx", len);
  channel_stats_bwd(s, x, stats, dstats, dx);
  return info.Env().Undefined();
}

// ---------- eltwise ----------
UnaryOp unary_op(Args& a) { return static_cast<UnaryOp>(a.dim("op", 0, kUnaryOpCount - 1)); }

Napi::Value UnaryFwd(const Napi::CallbackInfo& info) {
  Args a(info, "unaryFwd");
  UnaryOp op = unary_op(a);
  int64_t len = a.dim("len", 0);
  const float* x = a.f32("x", len);
  float* y = a.f32("y", len);
  unary_fwd(op, len, x, y, a.num("alpha"), a.num("beta"));
  return info.Env().Undefined();
}

Napi::Value UnaryBwd(const Napi::CallbackInfo& info) {
  Args a(info, "unaryBwd");
  UnaryOp op = unary_op(a);
  int64_t len = a.dim("len", 0);
  const float* x = a.f32("x", len);
  const float* y = a.f32("y", len);
  const float* dy = a.f32("dy", len);
  float* dx = a.f32("dx", len);
  unary_bwd(op, len, x, y, dy, dx, a.num("alpha"), a.num("beta"));
  return info.Env().Undefined();
}

// Largest flat index + 1 reachable through `stride` over `shape`.
int64_t strided_extent(const int64_t shape[4], const int64_t stride[4]) {
  int64_t last = 0;
  for (int i = 0; i < 4; ++i) last += (shape[i] - 1) * stride[i];
  return last + 1;
}

Napi::Value BinaryFwd(const Napi::CallbackInfo& info) {
  Args a(info, "binaryFwd");
  auto op = static_cast<BinaryOp>(a.dim("op", 0, kBinaryOpCount - 1));
  Strided4 s;
  a.ints4("shape", s.shape, 1);
  a.ints4("aStride", s.a_stride, 0);
  a.ints4("bStride", s.b_stride, 0);
  int64_t len = a.prod({s.shape[0], s.shape[1], s.shape[2], s.shape[3]});
  const float* x = a.f32_min("a", strided_extent(s.shape, s.a_stride));
  const float* y2 = a.f32_min("b", strided_extent(s.shape, s.b_stride));
  float* y = a.f32("y", len);
  binary_fwd(op, s, x, y2, y);
  return info.Env().Undefined();
}

Napi::Value AddReluFwd(const Napi::CallbackInfo& info) {
  Args a(info, "addReluFwd");
  int64_t len = a.dim("len", 0);
  const float* u = a.f32("a", len);
  const float* v = a.f32("b", len);
  float* y = a.f32("y", len);
  add_relu_fwd(len, u, v, y);
  return info.Env().Undefined();
}

Napi::Value Axpby(const Napi::CallbackInfo& info) {
  Args a(info, "axpby");
  int64_t len = a.dim("len", 0);
  const float* x = a.f32("x", len);
  float* y = a.f32("y", len);
  axpby(len, a.num("alpha"), x, a.num("beta"), y);
  return info.Env().Undefined();
}

Napi::Value CopyStrided(const Napi::CallbackInfo& info) {
  Args a(info, "copyStrided");
  int64_t shape[4], stride[4];
  a.ints4("shape", shape, 1);
  a.ints4("stride", stride, 0);
  const float* x = a.f32_min("x", strided_extent(shape, stride));
  float* y = a.f32("y", a.prod({shape[0], shape[1], shape[2], shape[3]}));
  copy_strided(shape, stride, x, y);
  return info.Env().Undefined();
}

// phaseMerge2 / phaseSplit2: rows, h, w and the two [4 * rows * h * w] arrays x and y.
struct PhaseArgs {
  int64_t rows, h, w;
  const float* x;
  float* y;
};
PhaseArgs phase_args(Args& a) {
  const int64_t rows = a.dim("rows"), h = a.dim("h"), w = a.dim("w"), len = a.prod({4, rows, h, w});
  return {rows, h, w, a.f32("x", len), a.f32("y", len)};
}

Napi::Value PhaseMerge2(const Napi::CallbackInfo& info) {
  Args a(info, "phaseMerge2");
  const PhaseArgs p = phase_args(a);
  phase_merge2(p.rows, p.h, p.w, p.x, p.y);
  return info.Env().Undefined();
}

Napi::Value PhaseSplit2(const Napi::CallbackInfo& info) {
  Args a(info, "phaseSplit2");
  const PhaseArgs p = phase_args(a);
  float* framed = nullptr;
  int64_t channels = 1;
  if (a.has("framed")) {
    channels = a.dim("channels");
    if (p.rows % channels != 0) a.fail_range("channels", "a divisor of rows (" + std::to_string(p.rows) + ")", std::to_string(channels));
    framed = a.f32("framed", a.prod({4, p.rows, p.h + 1, p.w + 1}));
  }
  phase_split2(p.rows, p.h, p.w, p.x, p.y, framed, channels);
  return info.Env().Undefined();
}

// ---------- reduce ----------
Napi::Value ReduceFwd(const Napi::CallbackInfo& info) {
  Args a(info, "reduceFwd");
  auto op = static_cast<ReduceOp>(a.dim("op", 0, kReduceOpCount - 1));
  int64_t shape[4];
  bool mask[4];
  a.ints4("shape", shape, 1);
  a.bools4("mask", mask);
  int64_t out = 1;
  for (int i = 0; i < 4; ++i) out *= mask[i] ? 1 : shape[i];
  const float* x = a.f32("x", a.prod({shape[0], shape[1], shape[2], shape[3]}));
  float* y = a.f32("y", out);
  reduce_fwd(op, shape, mask, x, y);
  return info.Env().Undefined();
}

Napi::Value ReduceMinMaxBwd(const Napi::CallbackInfo& info) {
  Args a(info, "reduceMinMaxBwd");
  int64_t shape[4];
  bool mask[4];
  a.ints4("shape", shape, 1);
  a.bools4("mask", mask);
  int64_t out = 1;
  for (int i = 0; i < 4; ++i) out *= mask[i] ? 1 : shape[i];
  int64_t len = a.prod({shape[0], shape[1], shape[2], shape[3]});
  const float* x = a.f32("x", len);
  const float* y = a.f32("y", out);
  const float* dy = a.f32("dy", out);
  float* dx = a.f32("dx", len);
  reduce_minmax_bwd(shape, mask, x, y, dy, dx);
  return info.Env().Undefined();
}

// ---------- pool2d ----------
Pool2dShape pool_shape(Args& a) {
  Pool2dShape s;
  s.n = a.dim("n");
  s.c = a.dim("c");
  s.ih = a.dim("ih");
  s.iw = a.dim("iw");
  s.k = a.dim("k");
  s.stride = a.dim("stride");
  s.oh = a.dim("oh");
  s.ow = a.dim("ow");
  if (s.k > s.ih || s.k > s.iw) a.fail("k: the window is larger than the input");
  if (s.oh != (s.ih - s.k) / s.stride + 1 || s.ow != (s.iw - s.k) / s.stride + 1) a.fail("oh/ow do not match ih/iw, k and stride");
  return s;
}

Napi::Value AvgPool2dFwd(const Napi::CallbackInfo& info) {
  Args a(info, "avgPool2dFwd");
  Pool2dShape s = pool_shape(a);
  const float* x = a.f32("x", a.prod({s.n, s.c, s.ih, s.iw}));
  float* y = a.f32("y", a.prod({s.n, s.c, s.oh, s.ow}));
  avgpool2d_fwd(s, x, y);
  return info.Env().Undefined();
}

Napi::Value AvgPool2dBwd(const Napi::CallbackInfo& info) {
  Args a(info, "avgPool2dBwd");
  Pool2dShape s = pool_shape(a);
  const float* dy = a.f32("dy", a.prod({s.n, s.c, s.oh, s.ow}));
  float* dx = a.f32("dx", a.prod({s.n, s.c, s.ih, s.iw}));
  avgpool2d_bwd(s, dy, dx);
  return info.Env().Undefined();
}

Napi::Value UpsampleNearestFwd(const Napi::CallbackInfo& info) {
  Args a(info, "upsampleNearestFwd");
  int64_t n = a.dim("n"), c = a.dim("c"), ih = a.dim("ih"), iw = a.dim("iw"), sc = a.dim("scale", 1, 64);
  const float* x = a.f32("x", a.prod({n, c, ih, iw}));
  float* y = a.f32("y", a.prod({n, c, ih * sc, iw * sc}));
  upsample_nearest_fwd(n, c, ih, iw, sc, x, y);
  return info.Env().Undefined();
}

Napi::Value UpsampleNearestBwd(const Napi::CallbackInfo& info) {
  Args a(info, "upsampleNearestBwd");
  int64_t n = a.dim("n"), c = a.dim("c"), ih = a.dim("ih"), iw = a.dim("iw"), sc = a.dim("scale", 1, 64);
  const float* dy = a.f32("dy", a.prod({n, c, ih * sc, iw * sc}));
  float* dx = a.f32("dx", a.prod({n, c, ih, iw}));
  upsample_nearest_bwd(n, c, ih, iw, sc, dy, dx);
  return info.Env().Undefined();
}

Napi::Value PadChannelsFwd(const Napi::CallbackInfo& info) {
  Args a(info, "padChannelsFwd");
  int64_t n = a.dim("n"), c = a.dim("c"), hw = a.dim("hw"), before = a.dim("before", 0), after = a.dim("after", 0);
  const float* x = a.f32("x", a.prod({n, c, hw}));
  float* y = a.f32("y", a.prod({n, before + c + after, hw}));
  pad_channels_fwd(n, c, hw, before, after, x, y);
  return info.Env().Undefined();
}

Napi::Value PadChannelsBwd(const Napi::CallbackInfo& info) {
  Args a(info, "padChannelsBwd");
  int64_t n = a.dim("n"), c = a.dim("c"), hw = a.dim("hw"), before = a.dim("before", 0), after = a.dim("after", 0);
  const float* dy = a.f32("dy", a.prod({n, before + c + after, hw}));
  float* dx = a.f32("dx", a.prod({n, c, hw}));
  pad_channels_bwd(n, c, hw, before, after, dy, dx);
  return info.Env().Undefined();
}

// ---------- loss ----------
Napi::Value SoftmaxFwd(const Napi::CallbackInfo& info) {
  Args a(info, "softmaxFwd");
  int64_t rows = a.dim("rows"), cols = a.dim("cols");
  bool log = a.flag("log");
  const float* x = a.f32("x", a.prod({rows, cols}));
  float* y = a.f32("y", rows * cols);
  softmax_fwd(rows, cols, log, x, y);
  return info.Env().Undefined();
}

Napi::Value SoftmaxBwd(const Napi::CallbackInfo& info) {
  Args a(info, "softmaxBwd");
  int64_t rows = a.dim("rows"), cols = a.dim("cols");
  bool log = a.flag("log");
  const float* y = a.f32("y", a.prod({rows, cols}));
  const float* dy = a.f32("dy", rows * cols);
  float* dx = a.f32("dx", rows * cols);
  softmax_bwd(rows, cols, log, y, dy, dx);
  return info.Env().Undefined();
}

const int32_t* checked_indices(Args& a, int64_t n, int64_t num) {
  const int32_t* idx = a.i32("idx", n);
  for (int64_t i = 0; i < n; ++i)
    if (idx[i] < 0 || idx[i] >= num)
      a.fail_range("idx", "indices in [0, " + std::to_string(num) + ")",
                   std::to_string(idx[i]) + " at position " + std::to_string(i));
  return idx;
}

Napi::Value EmbeddingFwd(const Napi::CallbackInfo& info) {
  Args a(info, "embeddingFwd");
  int64_t n = a.dim("n"), num = a.dim("num"), dim = a.dim("dim");
  const int32_t* idx = checked_indices(a, n, num);
  const float* w = a.f32("weight", a.prod({num, dim}));
  float* y = a.f32("y", a.prod({n, dim}));
  embedding_fwd(n, num, dim, idx, w, y);
  return info.Env().Undefined();
}

Napi::Value EmbeddingBwd(const Napi::CallbackInfo& info) {
  Args a(info, "embeddingBwd");
  int64_t n = a.dim("n"), num = a.dim("num"), dim = a.dim("dim");
  const int32_t* idx = checked_indices(a, n, num);
  const float* dy = a.f32("dy", a.prod({n, dim}));
  float* dw = a.f32("dweight", a.prod({num, dim}));
  embedding_bwd(n, num, dim, idx, dy, dw);
  return info.Env().Undefined();
}

// ---------- optim ----------
Napi::Value SgdStep(const Napi::CallbackInfo& info) {
  Args a(info, "sgdStep");
  SgdParams p;
  p.lr = a.num("lr");
  p.momentum = a.num("momentum");
  p.dampening = a.num("dampening");
  p.weight_decay = a.num("weightDecay");
  p.nesterov = a.flag("nesterov");
  p.first_step = a.flag("firstStep");
  Napi::Value pv = info[0].As<Napi::Object>().Get("param");
  if (!pv.IsTypedArray()) a.fail_type("param", "a Float32Array", "something else");
  p.len = int64_t(pv.As<Napi::TypedArray>().ElementLength());
  float* param = a.f32("param", p.len);
  const float* grad = a.f32("grad", p.len);
  float* buf = p.momentum != 0.f ? a.f32("buf", p.len) : a.f32_opt("buf", p.len);
  sgd_step(p, param, grad, buf);
  return info.Env().Undefined();
}

Napi::Value AdamStep(const Napi::CallbackInfo& info) {
  Args a(info, "adamStep");
  AdamParams p;
  p.lr = a.num("lr");
  p.beta1 = a.num("beta1");
  p.beta2 = a.num("beta2");
  p.eps = a.num("eps");
  p.weight_decay = a.num("weightDecay");
  p.step = a.dim("step", 1);
  Napi::Value pv = info[0].As<Napi::Object>().Get("param");
  if (!pv.IsTypedArray()) a.fail_type("param", "a Float32Array", "something else");
  p.len = int64_t(pv.As<Napi::TypedArray>().ElementLength());
  float* param = a.f32("param", p.len);
  const float* grad = a.f32("grad", p.len);
  float* m = a.f32("expAvg", p.len);
  float* v = a.f32("expAvgSq", p.len);
  adam_step(p, param, grad, m, v);
  return info.Env().Undefined();
}

// ---------- quant ----------
Napi::Value QuantRowsFwd(const Napi::CallbackInfo& info) {
  Args a(info, "quantRowsFwd");
  QuantRowsParams p;
  p.rows = a.dim("rows");
  p.cols = a.dim("cols");
  p.bits = int32_t(a.dim("bits", kMinBits, kMaxBits));
  p.clamp = a.flag("clamp");
  int64_t len = a.prod({p.rows, p.cols});
  const float* x = a.f32("x", len);
  uint8_t* codes = a.u8_opt("codes", len);
  float* y = codes ? a.f32_opt("y", len) : a.f32("y", len);  // null y: the codes alone
  float* mn = a.f32_opt("rowMin", p.rows);
  float* mx = a.f32_opt("rowMax", p.rows);
  quant_rows_fwd(p, x, y, mn, mx, codes);
  return info.Env().Undefined();
}

Napi::Value QuantChannelLoopFwd(const Napi::CallbackInfo& info) {
  Args a(info, "quantChannelLoopFwd");
  int64_t n = a.dim("n"), c = a.dim("c"), hw = a.dim("hw");
  int32_t bits = int32_t(a.dim("bits", kMinBits, kMaxBits));
  int64_t len = a.prod({n, c, hw});
  const float* x = a.f32("x", len);
  float* y = a.f32("y", len);
  quant_channel_loop_fwd(n, c, hw, bits, x, y);
  return info.Env().Undefined();
}

Napi::Value QuantGroupsFwd(const Napi::CallbackInfo& info) {
  Args a(info, "quantGroupsFwd");
  QuantGroupsParams p;
  p.outer = a.dim("outer");
  p.groups = a.dim("groups");
  p.inner = a.dim("inner");
  p.bits = int32_t(a.dim("bits", kMinBits, kMaxBits));
  p.clamp = a.flag("clamp");
  int64_t len = a.prod({p.outer, p.groups, p.inner});
  const float* mins = a.f32("mins", p.groups);
  const float* maxs = a.f32("maxs", p.groups);
  const float* x = a.f32("x", len);
  uint8_t* codes = a.u8_opt("codes", len);
  float* y = codes ? a.f32_opt("y", len) : a.f32("y", len);  // null y: the codes alone
  quant_groups_fwd(p, mins, maxs, x, y, codes);
  return info.Env().Undefined();
}

Napi::Value QuantClipRanges(const Napi::CallbackInfo& info) {
  Args a(info, "quantClipRanges");
  QuantClipParams p;
  p.rows = a.dim("rows");
  p.cols = a.dim("cols");
  p.bits = int32_t(a.dim("bits", kMinBits, kMaxBits));
  p.steps = int32_t(a.dim("steps", 1, 1000));
  p.lowest = a.num("lowest");
  if (!(p.lowest > 0.0f && p.lowest <= 1.0f)) a.fail_range("lowest", "a number in (0, 1]", std::to_string(p.lowest));
  int64_t len = a.prod({p.rows, p.cols});
  const float* x = a.f32("x", len);
  float* mn = a.f32("rowMin", p.rows);
  float* mx = a.f32("rowMax", p.rows);
  quant_clip_ranges(p, x, mn, mx);
  return info.Env().Undefined();
}

// ---------- qgemm ----------
Napi::Value QgemmU8S8(const Napi::CallbackInfo& info) {
  Args a(info, "qgemmU8S8");
  QgemmParams p;
  p.m = a.dim("m");
  p.n = a.dim("n");
  p.k = a.dim("k", 1, 65000);  // |a b| <= 32640: 65,000 terms stay inside int32
  const uint8_t* x = a.u8("a", a.prod({p.m, p.k}));
  const int8_t* w = a.s8("b", a.prod({p.n, p.k}));
  int32_t* c = a.i32("c", a.prod({p.m, p.n}));
  qgemm_u8s8(p, x, w, c);
  return info.Env().Undefined();
}

// ---------- qconv ----------
Napi::Value Qconv2d(const Napi::CallbackInfo& info) {
  Args a(info, "qconv2d");
  QconvParams p;
  p.n = a.dim("n");
  p.c = a.dim("c");
  p.h = a.dim("h");
  p.w = a.dim("w");
  p.o = a.dim("o");
  p.k = a.dim("k", 1, 15);
  p.stride = a.dim("stride", 1, 15);
  p.pad = a.dim("pad", 0, 15);
  p.per_input = a.flag("perInput");
  p.relu = a.has("relu") && a.flag("relu");
  if (p.h + 2 * p.pad < p.k || p.w + 2 * p.pad < p.k) a.fail("the kernel is larger than the padded input");
  p.oh = (p.h + 2 * p.pad - p.k) / p.stride + 1;
  p.ow = (p.w + 2 * p.pad - p.k) / p.stride + 1;
  if (!p.per_input && a.prod({p.c, p.k, p.k}) > 65000) a.fail("c * k * k must be <= 65,000 for one int32 GEMM");
  QconvOperands in;
  in.x = a.u8("xq", a.prod({p.n, p.c, p.h, p.w}));
  in.xbase = a.f64("xbase", a.prod({p.n, p.c}));
  in.xscale = a.f32("xscale", a.prod({p.n, p.c}));
  in.w = a.s8("wq", a.prod({p.o, p.c, p.k, p.k}));
  in.wz = a.f64("wz", a.prod({p.o, p.c}));
  in.wscale = a.f32("wscale", a.prod({p.o, p.c}));
  in.bias = a.f32("bias", p.o);
  in.y = a.f32("y", a.prod({p.n, p.o, p.oh, p.ow}));
  if (a.has("wpk")) {
    in.wpk_len = p.per_input ? a.prod({p.c, (p.o + 15) / 16, p.k, (p.k + 3) / 4, 64}) : a.prod({(p.c + 3) / 4, (p.o + 15) / 16, p.k, p.k, 64});
    in.wpk = a.s8("wpk", in.wpk_len);
  }
  if (!p.per_input) {
    for (int64_t n = 0; n < p.n; ++n)
      for (int64_t i = 1; i < p.c; ++i)
        if (in.xbase[n * p.c + i] != in.xbase[n * p.c] || in.xscale[n * p.c + i] != in.xscale[n * p.c])
          a.fail("perInput false needs one activation scale and offset per sample (they differ along the channels)");
    for (int64_t o = 0; o < p.o; ++o)
      for (int64_t i = 1; i < p.c; ++i)
        if (in.wz[o * p.c + i] != in.wz[o * p.c] || in.wscale[o * p.c + i] != in.wscale[o * p.c])
          a.fail("perInput false needs one weight scale and offset per output channel (they differ along the inputs)");
  }
  qconv2d(p, in);
  return info.Env().Undefined();
}

// {unary, binary, reduce}: the op enums' sizes, which the TypeScript backend checks its own tables against.
Napi::Value EnumCounts(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("unary", kUnaryOpCount);
  o.Set("binary", kBinaryOpCount);
  o.Set("reduce", kReduceOpCount);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  keep_large_allocations_on_heap();
  struct Entry {
    const char* name;
    Napi::Value (*fn)(const Napi::CallbackInfo&);
  };
  static const Entry table[] = {
      {"enumCounts", EnumCounts},
      {"setThreads", SetThreads},
      {"numThreads", NumThreads},
      {"gemm", Gemm},
      {"conv2dFwd", Conv2dFwd},
      {"conv2dBwdData", Conv2dBwdData},
      {"conv2dBwdWeight", Conv2dBwdWeight},
      {"batchNormFwdTrain", BatchNormFwdTrain},
      {"batchNormFwdEval", BatchNormFwdEval},
      {"batchNormBwdTrain", BatchNormBwdTrain},
      {"batchNormBwdEval", BatchNormBwdEval},
      {"channelStatsFwd", ChannelStatsFwd},
      {"channelStatsBwd", ChannelStatsBwd},
      {"unaryFwd", UnaryFwd},
      {"unaryBwd", UnaryBwd},
      {"binaryFwd", BinaryFwd},
      {"addReluFwd", AddReluFwd},
      {"axpby", Axpby},
      {"copyStrided", CopyStrided},
      {"phaseMerge2", PhaseMerge2},
      {"phaseSplit2", PhaseSplit2},
      {"reduceFwd", ReduceFwd},
      {"reduceMinMaxBwd", ReduceMinMaxBwd},
      {"avgPool2dFwd", AvgPool2dFwd},
      {"avgPool2dBwd", AvgPool2dBwd},
      {"upsampleNearestFwd", UpsampleNearestFwd},
      {"upsampleNearestBwd", UpsampleNearestBwd},
      {"padChannelsFwd", PadChannelsFwd},
      {"padChannelsBwd", PadChannelsBwd},
      {"softmaxFwd", SoftmaxFwd},
      {"softmaxBwd", SoftmaxBwd},
      {"embeddingFwd", EmbeddingFwd},
      {"embeddingBwd", EmbeddingBwd},
      {"sgdStep", SgdStep},
      {"adamStep", AdamStep},
      {"quantRowsFwd", QuantRowsFwd},
      {"quantChannelLoopFwd", QuantChannelLoopFwd},
      {"quantGroupsFwd", QuantGroupsFwd},
      {"quantClipRanges", QuantClipRanges},
      {"qgemmU8S8", QgemmU8S8},
      {"qconv2d", Qconv2d},
  };
  for (const Entry& e : table) exports.Set(e.name, Napi::Function::New(env, e.fn, e.name));
  return exports;
}

}  // namespace
}  // namespace granq

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return granq::Init(env, exports); }
NODE_API_MODULE(granq_native, InitAddon)
