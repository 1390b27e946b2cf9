/** Strict option parsers for commander: a bad value becomes a one-line error naming the option. */
import { InvalidArgumentError } from 'commander';
import { isBitWidth, MAX_BITS, MIN_BITS } from '../quant/fake-quant.js';

/** Where --data defaults to, in resolveDataDir's order (src/data/data-dir.ts), for every command's help. */
export const DATA_DEFAULT_HELP = '$GRANQ_DATA, else ../shared/data, else the data/ of granq data fetch';

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError(`expected a positive integer, got '${value}'`);
  }
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(`expected a non-negative integer, got '${value}'`);
  }
  return n;
}

/** A comma-separated list of positive integers ("16,32,64"). */
export function positiveIntList(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  if (parts.length === 0 || parts.some((p) => p === '')) throw new InvalidArgumentError(`expected comma-separated positive integers, got '${value}'`);
  return parts.map((p) => {
    try {
      return positiveInt(p);
    } catch {
      throw new InvalidArgumentError(`expected comma-separated positive integers, got '${value}'`);
    }
  });
}

/** A bit width in 2..8. */
export function bitWidth(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !isBitWidth(n)) throw new InvalidArgumentError(`expected a bit width in ${MIN_BITS}..${MAX_BITS}, got '${value}'`);
  return n;
}

/** A finite number > 0 ("1e-4"). */
export function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a positive number, got '${value}'`);
  return n;
}

/** A finite number >= 0. */
export function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`expected a non-negative number, got '${value}'`);
  return n;
}

/** A comma-separated list of non-negative integers; '' or 'none' is the empty list. */
export function nonNegativeIntList(value: string): number[] {
  if (value.trim() === '' || value.trim() === 'none') return [];
  return value.split(',').map((p) => {
    try {
      return nonNegativeInt(p.trim());
    } catch {
      throw new InvalidArgumentError(`expected comma-separated non-negative integers (or 'none'), got '${value}'`);
    }
  });
}

/** A number strictly between 0 and 1 ("0.9998"). */
export function decay(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n > 0 && n < 1)) throw new InvalidArgumentError(`expected a decay in (0, 1), got '${value}'`);
  return n;
}

/** A probability in (0, 1] ("0.5"). */
export function probability(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n > 0 && n <= 1)) throw new InvalidArgumentError(`expected a probability in (0, 1], got '${value}'`);
  return n;
}
