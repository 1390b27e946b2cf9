/**
 * `granq report RUN_DIR...`: one self-contained HTML page of the results (src/report builds it), optional PNG files
 * of each figure. `--demo` first makes every input in seconds in a temporary folder, with the same code as the real
 * commands: a `--preset tiny` quantize run (W3A3 granq, 256 test images), a short `bench quant` and `analyze error`
 * on real and on the tiny run's synthetic images; the teacher is --model or the default teacher (models/).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, Option } from 'commander';
import { resolveModelArg } from '../models/default-teacher.js';
import { GranqError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { buildReport, type ReportOptions } from '../report/build.js';
import { svgToPng } from '../report/charts.js';
import { presetConfig } from '../zsq/config.js';
import { runQuantize } from '../zsq/run.js';
import { analyzeError } from './analyze-error.js';
import { bitWidth, DATA_DEFAULT_HELP, nonNegativeIntList, positiveInt } from './args.js';
import { benchQuant } from './bench-quant.js';

export interface ReportCliOptions {
  out: string; png?: string; bench?: string; analyze?: string[]; model?: string; data?: string; published?: string;
  bits: number; images: number; channels: number[]; pixelImages: number; demo?: boolean;
}

export function addReportCommand(program: Command): void {
  program
    .command('report')
    .description('one self-contained HTML page from granq quantize run folders plus bench quant / analyze error JSON: ' +
      'activation maps (Fig. 1), latency (Fig. 3), per-layer error (Fig. 4), pixel distributions (Fig. 5), training curves, ' +
      'accuracy beside the published numbers; charts rendered to SVG in Node (vega)')
    .argument('[run-dirs...]', 'granq quantize output folders (log.jsonl, result.json, checkpoint.safetensors)')
    .option('--out <file>', 'the HTML file to write', 'report.html')
    .option('--png <dir>', 'also write each figure as DIR/<figure>.png')
    .option('--bench <file>', 'granq bench quant --json output (its stdout, or just its last line)')
    .option('--analyze <files...>', 'granq analyze error --json outputs: one on real images, one with --synthetic RUN_DIR')
    .option('--model <file>', "FP teacher for the activation maps (default: the first run's teacher, or the file of its name and sha256 in models/ or ../shared/models/)")
    .option('--data <dir>', `data directory (default: ${DATA_DEFAULT_HELP})`)
    .option('--published <file>', 'research report whose section C has the published accuracies (default ../shared/research/zsq-report.md)')
    .addOption(new Option('--bits <k>', 'activation maps: bit width').argParser(bitWidth).default(3))
    .addOption(new Option('--images <n>', 'activation maps: the first N test images').argParser(positiveInt).default(3))
    .addOption(new Option('--channels <list>', 'activation maps: channels of the first layer').argParser(nonNegativeIntList).default([0, 1, 2, 3]))
    .addOption(new Option('--pixel-images <n>', 'pixel distributions: N real and N generated images').argParser(positiveInt).default(512))
    .option('--demo', 'make a tiny run, a short benchmark and analyses in a temporary folder, then report on them (seconds)')
    .action((dirs: string[], opts: ReportCliOptions) => runReportCli(dirs, opts));
}

/** The demo's inputs, made in `dir` by the real code paths at toy sizes. */
export async function makeDemoInputs(dir: string, o: { model?: string; data?: string }, log: (s: string) => void): Promise<Pick<ReportOptions, 'runs' | 'bench' | 'analyze' | 'model'>> {
  const model = resolveModelArg(o.model);
  const run = path.join(dir, 'run-w3a3-granq-tiny');
  log(`demo: granq quantize --preset tiny --wbits 3 --abits 3 --test-limit 256 --out ${run}`);
  const q = await runQuantize({
    model, policy: { wbits: 3, abits: 3, act: 'granq', weight: 'slice' }, preset: 'tiny', config: presetConfig('tiny'), out: run,
    resume: false, data: o.data, test: true, testLimit: 256, evalEvery: 1, evalBatch: 128, calib: 1, agreeImages: 64,
  }, { log: () => {} });
  if (q.status !== 'done') throw new GranqError('--demo: the tiny run was interrupted');
  const bench = path.join(dir, 'bench-quant.json');
  log('demo: granq bench quant --bits 3 --batches 8,16,32,64 --runs 3 --json');
  writeFileSync(bench, `${JSON.stringify(benchQuant({ bits: 3, batches: [8, 16, 32, 64], runs: 3 }, () => {}))}\n`);
  const analyze = [path.join(dir, 'analyze-error-real.json'), path.join(dir, 'analyze-error-synthetic.json')];
  log('demo: granq analyze error --bits 3 --batch 64 --json, and with --synthetic on the tiny run');
  writeFileSync(analyze[0]!, `${JSON.stringify(analyzeError({ model, bits: 3, data: o.data, batch: 64 }))}\n`);
  writeFileSync(analyze[1]!, `${JSON.stringify(analyzeError({ model, bits: 3, batch: 64, synthetic: run }))}\n`);
  return { runs: [run], bench, analyze, model };
}

export async function runReportCli(dirs: string[], o: ReportCliOptions): Promise<void> {
  const err = (s: string) => process.stderr.write(`${s}\n`);
  const t0 = performance.now();
  let inputs: Pick<ReportOptions, 'runs' | 'bench' | 'analyze' | 'model'> = { runs: dirs, bench: o.bench, analyze: o.analyze, model: o.model };
  if (o.demo) {
    if (dirs.length || o.bench || o.analyze) throw new GranqError('--demo: makes its own inputs; give no RUN_DIR, --bench or --analyze with it');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'granq-demo-'));
    inputs = await makeDemoInputs(dir, o, err);
    err(`demo: inputs made in ${((performance.now() - t0) / 1000).toFixed(1)} s in ${dir}`);
  } else if (!dirs.length) {
    throw new GranqError('RUN_DIR: give at least one granq quantize output folder (or --demo)');
  }
  const r = await buildReport({ ...inputs, data: o.data, published: o.published, bits: o.bits, images: o.images, channels: o.channels, pixelImages: o.pixelImages }, err);
  mkdirSync(path.dirname(path.resolve(o.out)), { recursive: true });
  writeFileAtomic(o.out, [Buffer.from(r.html)]);
  const written = [o.out];
  if (o.png !== undefined) {
    mkdirSync(o.png, { recursive: true });
    for (const f of r.figures) {
      if (f.svg === null) continue;
      const file = path.join(o.png, `${f.id}.png`);
      writeFileAtomic(file, [await svgToPng(f.svg)]);
      written.push(file);
    }
  }
  const drawn = r.figures.filter((f) => f.svg !== null).length;
  err(`report: ${drawn} of ${r.figures.length} figures drawn + accuracy table; chart seconds ${JSON.stringify(r.seconds)}; total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  process.stdout.write(`wrote ${written.join(', ')}\n`);
}
