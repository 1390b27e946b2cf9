/** Training curves of each run, from its log.jsonl: the mean losses per epoch and the test top-1 where evaluated. */
import { percent } from './accuracy.js';
import type { Spec } from './charts.js';
import type { RunFolder } from './inputs.js';

export interface LossPoint { run: string; epoch: number; loss: string; value: number }
export interface Top1Point { run: string; epoch: number; top1: number }

/** Losses with a value (the student's is null during warm-up, when the student does not train). */
export function lossPoints(runs: readonly RunFolder[]): LossPoint[] {
  return runs.flatMap((r) => r.log.flatMap((l) => Object.entries(l.loss)
    .filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1]))
    .map(([loss, value]) => ({ run: r.name, epoch: l.epoch, loss, value }))));
}

/** Test top-1 in %, with the PTQ start (from result.json) as epoch 0. */
export function top1Points(runs: readonly RunFolder[]): Top1Point[] {
  return runs.flatMap((r) => [
    ...(r.result?.ptq_top1 != null ? [{ run: r.name, epoch: 0, top1: percent(r.result.ptq_top1)! }] : []),
    ...r.log.filter((l) => l.test_top1 !== undefined).map((l) => ({ run: r.name, epoch: l.epoch, top1: percent(l.test_top1)! })),
  ]);
}

export function curvesSpec(runs: readonly RunFolder[]): Spec {
  const losses = lossPoints(runs);
  const top1 = top1Points(runs);
  // One small panel per loss, each with its own y axis: the student's entropy loss (x T^2) is hundreds, the others ~1.
  const lossPanel = {
    data: { values: losses },
    facet: { field: 'loss', type: 'nominal', title: 'mean loss over the epoch', sort: [...new Set(losses.map((l) => l.loss))] },
    columns: 3,
    spacing: 12,
    spec: {
      width: 150, height: 100,
      mark: { type: 'line', point: { size: 14 }, strokeWidth: 1.6 },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
        y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false } },
        color: { field: 'run', type: 'nominal', title: 'run' },
        tooltip: [{ field: 'run' }, { field: 'loss' }, { field: 'epoch' }, { field: 'value', format: '.4f' }],
      },
    },
    resolve: { scale: { y: 'independent' } },
  };
  const top1Panel = {
    width: 320, height: 260,
    data: { values: top1 },
    mark: { type: 'line', point: true, strokeWidth: 2 },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch (0 = PTQ start)', axis: { tickMinStep: 1 } },
      y: { field: 'top1', type: 'quantitative', title: 'test top-1 %', scale: { zero: false } },
      color: { field: 'run', type: 'nominal', title: 'run' },
      tooltip: [{ field: 'run' }, { field: 'epoch' }, { field: 'top1', format: '.2f' }],
    },
  };
  return {
    title: { text: 'Training curves', subtitle: `${runs.map((r) => r.name).join(', ')}: losses per epoch (student loss from the end of warm-up) and test top-1 where evaluated` },
    hconcat: top1.length ? [lossPanel, top1Panel] : [lossPanel],
  } as Spec;
}
