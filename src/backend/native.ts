/** The C++ addon behind the Backend interface. Argument errors from native code come back as GranqError. */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GranqError } from '../errors.js';
import { BINARY, REDUCE, UNARY, type Backend } from './backend.js';

type Kernels = Omit<Backend, 'name'>;
type KernelName = keyof Kernels;
type Addon = Kernels & { enumCounts(): { unary: number; binary: number; reduce: number } };

/** Every kernel of the addon, written once; the compile-time check below keeps it equal to the Backend interface. */
export const KERNELS = [
  'setThreads', 'numThreads', 'gemm', 'conv2dFwd', 'conv2dBwdData', 'conv2dBwdWeight',
  'batchNormFwdTrain', 'batchNormFwdEval', 'batchNormBwdTrain', 'batchNormBwdEval', 'channelStatsFwd', 'channelStatsBwd',
  'unaryFwd', 'unaryBwd', 'binaryFwd', 'addReluFwd', 'axpby', 'copyStrided', 'phaseMerge2', 'phaseSplit2', 'reduceFwd', 'reduceMinMaxBwd',
  'avgPool2dFwd', 'avgPool2dBwd', 'upsampleNearestFwd', 'upsampleNearestBwd', 'padChannelsFwd', 'padChannelsBwd',
  'softmaxFwd', 'softmaxBwd', 'embeddingFwd', 'embeddingBwd', 'sgdStep', 'adamStep',
  'quantRowsFwd', 'quantChannelLoopFwd', 'quantGroupsFwd', 'quantClipRanges', 'qgemmU8S8', 'qconv2d',
] as const satisfies readonly KernelName[];
type Unlisted = Exclude<KernelName, (typeof KERNELS)[number]>;
const allListed: [Unlisted] extends [never] ? true : Unlisted = true;
void allListed;

/**
 * The addon's exports must be exactly KERNELS (+ enumCounts), and its op enums as long as UNARY / BINARY / REDUCE
 * (as ggml asserts its op count): a stale or mismatched build fails at load with one line, not at the first call.
 */
export function checkAddon(exports: Record<string, unknown>, file: string): void {
  const fns = Object.keys(exports).filter((k) => typeof exports[k] === 'function');
  const want: string[] = [...KERNELS, 'enumCounts'];
  const missing = want.filter((k) => !fns.includes(k));
  const extra = fns.filter((k) => !want.includes(k));
  if (missing.length || extra.length) {
    throw new GranqError(`native addon ${file} does not match this build of granq (${missing.length ? `missing: ${missing.join(', ')}` : ''}` +
      `${missing.length && extra.length ? '; ' : ''}${extra.length ? `unknown: ${extra.join(', ')}` : ''}); rebuild it with \`npm run build:native\``);
  }
  const counts = (exports['enumCounts'] as Addon['enumCounts'])();
  const ours = { unary: Object.keys(UNARY).length, binary: Object.keys(BINARY).length, reduce: Object.keys(REDUCE).length };
  for (const k of ['unary', 'binary', 'reduce'] as const) {
    if (counts[k] !== ours[k]) throw new GranqError(`native addon ${file}: ${k} ops: the addon has ${counts[k]}, backend.ts ${ours[k]}; rebuild with \`npm run build:native\``);
  }
}

function loadAddon(): Addon {
  const require = createRequire(import.meta.url);
  // dist/src/backend/native.js -> package root
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const candidates = ['build/Release/granq_native.node', 'build/Debug/granq_native.node'].map((p) => root + p);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new GranqError(`native addon not built: expected ${candidates[0]}; run \`npm ci\` (or \`npm run build:native\`)`);
  }
  const exports = require(found) as Record<string, unknown>;
  checkAddon(exports, found);
  return exports as unknown as Addon;
}

let addon: Addon | null = null;

function wrap<K extends KernelName>(name: K): Kernels[K] {
  const fn = (p: unknown) => {
    addon ??= loadAddon();
    try {
      return (addon[name] as (p: unknown) => unknown)(p);
    } catch (e) {
      if (e instanceof TypeError || e instanceof RangeError) throw new GranqError(`native ${e.message}`);
      throw e;
    }
  };
  return fn as Kernels[K];
}

export const nativeBackend: Backend = Object.freeze(
  Object.assign({ name: 'native' as const }, Object.fromEntries(KERNELS.map((n) => [n, wrap(n)])) as Kernels),
);
