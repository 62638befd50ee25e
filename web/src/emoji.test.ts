import { describe, expect, it } from 'vitest';
import { emojiFor, pushRecent } from './emoji';
import { loadEmojiCatalog, searchEmoji } from './emoji-catalog';

describe('emoji', () => {
  it('keeps recent picks newest first, once each, bounded', () => {
    expect(pushRecent(['a', 'b', 'c'], 'b')).toEqual(['b', 'a', 'c']);
    expect(pushRecent(['a', 'b'], 'c', 2)).toEqual(['c', 'a']);
  });

  it('loads the full set under Rocket.Chat shortcodes, grouped, and finds emoji by name and tag', async () => {
    expect(emojiFor(':avocado:')).toBeUndefined();
    const catalog = await loadEmojiCatalog();
    expect(catalog.groups.map((g) => g.id)).toEqual([0, 1, 3, 4, 5, 6, 7, 8, 9]);
    expect(catalog.groups.reduce((n, g) => n + g.items.length, 0)).toBeGreaterThan(1800);
    expect(catalog.groups[0].items[0].name).toBe('grinning');
    expect(catalog.byName.get('thumbsup')?.shortcodes).toContain('+1');
    expect(catalog.byName.get('slight_smile')?.glyph).toBe('🙂');
    // Once loaded, every shortcode draws.
    expect(emojiFor(':avocado:')).toBe('🥑');
    // Exact shortcode first, then prefixes, then names and tags.
    const found = searchEmoji(catalog, 'heart').map((e) => e.name);
    expect(found[0]).toBe('heart');
    expect(found.indexOf('heart_eyes')).toBeGreaterThan(0);
    expect(searchEmoji(catalog, 'party').map((e) => e.name)).toContain('tada');
    expect(searchEmoji(catalog, ':rocket:')[0].glyph).toBe('🚀');
    expect(searchEmoji(catalog, '  ')).toEqual([]);
    expect(searchEmoji(catalog, 'zzzqqq')).toEqual([]);
  });
});
