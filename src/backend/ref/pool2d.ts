/** Scalar reference twins of native/pool2d.cc: average pooling, nearest upsampling, channel padding. */
import type { Backend } from '../backend.js';

export const refPool2d: Pick<Backend, 'avgPool2dFwd' | 'avgPool2dBwd' | 'upsampleNearestFwd' | 'upsampleNearestBwd' | 'padChannelsFwd' | 'padChannelsBwd'> = {
  avgPool2dFwd({ n, c, ih, iw, k, stride, oh, ow, x, y }) {
    for (let p = 0; p < n * c; p++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++) {
          let sum = 0;
          for (let ky = 0; ky < k; ky++)
            for (let kx = 0; kx < k; kx++) sum += x[(p * ih + oy * stride + ky) * iw + ox * stride + kx]!;
          y[(p * oh + oy) * ow + ox] = sum / (k * k);
        }
  },

  avgPool2dBwd({ n, c, ih, iw, k, stride, oh, ow, dy, dx }) {
    dx.fill(0);
    for (let p = 0; p < n * c; p++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++) {
          const g = dy[(p * oh + oy) * ow + ox]! / (k * k);
          for (let ky = 0; ky < k; ky++)
            for (let kx = 0; kx < k; kx++) dx[(p * ih + oy * stride + ky) * iw + ox * stride + kx]! += g;
        }
  },

  upsampleNearestFwd({ n, c, ih, iw, scale, x, y }) {
    const oh = ih * scale;
    const ow = iw * scale;
    for (let p = 0; p < n * c; p++)
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++) y[(p * oh + i) * ow + j] = x[(p * ih + Math.floor(i / scale)) * iw + Math.floor(j / scale)]!;
  },

  upsampleNearestBwd({ n, c, ih, iw, scale, dy, dx }) {
    const oh = ih * scale;
    const ow = iw * scale;
    for (let p = 0; p < n * c; p++)
      for (let i = 0; i < ih; i++)
        for (let j = 0; j < iw; j++) {
          let sum = 0; // the scale x scale block, row-major
          for (let r = 0; r < scale; r++)
            for (let q = 0; q < scale; q++) sum += dy[(p * oh + i * scale + r) * ow + j * scale + q]!;
          dx[(p * ih + i) * iw + j] = sum;
        }
  },

  padChannelsFwd({ n, c, hw, before, after, x, y }) {
    const oc = before + c + after;
    y.fill(0);
    for (let i = 0; i < n; i++)
      for (let ch = 0; ch < c; ch++)
        for (let j = 0; j < hw; j++) y[(i * oc + before + ch) * hw + j] = x[(i * c + ch) * hw + j]!;
  },

  padChannelsBwd({ n, c, hw, before, after, dy, dx }) {
    const oc = before + c + after;
    for (let i = 0; i < n; i++)
      for (let ch = 0; ch < c; ch++)
        for (let j = 0; j < hw; j++) dx[(i * c + ch) * hw + j] = dy[(i * oc + before + ch) * hw + j]!;
  },
};
