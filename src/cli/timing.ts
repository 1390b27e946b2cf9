/** Timing helpers shared by `granq bench` and bench/ (npm run bench). */

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Median seconds of fn over `runs` timed calls after `warmup` untimed ones (at least `minSeconds` of timing). */
export function timeIt(fn: () => void, warmup = 3, runs = 10, minSeconds = 1): number {
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < runs || (performance.now() - start) / 1000 < minSeconds) {
    const t0 = performance.now();
    fn();
    times.push((performance.now() - t0) / 1000);
    if (times.length >= 200) break;
  }
  return median(times);
}
