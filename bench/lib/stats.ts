export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  return { median: percentile(sorted, 50), min: sorted[0] ?? NaN, max: sorted[sorted.length - 1] ?? NaN };
}

export interface Growth {
  /** Least-squares slope: y units per x unit (NaN with fewer than 2 points). */
  slope: number;
  /** Standard deviation of the points about the fitted line: the noise a slope is judged against. */
  residualSd: number;
  /** Standard error of the slope (residualSd / √Σ(x − x̄)²). */
  slopeSe: number;
}

/** The least-squares line through `points` ([x, y] pairs). */
export function fitGrowth(points: ReadonlyArray<readonly [number, number]>): Growth {
  const n = points.length;
  if (n < 2) return { slope: NaN, residualSd: NaN, slopeSe: NaN };
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  const slope = sxx > 0 ? sxy / sxx : NaN;
  const residuals = points.map(([x, y]) => y - (my + slope * (x - mx)));
  const residualSd = Math.sqrt(residuals.reduce((a, r) => a + r * r, 0) / Math.max(1, n - 2));
  return { slope, residualSd, slopeSe: residualSd / Math.sqrt(sxx) };
}

/** `broadcasts` at time `t`, linear between samples (sorted by `t`), flat beyond them. */
export function interpolate(samples: ReadonlyArray<{ t: number; broadcasts: number }>, t: number): number {
  if (t <= samples[0]!.t) return samples[0]!.broadcasts;
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]!;
    const b = samples[i]!;
    if (t <= b.t) return a.broadcasts + ((b.broadcasts - a.broadcasts) * (t - a.t)) / (b.t - a.t || 1);
  }
  return samples.at(-1)!.broadcasts;
}

/** The sample whose `t` is nearest to `t`. */
export function sampleAt<T extends { t: number }>(samples: readonly T[], t: number): T | undefined {
  let best: T | undefined;
  for (const s of samples) if (!best || Math.abs(s.t - t) < Math.abs(best.t - t)) best = s;
  return best;
}

/**
 * Heap growth with what the replay windows hold taken off: heap = a + growth·x + perItem·held,
 * `x` the traffic so far (operations), `held` what the windows hold (network broadcasts sent in
 * the last window). When the pace slips (a busy machine), the windows hold fewer broadcasts and
 * the heap follows, which a plain slope over time takes for growth or shrinkage; and what is
 * retained without bound grows with the traffic served, not with the clock. `perItem` is fitted
 * over every point (the windows fill during the warm-up, which pins it down), then `growth` over
 * the points `late` keeps (after the warm-up), with perItem·held taken off.
 */
export function fitGrowthBeside(
  points: ReadonlyArray<{ x: number; y: number; held: number }>,
  late: (point: { x: number; y: number; held: number }) => boolean,
): Growth & { perItem: number } {
  let perItem = 0;
  if (points.length >= 4) {
    // Normal equations of y = a + b·x + c·held.
    const rows = points.map((p) => [1, p.x, p.held]);
    const m = [0, 1, 2].map((i) => [0, 1, 2].map((j) => rows.reduce((sum, r) => sum + r[i]! * r[j]!, 0)));
    const v = [0, 1, 2].map((i) => rows.reduce((sum, r, k) => sum + r[i]! * points[k]!.y, 0));
    // Singular when nothing is held (no broadcasts): nothing to take off.
    const solved = solve3(m, v);
    if (solved && Number.isFinite(solved[2]!)) perItem = solved[2]!;
  }
  return { ...fitGrowth(points.filter(late).map((p) => [p.x, p.y - perItem * p.held] as const)), perItem };
}

/** Gaussian elimination with partial pivoting; undefined when singular. */
function solve3(m: number[][], v: number[]): number[] | undefined {
  const a = m.map((row, i) => [...row, v[i]!]);
  for (let col = 0; col < 3; col++) {
    let pivot = col;
    for (let r = col + 1; r < 3; r++) if (Math.abs(a[r]![col]!) > Math.abs(a[pivot]![col]!)) pivot = r;
    [a[col], a[pivot]] = [a[pivot]!, a[col]!];
    const scale = Math.max(...a.map((row) => Math.abs(row[col]!)));
    if (Math.abs(a[col]![col]!) <= 1e-12 * (scale || 1)) return undefined;
    for (let r = 0; r < 3; r++) {
      if (r === col) continue;
      const f = a[r]![col]! / a[col]![col]!;
      for (let c = col; c < 4; c++) a[r]![c]! -= f * a[col]![c]!;
    }
  }
  return [0, 1, 2].map((i) => a[i]![3]! / a[i]![i]!);
}
