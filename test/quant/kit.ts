/**
 * Backends for quantizer tests. Native quantizer kernels land in another branch; until then `nativeQuantReady` is
 * false and whole-model runs use `hybridBackend` (native everything, reference quant kernels: bit-exact, slower).
 */
import { nativeBackend, refBackend, type Backend } from '../../src/backend/index.js';
import { refQuant } from '../../src/backend/ref/quant.js';

function probe(): boolean {
  try {
    const x = Float32Array.of(0, 1);
    nativeBackend.quantRowsFwd({ rows: 1, cols: 2, bits: 2, clamp: false, x, y: new Float32Array(2), rowMin: null, rowMax: null });
    return true;
  } catch {
    return false;
  }
}

export const nativeQuantReady = probe();
export const hybridBackend: Backend = { ...nativeBackend, ...refQuant, name: 'native' };
/** The native backend when its quant kernels exist, else the hybrid. */
export const fastBackend: Backend = nativeQuantReady ? nativeBackend : hybridBackend;
export { refBackend };
