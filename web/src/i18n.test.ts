import { describe, expect, it } from 'vitest';
import { LANGUAGES, setLanguage, t } from './i18n';

describe('i18n', () => {
  it('translates, fills placeholders, and falls back to English', () => {
    setLanguage('de');
    expect(t('Login')).toBe('Anmelden');
    expect(t('{n} replies', { n: 3 })).toBe('3 Antworten');
    expect(t('Not translated yet')).toBe('Not translated yet');
    setLanguage('xx');
    expect(t('{n} replies', { n: 3 })).toBe('3 replies');
  });

  it('has German for every key it knows, with the same placeholders', () => {
    for (const [key, text] of Object.entries(LANGUAGES.de)) {
      const vars = (s: string) => (s.match(/\{\w+\}/g) ?? []).sort().join();
      expect(vars(text), key).toBe(vars(key));
    }
  });
});

describe('German coverage', () => {
  // Every literal `t('…')` key of the client's sources.
  const sources = import.meta.glob(['./**/*.ts', './**/*.tsx', '!./**/*.test.ts'], { query: '?raw', import: 'default', eager: true }) as Record<string, string>;
  const keys = new Set<string>();
  for (const text of Object.values(sources)) {
    for (const m of text.matchAll(/\bt\(\s*(['"])((?:(?!\1)[^\\]|\\.)*)\1/g)) keys.add(m[2].replace(/\\(.)/g, '$1'));
  }

  it('finds the keys it checks', () => {
    expect(keys.size).toBeGreaterThan(150);
    expect(keys.has('Create team')).toBe(true);
  });

  // Keys passed to t() through a variable: status names, room types, emoji groups.
  const indirect = ['Online', 'Away', 'Busy', 'Offline', 'Channels', 'Private groups', 'Direct messages', 'Channel', 'Private group', 'Direct message',
    'Smileys & emotion', 'People & body', 'Animals & nature', 'Food & drink', 'Travel & places', 'Activities', 'Objects', 'Symbols', 'Flags'];

  it('has German for every text the client shows', () => {
    const missing = [...keys, ...indirect].filter((k) => !(k in LANGUAGES.de));
    expect(missing).toEqual([]);
  });
});
