/**
 * The state of the static activation quantizers (layer: EMA of min/max; channel-static: per-channel min/max) is not
 * part of a Module's state dict, yet a checkpoint and a saved student need it: without it a resumed `layer` run
 * would quantize with different ranges, and a reloaded student could not run at all. Dynamic quantizers (granq,
 * channel-loop) have nothing to save.
 *
 * The estimators keep these fields private/protected; quant/ has no state API yet, so this file reads and writes
 * them through a typed view. (To do in quant/: getState/setState on RangeEstimator, then drop the casts here.)
 */
import { GranqError } from '../errors.js';
import type { Module } from '../nn/module.js';
import { actQuantizers, EmaEstimator, MinMaxEstimator, type RangeEstimator } from '../quant/index.js';

/** JSON-safe: EMA fields are doubles, min/max arrays float32 values (both round-trip exactly through JSON). */
export type EstimatorState =
  | { kind: 'ema'; rawMin: number; rawMax: number; betaT: number; steps: number; observing: boolean }
  | { kind: 'minmax'; mins: number[] | null; maxs: number[] | null; observing: boolean };

interface EmaFields { rawMin: number; rawMax: number; betaT: number; steps: number }
interface MinMaxFields { state: { mins: Float32Array; maxs: Float32Array } | null }

function estimatorState(e: RangeEstimator): EstimatorState | null {
  if (e instanceof EmaEstimator) {
    const f = e as unknown as EmaFields;
    return { kind: 'ema', rawMin: f.rawMin, rawMax: f.rawMax, betaT: f.betaT, steps: f.steps, observing: e.observing };
  }
  if (e instanceof MinMaxEstimator) {
    const s = (e as unknown as MinMaxFields).state;
    return { kind: 'minmax', mins: s ? [...s.mins] : null, maxs: s ? [...s.maxs] : null, observing: e.observing };
  }
  return null;
}

function setEstimatorState(e: RangeEstimator, s: EstimatorState, where: string): void {
  if (s.kind === 'ema' && e instanceof EmaEstimator) {
    Object.assign(e as unknown as EmaFields, { rawMin: s.rawMin, rawMax: s.rawMax, betaT: s.betaT, steps: s.steps });
  } else if (s.kind === 'minmax' && e instanceof MinMaxEstimator) {
    (e as unknown as MinMaxFields).state = s.mins && s.maxs ? { mins: Float32Array.from(s.mins), maxs: Float32Array.from(s.maxs) } : null;
  } else {
    throw new GranqError(`${where}: saved range state of kind '${s.kind}' does not fit the model's quantizer`);
  }
  e.observing = s.observing;
}

/** Path -> state of every activation quantizer that has one. */
export function actRangeStates(model: Module): Record<string, EstimatorState> {
  const out: Record<string, EstimatorState> = {};
  for (const [path, q] of actQuantizers(model)) {
    const s = estimatorState(q.estimator);
    if (s) out[path] = s;
  }
  return out;
}

/** Restores what actRangeStates saved; the key sets must match exactly. */
export function loadActRangeStates(model: Module, states: Record<string, EstimatorState>, where: string): void {
  const qs = new Map(actQuantizers(model).filter(([, q]) => estimatorState(q.estimator) !== null));
  const missing = [...qs.keys()].filter((k) => !(k in states));
  const unexpected = Object.keys(states).filter((k) => !qs.has(k));
  if (missing.length || unexpected.length) {
    throw new GranqError(`${where}: activation range state does not match the model` +
      `${missing.length ? `; missing: ${missing.join(', ')}` : ''}${unexpected.length ? `; unexpected: ${unexpected.join(', ')}` : ''}`);
  }
  for (const [path, q] of qs) setEstimatorState(q.estimator, states[path]!, `${where}: ${path}`);
}

/** Runs fn with every activation observer off (evaluation must never move the ranges), then restores the switches. */
export function withObserversOff<T>(model: Module, fn: () => T): T {
  const qs = actQuantizers(model).map(([, q]) => q);
  const saved = qs.map((q) => q.observing);
  for (const q of qs) q.observing = false;
  try {
    return fn();
  } finally {
    qs.forEach((q, i) => { q.observing = saved[i]!; });
  }
}

/** The `layer` baseline's schedule (released GDFQ/AdaDFQ): ranges update during the warm-up epochs only. */
export function setLayerObserving(model: Module, epoch: number, warmupEpochs: number): void {
  for (const [, q] of actQuantizers(model)) {
    if (q.kind === 'layer') q.observing = epoch < warmupEpochs;
  }
}
