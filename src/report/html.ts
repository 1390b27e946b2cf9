/**
 * The report page: one self-contained HTML file (styles inline, each figure an inline SVG, no script), with a
 * Content-Security-Policy that forbids every network fetch, so what it shows is only what it holds.
 */
import type { PublishedRow, RunRow } from './accuracy.js';
import { dropFrom, signedDrop } from './accuracy.js';
import type { Stat, SweepTable } from './sweep-table.js';

export interface FigureSection {
  id: string;
  title: string;
  /** Which figure of the paper it reproduces, if any. */
  paper?: string;
  /** Plain text: what is shown and from which inputs. */
  caption: string;
  /** The inline SVG, or null with `missing` saying why and how to get it. */
  svg: string | null;
  missing?: string;
}

export interface AccuracySection {
  runs: RunRow[];
  sweeps?: SweepTable[];
  unfinished: string[];
  published: { title: string; fp: number; bits: string[]; rows: PublishedRow[]; sources: Record<string, string>; file: string } | null;
  publishedMissing?: string;
}

export interface ReportPage { title: string; generated: string; inputs: string[]; figures: FigureSection[]; accuracy: AccuracySection }

export const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const STYLE = `
body { font-family: 'Liberation Sans', Arial, Helvetica, sans-serif; margin: 24px auto; max-width: 1280px; color: #222; padding: 0 16px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 32px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
figure { margin: 12px 0 24px; } figcaption { font-size: 13px; color: #444; max-width: 1000px; margin-top: 6px; }
.chart svg { max-width: 100%; height: auto; } .missing { color: #a40; font-style: italic; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; } th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child, td.l { text-align: left; } caption { text-align: left; font-size: 13px; padding: 4px 0; color: #444; }
.src { color: #666; font-size: 12px; } ul.inputs { font-size: 12px; color: #555; } code { font-size: 12px; }
`;

const num = (x: number | null, d = 2) => (x === null ? '–' : x.toFixed(d));

function figureHtml(f: FigureSection, n: number): string {
  const head = `<h2 id="${f.id}">${n}. ${escapeHtml(f.title)}${f.paper ? ` <span class="src">(${escapeHtml(f.paper)})</span>` : ''}</h2>`;
  const body = f.svg !== null
    ? `<div class="chart">${f.svg.replace(/^<\?xml[^>]*>\s*/, '')}</div>`
    : `<p class="missing">Not drawn: ${escapeHtml(f.missing ?? 'no input')}</p>`;
  return `${head}\n<figure class="figure" data-figure="${f.id}" data-drawn="${f.svg !== null}">${body}<figcaption>${escapeHtml(f.caption)}</figcaption></figure>`;
}

const meanStd = (s: Stat | null, d = 2) => (s === null ? '–' : `${s.mean.toFixed(d)}${s.std !== null ? ` ± ${s.std.toFixed(d)}` : ''}`);

/** The published drops at a bit width, `AdaDFQ −9.00; SynQ −5.80`, from that paper's own FP teacher. */
function publishedDrops(p: AccuracySection['published'], bits: string): string {
  if (!p) return '–';
  const found = p.rows.filter((r) => r.values[bits]).map((r) => `${r.method} ${signedDrop(r.values[bits]!.drop).replace(/[()]/g, '').trim()}`);
  return found.length ? found.join('; ') : '–';
}

function sweepHtml(t: SweepTable, published: AccuracySection['published']): string {
  const out = [`<table class="sweep-table" data-sweep="${escapeHtml(t.name)}"><caption>Sweep <b>${escapeHtml(t.name)}</b> (${escapeHtml(t.dir)}, grid ${escapeHtml(t.file)}, hash ${t.hash}; ` +
    `${t.done}/${t.total} cells done): test top-1 % at the final epoch, mean ± standard deviation over the seeds (n = finished cells), and the drop from each cell's FP teacher. ` +
    `${escapeHtml(t.description)}</caption>`];
  out.push(`<tr><th>bits</th><th>act / weight</th><th>bits per weight (export / int zero points)</th><th>preset</th><th>other settings</th><th>n</th><th>final top-1</th><th>drop from FP</th><th>best epoch (test-set selection)</th><th>published drops at these bits${published ? ` (FP ${published.fp})` : ''}</th><th>wall s per cell</th><th>cells</th></tr>`);
  for (const r of t.rows) {
    out.push(`<tr><td class="l">${r.bits}</td><td class="l">${escapeHtml(r.method)}</td><td>${r.bitsPerWeight ? `${num(r.bitsPerWeight.f32)} / ${num(r.bitsPerWeight.intZp)}` : '–'}</td>` +
      `<td class="l">${escapeHtml(r.preset)}</td><td class="l">${escapeHtml(r.other)}</td>` +
      `<td>${r.final?.n ?? 0}${r.unfinished ? ` (+${r.unfinished} unfinished)` : ''}</td><td>${meanStd(r.final)}</td><td>${meanStd(r.drop)}</td><td>${meanStd(r.best)}</td>` +
      `<td class="l src">${escapeHtml(publishedDrops(published, r.bits))}</td><td>${meanStd(r.wall_s, 0)}</td><td class="l src">${r.cells.map(escapeHtml).join(', ')}</td></tr>`);
  }
  out.push('</table>');
  return out.join('\n');
}

function accuracyHtml(a: AccuracySection, n: number): string {
  const out = [`<h2 id="accuracy">${n}. Accuracy</h2>`, '<section class="figure" data-figure="accuracy">'];
  for (const t of a.sweeps ?? []) out.push(sweepHtml(t, a.published));
  out.push('<table id="runs-table"><caption>Our runs: test top-1 % (drop from our own FP teacher in brackets). The best epoch is selected on the test set, as the papers report; the final epoch is the headline.</caption>');
  out.push('<tr><th>run</th><th>bits</th><th>act / weight</th><th>bits per weight (export / int zero points)</th><th>preset</th><th>epochs</th><th>FP</th><th>PTQ start</th><th>final epoch</th><th>best epoch</th><th>final vs FP: test images only the student / only FP gets right (McNemar p)</th></tr>');
  for (const r of a.runs) {
    out.push(`<tr><td>${escapeHtml(r.run)}</td><td class="l">${r.bits}</td><td class="l">${escapeHtml(r.method)}</td>` +
      `<td>${r.bitsPerWeight ? `${num(r.bitsPerWeight.f32)} / ${num(r.bitsPerWeight.intZp)}` : '–'}</td><td class="l">${escapeHtml(r.preset)}</td><td>${r.divergedAt !== null ? `${r.divergedAt} of ${r.epochs} (diverged: non-finite loss)` : r.epochs}</td>` +
      `<td>${num(r.fp)}</td><td>${num(r.ptq)}${signedDrop(dropFrom(r.fp, r.ptq))}</td><td>${num(r.final)}${signedDrop(dropFrom(r.fp, r.final))}</td>` +
      `<td>${r.best ? `${num(r.best.top1)}${signedDrop(dropFrom(r.fp, r.best.top1))}, epoch ${r.best.epoch}` : '–'}</td>` +
      `<td>${r.vsFp ? `${r.vsFp.studentOnly} / ${r.vsFp.fpOnly} (p = ${r.vsFp.p.toPrecision(2)})` : '–'}</td></tr>`);
  }
  out.push('</table>');
  if (a.unfinished.length) out.push(`<p class="missing">Unfinished (no result.json): ${a.unfinished.map(escapeHtml).join(', ')}</p>`);
  const p = a.published;
  if (p) {
    out.push(`<p class="src">Published, ${escapeHtml(p.title)}: top-1 % (drop from that paper's FP teacher, ${p.fp}, in brackets; compare drops, not accuracies: teachers differ). From ${escapeHtml(p.file)}, section C; † = re-run by the AdaDFQ authors.</p>`);
    out.push('<table id="published-table">');
    out.push(`<tr><th>method</th>${p.bits.map((b) => `<th>${b}</th>`).join('')}</tr>`);
    for (const r of p.rows) {
      out.push(`<tr><td>${escapeHtml(r.method)}</td>${p.bits.map((b) => {
        const v = r.values[b];
        return `<td>${v ? `${num(v.top1)}${signedDrop(v.drop)}${v.text.includes('†') ? '†' : ''} <span class="src">[${v.sources.map(escapeHtml).join(',')}]</span>` : '–'}</td>`;
      }).join('')}</tr>`);
    }
    out.push('</table><p class="src">Sources:</p><ul class="src">');
    for (const [k, v] of Object.entries(p.sources)) out.push(`<li>[${escapeHtml(k)}] ${escapeHtml(v)}</li>`);
    out.push('</ul>');
  } else {
    out.push(`<p class="missing">Published numbers not shown: ${escapeHtml(a.publishedMissing ?? 'no file')}</p>`);
  }
  out.push('</section>');
  return out.join('\n');
}

export function reportHtml(r: ReportPage): string {
  const toc = [...r.figures.map((f, i) => `<li><a href="#${f.id}">${i + 1}. ${escapeHtml(f.title)}</a></li>`), `<li><a href="#accuracy">${r.figures.length + 1}. Accuracy</a></li>`];
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(r.title)}</title><style>${STYLE}</style></head>
<body>
<h1>${escapeHtml(r.title)}</h1>
<p class="src">${escapeHtml(r.generated)}</p>
<ul class="inputs">${r.inputs.map((i) => `<li>${escapeHtml(i)}</li>`).join('')}</ul>
<ol class="toc">${toc.join('')}</ol>
${r.figures.map((f, i) => figureHtml(f, i + 1)).join('\n')}
${accuracyHtml(r.accuracy, r.figures.length + 1)}
</body></html>
`;
}
