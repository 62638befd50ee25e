// The audit log as `audit.events` gives it: entries numbered and hash-chained by the server, and
// the server's verification of the chain (`audit.verify`).

import { t } from './i18n';

export interface AuditEvent {
  _id: string;
  seq: number;
  ts: string | { $date: number };
  event: string;
  actor?: { _id: string; username: string } | null;
  ip?: string | null;
  details?: unknown;
  prevHash: string;
  hash: string;
}

/**
 * Where the listed entries (newest first) do not chain: an entry whose `prevHash` is not the
 * hash of the entry before it. Only the links between listed neighbours are checked; the hashes
 * themselves are recomputed by `apogee admin audit verify`, which reads the stored documents.
 */
export function chainBreaks(events: readonly AuditEvent[]): number[] {
  const breaks: number[] = [];
  for (let i = 0; i + 1 < events.length; i++) {
    const newer = events[i];
    const older = events[i + 1];
    if (newer.seq === older.seq + 1 && newer.prevHash !== older.hash) breaks.push(newer.seq);
  }
  return breaks;
}

/** `audit.verify`'s answer: entries `from..to` checked, `verified` the last good one. */
export interface ChainCheck {
  intact: boolean;
  from: number;
  to: number;
  head: number;
  verified: number;
  broken?: { seq: number; kind: string; reason: string };
}

const BREAKS: Record<string, string> = {
  edited: 'Chain broken at entry {seq}: its contents do not match its hash (edited)',
  removed: 'Chain broken at entry {seq}: entries were removed',
  reordered: 'Chain broken at entry {seq}: it does not follow the entry before (removed or reordered)',
  malformed: 'Chain broken at entry {seq}: it is not an audit entry',
  head: 'Chain broken at entry {seq}: the newest entry is not the one last written',
};

/** The verification as the viewer states it: verified up to N, or the first broken link. */
export function verificationText(check: ChainCheck): string {
  if (check.intact) {
    return check.verified === 0 ? t('The audit log is empty') : t('Chain verified up to entry {n}', { n: check.verified });
  }
  const seq = check.broken?.seq ?? check.verified + 1;
  const known = check.broken && BREAKS[check.broken.kind];
  return known ? t(known, { seq }) : `${t('Chain broken at entry {seq}', { seq })}: ${check.broken?.reason ?? ''}`;
}
