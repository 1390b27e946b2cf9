/** Data-movement primitives: reshape (a view), channel padding (ResNet option-A shortcut), spatial subsampling. */
import { backend } from '../../backend/index.js';
import { check } from '../../errors.js';
import { allocFloats, Tensor } from '../../tensor/tensor.js';
import { numel, shapeStr, type Shape } from '../../tensor/shape.js';
import { defineOp } from '../tape.js';

declare module '../tape.js' {
  interface OpAttrs {
    reshape: { shape: number[] };
    pad_channels: { before: number; after: number };
  }
}

const reshapeOp = defineOp<'reshape', [Tensor], null>({
  name: 'reshape',
  forward([x], { shape }) {
    return { out: new Tensor(x.data, shape), saved: null };
  },
  backward({ gy }) {
    return [gy];
  },
});

/** A view with a new shape (one dim may be -1). Shares data with x. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const free = shape.filter((d) => d === -1).length;
  check(free <= 1, () => `reshape: at most one -1 allowed, got ${shapeStr(shape)}`);
  const known = numel(shape.filter((d) => d !== -1));
  const full = shape.map((d) => (d === -1 ? x.size / known : d));
  check(numel(full) === x.size && full.every((d) => Number.isInteger(d) && d >= 0),
    () => `reshape: cannot view ${shapeStr(x.shape)} (${x.size} elements) as ${shapeStr(shape)}`);
  return reshapeOp([x], { shape: full });
}

export const flatten = (x: Tensor) => reshape(x, [x.shape[0]!, -1]);

const padChannelsOp = defineOp<'pad_channels', [Tensor], null>({
  name: 'pad_channels',
  forward([x], { before, after }) {
    const [n, c, h, w] = x.shape as [number, number, number, number];
    const out = Tensor.empty([n, before + c + after, h, w]);
    backend().padChannelsFwd({ n, c, hw: h * w, before, after, x: x.data, y: out.data });
    return { out, saved: null };
  },
  backward({ gy, inputs: [x], attrs: { before, after } }) {
    const [n, c, h, w] = x.shape as [number, number, number, number];
    const dx = allocFloats(x.size);
    backend().padChannelsBwd({ n, c, hw: h * w, before, after, dy: gy, dx });
    return [dx];
  },
});

/** Zero channels before and after: [N,C,H,W] -> [N,before+C+after,H,W]. */
export function padChannels(x: Tensor, before: number, after: number): Tensor {
  check(x.ndim === 4, () => `padChannels: expected a 4-D tensor, got ${shapeStr(x.shape)}`);
  check(Number.isInteger(before) && before >= 0 && Number.isInteger(after) && after >= 0,
    () => `padChannels: before/after must be non-negative integers, got ${before}, ${after}`);
  return padChannelsOp([x], { before, after });
}
