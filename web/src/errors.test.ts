import { afterEach, describe, expect, it } from 'vitest';
import { ApiError } from './api';
import { DdpError } from './ddp';
import { ERROR_TEXTS, describeError, errorCode } from './errors';
import { LANGUAGES, setLanguage } from './i18n';

describe('server errors', () => {
  afterEach(() => setLanguage('en'));

  it('finds the code in errorType, a DDP error or a [code] suffix', () => {
    expect(errorCode(new ApiError(400, 'Invalid user [error-invalid-user]', 'error-invalid-user', null))).toBe('error-invalid-user');
    expect(errorCode(new ApiError(429, 'Error, too many requests. [error-too-many-requests]', undefined, null))).toBe('error-too-many-requests');
    expect(errorCode(new ApiError(400, 'totp-invalid', undefined, null))).toBe('totp-invalid');
    expect(errorCode(new DdpError({ error: 'invalid-totp', reason: 'Invalid TOTP provided' }))).toBe('invalid-totp');
    expect(errorCode(new Error('plain'))).toBeUndefined();
  });

  it('shows known codes in the user\'s language and other reasons without their code', () => {
    const dup = new ApiError(400, 'A channel with that name exists [error-duplicate-channel-name]', 'error-duplicate-channel-name', null);
    expect(describeError(dup)).toBe('A room with that name exists already');
    setLanguage('de');
    expect(describeError(dup)).toBe('Ein Raum mit diesem Namen existiert bereits');
    expect(describeError(new ApiError(400, 'Something odd [error-weird-thing]', 'error-weird-thing', null))).toBe('Something odd');
    expect(describeError(new ApiError(400, '[error-weird-thing]', 'error-weird-thing', null))).toBe('[error-weird-thing]');
    expect(describeError(new Error('boom'))).toBe('boom');
  });

  it('has German for every error text', () => {
    expect(Object.values(ERROR_TEXTS).filter((text) => !(text in LANGUAGES.de))).toEqual([]);
  });
});
