/**
 * The optional test set of a run. An explicit --data (or GRANQ_DATA) that is missing or holds no test split is an
 * error; when nothing was asked for and the default locations hold nothing, the run goes on without a test set.
 */
import { loadCifarSplit, locateCifarSplit, type CifarData, type CifarFormat } from '../data/cifar.js';
import { resolveDataDir } from '../data/data-dir.js';
import { GranqError } from '../errors.js';

export interface FoundTestSet {
  dir: string;
  format: CifarFormat;
  data: CifarData;
}

export function findTestSet(data: string | undefined, numClasses: number, limit?: number): FoundTestSet | null {
  const format: CifarFormat = numClasses === 100 ? 'cifar100' : 'cifar10';
  let res: ReturnType<typeof resolveDataDir>;
  try {
    res = resolveDataDir({ data });
  } catch (e) {
    if (data !== undefined || !(e instanceof GranqError) || !e.message.startsWith('no CIFAR data found')) throw e;
    return null;
  }
  try {
    locateCifarSplit(res.dir, format, 'test');
  } catch (e) {
    if (res.source === 'flag' || res.source === 'env') throw e;
    return null;
  }
  return { dir: res.dir, format, data: loadCifarSplit(res.dir, { format, split: 'test', limit }) };
}
