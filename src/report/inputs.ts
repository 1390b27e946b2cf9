/**
 * The report's inputs, read and checked once: `granq quantize` run folders (log.jsonl, result.json, checkpoint),
 * and the `--json` output of `granq bench quant` and `granq analyze error` (the whole stdout may be given: the JSON
 * is its last line). Anything missing or malformed is one GranqError naming the file and what was wrong.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { GranqError } from '../errors.js';
import { CHECKPOINT_FILE, LOG_FILE, RESULT_FILE } from '../io/run-dir.js';

type Json = Record<string, unknown>;

/** One epoch line of log.jsonl (src/zsq/run.ts EpochRecord; only what the report reads is checked). */
export interface LogLine {
  epoch: number;
  loss: Record<string, number | null>;
  test_top1?: number;
  wall_s: number;
}

export interface RunResult {
  model: string;
  teacher: { path: string; model: string; sha256?: string };
  policy: { wbits: number; abits: number; act: string; weight: string; weightClip?: string };
  preset: string;
  seed: number;
  epochs: number;
  iterations: number;
  test: { dataset: string; images: number } | null;
  fp_top1: number | null;
  ptq_top1: number | null;
  final_top1: number | null;
  best_epoch: { epoch: number; top1: number } | null;
  wall_seconds: number;
  /** The final student against the FP teacher image by image (zsq/measure.ts VsFp); absent in older results. */
  vs_fp?: { images: number; student_only: number; fp_only: number; mcnemar_p: number } | null;
  /** Where the losses became non-finite and the run stopped (zsq/run.ts); absent when it ran all its epochs. */
  diverged?: { epoch: number; iteration: number; reason: string };
  /** Storage accounting (quant/bits.ts bitsRecord); absent in results written before it existed. */
  bits?: Record<string, { bits_per_weight: number; bytes: number; fp32_bytes: number }>;
}

export interface RunFolder {
  dir: string;
  /** The folder's name, the run's label in legends. */
  name: string;
  log: LogLine[];
  /** null while the run is unfinished. */
  result: RunResult | null;
  hasCheckpoint: boolean;
}

export interface BenchQuant {
  bits: number;
  rows: { batch: number; layer_ms: number; loop_ms: number; granq_ms: number; fwd_layer_ms: number; fwd_loop_ms: number; fwd_granq_ms: number }[];
}
export const BENCH_KEYS = ['batch', 'layer_ms', 'loop_ms', 'granq_ms', 'fwd_layer_ms', 'fwd_loop_ms', 'fwd_granq_ms'] as const;

export interface ErrorAnalysis {
  bits: number;
  inputs: 'real' | 'synthetic';
  images: number | null;
  layers: { index: number; name: string; layer: number; granq: number }[];
}

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new GranqError(`${where}: not valid JSON (${(e as Error).message})`);
  }
}

function readText(file: string, flag: string): string {
  if (!existsSync(file) || !statSync(file).isFile()) throw new GranqError(`${flag}: no such file ${file}`);
  return readFileSync(file, 'utf8');
}

/** The last non-empty line of a command's stdout saved with --json (or a file holding only that JSON). */
export function lastJsonLine(text: string, where: string): Json {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  if (!lines.length) throw new GranqError(`${where}: empty file`);
  const v = parseJson(lines[lines.length - 1]!, where);
  if (!isObj(v)) throw new GranqError(`${where}: expected a JSON object on the last line`);
  return v;
}

export function parseBenchQuant(j: Json, where: string): BenchQuant {
  if (!isNum(j['bits']) || !Array.isArray(j['rows']) || j['rows'].length === 0) {
    throw new GranqError(`${where}: expected granq bench quant --json output {"bits", "rows": [...]} with at least one row`);
  }
  j['rows'].forEach((r, i) => {
    for (const k of BENCH_KEYS) {
      if (!isObj(r) || !isNum(r[k]) || r[k] <= 0) throw new GranqError(`${where}: rows[${i}].${k}: expected a positive number, got ${JSON.stringify(isObj(r) ? r[k] : r)}`);
    }
  });
  return j as unknown as BenchQuant;
}

export function parseErrorAnalysis(j: Json, where: string): ErrorAnalysis {
  if (!isNum(j['bits']) || !Array.isArray(j['layers']) || j['layers'].length === 0) {
    throw new GranqError(`${where}: expected granq analyze error --json output {"bits", "layers": [...]} with at least one layer`);
  }
  j['layers'].forEach((l, i) => {
    if (!isObj(l) || typeof l['name'] !== 'string' || !isNum(l['index']) || !isNum(l['layer']) || !isNum(l['granq']) || l['layer'] < 0 || l['granq'] < 0) {
      throw new GranqError(`${where}: layers[${i}]: expected {index, name, layer, granq} with non-negative errors, got ${JSON.stringify(l)}`);
    }
  });
  const inputs = j['inputs'] ?? 'real'; // files written before --synthetic existed are real-image analyses
  if (inputs !== 'real' && inputs !== 'synthetic') throw new GranqError(`${where}: inputs: expected "real" or "synthetic", got ${JSON.stringify(inputs)}`);
  return { bits: j['bits'], inputs, images: isNum(j['images']) ? j['images'] : null, layers: j['layers'] as ErrorAnalysis['layers'] };
}

export function readBenchQuant(file: string): BenchQuant {
  return parseBenchQuant(lastJsonLine(readText(file, '--bench'), file), file);
}

export function readErrorAnalysis(file: string): ErrorAnalysis {
  return parseErrorAnalysis(lastJsonLine(readText(file, '--analyze'), file), file);
}

export function parseLog(text: string, where: string): LogLine[] {
  return text.split('\n').filter((l) => l.trim()).map((line, i) => {
    const v = parseJson(line, `${where}:${i + 1}`);
    if (!isObj(v) || !isNum(v['epoch']) || !isObj(v['loss']) || (v['test_top1'] !== undefined && !isNum(v['test_top1']))) {
      throw new GranqError(`${where}:${i + 1}: expected an epoch record {epoch, loss, test_top1?, ...}`);
    }
    return v as unknown as LogLine;
  });
}

export function parseResult(v: unknown, where: string): RunResult {
  const bad = (what: string) => new GranqError(`${where}: ${what}`);
  if (!isObj(v) || !isObj(v['policy'])) throw bad('expected granq quantize result.json with a policy');
  const p = v['policy'];
  if (!isNum(p['wbits']) || !isNum(p['abits']) || typeof p['act'] !== 'string' || typeof p['weight'] !== 'string') throw bad('policy: expected {wbits, abits, act, weight}');
  for (const k of ['fp_top1', 'ptq_top1', 'final_top1']) {
    if (v[k] !== null && !(isNum(v[k]) && v[k] >= 0 && v[k] <= 1)) throw bad(`${k}: expected a fraction in [0, 1] or null, got ${JSON.stringify(v[k])}`);
  }
  return v as unknown as RunResult;
}

/** Reads the folders; runs that share a folder name are told apart by their path (legends and tables use the name). */
export function readRunFolders(dirs: readonly string[]): RunFolder[] {
  const runs = dirs.map(readRunFolder);
  const names = runs.map((r) => r.name);
  return runs.map((r) => (names.filter((n) => n === r.name).length > 1 ? { ...r, name: path.normalize(r.dir) } : r));
}

export function readRunFolder(dir: string): RunFolder {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new GranqError(`RUN_DIR: expected a granq quantize output folder, got ${dir} (not a directory)`);
  const logFile = path.join(dir, LOG_FILE);
  if (!existsSync(logFile)) throw new GranqError(`RUN_DIR: ${dir} holds no ${LOG_FILE}; not a granq quantize output folder`);
  const resultFile = path.join(dir, RESULT_FILE);
  return {
    dir,
    name: path.basename(path.resolve(dir)),
    log: parseLog(readFileSync(logFile, 'utf8'), logFile),
    result: existsSync(resultFile) ? parseResult(parseJson(readFileSync(resultFile, 'utf8'), resultFile), resultFile) : null,
    hasCheckpoint: existsSync(path.join(dir, CHECKPOINT_FILE)),
  };
}
