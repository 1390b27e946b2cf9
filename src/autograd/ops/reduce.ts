/** Reductions over axes (sum, max, min) and the composites built from them (mean, variance). */
import { backend, REDUCE, type Mask4, type Quad, type ReduceName } from '../../backend/index.js';
import { check } from '../../errors.js';
import { allocFloats, Tensor } from '../../tensor/tensor.js';
import { normAxis, shapeStr, type Shape } from '../../tensor/shape.js';
import { defineOp } from '../tape.js';
import { scale } from './eltwise.js';

declare module '../tape.js' {
  interface OpAttrs {
    reduce_sum: ReduceAttrs;
    reduce_max: ReduceAttrs;
    reduce_min: ReduceAttrs;
  }
}

interface ReduceAttrs {
  axes: number[] | null; // null = all
  keepDims: boolean;
}

interface Reduce4 {
  shape: Quad;
  mask: Mask4;
  outShape: number[];
}

/** Collapses a shape into at most 4 runs of reduced / kept dims. */
function reduce4(shape: Shape, axes: number[] | null, keepDims: boolean, op: string): Reduce4 {
  const r = shape.length;
  const set = new Set((axes ?? shape.map((_, i) => i)).map((a) => normAxis(a, r, `${op} axis`)));
  const runs: { n: number; red: boolean }[] = [];
  for (let i = 0; i < r; i++) {
    const red = set.has(i);
    const last = runs[runs.length - 1];
    if (shape[i] === 1) continue;
    if (last && last.red === red) last.n *= shape[i]!;
    else runs.push({ n: shape[i]!, red });
  }
  check(runs.length <= 4, () => `${op}: reducing axes [${[...set]}] of ${shapeStr(shape)} needs more than 4 alternating runs`);
  while (runs.length < 4) runs.unshift({ n: 1, red: false });
  const outShape: number[] = [];
  for (let i = 0; i < r; i++) {
    if (!set.has(i)) outShape.push(shape[i]!);
    else if (keepDims) outShape.push(1);
  }
  return { shape: runs.map((x) => x.n) as Quad, mask: runs.map((x) => x.red) as Mask4, outShape };
}

function reduceOp(name: ReduceName) {
  const code = REDUCE[name];
  return defineOp<`reduce_${ReduceName}`, [Tensor], Reduce4>({
    name: `reduce_${name}`,
    forward([x], { axes, keepDims }) {
      check(x.size > 0, () => `${name}: cannot reduce an empty tensor`);
      const r4 = reduce4(x.shape, axes, keepDims, name);
      const out = Tensor.empty(r4.outShape);
      backend().reduceFwd({ op: code, shape: r4.shape, mask: r4.mask, x: x.data, y: out.data });
      return { out, saved: r4 };
    },
    backward({ gy, saved: r4, inputs: [x], out }) {
      const dx = allocFloats(x.size);
      if (name === 'sum') {
        // Broadcast gy back over the reduced runs.
        const stride = [0, 0, 0, 0] as Quad;
        let acc = 1;
        for (let i = 3; i >= 0; i--) {
          if (!r4.mask[i]) {
            stride[i] = acc;
            acc *= r4.shape[i]!;
          }
        }
        backend().copyStrided({ shape: r4.shape, stride, x: gy, y: dx });
      } else {
        backend().reduceMinMaxBwd({ shape: r4.shape, mask: r4.mask, x: x.data, y: out.data, dy: gy, dx });
      }
      return [dx];
    },
  });
}

const sumOp = reduceOp('sum');
const maxOp = reduceOp('max');
const minOp = reduceOp('min');

type Axes = number | number[] | null;
const toAxes = (a: Axes) => (a === null ? null : Array.isArray(a) ? a : [a]);

export const sum = (x: Tensor, axes: Axes = null, keepDims = false) => sumOp([x], { axes: toAxes(axes), keepDims });
export const max = (x: Tensor, axes: Axes = null, keepDims = false) => maxOp([x], { axes: toAxes(axes), keepDims });
export const min = (x: Tensor, axes: Axes = null, keepDims = false) => minOp([x], { axes: toAxes(axes), keepDims });

function countOf(x: Tensor, axes: Axes): number {
  const list = toAxes(axes) ?? x.shape.map((_, i) => i);
  return list.reduce((n, a) => n * x.shape[normAxis(a, x.ndim)]!, 1);
}

export function mean(x: Tensor, axes: Axes = null, keepDims = false): Tensor {
  return scale(sum(x, axes, keepDims), 1 / countOf(x, axes));
}
