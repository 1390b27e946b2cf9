/** Elementwise primitives: unary maps and broadcasting binary arithmetic. */
import { backend, BINARY, UNARY, type BinaryName, type Quad, type UnaryName, type Mask4 } from '../../backend/index.js';
import { check } from '../../errors.js';
import { allocFloats, Tensor } from '../../tensor/tensor.js';
import { broadcastShapes, sameShape, shapeStr, type Shape } from '../../tensor/shape.js';
import { defineOp } from '../tape.js';

declare module '../tape.js' {
  interface OpAttrs {
    relu: UnaryAttrs;
    leaky_relu: UnaryAttrs;
    tanh: UnaryAttrs;
    exp: UnaryAttrs;
    log: UnaryAttrs;
    sqrt: UnaryAttrs;
    affine: UnaryAttrs;
    hardtanh: UnaryAttrs;
    add: null;
    sub: null;
    mul: null;
    div: null;
    add_relu: null;
  }
}

interface UnaryAttrs {
  alpha: number;
  beta: number;
}

/** Op names of the backend's unary kernels (the kernel enum keeps its own, camelCase, names). */
const UNARY_OP = {
  relu: 'relu', leakyRelu: 'leaky_relu', tanh: 'tanh', exp: 'exp', log: 'log', sqrt: 'sqrt', affine: 'affine', hardtanh: 'hardtanh',
} as const satisfies Record<UnaryName, string>;

function unaryOp(kernel: UnaryName) {
  const code = UNARY[kernel];
  return defineOp<(typeof UNARY_OP)[UnaryName], [Tensor], null>({
    name: UNARY_OP[kernel],
    forward([x], { alpha, beta }) {
      const out = Tensor.empty(x.shape);
      backend().unaryFwd({ op: code, len: x.size, x: x.data, y: out.data, alpha, beta });
      return { out, saved: null };
    },
    backward({ gy, gyOwned, inputs: [x], attrs: { alpha, beta }, out }) {
      const dx = gyOwned ? gy : allocFloats(x.size); // elementwise, so safe in place; saves a buffer's traffic
      backend().unaryBwd({ op: code, len: x.size, x: x.data, y: out.data, dy: gy, dx, alpha, beta });
      return [dx];
    },
  });
}

const reluOp = unaryOp('relu');
const leakyReluOp = unaryOp('leakyRelu');
const tanhOp = unaryOp('tanh');
const expOp = unaryOp('exp');
const logOp = unaryOp('log');
const sqrtOp = unaryOp('sqrt');
const affineOp = unaryOp('affine');
const hardtanhOp = unaryOp('hardtanh');

export const relu = (x: Tensor) => reluOp([x], { alpha: 0, beta: 0 });
export const leakyRelu = (x: Tensor, slope = 0.01) => leakyReluOp([x], { alpha: slope, beta: 0 });
export const tanh = (x: Tensor) => tanhOp([x], { alpha: 0, beta: 0 });
export const exp = (x: Tensor) => expOp([x], { alpha: 0, beta: 0 });
export const log = (x: Tensor) => logOp([x], { alpha: 0, beta: 0 });
export const sqrt = (x: Tensor) => sqrtOp([x], { alpha: 0, beta: 0 });
/** min(max(x, minVal), maxVal); gradient 1 strictly between the bounds, 0 elsewhere (torch.nn.functional.hardtanh). */
export function hardtanh(x: Tensor, minVal = -1, maxVal = 1): Tensor {
  check(minVal <= maxVal, () => `hardtanh: min ${minVal} exceeds max ${maxVal}`);
  return hardtanhOp([x], { alpha: minVal, beta: maxVal });
}
/** min(max(x, 0), 6) (MobileNetV2's activation, ONNX Clip(0, 6)). */
export const relu6 = (x: Tensor) => hardtanh(x, 0, 6);
/** alpha * x + beta. */
export const affine = (x: Tensor, alpha: number, beta = 0) => affineOp([x], { alpha, beta });
export const scale = (x: Tensor, alpha: number) => affine(x, alpha, 0);
export const addScalar = (x: Tensor, beta: number) => affine(x, 1, beta);
export const neg = (x: Tensor) => affine(x, -1, 0);

/**
 * The strided 4-D view of a broadcast: the output shape collapsed to at most 4 dims, and each operand's strides
 * (0 along broadcast dims). Adjacent dims merge when both operands are contiguous across them.
 */
export interface Broadcast4 {
  shape: Quad;
  aStride: Quad;
  bStride: Quad;
  outShape: number[];
}

export function broadcast4(a: Shape, b: Shape, op: string): Broadcast4 {
  const outShape = broadcastShapes(a, b, op);
  const r = outShape.length;
  const pad = (s: Shape) => [...new Array<number>(r - s.length).fill(1), ...s];
  const pa = pad(a);
  const pb = pad(b);
  const strides = (p: number[]) => {
    const st = new Array<number>(r);
    let acc = 1;
    for (let i = r - 1; i >= 0; i--) {
      st[i] = p[i] === 1 && outShape[i] !== 1 ? 0 : acc;
      acc *= p[i]!;
    }
    return st;
  };
  const sa = strides(pa);
  const sb = strides(pb);
  // Merge dim i into the run that follows it when both operands stay contiguous (or both broadcast) across it.
  const dims: { n: number; a: number; b: number }[] = [];
  for (let i = r - 1; i >= 0; i--) {
    const n = outShape[i]!;
    if (n === 1) continue;
    const last = dims[dims.length - 1];
    if (last && sa[i] === last.a * last.n && sb[i] === last.b * last.n) {
      last.n *= n;
    } else {
      dims.push({ n, a: sa[i]!, b: sb[i]! });
    }
  }
  check(dims.length <= 4, () => `${op}: broadcasting ${shapeStr(a)} with ${shapeStr(b)} needs more than 4 strided dims`);
  while (dims.length < 4) dims.push({ n: 1, a: 0, b: 0 });
  dims.reverse();
  return {
    shape: dims.map((d) => d.n) as Quad,
    aStride: dims.map((d) => d.a) as Quad,
    bStride: dims.map((d) => d.b) as Quad,
    outShape,
  };
}

/** Sums `g` (contiguous over bc.shape) down to the operand whose strides are `stride` (0 = broadcast). */
function sumToOperand(g: Float32Array, bc: Broadcast4, stride: Quad, size: number): Float32Array {
  const mask = stride.map((s, i) => s === 0 && bc.shape[i]! > 1) as Mask4;
  if (!mask.some(Boolean)) return g;
  const out = allocFloats(size);
  backend().reduceFwd({ op: 0, shape: bc.shape, mask, x: g, y: out });
  return out;
}

function binaryOp(name: BinaryName) {
  const code = BINARY[name];
  return defineOp<BinaryName, [Tensor, Tensor], Broadcast4>({
    name,
    forward([a, b]) {
      const bc = broadcast4(a.shape, b.shape, name);
      const out = Tensor.empty(bc.outShape);
      backend().binaryFwd({ op: code, shape: bc.shape, aStride: bc.aStride, bStride: bc.bStride, a: a.data, b: b.data, y: out.data });
      return { out, saved: bc };
    },
    backward({ gy, saved: bc, needs, inputs: [a, b], out }) {
      const be = backend();
      const contiguous: Quad = [bc.shape[1] * bc.shape[2] * bc.shape[3], bc.shape[2] * bc.shape[3], bc.shape[3], 1];
      // t = gy (op) operand, read through the operand's strides.
      const times = (operand: Tensor, stride: Quad, op: number) => {
        const t = allocFloats(gy.length);
        be.binaryFwd({ op, shape: bc.shape, aStride: contiguous, bStride: stride, a: gy, b: operand.data, y: t });
        return t;
      };
      let ga: Float32Array | null = null;
      let gb: Float32Array | null = null;
      if (name === 'add' || name === 'sub') {
        if (needs[0]) ga = sumToOperand(gy, bc, bc.aStride, a.size);
        if (needs[1]) {
          gb = sumToOperand(gy, bc, bc.bStride, b.size);
          if (name === 'sub') {
            const neg = allocFloats(gb.length);
            be.axpby({ len: gb.length, alpha: -1, x: gb, beta: 0, y: neg });
            gb = neg;
          }
        }
      } else if (name === 'mul') {
        if (needs[0]) ga = sumToOperand(times(b, bc.bStride, BINARY.mul), bc, bc.aStride, a.size);
        if (needs[1]) gb = sumToOperand(times(a, bc.aStride, BINARY.mul), bc, bc.bStride, b.size);
      } else {
        // y = a / b: da = gy / b, db = -gy * y / b
        if (needs[0]) ga = sumToOperand(times(b, bc.bStride, BINARY.div), bc, bc.aStride, a.size);
        if (needs[1]) {
          const t = times(b, bc.bStride, BINARY.div);
          be.binaryFwd({ op: BINARY.mul, shape: bc.shape, aStride: contiguous, bStride: contiguous, a: t, b: out.data, y: t });
          be.axpby({ len: t.length, alpha: -1, x: t, beta: 0, y: t });
          gb = sumToOperand(t, bc, bc.bStride, b.size);
        }
      }
      return [ga, gb];
    },
  });
}

const addOp = binaryOp('add');

/** relu(a + b) for same-shape a, b: a residual sum and its ReLU in one pass, forward and backward. */
const addReluOp = defineOp<'add_relu', [Tensor, Tensor], null>({
  name: 'add_relu',
  forward([a, b]) {
    check(sameShape(a.shape, b.shape), () => `addRelu: shapes must be equal, got ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`);
    const out = Tensor.empty(a.shape);
    backend().addReluFwd({ len: a.size, a: a.data, b: b.data, y: out.data });
    return { out, saved: null };
  },
  backward({ gy, gyOwned, out }) {
    // relu's backward masked by its output (a + b > 0 exactly where relu(a + b) > 0); both inputs get that gradient.
    const g = gyOwned ? gy : allocFloats(gy.length);
    backend().unaryBwd({ op: UNARY.relu, len: gy.length, x: out.data, y: out.data, dy: gy, dx: g, alpha: 0, beta: 0 });
    return [g, g];
  },
});
const subOp = binaryOp('sub');
const mulOp = binaryOp('mul');
const divOp = binaryOp('div');

export const add = (a: Tensor, b: Tensor) => addOp([a, b], null);
export const addRelu = (a: Tensor, b: Tensor) => addReluOp([a, b], null);
export const sub = (a: Tensor, b: Tensor) => subOp([a, b], null);
export const mul = (a: Tensor, b: Tensor) => mulOp([a, b], null);
export const div = (a: Tensor, b: Tensor) => divOp([a, b], null);

/** Shape-checked same-size helper for callers that must not broadcast by accident. */
export function checkSameShape(a: Tensor, b: Tensor, what: string): void {
  check(sameShape(a.shape, b.shape), () => `${what}: shapes ${shapeStr(a.shape)} and ${shapeStr(b.shape)} differ`);
}

