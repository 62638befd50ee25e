// Shortcodes the client draws as Unicode before the full set is loaded (the common set people
// react with); others show as `:name:` until `emoji-catalog.ts` has loaded. Rocket.Chat stores
// reactions by shortcode, so these names are what goes on the wire.

export const EMOJI: Record<string, string> = {
  '+1': '👍', thumbsup: '👍', '-1': '👎', thumbsdown: '👎', smile: '😄', smiley: '😃', grinning: '😀',
  joy: '😂', laughing: '😆', wink: '😉', blush: '😊', heart_eyes: '😍', thinking: '🤔', neutral_face: '😐',
  cry: '😢', sob: '😭', angry: '😠', scream: '😱', sunglasses: '😎', slight_smile: '🙂', upside_down: '🙃',
  heart: '❤️', broken_heart: '💔', fire: '🔥', tada: '🎉', rocket: '🚀', eyes: '👀', clap: '👏', pray: '🙏',
  muscle: '💪', wave: '👋', ok_hand: '👌', raised_hands: '🙌', point_up: '☝️', check: '✔️',
  white_check_mark: '✅', x: '❌', warning: '⚠️', question: '❓', exclamation: '❗', star: '⭐', sparkles: '✨',
  zap: '⚡', bulb: '💡', coffee: '☕', beer: '🍺', pizza: '🍕', cake: '🍰', sun: '☀️', moon: '🌙',
  rainbow: '🌈', '100': '💯', bug: '🐛', lock: '🔒', key: '🔑', memo: '📝', calendar: '📅', link: '🔗',
};

/** The picker's quick reactions: its "recent" tab until the user has picked some. */
export const QUICK = ['+1', 'heart', 'joy', 'tada', 'eyes', 'rocket', 'thinking', 'white_check_mark'];

/** Every shortcode of the full set, once `emoji-catalog.ts` has loaded it. */
let loaded: ReadonlyMap<string, string> | null = null;

export function registerEmoji(all: ReadonlyMap<string, string>): void {
  loaded = all;
}

export function emojiFor(shortcode: string): string | undefined {
  const name = shortcode.replace(/^:|:$/g, '');
  return EMOJI[name] ?? loaded?.get(name);
}

const RECENT_KEY = 'apogee.emoji.recent';
const RECENT_MAX = 24;

/** `name` first, without repeats, at most `max` long. */
export function pushRecent(list: readonly string[], name: string, max = RECENT_MAX): string[] {
  return [name, ...list.filter((x) => x !== name)].slice(0, max);
}

/** The emoji this browser picked last, newest first. */
export function recentEmoji(): string[] {
  try {
    const list = JSON.parse(localStorage.getItem(RECENT_KEY) ?? '[]');
    return Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string').slice(0, RECENT_MAX) : [];
  } catch {
    return [];
  }
}

export function rememberEmoji(name: string): void {
  try {
    localStorage.setItem(RECENT_KEY, JSON.stringify(pushRecent(recentEmoji(), name)));
  } catch {
    /* storage full or off: recent emoji are a convenience */
  }
}
