/**
 * quantizeModel(teacher, policy): a deep copy of the teacher with modules swapped through a mapping table
 * (torch.ao style): Conv2d (grouped and depthwise too) -> QuantConv2d, Linear -> QuantLinear, ReLU and a non-negative
 * Hardtanh (ReLU6, ONNX Clip(0, 6)) -> Sequential(activation, act quantizer).
 * BatchNorm stays FP and unfolded; the input and the logits are not quantized. The teacher is never touched.
 */
import { GranqError } from '../errors.js';
import { FixedConv2d } from '../models/onnx-graph.js';
import { batchNorms, Conv2d, Hardtanh, Linear, ReLU, Sequential } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { ChannelLoopActQuantizer } from './act/channel-loop.js';
import { ChannelStaticActQuantizer } from './act/channel-static.js';
import { GranqActQuantizer } from './act/granq.js';
import { LayerActQuantizer } from './act/layer.js';
import { cloneModule } from '../nn/clone.js';
import { QuantConv2d, QuantLinear } from './modules.js';
import { validatePolicy, weightLabel, type QuantPolicy } from './policy.js';
import { ActQuantizer, Quantizer, WeightQuantizer, type ActKind, type WeightKind } from './quantizer.js';
import { ChannelWeightQuantizer } from './weight/channel.js';
import { SliceWeightQuantizer } from './weight/slice.js';
import { TensorWeightQuantizer } from './weight/tensor.js';

export const ACT_QUANTIZERS: Record<ActKind, (bits: number, p: QuantPolicy) => ActQuantizer> = {
  granq: (b) => new GranqActQuantizer(b),
  'channel-loop': (b) => new ChannelLoopActQuantizer(b),
  layer: (b, p) => new LayerActQuantizer(b, { releasedBiasCorrection: p.releasedEma ?? false }),
  'channel-static': (b) => new ChannelStaticActQuantizer(b),
};

export const WEIGHT_QUANTIZERS: Record<WeightKind, (bits: number, p?: QuantPolicy) => WeightQuantizer> = {
  slice: (b) => new SliceWeightQuantizer(b),
  channel: (b, p) => new ChannelWeightQuantizer(b, p?.weightClip),
  tensor: (b, p) => new TensorWeightQuantizer(b, p?.weightClip),
};

export interface SummaryRow {
  path: string;
  kind: 'conv' | 'linear' | 'act' | 'skipped' | 'fixed';
  /** "slice W3 [16,3,3,3]" or "granq A3" */
  quant: string;
  notes: string;
}

export interface QuantSummary {
  policy: QuantPolicy;
  rows: SummaryRow[];
  convs: number;
  linears: number;
  acts: number;
  /** Paths of the 1x1 convs left effectively FP by the slice rule. */
  effectivelyFp: string[];
  /** BatchNorm layers of the model (kept FP); 0 for a graph whose exporter folded BN into the convs. */
  batchNorms: number;
  /** Convs whose weight is a graph constant (ONNX Constant, not a parameter): left as they are. */
  fixed: string[];
  warnings: string[];
}

interface Swap {
  matches(m: Module): boolean;
  swap(m: Module, path: string, p: QuantPolicy, rows: SummaryRow[]): Module;
}

const shapeStr = (s: readonly number[]) => `[${s.join(',')}]`;

/** The mapping table. Order matters only in that quantized modules are never matched again. */
const MAPPING: Swap[] = [
  {
    matches: (m) => m instanceof Conv2d,
    swap(m, path, p, rows) {
      const conv = m as Conv2d;
      const fp = p.weight === 'slice' && SliceWeightQuantizer.isEffectivelyFp(conv.weight.shape);
      rows.push({ path, kind: 'conv', quant: `${weightLabel(p)} W${p.wbits} ${shapeStr(conv.weight.shape)}`, notes: fp ? '1x1: effectively FP under slice' : '' });
      return new QuantConv2d(conv, WEIGHT_QUANTIZERS[p.weight](p.wbits, p));
    },
  },
  {
    matches: (m) => m instanceof Linear,
    swap(m, path, p, rows) {
      const lin = m as Linear;
      rows.push({ path, kind: 'linear', quant: `${weightLabel(p)} W${p.wbits} ${shapeStr(lin.weight.shape)}`, notes: p.weight === 'slice' ? 'rows = output features' : '' });
      return new QuantLinear(lin, WEIGHT_QUANTIZERS[p.weight](p.wbits, p));
    },
  },
  {
    matches: (m) => m instanceof ReLU,
    swap(m, path, p, rows) {
      rows.push({ path, kind: 'act', quant: `${p.act} A${p.abits}`, notes: 'after ReLU' });
      return new Sequential(m, ACT_QUANTIZERS[p.act](p.abits, p));
    },
  },
  {
    // Post-activation like ReLU's output: a clip whose lower bound is >= 0 (ReLU6 = Hardtanh(0, 6)).
    matches: (m) => m instanceof Hardtanh && m.minVal >= 0,
    swap(m, path, p, rows) {
      const h = m as Hardtanh;
      rows.push({ path, kind: 'act', quant: `${p.act} A${p.abits}`, notes: `after clip [${h.minVal}, ${h.maxVal}]` });
      return new Sequential(m, ACT_QUANTIZERS[p.act](p.abits, p));
    },
  },
];

const covers = (skip: string, path: string) => path === skip || path.startsWith(`${skip}.`);

export interface QuantizeOptions {
  /** Where the 1x1-under-slice warning goes (default: stderr). */
  warn?: (message: string) => void;
}

export function quantizeModel(teacher: Module, policy: QuantPolicy, opts: QuantizeOptions = {}): { student: Module; summary: QuantSummary } {
  const p = validatePolicy(policy);
  const student = cloneModule(teacher);
  const paths = new Set(student.namedModules().map(([path]) => path));
  for (const s of p.skip ?? []) {
    if (!paths.has(s)) throw new GranqError(`policy: skip path '${s}' names no module of the model`);
  }
  const rows: SummaryRow[] = [];
  // Collect first, swap after: the tree must not change while it is walked.
  const todo: [Module, string, string, Module][] = [];
  for (const [path, parent] of student.namedModules()) {
    for (const [name, child] of parent.children()) {
      const childPath = path ? `${path}.${name}` : name;
      if (child instanceof Quantizer) continue;
      if (child instanceof FixedConv2d || MAPPING.some((s) => s.matches(child))) todo.push([parent, name, childPath, child]);
    }
  }
  for (const [parent, name, childPath, child] of todo) {
    if (child instanceof FixedConv2d) {
      rows.push({ path: childPath, kind: 'fixed', quant: 'FP (constant)', notes: child.isSelection()
        ? 'constant 0/1 weight, not a parameter: not quantized (0 and 1 are exact levels under every weight rule)'
        : 'constant weight, not a parameter: not quantized' });
      continue;
    }
    if ((p.skip ?? []).some((s) => covers(s, childPath))) {
      rows.push({ path: childPath, kind: 'skipped', quant: 'FP', notes: 'kept FP by policy.skip' });
      continue;
    }
    parent.replaceChild(name, MAPPING.find((s) => s.matches(child))!.swap(child, childPath, p, rows));
  }
  const effectivelyFp = rows.filter((r) => r.notes.startsWith('1x1')).map((r) => r.path);
  const warnings: string[] = [];
  if (effectivelyFp.length > 0) {
    warnings.push(`warning: weight rule 'slice' quantizes each (out, in) kernel slice on its own; the ${effectivelyFp.length} 1x1 conv(s) ` +
      `${effectivelyFp.join(', ')} have 1-element slices and stay effectively full precision (use --weight channel to quantize them)`);
    const warn = opts.warn ?? ((s: string) => process.stderr.write(`${s}\n`));
    for (const w of warnings) warn(w);
  }
  const summary: QuantSummary = {
    policy: p,
    rows,
    convs: rows.filter((r) => r.kind === 'conv').length,
    linears: rows.filter((r) => r.kind === 'linear').length,
    acts: rows.filter((r) => r.kind === 'act').length,
    effectivelyFp,
    batchNorms: batchNorms(student).length,
    fixed: rows.filter((r) => r.kind === 'fixed').map((r) => r.path),
    warnings,
  };
  return { student, summary };
}

/** Every quantizer of a quantized model, with its path. */
export function quantizers(model: Module): [string, Quantizer][] {
  return model.namedModules().filter((e): e is [string, Quantizer] => e[1] instanceof Quantizer);
}
export function actQuantizers(model: Module): [string, ActQuantizer][] {
  return model.namedModules().filter((e): e is [string, ActQuantizer] => e[1] instanceof ActQuantizer);
}

/** The summary as an aligned text table (one line per quantized module, then the counts). */
export function formatSummary(s: QuantSummary): string {
  const head = ['module', 'kind', 'quantizer', 'notes'];
  const body = s.rows.map((r) => [r.path, r.kind, r.quant, r.notes]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), ...body.map(line),
    `${s.convs} quantized convs, ${s.linears} linear, ${s.acts} activation quantizers` +
      (s.effectivelyFp.length ? ` (${s.effectivelyFp.length} 1x1 convs effectively FP under slice)` : '') +
      (s.fixed.length ? `; ${s.fixed.length} constant-weight convs left as they are` : ''),
    ...(s.batchNorms === 0 ? ['no BatchNorm layers: folded into the convs by the exporter, so the quantized conv weights include BN (nothing is kept FP for it)'] : [])].join('\n');
}
