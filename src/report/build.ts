/**
 * Builds the report: reads the inputs (inputs.ts), computes what needs the model (activation maps: the teacher on
 * real test images; pixel distributions: a run's saved generator), prepares each figure's data, renders every
 * chart to SVG and assembles the page. Figures whose input was not given are listed with what would draw them.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadCifarSplit, normalizeImages } from '../data/cifar.js';
import { findShared, resolveDataDir } from '../data/data-dir.js';
import { GranqError } from '../errors.js';
import { locateRecordedTeacher, type RecordedTeacher } from '../models/default-teacher.js';
import { loadModel } from '../models/load.js';
import { CHECKPOINT_FILE, loadCheckpoint, runSyntheticImages } from '../zsq/checkpoint.js';
import { publishedRows, runRows } from './accuracy.js';
import { activationMaps, activationMapsSpec, CIFAR10_CLASSES } from './activation-maps.js';
import { renderSvg, type Spec } from './charts.js';
import { curvesSpec } from './curves.js';
import { reportHtml, type AccuracySection, type FigureSection } from './html.js';
import { readBenchQuant, readErrorAnalysis, readRunFolders, type RunFolder } from './inputs.js';
import { latencySpec } from './latency.js';
import { errorSpec } from './layer-error.js';
import { pixelHistograms, pixelSpec } from './pixels.js';
import { isSweepDir, sweepRunDirs, sweepTable } from './sweep-table.js';
import { parsePublished } from './published.js';

export const PUBLISHED_DEFAULT = 'research/zsq-report.md';

export interface ReportOptions {
  /** granq quantize run folders, and granq sweep folders (each stands for its cells, plus its table over seeds). */
  runs: string[];
  bench?: string;
  analyze?: string[];
  /** The FP teacher; default: the one named in the first run's result.json. */
  model?: string;
  data?: string;
  /** The research report with the published numbers; default ../shared/research/zsq-report.md. */
  published?: string;
  bits: number;
  /** Activation maps: the first N test images, these channels of the first layer. */
  images: number;
  channels: number[];
  /** Pixel distributions: this many real test images and as many generator images. */
  pixelImages: number;
}

export interface BuiltReport { html: string; figures: FigureSection[]; seconds: Record<string, number> }

/** The teacher a run names: its result.json's, else (an unfinished run) its checkpoint's settings. */
function namedTeacher(runs: RunFolder[]): RecordedTeacher | undefined {
  const done = runs.find((r) => r.result)?.result?.teacher;
  if (done !== undefined) return done;
  const running = runs.find((r) => r.hasCheckpoint);
  if (!running) return undefined;
  return loadCheckpoint<{ settings?: { teacher?: RecordedTeacher } }>(path.join(running.dir, CHECKPOINT_FILE), 'RUN_DIR').extra.settings?.teacher;
}

/** --model, else the runs' teacher: where they recorded it, or the same bytes in models/ or ../shared/models/. */
function teacherPath(o: ReportOptions, runs: RunFolder[]): string {
  if (o.model !== undefined) return o.model;
  const named = namedTeacher(runs);
  if (named === undefined) throw new GranqError('--model: no run names its teacher (no result.json, no checkpoint); pass --model FILE');
  const found = locateRecordedTeacher(named);
  if (found === null) {
    throw new GranqError(`--model: the runs' teacher ${named.path} does not exist here${named.sha256 ? ', nor a file of its name and sha256 in models/ or ../shared/models/' : ''}; pass --model FILE`);
  }
  return found;
}

function readPublished(file: string | undefined): { file: string; text: string } | string {
  const f = file ?? findShared(PUBLISHED_DEFAULT);
  if (f === null) return `no --published FILE given and ../shared/${PUBLISHED_DEFAULT} not found`;
  if (!existsSync(f)) throw new GranqError(`--published: no such file ${f}`);
  return { file: f, text: readFileSync(f, 'utf8') };
}

export async function buildReport(o: ReportOptions, log: (s: string) => void = () => {}): Promise<BuiltReport> {
  if (!o.runs.length) throw new GranqError('RUN_DIR: give at least one granq quantize output folder');
  if (!o.channels.length) throw new GranqError('--channels: give at least one channel of the first layer, e.g. 0,1,2,3');
  const seconds: Record<string, number> = {};
  const timed = async <T>(name: string, fn: () => T | Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      seconds[name] = Number(((performance.now() - t0) / 1000).toFixed(3));
    }
  };
  // Read everything first, so a bad input fails before any computation.
  const sweeps = o.runs.filter(isSweepDir).map(sweepTable);
  const runDirs = o.runs.flatMap((d) => (isSweepDir(d) ? sweepRunDirs(d) : [d]));
  if (!runDirs.length) throw new GranqError(`RUN_DIR: the sweep${sweeps.length > 1 ? 's' : ''} in ${o.runs.join(', ')} ha${sweeps.length > 1 ? 've' : 's'} no started cell yet`);
  const runs = readRunFolders(runDirs);
  const bench = o.bench !== undefined ? readBenchQuant(o.bench) : null;
  const analyses = (o.analyze ?? []).map(readErrorAnalysis);
  const published = readPublished(o.published);
  const teacherFile = teacherPath(o, runs);
  const { model: teacher, sidecar } = loadModel(teacherFile);
  const format = sidecar.numClasses === 100 ? 'cifar100' : 'cifar10';
  const test = loadCifarSplit(resolveDataDir({ data: o.data }).dir, { format, split: 'test', limit: Math.max(o.images, o.pixelImages) });
  const figures: FigureSection[] = [];
  const chart = async (f: Omit<FigureSection, 'svg'>, spec: () => Spec) => {
    log(`report: ${f.title}`);
    figures.push({ ...f, svg: await timed(f.id, () => renderSvg(spec())) });
  };
  const missing = (f: Omit<FigureSection, 'svg' | 'missing'>, why: string) => figures.push({ ...f, svg: null, missing: why });

  // Figure 1: activation maps.
  const idx = Array.from({ length: Math.min(o.images, test.n) }, (_, i) => i);
  const labels = idx.map((i) => (format === 'cifar10' ? CIFAR10_CLASSES[test.labels[i]!]! : `class ${test.labels[i]}`));
  const maps = await timed('activation-maps-data', () => activationMaps(teacher, normalizeImages(test.images, sidecar.mean, sidecar.std, idx), labels, o.bits, o.channels));
  await chart({
    id: 'activation-maps', title: 'Activation maps of the first layer', paper: 'GranQ Fig. 1',
    caption: `Teacher ${sidecar.model}: the input of the first activation quantizer (stem conv + BN + ReLU) for test images ${idx.join(', ')}, channels ${o.channels.join(', ')}; ` +
      `FP, ${o.bits}-bit layer (one range for the whole tensor: min/max over these ${idx.length} images) and ${o.bits}-bit granq (one range per image and channel). ` +
      `Relative error per image over all its channels: ${maps.errors.map((e) => `image ${e.image} layer ${e.layer.toFixed(3)} / granq ${e.granq.toFixed(3)}`).join('; ')}.`,
  }, () => activationMapsSpec(maps));

  // Figure 3: latency.
  const latencyFig = { id: 'latency', title: 'Latency vs batch size', paper: 'GranQ Fig. 3' };
  if (bench) {
    await chart({ ...latencyFig, caption: `From ${o.bench} (granq bench quant --json): ResNet-20 at ${bench.bits} bits; dotted: the 19 activation quantizers alone on the 19 activation tensors of one forward pass; solid: the whole quantized forward (no grad).` }, () => latencySpec(bench));
  } else missing({ ...latencyFig, caption: '' }, 'pass --bench FILE, the output of granq bench quant --json');

  // Figure 4: relative error per layer.
  const errorFig = { id: 'layer-error', title: 'Relative quantization error per layer', paper: 'GranQ Fig. 4' };
  if (analyses.length) {
    const kinds = analyses.map((a) => a.inputs);
    await chart({ ...errorFig, caption: `From ${(o.analyze ?? []).join(', ')} (granq analyze error --json${kinds.includes('synthetic') ? '; synthetic: --synthetic RUN_DIR' : ''}); inputs: ${kinds.join(' and ')}.` +
      `${kinds.length < 2 ? ` For the ${kinds[0] === 'real' ? 'synthetic' : 'real'} series pass a second --analyze file.` : ''}` }, () => errorSpec(analyses));
  } else missing({ ...errorFig, caption: '' }, 'pass --analyze FILE (granq analyze error --json), and a second one made with --synthetic RUN_DIR');

  // Figure 5: pixel distributions (the first run with a checkpoint).
  const pixelFig = { id: 'pixels', title: 'Pixel distributions: real vs generated', paper: 'GranQ Fig. 5' };
  const genRun = runs.find((r) => r.hasCheckpoint);
  if (genRun) {
    const n = Math.min(o.pixelImages, test.n);
    const hist = await timed('pixels-data', () => pixelHistograms(
      normalizeImages(test.images, sidecar.mean, sidecar.std, Array.from({ length: n }, (_, i) => i)),
      runSyntheticImages(genRun.dir, o.pixelImages, 256, 'RUN_DIR')));
    await chart({ ...pixelFig, caption: `The first ${n} test images against ${o.pixelImages} images of the generator saved in ${genRun.dir} (its last checkpoint; held-out latent codes, BatchNorm on batch statistics as in training); density histograms over a common range per channel.` },
      () => pixelSpec(hist.points, { real: n, generated: o.pixelImages, run: genRun.name }));
  } else missing({ ...pixelFig, caption: '' }, 'no run folder holds a checkpoint.safetensors (the generator)');

  // Training curves.
  await chart({ id: 'curves', title: 'Training curves', caption: `From ${runs.map((r) => path.join(r.dir, 'log.jsonl')).join(', ')}: mean of each loss over the epoch's iterations; test top-1 on the epochs evaluated (--eval-every).` }, () => curvesSpec(runs));

  // Accuracy table.
  const rows = runRows(runs);
  const accuracy: AccuracySection = { runs: rows, sweeps, unfinished: runs.filter((r) => !r.result).map((r) => r.name), published: null };
  if (typeof published === 'string') accuracy.publishedMissing = published;
  else {
    const p = parsePublished(published.text, published.file);
    const found = publishedRows(p, format === 'cifar100' ? 'CIFAR-100' : 'CIFAR-10', [...new Set([...rows.map((r) => r.bits), ...sweeps.flatMap((t) => t.rows.map((r) => r.bits))])]);
    if (found) accuracy.published = { title: found.table.title, fp: found.table.fp, bits: Object.keys(found.rows[0]?.values ?? {}), rows: found.rows, sources: p.sources, file: published.file };
    else accuracy.publishedMissing = `${published.file} has no ResNet-20 table for this dataset`;
  }

  const html = reportHtml({
    title: 'granq results report',
    generated: `Generated ${new Date().toISOString()} by granq report; teacher ${sidecar.model}; every chart is an inline SVG rendered by vega in Node.`,
    inputs: [...sweeps.map((t) => `sweep ${t.dir} (${t.name}, ${t.done}/${t.total} cells done)`), ...runs.map((r) => `run ${r.dir}`), ...(o.bench ? [`bench ${o.bench}`] : []), ...(o.analyze ?? []).map((a) => `analysis ${a}`), `teacher ${teacherFile}`],
    figures, accuracy,
  });
  return { html, figures, seconds };
}
