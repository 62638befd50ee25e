// The full emoji set for the picker and the `:` autocomplete: Emojibase's data (every Unicode
// emoji with its group, name and tags) under JoyPixels shortcodes — the emojione names
// Rocket.Chat uses on the wire (`:thumbsup:`, `:slight_smile:`). About 70 KB gzipped, so it is
// imported on demand, never with the initial JS.

import { registerEmoji } from './emoji';

export interface EmojiEntry {
  /** The first shortcode: what a pick sends. */
  name: string;
  shortcodes: string[];
  glyph: string;
  group: number;
  /** Shortcodes, label and tags, lower case: what search matches. */
  words: string;
}

export interface EmojiGroup {
  id: number;
  label: string;
  icon: string;
  items: EmojiEntry[];
}

export interface EmojiCatalog {
  groups: EmojiGroup[];
  byName: Map<string, EmojiEntry>;
}

/** Emojibase's groups, without 2 (skin-tone and hair components, not emoji on their own). */
const GROUPS: [number, string, string][] = [
  [0, 'Smileys & emotion', '😀'],
  [1, 'People & body', '👋'],
  [3, 'Animals & nature', '🐻'],
  [4, 'Food & drink', '🍔'],
  [5, 'Travel & places', '✈️'],
  [6, 'Activities', '⚽'],
  [7, 'Objects', '💡'],
  [8, 'Symbols', '❤️'],
  [9, 'Flags', '🏁'],
];

interface CompactEmoji {
  hexcode: string;
  label: string;
  unicode: string;
  group?: number;
  order?: number;
  tags?: string[];
}

/** Builds the catalog from Emojibase's compact data and a shortcode table (pure). */
export function buildCatalog(data: readonly CompactEmoji[], shortcodes: Record<string, string | string[]>): EmojiCatalog {
  const byGroup = new Map<number, EmojiEntry[]>(GROUPS.map(([id]) => [id, []]));
  const byName = new Map<string, EmojiEntry>();
  const sorted = [...data].sort((a, b) => (a.order ?? 0) - (b.order ?? 0));
  for (const e of sorted) {
    const list = e.group === undefined ? undefined : byGroup.get(e.group);
    const codes = shortcodes[e.hexcode];
    if (!list || !codes) continue;
    const names = Array.isArray(codes) ? codes : [codes];
    const entry: EmojiEntry = {
      name: names[0],
      shortcodes: names,
      glyph: e.unicode,
      group: e.group!,
      words: [...names, e.label, ...(e.tags ?? [])].join(' ').toLowerCase(),
    };
    list.push(entry);
    for (const n of names) if (!byName.has(n)) byName.set(n, entry);
  }
  return { groups: GROUPS.map(([id, label, icon]) => ({ id, label, icon, items: byGroup.get(id)! })), byName };
}

/**
 * Emoji matching `query`, best first: a shortcode equal to it, then starting with it, then any
 * word (shortcode, name, tag) containing it.
 */
export function searchEmoji(catalog: EmojiCatalog, query: string, limit = 96): EmojiEntry[] {
  const q = query.trim().toLowerCase().replace(/^:|:$/g, '');
  if (!q) return [];
  const ranked: [number, number, EmojiEntry][] = [];
  let i = 0;
  for (const g of catalog.groups) {
    for (const e of g.items) {
      const rank = e.shortcodes.includes(q) ? 0 : e.shortcodes.some((s) => s.startsWith(q)) ? 1 : e.words.includes(q) ? 2 : -1;
      if (rank >= 0) ranked.push([rank, i, e]);
      i++;
    }
  }
  return ranked.sort((a, b) => a[0] - b[0] || a[1] - b[1]).slice(0, limit).map(([, , e]) => e);
}

let loading: Promise<EmojiCatalog> | null = null;

/** Loads the catalog once (also teaching `emojiFor` every shortcode). */
export function loadEmojiCatalog(): Promise<EmojiCatalog> {
  loading ??= Promise.all([import('emojibase-data/en/compact.json'), import('emojibase-data/en/shortcodes/joypixels.json')]).then(
    ([data, codes]) => {
      const catalog = buildCatalog(data.default as CompactEmoji[], codes.default as Record<string, string | string[]>);
      registerEmoji(new Map([...catalog.byName].map(([name, e]) => [name, e.glyph])));
      return catalog;
    },
    (e) => {
      loading = null;
      throw e;
    },
  );
  return loading;
}
