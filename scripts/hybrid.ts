/**
 * Until the native quantizer kernels land (another branch), scripts run on a hybrid backend: native everything,
 * the bit-exact reference quant kernels. Importing this module installs it only when native quant is missing.
 */
import { nativeBackend, setBackend, backend } from '../src/backend/index.js';
import { refQuant } from '../src/backend/ref/quant.js';

function nativeQuantReady(): boolean {
  try {
    const x = Float32Array.of(0, 1);
    nativeBackend.quantRowsFwd({ rows: 1, cols: 2, bits: 2, clamp: false, x, y: new Float32Array(2), rowMin: null, rowMax: null });
    return true;
  } catch {
    return false;
  }
}

export const usingHybrid = backend().name === 'native' && !nativeQuantReady();
if (usingHybrid) setBackend({ ...nativeBackend, ...refQuant, name: 'native' });
export const backendLabel = usingHybrid ? 'native + reference quant kernels (hybrid)' : backend().name;
