import { describe, expect, it } from 'vitest';
import { firstUnread, layout, lastOwn, mdWithoutQuotes, merge, normalise, quotedIds, systemText, withoutQuotes } from './messages';
import { setLanguage } from './i18n';

const alice = { _id: 'A', username: 'alice' };
const bob = { _id: 'B', username: 'bob' };
const msg = (id: string, at: string, u = alice, extra: object = {}) =>
  normalise({ _id: id, rid: 'r', msg: id, ts: at, _updatedAt: at, u, ...extra });

describe('merge', () => {
  it('inserts in time order, replaces newer copies, keeps older ones out', () => {
    const a = msg('a', '2026-01-01T10:00:00Z');
    const c = msg('c', '2026-01-01T10:02:00Z');
    const list = merge([], [c, a]);
    expect(list.map((m) => m._id)).toEqual(['a', 'c']);
    const b = msg('b', '2026-01-01T10:01:00Z');
    expect(merge(list, [b]).map((m) => m._id)).toEqual(['a', 'b', 'c']);
    // An edit arrives with a later _updatedAt and wins; a stale copy does not.
    const edited = normalise({ ...a, msg: 'edited', _updatedAt: '2026-01-01T11:00:00Z' });
    const afterEdit = merge(list, [edited]);
    expect(afterEdit[0].msg).toBe('edited');
    expect(merge(afterEdit, [a])[0].msg).toBe('edited');
  });

  it('reads EJSON dates from DDP and ISO strings from REST alike', () => {
    const fromDdp = normalise({ _id: 'x', rid: 'r', msg: '', u: alice, ts: { $date: Date.UTC(2026, 0, 1) } });
    const fromRest = normalise({ _id: 'x', rid: 'r', msg: '', u: alice, ts: '2026-01-01T00:00:00.000Z' });
    expect(fromDdp.ts.getTime()).toBe(fromRest.ts.getTime());
  });
});

describe('layout', () => {
  it('separates days, groups one author within five minutes, breaks on system messages', () => {
    const list = merge(
      [],
      [
        msg('1', '2026-03-01T10:00:00'),
        msg('2', '2026-03-01T10:01:00'),
        msg('3', '2026-03-01T10:09:00'),
        msg('4', '2026-03-01T10:09:30', bob),
        msg('5', '2026-03-01T10:09:40', bob, { t: 'uj' }),
        msg('6', '2026-03-01T10:09:50', bob),
        msg('7', '2026-03-02T09:00:00', bob),
      ],
    );
    const rows = layout(list).map((r) => (r.kind === 'message' ? `${r.key}${r.grouped ? 'g' : ''}` : r.kind));
    expect(rows).toEqual(['day', '1', '2g', '3', '4', 'system', '6', 'day', '7']);
  });

  it('finds the last own editable message for ↑', () => {
    const list = [msg('1', '2026-03-01T10:00:00'), msg('2', '2026-03-01T10:01:00', bob), msg('3', '2026-03-01T10:02:00', alice, { t: 'uj' })];
    expect(lastOwn(list, 'A')?._id).toBe('1');
    expect(lastOwn(list, 'C')).toBeUndefined();
  });
});

describe('unread line', () => {
  it('goes before the first message of someone else after the last read', () => {
    const list = [msg('a', '2026-01-01T10:00:00Z', bob), msg('b', '2026-01-01T10:01:00Z'), msg('c', '2026-01-01T10:02:00Z', bob)];
    const since = new Date('2026-01-01T10:00:30Z');
    expect(firstUnread(list, since, 'A')?._id).toBe('c');
    expect(firstUnread(list, undefined, 'A')).toBeUndefined();
    const rows = layout(list, 'c');
    expect(rows.map((r) => r.kind)).toEqual(['day', 'message', 'message', 'unread', 'message']);
  });
});

describe('quotes', () => {
  it('finds quoted messages and hides their links', () => {
    const text = '[ ](http://h/channel/general?msg=abc)[ ](http://h/channel/general?msg=def)\nmy answer [site](http://h/?msg=zzz)';
    expect(quotedIds(text)).toEqual(['abc', 'def']);
    expect(withoutQuotes(text)).toBe('my answer [site](http://h/?msg=zzz)');
    const link = (src: string, label: string) => ({ type: 'LINK', value: { src: { type: 'PLAIN_TEXT', value: src }, label: [{ type: 'PLAIN_TEXT', value: label }] } });
    const md = [
      { type: 'PARAGRAPH', value: [link('http://h/channel/general?msg=abc', ' ')] },
      { type: 'PARAGRAPH', value: [{ type: 'PLAIN_TEXT', value: 'my answer ' }, link('http://h/?msg=zzz', 'site')] },
    ];
    expect(mdWithoutQuotes(md)).toEqual([md[1]]);
  });

  it('hides only the links of quotes the server attached when told which', () => {
    const text = '[ ](http://h/channel/general?msg=abc)[ ](http://h/group/secret?msg=def)\nmy answer';
    expect(withoutQuotes(text, new Set(['abc']))).toBe('[ ](http://h/group/secret?msg=def)\nmy answer');
    expect(withoutQuotes(text, new Set())).toBe(text);
    const link = (src: string) => ({ type: 'LINK', value: { src: { type: 'PLAIN_TEXT', value: src }, label: [{ type: 'PLAIN_TEXT', value: ' ' }] } });
    const md = [{ type: 'PARAGRAPH', value: [link('http://h/channel/general?msg=abc'), link('http://h/group/secret?msg=def')] }];
    expect(mdWithoutQuotes(md, new Set(['abc']))).toEqual([{ type: 'PARAGRAPH', value: [link('http://h/group/secret?msg=def')] }]);
  });
});

describe('system messages', () => {
  it('says what happened, in the user\'s language', () => {
    const m = normalise({ _id: 's', rid: 'r', msg: 'news', ts: '2026-01-01T00:00:00.000Z', u: { _id: 'u', username: 'tess' }, t: 'user-added-room-to-team' });
    setLanguage('en');
    expect(systemText(m)).toBe('tess added #news to this team');
    setLanguage('de');
    expect(systemText(m)).toBe('tess hat #news zu diesem Team hinzugefügt');
    expect(systemText({ ...m, t: 'something-new', msg: '' })).toBe('something-new');
    setLanguage('en');
  });
});
