// The audit log as `audit.events` gives it: entries numbered and hash-chained by the server.

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
