// EJSON as DDP carries it: dates travel as {"$date": <epoch ms>}. REST sends ISO strings instead;
// `toDate` accepts either so records from both paths compare alike.

export function revive(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(revive);
  if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj);
    if (keys.length === 1 && keys[0] === '$date' && typeof obj.$date === 'number') {
      return new Date(obj.$date);
    }
    const out: Record<string, unknown> = {};
    for (const k of keys) out[k] = revive(obj[k]);
    return out;
  }
  return value;
}

/** Dates become {"$date": ms} for the server. */
export function encode(value: unknown): unknown {
  if (value instanceof Date) return { $date: value.getTime() };
  if (Array.isArray(value)) return value.map(encode);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = encode(v);
    return out;
  }
  return value;
}

export function toDate(value: unknown): Date {
  if (value instanceof Date) return value;
  if (typeof value === 'string' || typeof value === 'number') return new Date(value);
  if (value && typeof value === 'object' && '$date' in value) {
    return new Date((value as { $date: number }).$date);
  }
  return new Date(NaN);
}
