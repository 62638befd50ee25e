// Shortcodes the client draws as Unicode (the common set people react with); others show as
// `:name:`. Rocket.Chat stores reactions by shortcode, so these names are what goes on the wire.

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

/** The picker's quick reactions. */
export const QUICK = ['+1', 'heart', 'joy', 'tada', 'eyes', 'rocket', 'thinking', 'white_check_mark'];

export function emojiFor(shortcode: string): string | undefined {
  return EMOJI[shortcode.replace(/^:|:$/g, '')];
}
