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
