/** Scalar reference twins of native/quant.cc (stub: to be implemented). */
import type { Backend } from '../backend.js';

export const refQuant: Pick<Backend, 'quantRowsFwd' | 'quantChannelLoopFwd' | 'quantGroupsFwd'> = {
  quantRowsFwd() {
    throw new Error('ref quantRowsFwd: not implemented yet');
  },
  quantChannelLoopFwd() {
    throw new Error('ref quantChannelLoopFwd: not implemented yet');
  },
  quantGroupsFwd() {
    throw new Error('ref quantGroupsFwd: not implemented yet');
  },
};
