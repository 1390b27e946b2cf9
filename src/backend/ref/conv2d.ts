/** Scalar reference twins of native/conv2d.cc (stub: to be implemented). */
import type { Backend } from '../backend.js';

export const refConv2d: Pick<Backend, 'conv2dFwd' | 'conv2dBwdData' | 'conv2dBwdWeight'> = {
  conv2dFwd() {
    throw new Error('ref conv2dFwd: not implemented yet');
  },
  conv2dBwdData() {
    throw new Error('ref conv2dBwdData: not implemented yet');
  },
  conv2dBwdWeight() {
    throw new Error('ref conv2dBwdWeight: not implemented yet');
  },
};
