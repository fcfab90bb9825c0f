// POST /user_directory/search, black-box: matching on localparts and display
// names, ranking, limits, who is left out, Synapse's user_directory options.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectMatrixError } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { startInProcessServer as startServer, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';
const SEARCH = `${V3}/user_directory/search`;

const ids = (res: { body: { results: { user_id: string }[] } }) => res.body.results.map((r) => r.user_id);
const id = (localpart: string) => `@${localpart}:test.local`;

describe.each(backends())('user directory (%s)', (backend) => {
  describe('search_all_users: true', () => {
    let hs: TestServer;
    let searcher: { user_id: string; access_token: string };
    beforeAll(async () => {
      hs = await startServer(backend, { allow_guest_access: true, user_directory: { search_all_users: true } });
      searcher = await hs.register('ud_searcher');
    });
    afterAll(async () => {
      await hs?.stop();
    });

    const search = (body: unknown, token = searcher.access_token) => hs.request('POST', SEARCH, { token, body });
    const setName = (u: { user_id: string; access_token: string }, displayname: string) =>
      hs.request('PUT', `${V3}/profile/${encodeURIComponent(u.user_id)}/displayname`, { token: u.access_token, body: { displayname } });

    it('finds users by localpart and by display name, ignoring case, best match first', async () => {
      const alice = await hs.register('ud_alice');
      expect((await setName(alice, 'Alice Liddell')).status).toBe(200);
      const alicia = await hs.register('ud_alicia');
      await hs.request('PUT', `${V3}/profile/${encodeURIComponent(alicia.user_id)}/avatar_url`, {
        token: alicia.access_token,
        body: { avatar_url: 'mxc://test.local/alicia' },
      });
      const bob = await hs.register('ud_bob');
      expect((await setName(bob, 'Bob, friend of Liddell')).status).toBe(200);

      const byLocalpart = await search({ search_term: 'ud_ali' });
      expect(byLocalpart.status).toBe(200);
      expect(byLocalpart.body.limited).toBe(false);
      expect(ids(byLocalpart).sort()).toEqual([alice.user_id, alicia.user_id].sort());
      // An exact localpart comes first.
      expect(ids(await search({ search_term: 'UD_ALICIA' }))[0]).toBe(alicia.user_id);
      // Shapes: display_name and avatar_url when set, left out when not.
      const one = (await search({ search_term: 'ud_alicia' })).body.results;
      expect(one).toEqual([{ user_id: alicia.user_id, display_name: 'ud_alicia', avatar_url: 'mxc://test.local/alicia' }]);
      // Display names, case-insensitively; every word must match.
      expect(ids(await search({ search_term: 'liddell' })).sort()).toEqual([alice.user_id, bob.user_id].sort());
      expect(ids(await search({ search_term: 'alice LIDDELL' }))).toEqual([alice.user_id]);
      expect(ids(await search({ search_term: '  Alice   Liddell ' }))).toEqual([alice.user_id]);
      // A display name equal to the search ranks before one that merely contains it.
      expect(ids(await search({ search_term: 'alice liddell' }))[0]).toBe(alice.user_id);
      // A user ID reads as its localpart.
      expect(ids(await search({ search_term: '@ud_bob:test.local' }))).toEqual([bob.user_id]);
      expect(ids(await search({ search_term: '@ud_bob' }))).toEqual([bob.user_id]);
      // A name change shows at once; a removed name leaves only the localpart to match.
      expect((await setName(bob, '')).status).toBe(200);
      expect(ids(await search({ search_term: 'liddell' }))).toEqual([alice.user_id]);
      expect((await search({ search_term: 'ud_bob' })).body.results).toEqual([{ user_id: bob.user_id }]);
    });

    it('LIKE wildcards in the search are plain characters', async () => {
      const u = await hs.register('ud_wild');
      expect((await setName(u, '100% real_name!')).status).toBe(200);
      expect(ids(await search({ search_term: '100%' }))).toEqual([u.user_id]);
      expect(ids(await search({ search_term: 'l_n' }))).toEqual([u.user_id]);
      expect(ids(await search({ search_term: '%' }))).toEqual([u.user_id]);
      expect(ids(await search({ search_term: 'real!' }))).toEqual([]);
      expect(ids(await search({ search_term: '_!' }))).toEqual([]);
      expect(ids(await search({ search_term: 'name!' }))).toEqual([u.user_id]);
      expect(ids(await search({ search_term: 'zzz_nobody_%' }))).toEqual([]);
      // Non-ASCII letters match as typed, on both databases.
      const e = await hs.register('ud_elodie');
      expect((await setName(e, 'Élodie Ærø')).status).toBe(200);
      expect(ids(await search({ search_term: 'Élodie' }))).toEqual([e.user_id]);
      expect(ids(await search({ search_term: 'ærø' })).length).toBeLessThanOrEqual(1);
    });

    it('leaves out the searcher, deactivated accounts, guests, unapproved, support and locked users', async () => {
      const names = ['ud_hide_ok', 'ud_hide_gone', 'ud_hide_unapproved', 'ud_hide_support', 'ud_hide_locked', 'ud_hide_lock_over'];
      const users = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await hs.register(n)] as const)));
      const db = hs.db();
      await db('users').where({ user_id: users.ud_hide_gone!.user_id }).update({ deactivated: true });
      await db('users').where({ user_id: users.ud_hide_unapproved!.user_id }).update({ approved: false });
      await db('users').where({ user_id: users.ud_hide_support!.user_id }).update({ user_type: 'support' });
      await db('users').where({ user_id: users.ud_hide_locked!.user_id }).update({ locked: true });
      // A lock whose end time has passed no longer holds.
      await db('users').where({ user_id: users.ud_hide_lock_over!.user_id }).update({ locked: true, locked_until: Date.now() - 1000 });
      const guest = await hs.request('POST', `${V3}/register?kind=guest`, { body: {} });
      await hs.request('PUT', `${V3}/profile/${encodeURIComponent(guest.body.user_id)}/displayname`, {
        token: guest.body.access_token,
        body: { displayname: 'ud_hide guest' },
      });
      const found = ids(await search({ search_term: 'ud_hide', limit: 50 }));
      expect(found.sort()).toEqual([users.ud_hide_ok!.user_id, users.ud_hide_lock_over!.user_id].sort());
      // The searcher never finds themselves.
      expect(ids(await search({ search_term: 'ud_hide_ok' }, users.ud_hide_ok!.access_token))).toEqual([]);
      expect(ids(await search({ search_term: 'ud_searcher' }))).toEqual([]);
    });

    it('limit: 10 by default, clamped to 0–50; limited says more matched', async () => {
      // Setup only: 55 accounts written straight into the database (registering them would take long).
      const now = Date.now();
      const rows = Array.from({ length: 55 }, (_, i) => `ud_many_${String(i).padStart(2, '0')}`);
      await hs.db()('users').insert(rows.map((lp) => ({ user_id: id(lp), localpart: lp, password_hash: null, is_admin: false, is_guest: false, deactivated: false, created_ts: now })));
      await hs.db()('profiles').insert(rows.map((lp) => ({ user_id: id(lp), displayname: lp, avatar_url: null })));
      const byDefault = await search({ search_term: 'ud_many' });
      expect(byDefault.body.results).toHaveLength(10);
      expect(byDefault.body.limited).toBe(true);
      // Ties are broken by user ID.
      expect(ids(byDefault)).toEqual(rows.slice(0, 10).map(id));
      const capped = await search({ search_term: 'ud_many', limit: 1000 });
      expect(capped.body.results).toHaveLength(50);
      expect(capped.body.limited).toBe(true);
      const zero = await search({ search_term: 'ud_many', limit: 0 });
      expect(zero.body).toEqual({ limited: true, results: [] });
      expect((await search({ search_term: 'ud_many', limit: -5 })).body).toEqual({ limited: true, results: [] });
      const exact = await search({ search_term: 'ud_many_5', limit: 5 });
      expect(exact.body).toEqual({ limited: false, results: rows.filter((r) => r.startsWith('ud_many_5')).map((r) => ({ user_id: id(r), display_name: r })) });
      const nullLimit = await search({ search_term: 'ud_many', limit: null });
      expect(nullLimit.body.results).toHaveLength(10);
    });

    it('a search without words finds nobody', async () => {
      for (const term of ['', '   ', '@', '@:test.local'])
        expect((await search({ search_term: term })).body, term).toEqual({ limited: false, results: [] });
    });

    it('refuses bad requests: 400 M_MISSING_PARAM, M_BAD_JSON; 401 without a token; 403 for guests', async () => {
      expectMatrixError(await search({}), 400, 'M_MISSING_PARAM');
      expectMatrixError(await search({ search_term: null }), 400, 'M_MISSING_PARAM');
      for (const body of [
        { search_term: 5 },
        { search_term: ['a'] },
        { search_term: 'a\u0000b' },
        { search_term: 'a'.repeat(1001) },
        { search_term: 'a', limit: '5' },
        { search_term: 'a', limit: 1.5 },
        { search_term: 'a', limit: true },
        [],
      ])
        expectMatrixError(await search(body), 400, 'M_BAD_JSON');
      expect((await search({ search_term: 'a'.repeat(1000) })).status).toBe(200);
      expectMatrixError(await hs.request('POST', SEARCH, { body: { search_term: 'a' } }), 401, 'M_MISSING_TOKEN');
      const guest = await hs.request('POST', `${V3}/register?kind=guest`, { body: {} });
      expectMatrixError(await search({ search_term: 'a' }, guest.body.access_token), 403, 'M_GUEST_ACCESS_FORBIDDEN');
    });
  });

  describe('show_locked_users: true', () => {
    let hs: TestServer;
    beforeAll(async () => {
      hs = await startServer(backend, { user_directory: { search_all_users: true, show_locked_users: true } });
    });
    afterAll(async () => {
      await hs?.stop();
    });

    it('locked accounts are found', async () => {
      const me = await hs.register('ud_show_me');
      const locked = await hs.register('ud_show_locked');
      await hs.db()('users').where({ user_id: locked.user_id }).update({ locked: true });
      const res = await hs.request('POST', SEARCH, { token: me.access_token, body: { search_term: 'ud_show' } });
      expect(ids(res)).toEqual([locked.user_id]);
    });
  });

  describe.each([
    ['the default (search_all_users: false, as Synapse: no rooms, so nobody)', {}],
    ['enabled: false', { user_directory: { enabled: false, search_all_users: true } }],
  ])('%s', (_label, overrides) => {
    let hs: TestServer;
    beforeAll(async () => {
      hs = await startServer(backend, overrides);
    });
    afterAll(async () => {
      await hs?.stop();
    });

    it('finds nobody, but still checks the request', async () => {
      const me = await hs.register('ud_off_me');
      await hs.register('ud_off_other');
      const res = await hs.request('POST', SEARCH, { token: me.access_token, body: { search_term: 'ud_off' } });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ limited: false, results: [] });
      expectMatrixError(await hs.request('POST', SEARCH, { token: me.access_token, body: {} }), 400, 'M_MISSING_PARAM');
      expectMatrixError(await hs.request('POST', SEARCH, { body: { search_term: 'a' } }), 401, 'M_MISSING_TOKEN');
    });
  });
});
