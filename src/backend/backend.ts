/**
 * The backend contract: one typed params object per kernel, outputs passed in pre-allocated. Two implementations:
 * `native` (the C++ addon, float32 only) and `ref` (scalar TypeScript, the living definition; it also accepts
 * Float64Array so gradient checks can run in double precision). Field names match native/addon.cc exactly.
 */
export type Buf = Float32Array | Float64Array;

/**
 * groups (default 1) divides ic and oc; the weight is [oc, ic/groups, kh, kw] and output channel o reads the input
 * channels of its group o / (oc/groups). Depthwise: groups = ic.
 */
export interface Conv2dShape {
  n: number; ic: number; ih: number; iw: number;
  oc: number; kh: number; kw: number;
  stride: number; pad: number; oh: number; ow: number;
  groups?: number;
  /**
   * Top / left zero padding other than pad (stride 1 and groups 1 only): the bottom / right padding is then what oh /
   * ow leave, each in [0, kernel - 1] (a window of the zero-padded input, as the fused upsample_conv2d's phases read).
   */
  padTop?: number; padLeft?: number;
}
export interface BatchNormShape { n: number; c: number; hw: number }
export interface Pool2dShape { n: number; c: number; ih: number; iw: number; k: number; stride: number; oh: number; ow: number }
export interface UpsampleShape { n: number; c: number; ih: number; iw: number; scale: number }
export interface PadChannelsShape { n: number; c: number; hw: number; before: number; after: number }
export type Quad = [number, number, number, number];
export type Mask4 = [boolean, boolean, boolean, boolean];

/** Codes shared with native/kernels.h. */
/** hardtanh: y = min(max(x, alpha), beta), dy/dx = 1 strictly inside (alpha, beta), else 0 (relu6 = hardtanh(0, 6)). */
export const UNARY = { relu: 0, leakyRelu: 1, tanh: 2, exp: 3, log: 4, affine: 5, sqrt: 6, hardtanh: 7 } as const;
export type UnaryName = keyof typeof UNARY;
export const BINARY = { add: 0, sub: 1, mul: 2, div: 3 } as const;
export type BinaryName = keyof typeof BINARY;
export const REDUCE = { sum: 0, max: 1, min: 2 } as const;
export type ReduceName = keyof typeof REDUCE;

export interface Backend {
  readonly name: 'native' | 'ref';
  setThreads(n: number): void;
  numThreads(): number;

  /** c[m,n] = op(a)[m,k] . op(b)[k,n] + beta c; a is [m,k] ([k,m] if transA), b is [k,n] ([n,k] if transB). */
  gemm(p: { m: number; n: number; k: number; transA: boolean; transB: boolean; beta: 0 | 1; a: Buf; b: Buf; c: Buf }): void;

  conv2dFwd(p: Conv2dShape & { x: Buf; weight: Buf; bias: Buf | null; y: Buf }): void;
  conv2dBwdData(p: Conv2dShape & { dy: Buf; weight: Buf; dx: Buf }): void;
  conv2dBwdWeight(p: Conv2dShape & { x: Buf; dy: Buf; dweight: Buf; dbias: Buf | null }): void;

  /** relu: y = relu(BN(x)) in one pass (a BatchNorm followed by a ReLU). */
  batchNormFwdTrain(p: BatchNormShape & {
    x: Buf; gamma: Buf | null; beta: Buf | null; eps: number; momentum: number;
    runningMean: Buf | null; runningVar: Buf | null; relu: boolean; y: Buf; saveMean: Buf; saveInvstd: Buf;
  }): void;
  batchNormFwdEval(p: BatchNormShape & {
    x: Buf; gamma: Buf | null; beta: Buf | null; runningMean: Buf; runningVar: Buf; eps: number; relu: boolean; y: Buf;
  }): void;
  /**
   * batchNormBwdTrain / batchNormBwdEval: dx may be dy (in place). y: the output of a forward with relu, whose mask
   * y > 0 applies to dy first (null without ReLU); never dx.
   */
  batchNormBwdTrain(p: BatchNormShape & {
    dy: Buf; y: Buf | null; x: Buf; saveMean: Buf; saveInvstd: Buf; gamma: Buf | null; dx: Buf | null; dgamma: Buf | null; dbeta: Buf | null;
  }): void;
  batchNormBwdEval(p: BatchNormShape & {
    dy: Buf; y: Buf | null; x: Buf; runningMean: Buf; runningVar: Buf; eps: number; gamma: Buf | null;
    dx: Buf | null; dgamma: Buf | null; dbeta: Buf | null;
  }): void;

  /** Per-channel batch statistics of x [n, c, hw] as [2, c]: means, then biased variances. */
  channelStatsFwd(p: BatchNormShape & { x: Buf; stats: Buf }): void;
  /** dx = dstats[0][c] / m + dstats[1][c] * 2 (x - mean[c]) / m, m = n hw. */
  channelStatsBwd(p: BatchNormShape & { x: Buf; stats: Buf; dstats: Buf; dx: Buf }): void;

  /** y = f(x); `alpha` is leakyRelu's slope, affine's scale or hardtanh's min, `beta` affine's shift or hardtanh's max. */
  unaryFwd(p: { op: number; len: number; x: Buf; y: Buf; alpha: number; beta: number }): void;
  /** dx = dy * f'(x) (y = f(x) is given too, for ops whose derivative is cheaper from it). */
  /** dx may be dy (in place). */
  unaryBwd(p: { op: number; len: number; x: Buf; y: Buf; dy: Buf; dx: Buf; alpha: number; beta: number }): void;
  /** y (contiguous, `shape`) = a op b, with a and b read through strides (0 = broadcast). */
  binaryFwd(p: { op: number; shape: Quad; aStride: Quad; bStride: Quad; a: Buf; b: Buf; y: Buf }): void;
  /** y = alpha x + beta y. */
  axpby(p: { len: number; alpha: number; x: Buf; beta: number; y: Buf }): void;
  /** y = relu(a + b), equal lengths (a residual sum and its ReLU in one pass). */
  addReluFwd(p: { len: number; a: Buf; b: Buf; y: Buf }): void;
  /** y (contiguous) = x over `shape`, x read through `stride` (0 = broadcast). */
  copyStrided(p: { shape: Quad; stride: Quad; x: Buf; y: Buf }): void;
  /**
   * The 2x2 phases of `rows` planes of [2h, 2w] (phase (a, b): the pixels (2i + a, 2j + b)). phaseMerge2: y [rows, 2h, 2w]
   * from x [4, rows, h, w] (phase a * 2 + b first). phaseSplit2: the inverse, and with `framed` each phase of plane
   * r = n * channels + c also into framed [n, 4, channels, h + 1, w + 1] at offset (a, b) inside a zero frame.
   */
  phaseMerge2(p: { rows: number; h: number; w: number; x: Buf; y: Buf }): void;
  phaseSplit2(p: { rows: number; h: number; w: number; x: Buf; y: Buf } & ({ framed?: undefined } | { framed: Buf; channels: number })): void;

  reduceFwd(p: { op: number; shape: Quad; mask: Mask4; x: Buf; y: Buf }): void;
  reduceMinMaxBwd(p: { shape: Quad; mask: Mask4; x: Buf; y: Buf; dy: Buf; dx: Buf }): void;

  avgPool2dFwd(p: Pool2dShape & { x: Buf; y: Buf }): void;
  avgPool2dBwd(p: Pool2dShape & { dy: Buf; dx: Buf }): void;
  upsampleNearestFwd(p: UpsampleShape & { x: Buf; y: Buf }): void;
  upsampleNearestBwd(p: UpsampleShape & { dy: Buf; dx: Buf }): void;
  padChannelsFwd(p: PadChannelsShape & { x: Buf; y: Buf }): void;
  padChannelsBwd(p: PadChannelsShape & { dy: Buf; dx: Buf }): void;

  softmaxFwd(p: { rows: number; cols: number; log: boolean; x: Buf; y: Buf }): void;
  softmaxBwd(p: { rows: number; cols: number; log: boolean; y: Buf; dy: Buf; dx: Buf }): void;
  embeddingFwd(p: { n: number; num: number; dim: number; idx: Int32Array; weight: Buf; y: Buf }): void;
  /** Accumulates into dweight. */
  embeddingBwd(p: { n: number; num: number; dim: number; idx: Int32Array; dy: Buf; dweight: Buf }): void;

  sgdStep(p: {
    lr: number; momentum: number; dampening: number; weightDecay: number; nesterov: boolean; firstStep: boolean;
    param: Buf; grad: Buf; buf: Buf | null;
  }): void;
  adamStep(p: {
    lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; step: number;
    param: Buf; grad: Buf; expAvg: Buf; expAvgSq: Buf;
  }): void;

  /**
   * Asymmetric fake quantization (see native/kernels.h, quant.cc): n = 2^bits - 1, s = n / max(M - m, 1e-8),
   * z = round(s m) + 2^(bits-1), q = round(s x - z) (clamped to the signed range when `clamp`), y = (q + z) / s.
   * quantRowsFwd: each row's own dynamic range (GranQ); rowMin/rowMax optionally receive the ranges. codes
   * optionally receive q + 2^(bits-1); with codes, y may be null (the codes alone, for integer inference).
   */
  quantRowsFwd(p: { rows: number; cols: number; bits: number; clamp: boolean; x: Buf; y: Buf | null; rowMin: Buf | null; rowMax: Buf | null; codes?: Uint8Array | null }): void;
  /** The conventional per-channel loop over [n, c, hw]: same values as quantRowsFwd with rows = n c, no clamp. */
  quantChannelLoopFwd(p: { n: number; c: number; hw: number; bits: number; x: Buf; y: Buf }): void;
  /** Fixed ranges per group of x viewed as [outer, groups, inner]; codes and a null y as in quantRowsFwd. */
  quantGroupsFwd(p: { outer: number; groups: number; inner: number; bits: number; clamp: boolean; mins: Buf; maxs: Buf; x: Buf; y: Buf | null; codes?: Uint8Array | null }): void;
  /**
   * Clipped ranges per row of x [rows, cols] (the `mse` weight clip, native/kernels.h quant_clip_ranges): among
   * [a m, a M], a_j = fround(1 - j (1 - lowest) / (steps - 1)), the one of least squared clamped fake-quant error.
   */
  quantClipRanges(p: { rows: number; cols: number; bits: number; steps: number; lowest: number; x: Buf; rowMin: Buf; rowMax: Buf }): void;

  /**
   * Integer GEMM of integer inference (native/kernels.h qgemm_u8s8): c[m, n] = sum_k a[m, k] * b[n, k], a unsigned
   * 8-bit codes, b signed 8-bit, 32-bit exact accumulation (k <= 65,000).
   */
  qgemmU8S8(p: { m: number; n: number; k: number; a: Uint8Array; b: Int8Array; c: Int32Array }): void;
  /**
   * Integer convolution on codes (native/kernels.h qconv2d: groups 1, square kernel, zero padding): activation value
   * (xq + xbase[n, c]) / xscale[n, c], weight value (wq + wz[o, c]) / wscale[o, c]; exact integer partial sums per
   * input channel (`perInput`) or over the whole reduction, then float32 scaling in a fixed order, + bias.
   */
  qconv2d(p: QconvArgs): void;
}

export interface QconvArgs {
  n: number; c: number; h: number; w: number; o: number; k: number; stride: number; pad: number; perInput: boolean;
  xq: Uint8Array; xbase: Float64Array; xscale: Float32Array;
  wq: Int8Array; wz: Float64Array; wscale: Float32Array;
  bias: Float32Array; y: Float32Array;
  /** Optional: y = max(y, 0) after the bias (a ReLU folded into the epilogue). */
  relu?: boolean;
  /** Optional: wq in the native kernel's layout for this perInput (qconvPackedWeights), so it is not packed at every call; ref ignores it. */
  wpk?: Int8Array | null;
}

/**
 * wq [o, c, k, k] in native qconv2d's vpdpbusd layout for the mode `perInput` (native/kernels.h QconvOperands.wpk),
 * zero padded: per input channel [c][ceil(o / 16)][k][ceil(k / 4)][16 outputs][4 taps] (a kernel row's taps share a
 * byte-lane group); over the whole reduction [ceil(c / 4)][ceil(o / 16)][k][k][16 outputs][4 channels] (4 input
 * channels of one tap share it).
 */
export function qconvPackedWeights(o: number, c: number, k: number, wq: Int8Array, perInput: boolean): Int8Array {
  const o16 = Math.ceil(o / 16), g = Math.ceil(k / 4), kk = k * k;
  const out = new Int8Array(perInput ? c * o16 * k * g * 64 : Math.ceil(c / 4) * o16 * kk * 64);
  for (let i = 0; i < c; i++)
    for (let oo = 0; oo < o; oo++)
      for (let ky = 0; ky < k; ky++)
        for (let kx = 0; kx < k; kx++) {
          const at = perInput
            ? ((((i * o16 + Math.floor(oo / 16)) * k + ky) * g + Math.floor(kx / 4)) * 64) + (oo % 16) * 4 + (kx % 4)
            : (((Math.floor(i / 4) * o16 + Math.floor(oo / 16)) * kk + ky * k + kx) * 64) + (oo % 16) * 4 + (i % 4);
          out[at] = wq[((oo * c + i) * k + ky) * k + kx]!;
        }
  return out;
}

/** Kernel names, for the meta-test that every kernel has a reference and a case table. */
export type KernelName = Exclude<keyof Backend, 'name' | 'setThreads' | 'numThreads'>;
