/**
 * The state of the static activation quantizers (layer: EMA of min/max; channel-static: per-channel min/max) is not
 * part of a Module's state dict, yet a checkpoint and a saved student need it: without it a resumed `layer` run
 * would quantize with different ranges, and a reloaded student could not run at all. Dynamic quantizers (granq,
 * channel-loop) have nothing to save.
 */
import { GranqError } from '../errors.js';
import type { Module } from '../nn/module.js';
import type { EstimatorState } from './estimators.js';
import { actQuantizers } from './quantize-model.js';
import { ACT_CAPABILITIES } from './quantizer.js';

export type { EstimatorState };

/** Path -> state of every activation quantizer that has one. */
export function actRangeStates(model: Module): Record<string, EstimatorState> {
  const out: Record<string, EstimatorState> = {};
  for (const [path, q] of actQuantizers(model)) {
    const s = q.estimator.getState();
    if (s) out[path] = s;
  }
  return out;
}

/** Restores what actRangeStates saved; the key sets must match exactly. */
export function loadActRangeStates(model: Module, states: Record<string, EstimatorState>, where: string): void {
  const qs = new Map(actQuantizers(model).filter(([, q]) => q.estimator.getState() !== null));
  const missing = [...qs.keys()].filter((k) => !(k in states));
  const unexpected = Object.keys(states).filter((k) => !qs.has(k));
  if (missing.length || unexpected.length) {
    throw new GranqError(`${where}: activation range state does not match the model` +
      `${missing.length ? `; missing: ${missing.join(', ')}` : ''}${unexpected.length ? `; unexpected: ${unexpected.join(', ')}` : ''}`);
  }
  for (const [path, q] of qs) q.estimator.setState(states[path]!, `${where}: ${path}`);
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

/** The warm-up schedule of the quantizers that have one (`layer`, released GDFQ/AdaDFQ): ranges update in warm-up only. */
export function setWarmupObserving(model: Module, epoch: number, warmupEpochs: number): void {
  for (const [, q] of actQuantizers(model)) {
    if (ACT_CAPABILITIES[q.kind].observesInWarmupOnly) q.observing = epoch < warmupEpochs;
  }
}
