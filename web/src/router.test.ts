import { describe, expect, it } from 'vitest';
import { href, parse } from './router';

describe('routes', () => {
  it("reads Rocket.Chat's URLs and writes them back", () => {
    for (const path of ['/home', '/channel/general', '/group/secret/thread/abc', '/direct/XYZ', '/admin/users', '/account/security']) {
      expect(href(parse(path))).toBe(path);
    }
    expect(parse('/')).toEqual({ name: 'home' });
    expect(parse('/channel/caf%C3%A9')).toMatchObject({ kind: 'channel', key: 'café' });
    expect(parse('/admin')).toEqual({ name: 'admin', section: 'users' });
    expect(parse('/account')).toEqual({ name: 'account', section: 'security' });
  });

  it('keeps the message of a `?msg=` link', () => {
    expect(parse('/channel/general', '?msg=abc')).toEqual({ name: 'room', kind: 'channel', key: 'general', tmid: undefined, msg: 'abc' });
    expect(parse('/group/x?msg=a%2Fb')).toMatchObject({ key: 'x', msg: 'a/b' });
    expect(href(parse('/channel/general?msg=abc'))).toBe('/channel/general?msg=abc');
    expect(parse('/channel/general', '?other=1')).not.toHaveProperty('msg');
  });
});
