/**
 * The model sidecar: `<model>.json` next to the weights file, giving what the weights alone do not (architecture,
 * number of classes, input normalisation, measured accuracy). Layout of ../shared/models/*.json:
 * `{model, architecture, num_classes, input: {mean, std, ...}, measured_top1, ...}`; unknown fields are kept in `raw`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { GranqError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';

export type Rgb = [number, number, number];

export interface ModelSidecar {
  model: string;
  /** Our registry name (see registryArchitecture), whatever spelling the file used. */
  architecture: string;
  numClasses: number;
  mean: Rgb;
  std: Rgb;
  measuredTop1?: number;
  /** The parsed JSON as found, so writing back keeps fields we do not interpret. */
  raw: Record<string, unknown>;
}

/**
 * Architecture spellings found in sidecars: a CIFAR ResNet of depth 6n+2 with option-A (`-a`, `-optionA`) or
 * projection (`-b`, `-optionB`) shortcuts, e.g. `resnet56-optionA`. The registry name is `resnet<depth>-a|b`.
 */
const ARCH_PATTERN = /^resnet(\d+)-(a|b|optionA|optionB)$/;
export const ARCHITECTURE_SPELLINGS = 'resnet<6n+2>-a|b|optionA|optionB (e.g. resnet20-a, resnet56-optionA, resnet110-b)';

/** The registry name of an architecture spelling, or undefined when it names no architecture granq builds. */
export function registryArchitecture(arch: string): string | undefined {
  const m = ARCH_PATTERN.exec(arch);
  if (!m) return undefined;
  const depth = Number(m[1]);
  if (depth < 8 || (depth - 2) % 6 !== 0 || String(depth) !== m[1]) return undefined;
  return `resnet${depth}-${m[2]!.slice(-1).toLowerCase()}`;
}

/** The registry name of an architecture string, or a GranqError naming `where` and the accepted spellings. */
export function normalizeArchitecture(arch: unknown, where = 'architecture'): string {
  const name = typeof arch === 'string' ? registryArchitecture(arch) : undefined;
  if (name === undefined) throw new GranqError(`${where}: expected ${ARCHITECTURE_SPELLINGS}, got ${JSON.stringify(arch)}`);
  return name;
}

/** `dir/name.safetensors` → `dir/name.json` (the last extension replaced). */
export function sidecarPathFor(weightsPath: string): string {
  const ext = path.extname(weightsPath);
  return (ext === '' ? weightsPath : weightsPath.slice(0, -ext.length)) + '.json';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function rgb(v: unknown, where: string, positive: boolean): Rgb {
  const ok = Array.isArray(v) && v.length === 3 &&
    v.every((x) => typeof x === 'number' && Number.isFinite(x) && (!positive || x > 0));
  if (!ok) {
    throw new GranqError(`${where}: expected 3 ${positive ? 'positive' : 'finite'} numbers (R, G, B), got ${JSON.stringify(v)}`);
  }
  return [v[0], v[1], v[2]];
}

/** The architecture of a model whose structure comes from its ONNX graph rather than our registry. */
export const GRAPH_ARCHITECTURE = 'onnx-graph';

/**
 * Validates parsed sidecar JSON; `name` (the file) heads every error message. For a graph model (`opts.graph`, or a
 * sidecar with a `graph` file) the architecture is only a label: optional, and kept as written when unknown to us.
 */
export function parseSidecar(json: unknown, name: string, opts: { graph?: boolean } = {}): ModelSidecar {
  if (!isObject(json)) throw new GranqError(`${name}: expected a JSON object, got ${JSON.stringify(json)?.slice(0, 60)}`);
  const model = json['model'] ?? path.basename(name, path.extname(name));
  if (typeof model !== 'string' || model === '') {
    throw new GranqError(`${name}: model: expected a non-empty string, got ${JSON.stringify(model)}`);
  }
  const arch = json['architecture'];
  const graph = opts.graph === true || typeof json['graph'] === 'string';
  const architecture = !graph ? normalizeArchitecture(arch, `${name}: architecture`)
    : typeof arch === 'string' ? (registryArchitecture(arch) ?? arch) : GRAPH_ARCHITECTURE;
  const nc = json['num_classes'];
  if (typeof nc !== 'number' || !Number.isInteger(nc) || nc < 1) {
    throw new GranqError(`${name}: num_classes: expected a positive integer, got ${JSON.stringify(nc)}`);
  }
  const input = json['input'];
  if (!isObject(input)) {
    throw new GranqError(`${name}: input: expected an object with mean and std, got ${JSON.stringify(input)}`);
  }
  const mean = rgb(input['mean'], `${name}: input.mean`, false);
  const std = rgb(input['std'], `${name}: input.std`, true);
  const out: ModelSidecar = { model, architecture, numClasses: nc, mean, std, raw: json };
  const top1 = json['measured_top1'];
  if (top1 !== undefined && top1 !== null) {
    if (typeof top1 !== 'number' || !(top1 >= 0 && top1 <= 1)) {
      throw new GranqError(`${name}: measured_top1: expected a fraction in [0, 1], got ${JSON.stringify(top1)}`);
    }
    out.measuredTop1 = top1;
  }
  return out;
}

/**
 * Reads and validates a sidecar. `weightsPath`, when given, is named in the message for a missing file, since that
 * is what the user passed.
 */
export function readSidecar(file: string, weightsPath?: string, opts: { graph?: boolean } = {}): ModelSidecar {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      const next = weightsPath === undefined ? '' : ` next to ${weightsPath}`;
      throw new GranqError(`no sidecar ${file}${next}; it must give architecture, num_classes and input mean/std`);
    }
    throw new GranqError(`${file}: could not read the sidecar (${(e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new GranqError(`${file}: expected JSON, got invalid JSON (${(e as Error).message})`);
  }
  return parseSidecar(json, file, opts);
}

/** The sidecar of a weights file (`sidecarPathFor(weightsPath)`). */
export function readSidecarFor(weightsPath: string): ModelSidecar {
  return readSidecar(sidecarPathFor(weightsPath), weightsPath);
}

/**
 * Writes a sidecar atomically: the fields of `raw` we do not interpret are kept, the interpreted ones written from
 * the typed fields. The architecture keeps the file's own spelling when it still maps to the same registry name.
 */
export function writeSidecar(file: string, sc: ModelSidecar): void {
  const raw = sc.raw ?? {};
  const rawArch = raw['architecture'];
  const arch = typeof rawArch === 'string' && (registryArchitecture(rawArch) ?? rawArch) === sc.architecture ? rawArch : sc.architecture;
  const json: Record<string, unknown> = {
    ...raw,
    model: sc.model,
    architecture: arch,
    num_classes: sc.numClasses,
    input: { ...(isObject(raw['input']) ? raw['input'] : {}), mean: [...sc.mean], std: [...sc.std] },
  };
  if (sc.measuredTop1 !== undefined) json['measured_top1'] = sc.measuredTop1;
  else delete json['measured_top1'];
  // Validate what we are about to write, so a bad sidecar is refused here rather than at the next read.
  parseSidecar(json, file);
  writeFileAtomic(file, [Buffer.from(JSON.stringify(json, null, 2) + '\n', 'utf8')]);
}
