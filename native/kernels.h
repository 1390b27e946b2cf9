// Every kernel signature, one list. Arrays are float32, contiguous, NCHW; lengths were checked in addon.cc (args.h).
// Each family lives in its own file; each has a scalar TypeScript twin in src/backend/ref/.
#pragma once
#include "common.h"

namespace granq {

// ---------- gemm.cc ----------
// C[m,n] = op(A)[m,k] . op(B)[k,n] + beta * C. A is [m,k] row-major ([k,m] when trans_a); B is [k,n] ([n,k] when trans_b).
struct GemmParams {
  int64_t m, n, k;
  bool trans_a, trans_b;
  float beta;  // 0 (overwrite) or 1 (accumulate)
  const float* a;
  const float* b;
  float* c;
};
void gemm(const GemmParams& p);

// ---------- conv2d.cc (with conv2d-direct.cc, conv2d-depthwise.cc) ----------
// Square stride and padding, no dilation. oh = (ih + 2 pad - kh) / stride + 1, same for ow.
// groups (default 1) divides ic and oc: output channel o sees input channels [g*ic/groups, (g+1)*ic/groups) of its
// group g = o / (oc/groups), and the weight is [oc, ic/groups, kh, kw]. Depthwise: groups == ic (oc/groups = multiplier).
struct Conv2dShape {
  int64_t n, ic, ih, iw, oc, kh, kw, stride, pad, oh, ow;
  int64_t groups = 1;
  // Top and left zero padding (pad unless the caller gives them; then the bottom and right padding follow from oh and
  // ow, each below the kernel's size). Other than pad only for stride 1 and groups 1 (the addon checks).
  int64_t pad_t = -1, pad_l = -1;
  int64_t top() const { return pad_t < 0 ? pad : pad_t; }
  int64_t left() const { return pad_l < 0 ? pad : pad_l; }
};
void conv2d_fwd(const Conv2dShape& s, const float* x, const float* w, const float* bias /*nullable*/, float* y);
void conv2d_bwd_data(const Conv2dShape& s, const float* dy, const float* w, float* dx);  // dx overwritten
void conv2d_bwd_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                       float* dbias /*nullable*/);  // dw, dbias overwritten

// ---------- batchnorm.cc ----------
struct BatchNormShape {
  int64_t n, c, hw;
};
// Training: batch statistics (biased variance for normalisation, unbiased for the running update, as PyTorch).
// gamma/beta nullable (no affine); running_* nullable (no tracking).
// relu: y = relu(BN(x)) in the same pass (a BN followed by a ReLU reads and writes the tensor once, not twice).
void batchnorm_fwd_train(const BatchNormShape& s, const float* x, const float* gamma, const float* beta, float eps,
                         float momentum, float* running_mean, float* running_var, bool relu, float* y, float* save_mean,
                         float* save_invstd);
void batchnorm_fwd_eval(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                        const float* running_mean, const float* running_var, float eps, bool relu, float* y);
// Outputs are nullable: only the gradients that are asked for are written (overwritten, not accumulated).
// y: the output of a fused forward (relu), whose mask y > 0 applies to dy first; null without ReLU.
void batchnorm_bwd_train(const BatchNormShape& s, const float* dy, const float* y, const float* x,
                         const float* save_mean, const float* save_invstd, const float* gamma, float* dx, float* dgamma,
                         float* dbeta);
void batchnorm_bwd_eval(const BatchNormShape& s, const float* dy, const float* y, const float* x,
                        const float* running_mean, const float* running_var, float eps, const float* gamma, float* dx,
                        float* dgamma, float* dbeta);

// Per-channel batch statistics of x [n, c, hw] as one [2, c] output: row 0 the means, row 1 the biased variances
// (the statistics the BNS loss of zero-shot quantization compares with BN running stats). Backward:
// dx = g_mean[c] / m + g_var[c] * 2 (x - mean[c]) / m, m = n * hw.
void channel_stats_fwd(const BatchNormShape& s, const float* x, float* stats);
void channel_stats_bwd(const BatchNormShape& s, const float* x, const float* stats, const float* dstats, float* dx);

// ---------- eltwise.cc ----------
enum class UnaryOp : int32_t {
  relu = 0,
  leaky_relu = 1,  // alpha = negative slope
  tanh = 2,
  exp = 3,
  log = 4,
  affine = 5,  // y = alpha * x + beta
  sqrt = 6,
  hardtanh = 7,  // y = min(max(x, alpha), beta); dy/dx = 1 for alpha < x < beta, else 0 (relu6: alpha 0, beta 6)
};
// The number of values of each op enum: addon.cc range-checks `op` against it and exports it (enumCounts), and the
// TypeScript backend checks its own tables against those counts when the addon loads.
constexpr int32_t kUnaryOpCount = 8;
static_assert(static_cast<int32_t>(UnaryOp::hardtanh) + 1 == kUnaryOpCount, "kUnaryOpCount");
void unary_fwd(UnaryOp op, int64_t len, const float* x, float* y, float alpha, float beta);
// dx = dy * f'(x); x or y is used, whichever the derivative needs (both are given).
void unary_bwd(UnaryOp op, int64_t len, const float* x, const float* y, const float* dy, float* dx, float alpha,
               float beta);
enum class BinaryOp : int32_t { add = 0, sub = 1, mul = 2, div = 3 };
constexpr int32_t kBinaryOpCount = 4;
static_assert(static_cast<int32_t>(BinaryOp::div) + 1 == kBinaryOpCount, "kBinaryOpCount");
// Broadcasting in up to 4 dims: y is contiguous with `shape`; a and b are read through strides (0 = broadcast).
struct Strided4 {
  int64_t shape[4];
  int64_t a_stride[4];
  int64_t b_stride[4];
};
void binary_fwd(BinaryOp op, const Strided4& s, const float* a, const float* b, float* y);
// y = alpha * x + beta * y (gradient accumulation, scaling).
void axpby(int64_t len, float alpha, const float* x, float beta, float* y);
// y = relu(a + b) over equal-length arrays (a residual sum and its ReLU in one pass); y may be b, not a.
void add_relu_fwd(int64_t len, const float* a, const float* b, float* y);
// y (contiguous) = x over `shape`, x read through `stride` (0 = broadcast, any permutation).
void copy_strided(const int64_t shape[4], const int64_t stride[4], const float* x, float* y);
// The 2x2 phases of `rows` planes of [2h, 2w]: phase (a, b) of a plane holds its pixels (2i + a, 2j + b), [h, w].
// phase_merge2: y[r][2i + a][2j + b] = x[a * 2 + b][r][i][j] (four phase tensors of [rows, h, w] into one).
// phase_split2: the inverse, y[a * 2 + b][r][i][j] = x[r][2i + a][2j + b]; with `framed`, each phase of plane
// r = n * channels + c also goes to framed[n][a * 2 + b][c], an (h + 1) x (w + 1) plane holding it at offset (a, b)
// and zero elsewhere (the fused upsample conv's input gradient reads it). One read of x either way.
void phase_merge2(int64_t rows, int64_t h, int64_t w, const float* x, float* y);
void phase_split2(int64_t rows, int64_t h, int64_t w, const float* x, float* y, float* framed, int64_t channels);

// ---------- reduce.cc ----------
enum class ReduceOp : int32_t { sum = 0, max = 1, min = 2 };
constexpr int32_t kReduceOpCount = 3;
static_assert(static_cast<int32_t>(ReduceOp::min) + 1 == kReduceOpCount, "kReduceOpCount");
// x has `shape` (4 dims, contiguous); axes with mask[i] = true are reduced; y has those axes of size 1.
void reduce_fwd(ReduceOp op, const int64_t shape[4], const bool mask[4], const float* x, float* y);
// max/min backward: dx = dy where x equals the result, split evenly between ties (as torch's full reduction).
void reduce_minmax_bwd(const int64_t shape[4], const bool mask[4], const float* x, const float* y, const float* dy,
                       float* dx);

// ---------- pool2d.cc ----------
struct Pool2dShape {
  int64_t n, c, ih, iw, k, stride, oh, ow;  // no padding
};
void avgpool2d_fwd(const Pool2dShape& s, const float* x, float* y);
void avgpool2d_bwd(const Pool2dShape& s, const float* dy, float* dx);  // dx overwritten
// Nearest-neighbour upsampling by an integer factor.
void upsample_nearest_fwd(int64_t n, int64_t c, int64_t ih, int64_t iw, int64_t scale, const float* x, float* y);
void upsample_nearest_bwd(int64_t n, int64_t c, int64_t ih, int64_t iw, int64_t scale, const float* dy, float* dx);
// Zero channels before and after: [n, c, hw] -> [n, before + c + after, hw] (ResNet option-A shortcut).
void pad_channels_fwd(int64_t n, int64_t c, int64_t hw, int64_t before, int64_t after, const float* x, float* y);
void pad_channels_bwd(int64_t n, int64_t c, int64_t hw, int64_t before, int64_t after, const float* dy, float* dx);

// ---------- loss.cc ----------
// Row-wise softmax or log-softmax over `cols`.
void softmax_fwd(int64_t rows, int64_t cols, bool log, const float* x, float* y);
void softmax_bwd(int64_t rows, int64_t cols, bool log, const float* y, const float* dy, float* dx);
// Embedding lookup: y[i, :] = weight[idx[i], :]; backward accumulates into dweight in index order.
void embedding_fwd(int64_t n, int64_t num, int64_t dim, const int32_t* idx, const float* weight, float* y);
void embedding_bwd(int64_t n, int64_t num, int64_t dim, const int32_t* idx, const float* dy, float* dweight);

// ---------- optim.cc ----------
// PyTorch's update rules (torch.optim.SGD and torch.optim.Adam, single-tensor form).
struct SgdParams {
  int64_t len;
  float lr, momentum, dampening, weight_decay;
  bool nesterov;
  bool first_step;  // the momentum buffer is initialised to the gradient on the first step
};
void sgd_step(const SgdParams& p, float* param, const float* grad, float* momentum_buf /*nullable if momentum 0*/);
struct AdamParams {
  int64_t len;
  float lr, beta1, beta2, eps, weight_decay;
  int64_t step;  // 1-based, after increment
};
void adam_step(const AdamParams& p, float* param, const float* grad, float* exp_avg, float* exp_avg_sq);

// ---------- quant.cc ----------
// The bit widths every quantizer accepts (src/quant/fake-quant.ts MIN_BITS..MAX_BITS; addon.cc checks `bits` by them).
constexpr int32_t kMinBits = 2;
constexpr int32_t kMaxBits = 8;
// Asymmetric uniform fake quantization (ZeroQ/GDFQ formula, in torch's float32 operation order):
//   n = 2^bits - 1, s = n / max(M - m, 1e-8), z = round(s * m) + 2^(bits-1),
//   q = round(s * x - z), clamped to [-2^(bits-1), 2^(bits-1) - 1] when `clamp`, y = (q + z) / s,
// with round() half to even (torch.round). bits in [2, 8].
struct QuantRowsParams {
  int64_t rows, cols;
  int32_t bits;
  bool clamp;
};
// GranQ: every row gets its own dynamic range (min and max over its cols); all rows' scales and zero points are
// computed in one vectorized pass, then applied in one pass ("vectorized pre-scaling"). row_min/row_max (nullable)
// receive the ranges.
// codes (nullable) receive q + 2^(bits-1) as unsigned 8-bit (saturated: the unclamped rows at 8 bits can reach 256);
// with codes, y may be null (the codes alone).
void quant_rows_fwd(const QuantRowsParams& p, const float* x, float* y, float* row_min, float* row_max, uint8_t* codes = nullptr);
// The conventional channel-wise loop over x [n, c, hw]: one channel at a time, each with its own min/max pass,
// scale computation and quantize pass over that channel's strided rows across the batch. Same result as
// quant_rows_fwd with rows = n * c (no clamp); it exists to measure what vectorization saves.
void quant_channel_loop_fwd(int64_t n, int64_t c, int64_t hw, int32_t bits, const float* x, float* y);
// Fixed ranges per group: x viewed as [outer, groups, inner]; group g uses (mins[g], maxs[g]).
// Per-tensor (layer-wise): groups = 1. Per output channel weights: outer = 1. Static per-channel activations:
// outer = batch, groups = channels, inner = h * w.
struct QuantGroupsParams {
  int64_t outer, groups, inner;
  int32_t bits;
  bool clamp;
};
void quant_groups_fwd(const QuantGroupsParams& p, const float* mins, const float* maxs, const float* x, float* y, uint8_t* codes = nullptr);
// Clipped weight ranges (the `mse` weight clip): for each row of x [rows, cols], the range [a m, a M] among
// a_j = float(1 - j (1 - lowest) / (steps - 1)), j = 0..steps-1 (a_0 = 1: min/max), whose clamped fake
// quantization has the least squared error. The error of a candidate (s, z) is E / s^2 in double, with E the sum of
// d_i^2, d_i = (q_i + z) - s x_i in code units, accumulated in float32 in 16 lanes (lane i mod 16) that are then
// added in lane order in double; ties keep the smaller j. Rows whose range is not finite keep min/max, and
// candidates whose z is not exact in float32 (|z| >= 2^24) are skipped.
struct QuantClipParams {
  int64_t rows, cols;
  int32_t bits, steps;
  float lowest;
};
void quant_clip_ranges(const QuantClipParams& p, const float* x, float* row_min, float* row_max);

// ---------- qgemm.cc ----------
// Integer GEMM of integer inference: c[m, n] = sum_k a[m, k] * b[n, k], a unsigned 8-bit (activation codes), b
// signed 8-bit (weight codes, [n, k] as a weight [out, in] is stored), 32-bit accumulation, exact (|a b| <= 32640, so
// k up to 65,000 cannot overflow). AVX-512 VNNI (vpdpbusd: 16 columns x 4 k per instruction) where the CPU has it,
// a scalar loop otherwise; both exact, so equal.
struct QgemmParams {
  int64_t m, n, k;
};
void qgemm_u8s8(const QgemmParams& p, const uint8_t* a, const int8_t* b, int32_t* c);

// ---------- qconv.cc ----------
// Integer convolution (groups 1, square kernel k, zero padding) on codes: x [n, c, h, w] unsigned activation codes a
// with u = a + xbase[n, c] and scale xscale[n, c] (the value is u / xscale); w [o, c, k, k] signed weight codes with
// u = w + wz[o, c] and scale wscale[o, c]. For output (n, o, p) and input channel i, over the in-bounds taps B(p):
// S = sum a w (int32, exact), A = sum a, W = sum w, cnt = |B|, and
// T_i = float(((S + wz A) + base W) + (wz base) cnt) in double (= float(S) when wz = base = 0).
// per_input (the scale changes along the reduction: granq rows, static per-channel activations, slice weights):
//   y = float32 sum over i = 0, 1, ... of f_i * T_i, f_i = (1 / wscale[o, i]) (1 / xscale[n, i]) in float32, + bias[o].
// otherwise (scales and offsets constant over i, which the caller guarantees: the whole reduction in one GEMM):
//   the same with S, A, W summed over every i and tap, cnt = c |B|, one f, y = f T + bias[o].
// relu: then y = y > 0 ? y : 0 (a following ReLU folded in).
// The in-bounds taps matter where an activation offset is not 0: padding is the value 0, not the code 0.
struct QconvParams {
  int64_t n, c, h, w, o, k, stride, pad, oh, ow;
  bool per_input;
  bool relu = false;  // y = max(y, 0) after the bias (a ReLU folded into the epilogue)
};
struct QconvOperands {
  const uint8_t* x;
  const double* xbase;
  const float* xscale;
  const int8_t* w;
  const double* wz;
  const float* wscale;
  const float* bias;
  float* y;
  // Optional: w already in the kernel's vpdpbusd layout, as qconvPackedWeights in src/backend/backend.ts writes it
  // (zero padded): per_input [c][o / 16 blocks][k rows][ceil(k / 4) tap groups][16][4 taps]; else 4 channels per
  // lane group, [c / 4 groups][o / 16 blocks][k][k][16][4 channels]. Null packs w per call.
  const int8_t* wpk = nullptr;
  int64_t wpk_len = 0;
};
void qconv2d(const QconvParams& p, const QconvOperands& in);

}  // namespace granq
