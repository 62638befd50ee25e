import { describe, expect, it } from 'vitest';
import { chainBreaks, verificationText, type AuditEvent, type ChainCheck } from './audit';
import { setLanguage } from './i18n';

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

describe('the server’s chain verification', () => {
  const check = (extra: Partial<ChainCheck>): ChainCheck => ({ intact: true, from: 1, to: 9, head: 9, verified: 9, ...extra });

  it('states how far the chain was verified, or where it first breaks', () => {
    setLanguage('en');
    expect(verificationText(check({}))).toBe('Chain verified up to entry 9');
    expect(verificationText(check({ verified: 0, to: 0, head: 0 }))).toBe('The audit log is empty');
    const edited = check({ intact: false, verified: 2, broken: { seq: 3, kind: 'edited', reason: 'its contents do not match its hash (edited)' } });
    expect(verificationText(edited)).toBe('Chain broken at entry 3: its contents do not match its hash (edited)');
    // A kind this client does not know: the server's own reason.
    const odd = check({ intact: false, verified: 4, broken: { seq: 5, kind: 'new-kind', reason: 'something else' } });
    expect(verificationText(odd)).toBe('Chain broken at entry 5: something else');
  });

  it('has German for every kind of break', () => {
    setLanguage('de');
    for (const kind of ['edited', 'removed', 'reordered', 'malformed', 'head']) {
      const text = verificationText(check({ intact: false, verified: 6, broken: { seq: 7, kind, reason: '' } }));
      expect(text, kind).toMatch(/^Kette bei Eintrag 7 unterbrochen: /);
    }
    expect(verificationText(check({}))).toBe('Kette bis Eintrag 9 geprüft');
    setLanguage('en');
  });
});
