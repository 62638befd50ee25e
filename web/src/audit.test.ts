import { describe, expect, it } from 'vitest';
import { chainBreaks, type AuditEvent } from './audit';

const entry = (seq: number, prevHash: string, hash: string): AuditEvent => ({ _id: `e${seq}`, seq, ts: '2026-01-01T00:00:00.000Z', event: 'login', prevHash, hash });

describe('audit chain links', () => {
  it('finds an entry whose previous hash is not its neighbour’s hash', () => {
    const good = [entry(3, 'h2', 'h3'), entry(2, 'h1', 'h2'), entry(1, '0', 'h1')];
    expect(chainBreaks(good)).toEqual([]);
    expect(chainBreaks([entry(3, 'hX', 'h3'), entry(2, 'h1', 'h2'), entry(1, '0', 'h1')])).toEqual([3]);
    // Neighbours in a filtered or paged list that are not consecutive are not compared.
    expect(chainBreaks([entry(5, 'h4', 'h5'), entry(2, 'h1', 'h2')])).toEqual([]);
  });
});
