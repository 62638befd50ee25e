import { describe, expect, it } from 'vitest';
import { covers, prefixOffsets, rangeFor, rowAt } from './virtual';

describe('virtual list arithmetic', () => {
  const heights = [10, 20, 30, 40, 50];
  const offsets = prefixOffsets(heights.length, (i) => heights[i]);

  it('sums heights into row starts', () => {
    expect([...offsets]).toEqual([0, 10, 30, 60, 100, 150]);
    expect([...prefixOffsets(0, () => 1)]).toEqual([0]);
  });

  it('finds the row covering a height, clamped to the ends', () => {
    expect(rowAt(offsets, 0)).toBe(0);
    expect(rowAt(offsets, 9.5)).toBe(0);
    expect(rowAt(offsets, 10)).toBe(1);
    expect(rowAt(offsets, 59)).toBe(2);
    expect(rowAt(offsets, 149)).toBe(4);
    expect(rowAt(offsets, -100)).toBe(0);
    expect(rowAt(offsets, 1e9)).toBe(4);
    expect(rowAt(prefixOffsets(0, () => 1), 5)).toBe(-1);
  });

  it('draws the rows in view plus the overscan', () => {
    expect(rangeFor(offsets, 30, 30, 0)).toEqual([2, 4]);
    expect(rangeFor(offsets, 30, 30, 15)).toEqual([1, 4]);
    expect(rangeFor(offsets, 30, 30, 45)).toEqual([0, 5]);
    expect(rangeFor(offsets, 0, 1000, 0)).toEqual([0, 5]);
    expect(rangeFor(prefixOffsets(0, () => 1), 0, 100, 10)).toEqual([0, 0]);
  });

  it('keeps 2,000 rows to a few dozen drawn', () => {
    const many = prefixOffsets(2000, (i) => (i % 7 === 0 ? 120 : 40));
    const [start, end] = rangeFor(many, many[1000], 800, 400);
    expect(end - start).toBeLessThan(60);
    expect(start).toBeLessThan(1000);
    expect(end).toBeGreaterThan(1000);
  });

  it('tells whether what is drawn still covers the view', () => {
    expect(covers(offsets, [1, 4], 20, 30)).toBe(true);
    expect(covers(offsets, [2, 4], 20, 30)).toBe(false); // row 1 (10..30) is missing
    expect(covers(offsets, [2, 3], 30, 40)).toBe(false); // row 3 (60..100) is missing
    expect(covers(offsets, [0, 5], -50, 1000)).toBe(true);
  });
});
