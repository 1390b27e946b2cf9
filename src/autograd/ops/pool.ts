/** Spatial primitives: average pooling (global pooling and stride-2 subsampling are special cases) and nearest upsampling. */
import { backend, type Pool2dShape } from '../../backend/index.js';
import { check } from '../../errors.js';
import { allocFloats, Tensor } from '../../tensor/tensor.js';
import { shapeStr } from '../../tensor/shape.js';
import { defineOp } from '../tape.js';

declare module '../tape.js' {
  interface OpAttrs {
    avg_pool2d: { k: number; stride: number };
    upsample_nearest: { scale: number };
  }
}

const avgPool2dOp = defineOp<'avg_pool2d', [Tensor], Pool2dShape>({
  name: 'avg_pool2d',
  forward([x], { k, stride }) {
    check(x.ndim === 4, () => `avgPool2d: expected [N,C,H,W], got ${shapeStr(x.shape)}`);
    const [n, c, ih, iw] = x.shape as [number, number, number, number];
    check(Number.isInteger(k) && k >= 1 && k <= ih && k <= iw, () => `avgPool2d: window ${k} does not fit ${ih}x${iw}`);
    check(Number.isInteger(stride) && stride >= 1, () => `avgPool2d: stride must be a positive integer, got ${stride}`);
    const s: Pool2dShape = { n, c, ih, iw, k, stride, oh: Math.floor((ih - k) / stride) + 1, ow: Math.floor((iw - k) / stride) + 1 };
    const out = Tensor.empty([n, c, s.oh, s.ow]);
    backend().avgPool2dFwd({ ...s, x: x.data, y: out.data });
    return { out, saved: s };
  },
  backward({ gy, saved: s, inputs: [x] }) {
    const dx = allocFloats(x.size);
    backend().avgPool2dBwd({ ...s, dy: gy, dx });
    return [dx];
  },
});

export const avgPool2d = (x: Tensor, k: number, stride = k) => avgPool2dOp([x], { k, stride });
/** [N,C,H,W] -> [N,C,1,1] mean over H and W. */
export function globalAvgPool(x: Tensor): Tensor {
  check(x.ndim === 4 && x.shape[2] === x.shape[3], () => `globalAvgPool: expected square [N,C,H,W], got ${shapeStr(x.shape)}`);
  return avgPool2d(x, x.shape[2]!, x.shape[2]!);
}
/** x[:, :, ::s, ::s] (the option-A shortcut's subsampling): a 1x1 average pool with stride s. */
export const subsample = (x: Tensor, s: number) => avgPool2d(x, 1, s);

const upsampleOp = defineOp<'upsample_nearest', [Tensor], null>({
  name: 'upsample_nearest',
  forward([x], { scale }) {
    check(x.ndim === 4, () => `upsampleNearest: expected [N,C,H,W], got ${shapeStr(x.shape)}`);
    check(Number.isInteger(scale) && scale >= 1, () => `upsampleNearest: scale must be a positive integer, got ${scale}`);
    const [n, c, ih, iw] = x.shape as [number, number, number, number];
    const out = Tensor.empty([n, c, ih * scale, iw * scale]);
    backend().upsampleNearestFwd({ n, c, ih, iw, scale, x: x.data, y: out.data });
    return { out, saved: null };
  },
  backward({ gy, inputs: [x], attrs: { scale } }) {
    const [n, c, ih, iw] = x.shape as [number, number, number, number];
    const dx = allocFloats(x.size);
    backend().upsampleNearestBwd({ n, c, ih, iw, scale, dy: gy, dx });
    return [dx];
  },
});

export const upsampleNearest = (x: Tensor, scale = 2) => upsampleOp([x], { scale });
