import { useEffect, useRef, useState } from 'preact/hooks';
import { QUICK, emojiFor, recentEmoji, rememberEmoji } from '../emoji';
import { loadEmojiCatalog, searchEmoji, type EmojiCatalog } from '../emoji-catalog';
import { t } from '../i18n';

/**
 * The full emoji picker: a search box, the recently picked (the quick set at first) and
 * Unicode's groups as tabs. The set loads on first opening. `onPick` gets the shortcode.
 */
export function EmojiPicker({ onPick, onClose, label }: { onPick: (name: string) => void; onClose: () => void; label: string }) {
  const [catalog, setCatalog] = useState<EmojiCatalog | null>(null);
  const [error, setError] = useState(false);
  const [query, setQuery] = useState('');
  const [tab, setTab] = useState<number | 'recent'>('recent');
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    let live = true;
    loadEmojiCatalog().then((c) => live && setCatalog(c), () => live && setError(true));
    ref.current?.querySelector<HTMLInputElement>('input')?.focus();
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && onClose();
    const onDown = (e: MouseEvent) => ref.current && !ref.current.contains(e.target as Node) && onClose();
    document.addEventListener('keydown', onKey);
    document.addEventListener('mousedown', onDown);
    return () => {
      live = false;
      document.removeEventListener('keydown', onKey);
      document.removeEventListener('mousedown', onDown);
    };
  }, []);
  const pick = (name: string) => {
    rememberEmoji(name);
    onPick(name);
  };
  const recent = recentEmoji();
  let items: { name: string; glyph: string }[];
  if (query.trim()) items = catalog ? searchEmoji(catalog, query) : [];
  else if (tab === 'recent') items = (recent.length ? recent : QUICK).map((name) => ({ name, glyph: emojiFor(name) ?? `:${name}:` }));
  else items = catalog?.groups.find((g) => g.id === tab)?.items ?? [];
  return (
    <div class="emoji-picker" role="dialog" aria-label={label} ref={ref}>
      <input
        type="search"
        class="search"
        placeholder={t('Search emoji')}
        aria-label={t('Search emoji')}
        value={query}
        onInput={(e) => setQuery(e.currentTarget.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && items[0]) {
            e.preventDefault();
            pick(items[0].name);
          }
        }}
      />
      {!query.trim() && (
        <div class="emoji-tabs" role="tablist" aria-label={t('Emoji categories')}>
          <button role="tab" aria-selected={tab === 'recent'} title={t('Recent')} aria-label={t('Recent')} onClick={() => setTab('recent')}>🕘</button>
          {catalog?.groups.map((g) => (
            <button key={g.id} role="tab" aria-selected={tab === g.id} title={t(g.label)} aria-label={t(g.label)} onClick={() => setTab(g.id)}>
              {g.icon}
            </button>
          ))}
        </div>
      )}
      <div class="emoji-grid" role="group" aria-label={query.trim() ? t('Search emoji') : tab === 'recent' ? t('Recent') : t(catalog?.groups.find((g) => g.id === tab)?.label ?? '')}>
        {items.map((e) => (
          <button key={e.name} title={`:${e.name}:`} aria-label={e.name} onClick={() => pick(e.name)}>
            {e.glyph}
          </button>
        ))}
        {query.trim() && catalog && items.length === 0 && <p class="empty-results">{t('No emoji found')}</p>}
        {error && <p class="form-error">{t('The emoji could not be loaded')}</p>}
      </div>
    </div>
  );
}
