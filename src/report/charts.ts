/**
 * Charts: vega-lite specs (one builder per figure, beside its data preparation) compiled to vega and rendered to
 * SVG in Node by vega's headless renderer; PNG files for the README are the same SVG rasterised by resvg. Every
 * figure shares one look (CONFIG) and carries its data inline, so the report needs no network. vega, vega-lite and
 * resvg are imported when a chart is drawn, not when granq starts (they are most of its start-up time otherwise).
 */
import type { View } from 'vega';
import type { TopLevelSpec } from 'vega-lite';
import { GranqError } from '../errors.js';

export type Spec = TopLevelSpec;

/** The methods' colours, the same in every figure. */
export const METHOD_COLORS: Record<string, string> = { layer: '#d62728', 'channel-loop': '#7f7f7f', granq: '#1f77b4', FP: '#2ca02c' };

/** A legend of dash patterns drawn as dashed strokes (the lines' point layer would otherwise turn them into dots). */
export const DASH_LEGEND = { symbolType: 'stroke', symbolStrokeWidth: 2, symbolSize: 400, encode: { symbols: { update: { stroke: { value: '#333333' } } } } };

export const CONFIG = {
  font: 'Liberation Sans, Arial, Helvetica, sans-serif',
  background: '#ffffff',
  padding: 8,
  axis: { labelFontSize: 11, titleFontSize: 12, grid: true, gridColor: '#e6e6e6' },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 0, titleLimit: 0 },
  title: { fontSize: 14, anchor: 'start' as const },
  view: { stroke: '#bbbbbb' },
};

/** A vega-lite spec rendered to a standalone SVG document (no scripts, no external references). */
export async function renderSvg(spec: Spec): Promise<string> {
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  let view: View | null = null;
  try {
    const compiled = compile({ ...spec, config: { ...CONFIG, ...(spec as { config?: object }).config } } as Spec).spec;
    // No loader access: every figure's data is inline; a spec asking for a URL is a bug, so fail loudly.
    const loader = vega.loader();
    loader.load = async (uri: string) => { throw new GranqError(`report chart: a figure asked for external data ${uri}`); };
    view = new vega.View(vega.parse(compiled), { renderer: 'none', loader });
    return await view.toSVG();
  } finally {
    view?.finalize();
  }
}

/** PNG bytes of an SVG at `scale` x its size (fonts: the system's; text is the same font family as in the browser). */
export async function svgToPng(svg: string, scale = 2): Promise<Buffer> {
  const { Resvg } = await import('@resvg/resvg-js');
  const r = new Resvg(svg, { fitTo: { mode: 'zoom', value: scale }, background: '#ffffff', font: { loadSystemFonts: true, defaultFontFamily: 'Liberation Sans' } });
  return r.render().asPng();
}
