import { describe, expect, it } from 'vitest';
import { applyCompletion, tokenAt } from './complete';

describe('composer autocomplete', () => {
  it('finds the token before the caret', () => {
    expect(tokenAt('hello @al', 9)).toEqual({ trigger: '@', query: 'al', start: 6 });
    expect(tokenAt('#gen', 4)).toEqual({ trigger: '#', query: 'gen', start: 0 });
    expect(tokenAt('mail me at a@b', 14)).toBeNull();
    expect(tokenAt('note: x', 5)).toBeNull();
    expect(tokenAt('nice :sm', 8)).toEqual({ trigger: ':', query: 'sm', start: 5 });
    expect(tokenAt('hello @al and more', 9)).toEqual({ trigger: '@', query: 'al', start: 6 });
  });

  it('replaces the whole word and puts the caret after it', () => {
    const text = 'hi @al how';
    const token = tokenAt(text, 6)!;
    expect(applyCompletion(text, 6, token, 'alice')).toEqual({ text: 'hi @alice how', caret: 10 });
    const e = tokenAt('ok :thu', 7)!;
    expect(applyCompletion('ok :thu', 7, e, '+1').text).toBe('ok :+1: ');
  });
});
