/** Scalar reference twins of native/pool2d.cc (stub: to be implemented). */
import type { Backend } from '../backend.js';

export const refPool2d: Pick<Backend, 'avgPool2dFwd' | 'avgPool2dBwd' | 'upsampleNearestFwd' | 'upsampleNearestBwd' | 'padChannelsFwd' | 'padChannelsBwd'> = {
  avgPool2dFwd() {
    throw new Error('ref avgPool2dFwd: not implemented yet');
  },
  avgPool2dBwd() {
    throw new Error('ref avgPool2dBwd: not implemented yet');
  },
  upsampleNearestFwd() {
    throw new Error('ref upsampleNearestFwd: not implemented yet');
  },
  upsampleNearestBwd() {
    throw new Error('ref upsampleNearestBwd: not implemented yet');
  },
  padChannelsFwd() {
    throw new Error('ref padChannelsFwd: not implemented yet');
  },
  padChannelsBwd() {
    throw new Error('ref padChannelsBwd: not implemented yet');
  },
};
