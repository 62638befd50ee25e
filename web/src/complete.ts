// Composer autocomplete: which token the caret is in, and what replaces it.

export interface Token {
  trigger: '@' | '#' | ':';
  query: string;
  /** Index of the trigger character in the text. */
  start: number;
}

/** The `@user`, `#room` or `:emoji` being typed just before the caret, if any. */
export function tokenAt(text: string, caret: number): Token | null {
  const before = text.slice(0, caret);
  const m = /(^|\s)([@#:])([\w.-]*)$/.exec(before);
  if (!m) return null;
  const trigger = m[2] as Token['trigger'];
  // `:` alone or after one letter is too common in prose ("note: …") to pop a list.
  if (trigger === ':' && m[3].length < 2) return null;
  return { trigger, query: m[3], start: before.length - m[3].length - 1 };
}

/** The text with the token replaced by `value` and a space, and where the caret goes. */
export function applyCompletion(text: string, caret: number, token: Token, value: string): { text: string; caret: number } {
  const insert = `${token.trigger}${value}${token.trigger === ':' ? ':' : ''} `;
  const after = text.slice(caret).replace(/^[\w.-]*/, '');
  return { text: text.slice(0, token.start) + insert + after.replace(/^ /, ''), caret: token.start + insert.length };
}
