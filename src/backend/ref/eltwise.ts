/** Scalar reference twins of native/eltwise.cc (stub: to be implemented). */
import type { Backend } from '../backend.js';

export const refEltwise: Pick<Backend, 'unaryFwd' | 'unaryBwd' | 'binaryFwd' | 'axpby' | 'copyStrided'> = {
  unaryFwd() {
    throw new Error('ref unaryFwd: not implemented yet');
  },
  unaryBwd() {
    throw new Error('ref unaryBwd: not implemented yet');
  },
  binaryFwd() {
    throw new Error('ref binaryFwd: not implemented yet');
  },
  axpby() {
    throw new Error('ref axpby: not implemented yet');
  },
  copyStrided() {
    throw new Error('ref copyStrided: not implemented yet');
  },
};
