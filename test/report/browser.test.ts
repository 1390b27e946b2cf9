/**
 * The report in a real browser: `granq report --demo` writes a report (and PNGs), Debian's Chromium (driven by
 * playwright-core) opens it from disk, and every figure must have rendered: a non-empty SVG with the expected number
 * of series and its axis labels, the accuracy tables filled, no console error and no network request (the page's
 * own file is the only request). A full-page screenshot is saved. Skipped, saying why, only when Chromium is not
 * installed (.ci/run installs it with apt) or ../shared (teacher, CIFAR test set) is missing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { noShared } from '../kit/shared.js';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];
const skip = noShared || (fs.existsSync(CHROMIUM) ? false : `Chromium not installed at ${CHROMIUM}: run 'apt-get install -y chromium' (.ci/run does); the browser test did NOT run`);

interface SvgFacts {
  id: string; drawn: string | undefined; svgs: number; width: number; height: number;
  lines: number[]; rects: number[]; axisTitles: string[]; axisLabels: string[][]; legendLabels: string[]; rowHeaders: string[]; columnHeaders: string[]; text: string;
}

test('granq report --demo renders every figure in Chromium, offline, without console errors', { skip, timeout: 240_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-report-browser-'));
  const out = path.join(dir, 'report.html');
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--single-threaded-gc', path.resolve('dist/src/cli/main.js'), 'report', '--demo', '--out', out, '--png', path.join(dir, 'png')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  t.diagnostic(`granq report --demo: ${((performance.now() - t0) / 1000).toFixed(1)} s, ${(fs.statSync(out).size / 1e6).toFixed(1)} MB`);
  const pngs = fs.readdirSync(path.join(dir, 'png')).sort();
  assert.deepEqual(pngs, ['activation-maps.png', 'curves.png', 'latency.png', 'layer-error.png', 'pixels.png']);
  for (const f of pngs) assert.deepEqual([...fs.readFileSync(path.join(dir, 'png', f)).subarray(1, 4)], [0x50, 0x4e, 0x47], f);

  const t1 = performance.now();
  const ctx = await chromium.launchPersistentContext(fs.mkdtempSync(path.join(os.tmpdir(), 'granq-chromium-profile-')), {
    executablePath: CHROMIUM, headless: true, args: FLAGS,
  });
  try {
    const page = await ctx.newPage();
    const requests: string[] = [];
    const errors: string[] = [];
    page.on('request', (q) => requests.push(q.url()));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(String(e)));
    const url = pathToFileURL(out).href;
    await page.goto(url, { waitUntil: 'load' });

    const figs: SvgFacts[] = await page.$$eval('figure[data-figure]', (els) => els.map((f) => {
      const svg = f.querySelector('svg');
      const texts = (sel: string) => [...(svg?.querySelectorAll(sel) ?? [])].map((e) => e.textContent ?? '');
      const box = svg?.getBoundingClientRect();
      return {
        id: (f as HTMLElement).dataset['figure']!, drawn: (f as HTMLElement).dataset['drawn'], svgs: f.querySelectorAll('svg').length,
        width: box?.width ?? 0, height: box?.height ?? 0,
        // One line-mark container per series; the number of non-empty paths in each rect-mark container.
        lines: [...(svg?.querySelectorAll('g.mark-line.role-mark') ?? [])].map((g) => [...g.querySelectorAll('path')].filter((p) => (p.getAttribute('d') ?? '').length > 10).length),
        rects: [...(svg?.querySelectorAll('g.mark-rect.role-mark') ?? [])].map((g) => [...g.querySelectorAll('path')].filter((p) => p.getAttribute('d')).length),
        axisTitles: texts('g.role-axis-title text'),
        axisLabels: [...(svg?.querySelectorAll('g.role-axis-label') ?? [])].map((g) => [...g.querySelectorAll('text')].map((e) => e.textContent ?? '')),
        legendLabels: texts('g.role-legend-label text'),
        rowHeaders: texts('g.row_header text'),
        columnHeaders: texts('g.column_header text'),
        text: svg?.textContent ?? '',
      };
    }));
    const fig = (id: string) => figs.find((f) => f.id === id)!;
    assert.deepEqual(figs.map((f) => `${f.id}:${f.drawn}:${f.svgs}`), ['activation-maps:true:1', 'latency:true:1', 'layer-error:true:1', 'pixels:true:1', 'curves:true:1']);
    for (const f of figs) assert.ok(f.width > 300 && f.height > 200, `${f.id}: svg ${f.width}x${f.height}`);

    // Figure 1: 3 images x (FP, layer, granq) x 4 channels maps of 32x32 cells, rows labelled with the errors.
    const maps = fig('activation-maps');
    assert.equal(maps.rects.length, 36);
    assert.ok(maps.rects.every((n) => n === 1024), `cells per map: ${[...new Set(maps.rects)]}`);
    assert.deepEqual(maps.rowHeaders, ['channel 0', 'channel 1', 'channel 2', 'channel 3']);
    assert.equal(maps.columnHeaders.length, 9);
    assert.equal(maps.columnHeaders.filter((h) => /^image \d(layer|granq) 3-biterror 0\.\d{3}$/.test(h)).length, 6, maps.columnHeaders.join(' | '));

    // Figure 3: 6 series (3 quantizers x 2 timings) over the demo's 4 batch sizes, log axes.
    const lat = fig('latency');
    assert.deepEqual(lat.lines, [1, 1, 1, 1, 1, 1]);
    assert.deepEqual(lat.axisTitles.sort(), ['batch size (log scale)', 'time per forward pass, ms (log scale)']);
    assert.deepEqual(lat.axisLabels[0], ['8', '16', '32', '64']);
    for (const l of ['layer', 'channel-loop', 'granq', '19 activation quantizers', 'whole forward']) assert.ok(lat.legendLabels.includes(l), l);

    // Figure 4: layer and granq, real and synthetic inputs, 19 quantizers.
    const err = fig('layer-error');
    assert.deepEqual(err.lines, [1, 1, 1, 1]);
    assert.deepEqual(err.axisLabels[0], Array.from({ length: 19 }, (_, i) => String(i)));
    assert.ok(err.axisTitles.includes('relative error'));
    assert.equal(err.legendLabels.filter((l) => /^(layer|granq), (real|synthetic) inputs \(mean 0\.\d{4}\)$/.test(l)).length, 4);

    // Figure 5: per channel, real vs generator, moments in the legend.
    const pix = fig('pixels');
    assert.deepEqual(pix.lines, [1, 1, 1, 1, 1, 1]);
    for (const c of 'RGB') assert.ok(pix.axisTitles.includes(`channel ${c}: normalised pixel value`), c);
    assert.equal(pix.legendLabels.filter((l) => /^(real test images|generator): mean -?\d+\.\d\d, std \d+\.\d\d, skew -?\d+\.\d\d$/.test(l)).length, 6, pix.legendLabels.join(' | '));

    // Training curves: the 6 losses of the tiny run in their own panels, and test top-1.
    const cur = fig('curves');
    assert.equal(cur.lines.length, 7);
    assert.ok(cur.lines.every((n) => n === 1));
    for (const l of ['generator', 'margin', 'ds', 'as', 'bns', 'student']) assert.ok(cur.text.includes(l), l);
    assert.ok(cur.axisTitles.includes('test top-1 %') && cur.axisTitles.includes('epoch (0 = PTQ start)'));

    // Accuracy: our tiny run and the published ResNet-20 CIFAR-10 table with its sources.
    const runRows = await page.$$eval('#runs-table tr', (rows) => rows.slice(1).map((r) => [...r.querySelectorAll('td')].map((c) => c.textContent)));
    assert.equal(runRows.length, 1);
    assert.deepEqual([...runRows[0]!.slice(1, 3), runRows[0]![4]], ['W3A3', 'granq / slice', 'tiny']);
    assert.match(runRows[0]![3]!, /^\d+\.\d\d \/ \d+\.\d\d$/); // bits per weight: as exported / integer zero points
    assert.match(runRows[0]![6]!, /^\d\d\.\d\d$/); // FP on the 256 test images
    assert.match(runRows[0]![10]!, /^\d+ \/ \d+ \(p = [01](\.\d+)?(e-\d+)?\)$/); // final vs FP, image by image
    const published = await page.$$eval('#published-table tr', (rows) => rows.length);
    assert.ok(published > 5, `published rows ${published}`);

    assert.deepEqual(errors, [], `console errors: ${errors.join('\n')}`);
    assert.deepEqual(requests, [url], `requests other than the page itself: ${requests.join(', ')}`);
    const shot = path.join(dir, 'report-screenshot.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(fs.statSync(shot).size > 50_000);
    t.diagnostic(`Chromium ${ctx.browser()?.version() ?? ''}: opened and checked in ${((performance.now() - t1) / 1000).toFixed(1)} s; screenshot ${shot}`);
  } finally {
    await ctx.close();
  }
});
