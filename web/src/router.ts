// Rocket.Chat's client URLs, so links from other clients and the desktop app's deep links land
// in the right place: /home, /channel/:name, /group/:name, /direct/:rid (or a username),
// …/thread/:tmid, /admin/:section, plus /login and /register.

export type Route =
  | { name: 'home' }
  | { name: 'login' }
  | { name: 'register' }
  | { name: 'room'; kind: 'channel' | 'group' | 'direct'; key: string; tmid?: string }
  | { name: 'admin'; section: string };

export function parse(pathname: string): Route {
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
      return { name: 'room', kind: first, key: second, tmid: third === 'thread' && fourth ? fourth : undefined };
    case 'admin':
      return { name: 'admin', section: second ?? 'users' };
    default:
      return { name: 'home' };
  }
}

export function href(route: Route): string {
  switch (route.name) {
    case 'room': {
      const base = `/${route.kind}/${encodeURIComponent(route.key)}`;
      return route.tmid ? `${base}/thread/${encodeURIComponent(route.tmid)}` : base;
    }
    case 'admin':
      return `/admin/${route.section}`;
    default:
      return `/${route.name}`;
  }
}

/** The route of a room as Rocket.Chat links it. */
export function roomRoute(t: string, name: string, rid: string, tmid?: string): Route {
  if (t === 'd') return { name: 'room', kind: 'direct', key: rid, tmid };
  return { name: 'room', kind: t === 'p' ? 'group' : 'channel', key: name, tmid };
}
