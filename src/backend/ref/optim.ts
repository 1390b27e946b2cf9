/** Scalar reference twins of native/optim.cc (stub: to be implemented). */
import type { Backend } from '../backend.js';

export const refOptim: Pick<Backend, 'sgdStep' | 'adamStep'> = {
  sgdStep() {
    throw new Error('ref sgdStep: not implemented yet');
  },
  adamStep() {
    throw new Error('ref adamStep: not implemented yet');
  },
};
