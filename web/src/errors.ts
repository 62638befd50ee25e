// Server errors as the user reads them. Rocket.Chat answers with a code (`errorType` over REST,
// `error` over DDP, or `[code]` at the end of the message, as its rate limiter does) and an
// English reason; the codes the client's screens meet are mapped to texts of the client's own,
// which `t()` translates. An unknown code shows the server's reason without the `[code]`.

import { ApiError } from './api';
import { DdpError } from './ddp';
import { t } from './i18n';

export const ERROR_TEXTS: Record<string, string> = {
  'error-duplicate-channel-name': 'A room with that name exists already',
  'team-name-already-exists': 'A team with that name exists already',
  'error-field-unavailable': 'That name is taken already',
  'error-invalid-room-name': 'That is not a valid room name',
  'error-invalid-name': 'That is not a valid name',
  'error-invalid-username': 'That is not a valid username',
  'error-invalid-email': 'That is not a valid e-mail address',
  'error-invalid-user': 'No such user',
  'error-user-not-found': 'No such user',
  'error-invalid-room': 'No such room',
  'error-room-not-found': 'No such room',
  'team-does-not-exist': 'No such team',
  'error-not-allowed': 'You are not allowed to do that',
  'error-action-not-allowed': 'You are not allowed to do that',
  'error-unauthorized': 'You are not allowed to do that',
  'not-authorized': 'You are not allowed to do that',
  'error-no-permission-team-channel': 'You are not allowed to do that',
  'error-room-archived': 'This room is archived',
  'error-message-size-exceeded': 'The message is too long',
  'error-too-many-requests': 'Too many requests — wait a moment and try again',
  'totp-invalid': 'Invalid two-factor code',
  'invalid-totp': 'Invalid two-factor code',
  'totp-max-attempts': 'Too many wrong codes — ask for a new one',
  'error-2fa-already-enabled': 'Two-factor authentication is on already',
  'error-file-too-large': 'The file is too large',
  'error-invalid-file-type': 'Files of this type are not allowed',
  'error-file-infected': 'The file was refused: malware was found in it',
  'error-file-scan-failed': 'The file could not be checked for malware — try again later',
  'error-file-upload-disabled': 'File uploads are turned off',
  'error-user-not-in-room': 'That user is not in this room',
  'error-you-are-last-owner': 'The room needs another owner first',
  'error-remove-last-owner': 'The room needs another owner first',
  'error-role-protected': 'This role cannot be changed',
  'error-role-in-use': 'Users still hold this role',
  'error-duplicate-role-names-not-allowed': 'A role with that name exists already',
  'error-password-in-history': 'Choose a password you have not used before',
  'error-user-registration-disabled': 'Registration is turned off',
  'error-login-blocked-for-user': 'Too many failed logins — try again later',
  'error-login-blocked-for-ip': 'Too many failed logins — try again later',
  'error-user-is-not-activated': 'This account is deactivated',
  'network-error': 'The server cannot be reached',
};

/** The `[code]` Rocket.Chat appends to a reason. */
const CODE_SUFFIX = /\s*\[([\w-]+)\]\s*$/;

/** The error's code, wherever the server put it. */
export function errorCode(e: unknown): string | undefined {
  if (e instanceof ApiError) return e.errorType ?? CODE_SUFFIX.exec(e.error)?.[1] ?? (e.error in ERROR_TEXTS ? e.error : undefined);
  if (e instanceof DdpError) return typeof e.error === 'string' ? e.error : CODE_SUFFIX.exec(e.reason)?.[1];
  return undefined;
}

/** What to show for an error: the client's translated text for a known code, else the reason. */
export function describeError(e: unknown): string {
  const code = errorCode(e);
  if (code && code in ERROR_TEXTS) return t(ERROR_TEXTS[code]);
  const reason = e instanceof ApiError || e instanceof DdpError ? e.message : e instanceof Error ? e.message : String(e);
  return reason.replace(CODE_SUFFIX, '') || reason;
}
