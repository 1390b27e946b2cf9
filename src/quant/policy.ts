/**
 * QuantPolicy: what to quantize and how, a plain serialisable object (written into reports and checkpoints),
 * validated once. The defaults of the released GranQ recipe are act 'granq', weight 'slice'.
 */
import { GranqError } from '../errors.js';
import { isBitWidth, MAX_BITS, MIN_BITS } from './fake-quant.js';
import { ACT_KINDS, WEIGHT_CLIPS, WEIGHT_KINDS, type ActKind, type WeightClip, type WeightKind } from './quantizer.js';

export interface QuantPolicy {
  wbits: number;
  abits: number;
  act: ActKind;
  weight: WeightKind;
  /** Module paths kept in full precision (a path also covers everything below it). */
  skip?: string[];
  /** `layer` only: GDFQ's recursive EMA bias correction instead of the correct one. */
  releasedEma?: boolean;
  /** How weight ranges are chosen (absent: 'minmax', the published rule); 'mse' for channel and tensor only. */
  weightClip?: WeightClip;
}

function checkBits(name: string, v: unknown): number {
  if (!isBitWidth(v)) {
    throw new GranqError(`policy: ${name} must be an integer in ${MIN_BITS}..${MAX_BITS}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function checkName<T extends string>(name: string, v: unknown, known: readonly T[]): T {
  if (typeof v !== 'string' || !(known as readonly string[]).includes(v)) {
    throw new GranqError(`policy: ${name} must be one of ${known.join(', ')}, got ${JSON.stringify(v)}`);
  }
  return v as T;
}

/** Checks every field and returns a normalised copy (unknown fields are an error, so typos do not pass silently). */
export function validatePolicy(p: unknown): QuantPolicy {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new GranqError(`policy: expected an object, got ${JSON.stringify(p)}`);
  const o = p as Record<string, unknown>;
  const known = ['wbits', 'abits', 'act', 'weight', 'skip', 'releasedEma', 'weightClip'];
  const extra = Object.keys(o).filter((k) => !known.includes(k));
  if (extra.length) throw new GranqError(`policy: unknown field(s) ${extra.join(', ')}; known: ${known.join(', ')}`);
  const out: QuantPolicy = {
    wbits: checkBits('wbits', o['wbits']),
    abits: checkBits('abits', o['abits']),
    act: checkName('act', o['act'], ACT_KINDS),
    weight: checkName('weight', o['weight'], WEIGHT_KINDS),
  };
  if (o['skip'] !== undefined) {
    const s = o['skip'];
    if (!Array.isArray(s) || !s.every((x) => typeof x === 'string' && x.length > 0)) {
      throw new GranqError(`policy: skip must be a list of module paths, got ${JSON.stringify(s)}`);
    }
    out.skip = [...s];
  }
  if (o['releasedEma'] !== undefined) {
    if (typeof o['releasedEma'] !== 'boolean') throw new GranqError(`policy: releasedEma must be a boolean, got ${JSON.stringify(o['releasedEma'])}`);
    if (o['releasedEma'] && out.act !== 'layer') throw new GranqError(`policy: releasedEma applies only to act 'layer', got act '${out.act}'`);
    out.releasedEma = o['releasedEma'];
  }
  if (o['weightClip'] !== undefined) {
    const c = checkName('weightClip', o['weightClip'], WEIGHT_CLIPS);
    // The slice rule has no clamp (released), so a clipped range would give codes beyond k bits.
    if (c !== 'minmax' && out.weight === 'slice') throw new GranqError(`policy: weightClip '${c}' needs clamped weights (channel or tensor), got weight 'slice'`);
    if (c !== 'minmax') out.weightClip = c;
  }
  return out;
}

/** The weight rule with its clip: "slice", "channel+mse". */
export function weightLabel(p: { weight: string; weightClip?: string }): string {
  return `${p.weight}${p.weightClip ? `+${p.weightClip}` : ''}`;
}

/** "W4A4 granq/slice" */
export function policyLabel(p: QuantPolicy): string {
  return `W${p.wbits}A${p.abits} ${p.act}/${weightLabel(p)}${p.releasedEma ? ' (released EMA)' : ''}`;
}
