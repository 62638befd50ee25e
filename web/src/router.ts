// Rocket.Chat's client URLs, so links from other clients and the desktop app's deep links land
// in the right place: /home, /channel/:name, /group/:name, /direct/:rid (or a username),
// …/thread/:tmid, /admin/:section, /account/:section, plus /login and /register. A room URL may carry `?msg=<id>`:
// the message to scroll to and highlight (Rocket.Chat's message links).

export type Route =
  | { name: 'home' }
  | { name: 'login' }
  | { name: 'register' }
  | { name: 'room'; kind: 'channel' | 'group' | 'direct'; key: string; tmid?: string; msg?: string }
  | { name: 'admin'; section: string }
  | { name: 'account'; section: string };

/** Reads a path, with its query string (`?msg=`) when given (a full `/path?query` also works). */
export function parse(pathname: string, search = ''): Route {
  const q = pathname.indexOf('?');
  if (q >= 0) {
    search = pathname.slice(q);
    pathname = pathname.slice(0, q);
  }
  const msg = new URLSearchParams(search).get('msg') || undefined;
  const parts = pathname.split('/').filter(Boolean).map(decodeURIComponent);
  const [first, second, third, fourth] = parts;
  switch (first) {
    case 'login':
      return { name: 'login' };
    case 'register':
      return { name: 'register' };
    case 'channel':
    case 'group':
    case 'direct':
      if (!second) return { name: 'home' };
      return { name: 'room', kind: first, key: second, tmid: third === 'thread' && fourth ? fourth : undefined, ...(msg ? { msg } : {}) };
    case 'admin':
      return { name: 'admin', section: second ?? 'users' };
    case 'account':
      return { name: 'account', section: second ?? 'security' };
    default:
      return { name: 'home' };
  }
}

export function href(route: Route): string {
  switch (route.name) {
    case 'room': {
      const base = `/${route.kind}/${encodeURIComponent(route.key)}`;
      const path = route.tmid ? `${base}/thread/${encodeURIComponent(route.tmid)}` : base;
      return route.msg ? `${path}?msg=${encodeURIComponent(route.msg)}` : path;
    }
    case 'admin':
      return `/admin/${route.section}`;
    case 'account':
      return `/account/${route.section}`;
    default:
      return `/${route.name}`;
  }
}

/** The route of a room as Rocket.Chat links it. */
export function roomRoute(t: string, name: string, rid: string, tmid?: string): Route {
  if (t === 'd') return { name: 'room', kind: 'direct', key: rid, tmid };
  return { name: 'room', kind: t === 'p' ? 'group' : 'channel', key: name, tmid };
}
