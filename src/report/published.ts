/**
 * The papers' published accuracies, read from the research report's section C (`## C. ...`): one table per
 * (model, dataset) under `### C.n <model>, <dataset> (FP <teacher top-1>)`, rows `| Method | W3A3 | ... |` whose
 * cells are `84.89 [A,S]`, `75.11† [A,S]`, `–`, `?` or a claim, and the source abbreviations `- [A] = ...`.
 * Only the parsing lives here; the file is the user's (default ../shared/research/zsq-report.md), never bundled.
 */
import { GranqError } from '../errors.js';

export interface PublishedCell {
  /** The top-1 %, or null for a missing number ('–', '?') or a claim without a number of its own. */
  value: number | null;
  /** Source abbreviations of the value (those in the cell's first bracket). */
  sources: string[];
  /** The cell as written (claims, second opinions, daggers). */
  text: string;
}

export interface PublishedTable { title: string; fp: number; bits: string[]; rows: { method: string; cells: Record<string, PublishedCell> }[] }
export interface Published { tables: PublishedTable[]; sources: Record<string, string> }

export function parseCell(raw: string): PublishedCell {
  const text = raw.trim();
  const first = text.split(';')[0]!;
  const claim = /claim|>|</.test(first);
  const num = /(\d+(?:\.\d+)?)/.exec(first);
  const br = /\[([A-Za-z, ]+)\]/.exec(first);
  return { value: num && !claim ? Number(num[1]) : null, sources: br ? br[1]!.split(',').map((s) => s.trim()).filter(Boolean) : [], text };
}

const splitRow = (line: string) => line.trim().replace(/^\|/, '').replace(/\|$/, '').split('|').map((c) => c.trim());

export function parsePublished(md: string, where: string): Published {
  const start = md.search(/^## C\b.*$/m);
  if (start < 0) throw new GranqError(`--published: ${where} has no section '## C.' (benchmark numbers)`);
  const rest = md.slice(start);
  const end = rest.slice(1).search(/^## /m);
  const section = end < 0 ? rest : rest.slice(0, end + 1);
  const sources: Record<string, string> = {};
  // Bullets `- [A] = ...`; one bullet may define several (`- [Q] = ... [G] = ...`).
  for (const line of section.split('\n').filter((l) => /^- \[[A-Za-z]+\] = /.test(l))) {
    for (const m of line.matchAll(/\[([A-Za-z]+)\] = (.*?)(?=\s*\[[A-Za-z]+\] = |$)/g)) sources[m[1]!] = m[2]!.trim();
  }
  const tables: PublishedTable[] = [];
  for (const part of section.split(/^(?=### )/m).slice(1)) {
    const title = part.split('\n')[0]!.replace(/^###\s*/, '').trim();
    const fp = /\(FP (\d+(?:\.\d+)?)\)/.exec(title);
    const lines = part.split('\n').filter((l) => l.trim().startsWith('|'));
    if (!fp || lines.length < 3) continue; // a sub-section without a teacher FP or a table (ImageNet's mixed tables)
    const head = splitRow(lines[0]!);
    if (head[0]!.toLowerCase() !== 'method') continue;
    const bits = head.slice(1);
    const rows = lines.slice(2).map((l) => {
      const cells = splitRow(l);
      return { method: cells[0]!.replace(/\*/g, ''), cells: Object.fromEntries(bits.map((b, i) => [b, parseCell(cells[i + 1] ?? '')])) };
    });
    tables.push({ title, fp: Number(fp[1]), bits, rows });
  }
  if (!tables.length) throw new GranqError(`--published: ${where}: section C holds no table of the form '### ... (FP n)' + '| Method | W3A3 | ...'`);
  return { tables, sources };
}

/** The table for a model and dataset, e.g. ('ResNet-20', 'CIFAR-10'); CIFAR-10 never matches CIFAR-100. */
export function findTable(p: Published, model: string, dataset: string): PublishedTable | null {
  const re = new RegExp(`${dataset.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![0-9])`);
  return p.tables.find((t) => t.title.includes(model) && re.test(t.title)) ?? null;
}
