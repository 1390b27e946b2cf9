/** The C++ addon behind the Backend interface. Argument errors from native code come back as GranqError. */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GranqError } from '../errors.js';
import type { Backend } from './backend.js';

type Addon = Omit<Backend, 'name'>;

function loadAddon(): Addon {
  const require = createRequire(import.meta.url);
  // dist/src/backend/native.js -> package root
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const candidates = ['build/Release/granq_native.node', 'build/Debug/granq_native.node'].map((p) => root + p);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new GranqError(`native addon not built: expected ${candidates[0]}; run \`npm ci\` (or \`npm run build:native\`)`);
  }
  return require(found) as Addon;
}

let addon: Addon | null = null;

function wrap<K extends keyof Addon>(name: K): Addon[K] {
  const fn = (p: unknown) => {
    addon ??= loadAddon();
    try {
      return (addon[name] as (p: unknown) => unknown)(p);
    } catch (e) {
      if (e instanceof TypeError || e instanceof RangeError) throw new GranqError(`native ${e.message}`);
      throw e;
    }
  };
  return fn as Addon[K];
}

const names: (keyof Addon)[] = [
  'setThreads', 'numThreads', 'gemm', 'conv2dFwd', 'conv2dBwdData', 'conv2dBwdWeight',
  'batchNormFwdTrain', 'batchNormFwdEval', 'batchNormBwdTrain', 'batchNormBwdEval', 'channelStatsFwd', 'channelStatsBwd',
  'unaryFwd', 'unaryBwd', 'binaryFwd', 'addReluFwd', 'axpby', 'copyStrided', 'reduceFwd', 'reduceMinMaxBwd',
  'avgPool2dFwd', 'avgPool2dBwd', 'upsampleNearestFwd', 'upsampleNearestBwd', 'padChannelsFwd', 'padChannelsBwd',
  'softmaxFwd', 'softmaxBwd', 'embeddingFwd', 'embeddingBwd', 'sgdStep', 'adamStep',
  'quantRowsFwd', 'quantChannelLoopFwd', 'quantGroupsFwd',
];

export const nativeBackend: Backend = Object.freeze(
  Object.assign({ name: 'native' as const }, Object.fromEntries(names.map((n) => [n, wrap(n)])) as Addon),
);
