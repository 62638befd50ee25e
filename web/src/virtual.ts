// Pure arithmetic of the virtualised message list: where each row starts given the heights known
// (measured, or estimated for rows never drawn), which row is at a given height, and which rows
// to draw for a view. The list component (ui/MessageList.tsx) does the DOM side.

/**
 * Prefix sums of the rows' heights: `out[i]` is where row `i` starts, `out[n]` the whole height.
 */
export function prefixOffsets(n: number, height: (i: number) => number): Float64Array {
  const out = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) out[i + 1] = out[i] + height(i);
  return out;
}

/** The row that covers height `y` (the first or last row beyond the ends); -1 without rows. */
export function rowAt(offsets: Float64Array, y: number): number {
  const n = offsets.length - 1;
  if (n <= 0) return -1;
  let lo = 0;
  let hi = n - 1;
  // The last row starting at or above y.
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (offsets[mid] <= y) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * The rows `[start, end)` to draw for a view of `height` pixels from `top`, with `overscan`
 * pixels more on each side (so scrolling a little shows rows already drawn and measured).
 */
export function rangeFor(offsets: Float64Array, top: number, height: number, overscan: number): [number, number] {
  const n = offsets.length - 1;
  if (n <= 0) return [0, 0];
  const start = rowAt(offsets, top - overscan);
  const last = rowAt(offsets, top + height + overscan);
  return [Math.max(0, start), Math.min(n, last + 1)];
}

/** Whether the drawn rows `[start, end)` cover the view `[top, top + height]`. */
export function covers(offsets: Float64Array, drawn: readonly [number, number], top: number, height: number): boolean {
  const n = offsets.length - 1;
  const [start, end] = drawn;
  if (n <= 0) return true;
  const from = start <= 0 ? -Infinity : offsets[start];
  const to = end >= n ? Infinity : offsets[end];
  return from <= Math.max(0, top) && to >= Math.min(offsets[n], top + height);
}
