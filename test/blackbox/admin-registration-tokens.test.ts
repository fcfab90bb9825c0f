// Synapse's registration-token admin API (/_synapse/admin/v1/registration_tokens),
// as synadm's `regtok` commands call it, black-box: the admin check before
// anything, every validation error on its own (each changing nothing), the
// valid/invalid filter, pagination, notes, and the accounts a token registered.

import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { countRows, expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

const BASE = '/_synapse/admin/v1/registration_tokens';
const TOKEN_TABLES = ['registration_tokens', 'registration_token_reservations', 'registration_token_uses'];
const ALPHABET = /^[A-Za-z0-9._~-]+$/;
const HOUR = 3_600_000;

describe.each(backends())('registration-token admin API (%s)', (backend) => {
  let hs: TestServer;
  let admin: string;
  let user: string;

  /** An account made through shared-secret registration (registration itself needs a token here). */
  const sharedSecretAccount = async (username: string, isAdmin: boolean): Promise<string> => {
    const nonce = (await hs.request('GET', '/_synapse/admin/v1/register')).body.nonce as string;
    const parts = [nonce, username, DEFAULT_PASSWORD, isAdmin ? 'admin' : 'notadmin'];
    const mac = createHmac('sha1', 'test-shared-secret').update(parts.join('\x00'), 'utf8').digest('hex');
    const res = await hs.request('POST', '/_synapse/admin/v1/register', { body: { nonce, username, password: DEFAULT_PASSWORD, admin: isAdmin, mac } });
    expect(res.status).toBe(200);
    return res.body.access_token;
  };

  beforeAll(async () => {
    hs = await startServer(backend, { registration_requires_token: true });
    admin = await sharedSecretAccount('tokadmin', true);
    user = await sharedSecretAccount('tokuser', false);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const create = (body: unknown, token = admin) => hs.request('POST', `${BASE}/new`, { body, token });
  const get = (name: string, query = '', token = admin) => hs.request('GET', `${BASE}/${name}${query}`, { token });
  const put = (name: string, body: unknown, token = admin) => hs.request('PUT', `${BASE}/${name}`, { body, token });
  const del = (name: string, token = admin) => hs.request('DELETE', `${BASE}/${name}`, { token });
  const list = (query = '', token = admin) => hs.request('GET', `${BASE}${query}`, { token });
  const made = async (body: Record<string, unknown>) => {
    const res = await create(body);
    expect(res.status).toBe(200);
    return res.body as { token: string; uses_allowed: number | null; pending: number; completed: number; expiry_time: number | null; note: string | null };
  };
  /** Registers an account with the token in one request (the flow is the token stage alone). */
  const registerWith = (username: string, token: string) =>
    hs.request('POST', '/_matrix/client/v3/register', {
      body: { username, password: DEFAULT_PASSWORD, auth: { type: 'm.login.registration_token', token } },
    });
  /** A token row straight into the database, for states the API cannot make (expired, used). */
  const insertRow = (row: Record<string, unknown>) =>
    hs.db()('registration_tokens').insert({ uses_allowed: null, pending: 0, completed: 0, expiry_time: null, note: null, created_ts: Date.now(), ...row });
  /** Runs `act` (which must be refused) and checks that no token table changed. */
  const refused = (act: () => Promise<void>) => expectNoChange(hs, act, TOKEN_TABLES);

  describe('only server admins', () => {
    const routes = (name: string): [string, string, unknown][] => [
      ['GET', BASE, undefined],
      ['GET', `${BASE}?valid=true`, undefined],
      ['POST', `${BASE}/new`, { token: 'not-made' }],
      ['GET', `${BASE}/${name}`, undefined],
      ['PUT', `${BASE}/${name}`, { uses_allowed: 0 }],
      ['DELETE', `${BASE}/${name}`, undefined],
    ];

    it('without an access token: 401 M_MISSING_TOKEN everywhere, for existing and unknown tokens alike', async () => {
      await made({ token: 'guarded-1' });
      await refused(async () => {
        for (const name of ['guarded-1', 'no-such-token', 'not a token!']) {
          for (const [method, path, body] of routes(name)) {
            const res = await hs.request(method, path, { body });
            expect({ route: `${method} ${path}`, status: res.status, errcode: res.body?.errcode }).toEqual({ route: `${method} ${path}`, status: 401, errcode: 'M_MISSING_TOKEN' });
          }
        }
      });
    });

    it('with an unknown access token: 401 M_UNKNOWN_TOKEN', async () => {
      for (const [method, path, body] of routes('guarded-1')) expectMatrixError(await hs.request(method, path, { body, token: 'gha_nope' }), 401, 'M_UNKNOWN_TOKEN');
    });

    it('a user who is not an admin: 403 M_FORBIDDEN before any lookup (never a 404), nothing changed', async () => {
      await made({ token: 'guarded-2', uses_allowed: 5 });
      await refused(async () => {
        for (const name of ['guarded-2', 'no-such-token', 'not a token!']) {
          for (const [method, path, body] of routes(name)) {
            const res = await hs.request(method, path, { body, token: user });
            expect({ route: `${method} ${path}`, status: res.status, errcode: res.body?.errcode }).toEqual({ route: `${method} ${path}`, status: 403, errcode: 'M_FORBIDDEN' });
          }
        }
        // Even with a body the route would refuse.
        expectMatrixError(await create({ uses_allowed: 'lots' }, user), 403, 'M_FORBIDDEN');
      });
      expect((await get('guarded-2')).body.uses_allowed).toBe(5);
    });

    it('an admin flag taken away takes effect at the next request', async () => {
      const token = await sharedSecretAccount('tokadmin2', true);
      expect((await list('', token)).status).toBe(200);
      // Through the admin API: the server has cached the token it just served (issue 15).
      const demote = await hs.request('PUT', '/_synapse/admin/v1/users/@tokadmin2:test.local/admin', { token: admin, body: { admin: false } });
      expect(demote.status).toBe(200);
      expectMatrixError(await list('', token), 403, 'M_FORBIDDEN');
    });
  });

  describe('POST /new', () => {
    it('with an empty body: 16 random characters of the grammar, unlimited, no expiry, no note', async () => {
      const before = Date.now();
      const res = await create({});
      expect(res.status).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(['completed', 'expiry_time', 'note', 'pending', 'token', 'uses_allowed']);
      expect(res.body).toMatchObject({ uses_allowed: null, pending: 0, completed: 0, expiry_time: null, note: null });
      expect(res.body.token).toMatch(ALPHABET);
      expect(res.body.token).toHaveLength(16);
      const row = await hs.db()('registration_tokens').where({ token: res.body.token }).first();
      expect(Number(row.created_ts)).toBeGreaterThanOrEqual(before);
      expect(Number(row.created_ts)).toBeLessThanOrEqual(Date.now());
    });

    it('generates tokens of the length asked for (1 to 64), all different', async () => {
      for (const length of [1, 2, 17, 64]) {
        const t = await made({ length });
        expect(t.token).toHaveLength(length);
        expect(t.token).toMatch(ALPHABET);
      }
      const many = await Promise.all(Array.from({ length: 40 }, () => made({ length: 12 })));
      expect(new Set(many.map((t) => t.token)).size).toBe(40);
      // Over many draws the generator uses the whole alphabet, symbols included.
      const chars = new Set(many.map((t) => t.token).join(''));
      expect(chars.size).toBeGreaterThan(50);
    });

    it('takes a token of the admin\'s choosing, with uses, expiry and a note', async () => {
      const expiry = Date.now() + 24 * HOUR;
      const res = await create({ token: 'Chosen_token-1.~', uses_allowed: 3, expiry_time: expiry, note: 'for Alice (team blue)' });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ token: 'Chosen_token-1.~', uses_allowed: 3, pending: 0, completed: 0, expiry_time: expiry, note: 'for Alice (team blue)' });
      expect((await get('Chosen_token-1.~')).body).toEqual(res.body);
    });

    it('accepts what synadm sends: length and uses_allowed always, expiry_time null, with or without a token', async () => {
      const withToken = await create({ length: 16, uses_allowed: null, expiry_time: null, token: 'from-synadm' });
      expect(withToken.status).toBe(200);
      expect(withToken.body).toEqual({ token: 'from-synadm', uses_allowed: null, pending: 0, completed: 0, expiry_time: null, note: null });
      const generated = await create({ length: 20, uses_allowed: 2, expiry_time: null });
      expect(generated.status).toBe(200);
      expect(generated.body.token).toHaveLength(20);
      expect(generated.body.uses_allowed).toBe(2);
    });

    it('uses_allowed 0 makes a token that is used up from the start', async () => {
      const t = await made({ uses_allowed: 0 });
      expect(t.uses_allowed).toBe(0);
      const invalid = (await list('?valid=false&limit=1000')).body.registration_tokens.map((x: { token: string }) => x.token);
      expect(invalid).toContain(t.token);
    });

    it('a note of 1000 characters (code points) is fine, and null is no note', async () => {
      const note = '\u{1F600}'.repeat(1000);
      expect((await made({ note })).note).toBe(note);
      expect((await made({ note: null })).note).toBeNull();
    });

    it('an existing token is 400 M_INVALID_PARAM, and the existing one is untouched', async () => {
      await made({ token: 'taken', uses_allowed: 1, note: 'first' });
      await refused(async () => {
        const res = await create({ token: 'taken', uses_allowed: 9, note: 'second' });
        expectMatrixError(res, 400, 'M_INVALID_PARAM');
        expect(res.body.error).toContain('already exists');
      });
      expect((await get('taken')).body).toMatchObject({ uses_allowed: 1, note: 'first' });
    });

    const invalid = (what: string, bodies: unknown[]) =>
      it(`${what}: 400 M_INVALID_PARAM, nothing created`, async () => {
        await refused(async () => {
          for (const body of bodies) {
            const res = await create(body);
            expect({ body, status: res.status, errcode: res.body?.errcode }).toEqual({ body, status: 400, errcode: 'M_INVALID_PARAM' });
          }
        });
      });
    invalid('a token outside the grammar', [
      { token: '' },
      { token: 'x'.repeat(65) },
      { token: 'with space' },
      { token: 'slash/y' },
      { token: 'plus+' },
      { token: 'caf\u00e9' },
      { token: 'nul\u0000' },
      { token: 'new\n' },
    ]);
    invalid('a token "." or ".." (no URL could name it)', [{ token: '.' }, { token: '..' }]);
    invalid('a token that is not a string', [{ token: 5 }, { token: true }, { token: ['a'] }, { token: { a: 1 } }]);
    invalid('a length outside 1–64', [{ length: 0 }, { length: 65 }, { length: -1 }, { length: 1e300 }]);
    invalid('a length that is not an integer', [{ length: 1.5 }, { length: true }, { length: '16' }, { length: [16] }]);
    invalid('a bad length also next to a token', [{ token: 'with-length', length: 0 }, { token: 'with-length', length: 'x' }]);
    invalid('uses_allowed negative or too large', [{ uses_allowed: -1 }, { uses_allowed: 2 ** 31 }, { uses_allowed: 1e300 }]);
    invalid('uses_allowed that is not an integer', [{ uses_allowed: 1.5 }, { uses_allowed: true }, { uses_allowed: false }, { uses_allowed: '3' }, { uses_allowed: {} }]);
    invalid('expiry_time in the past', [{ expiry_time: Date.now() - 1000 }, { expiry_time: 0 }, { expiry_time: -1 }]);
    invalid('expiry_time that is not an integer', [
      { expiry_time: Date.now() + HOUR + 0.5 },
      { expiry_time: true },
      { expiry_time: String(Date.now() + HOUR) },
      { expiry_time: 1e300 },
    ]);
    invalid('a note too long, with a NUL, or not a string', [{ note: 'x'.repeat(1001) }, { note: 'a\u0000b' }, { note: 5 }, { note: false }, { note: ['x'] }]);

    it('a body that is not a JSON object is 400 M_BAD_JSON', async () => {
      await refused(async () => {
        for (const rawBody of ['null', '[]', '16', '"x"'])
          expectMatrixError(await hs.request('POST', `${BASE}/new`, { rawBody, token: admin, headers: { 'Content-Type': 'application/json' } }), 400, 'M_BAD_JSON');
      });
    });

    it('gives up with 400 M_INVALID_PARAM (not a 500) when every token of a length is taken', async () => {
      const singles = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_~-'];
      await hs.db()('registration_tokens').whereIn('token', singles).delete();
      for (const token of singles) await insertRow({ token });
      await refused(async () => {
        const res = await create({ length: 1 });
        expectMatrixError(res, 400, 'M_INVALID_PARAM');
        expect(res.body.error).toContain('longer');
      });
      expect(await countRows(hs, 'registration_tokens', { token: '.' })).toBe(0);
    });
  });

  describe('GET /{token}', () => {
    it('is Synapse\'s object plus note; no registrations unless asked', async () => {
      await made({ token: 'getme', uses_allowed: 2, note: 'n' });
      const res = await get('getme');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ token: 'getme', uses_allowed: 2, pending: 0, completed: 0, expiry_time: null, note: 'n' });
      expect((await get('getme', '?registrations=false')).body).toEqual(res.body);
      expect((await get('getme', '?registrations=true')).body).toEqual({ ...res.body, registrations: [] });
    });

    it('an unknown token, or a string no token can be, is 404 M_NOT_FOUND', async () => {
      for (const name of ['no-such-token', 'x'.repeat(65), 'a%20b', 'a%2Fb', '%00', 'caf%C3%A9', 'x'.repeat(5000)]) expectMatrixError(await get(name), 404, 'M_NOT_FOUND');
    });

    it('?registrations= other than true or false is 400 M_INVALID_PARAM', async () => {
      for (const q of ['?registrations=yes', '?registrations=1', '?registrations=', '?registrations=true&registrations=true'])
        expectMatrixError(await get('getme', q), 400, 'M_INVALID_PARAM');
    });

    it('a token named "new" can be read, changed and deleted like any other', async () => {
      await made({ token: 'new' });
      expect((await get('new')).body.token).toBe('new');
      expect((await put('new', { uses_allowed: 4 })).body.uses_allowed).toBe(4);
      expect((await del('new')).body).toEqual({});
      expectMatrixError(await get('new'), 404, 'M_NOT_FOUND');
    });
  });

  describe('PUT /{token}', () => {
    it('{} returns the token unchanged', async () => {
      await made({ token: 'putme', uses_allowed: 3, expiry_time: Date.now() + HOUR, note: 'keep' });
      const before = await hs.db()('registration_tokens').where({ token: 'putme' }).first();
      const res = await put('putme', {});
      expect(res.status).toBe(200);
      expect(res.body).toEqual((await get('putme')).body);
      expect(res.body).toMatchObject({ uses_allowed: 3, note: 'keep' });
      expect(await hs.db()('registration_tokens').where({ token: 'putme' }).first()).toEqual(before);
    });

    it('changes uses_allowed, expiry_time and note; null makes them unlimited, never, none', async () => {
      await made({ token: 'putme2', uses_allowed: 3 });
      const expiry = Date.now() + 2 * HOUR;
      let res = await put('putme2', { uses_allowed: 7, expiry_time: expiry, note: 'for Bob' });
      expect(res.body).toEqual({ token: 'putme2', uses_allowed: 7, pending: 0, completed: 0, expiry_time: expiry, note: 'for Bob' });
      // One field at a time leaves the others.
      res = await put('putme2', { uses_allowed: null });
      expect(res.body).toEqual({ token: 'putme2', uses_allowed: null, pending: 0, completed: 0, expiry_time: expiry, note: 'for Bob' });
      res = await put('putme2', { expiry_time: null });
      expect(res.body).toMatchObject({ uses_allowed: null, expiry_time: null, note: 'for Bob' });
      res = await put('putme2', { note: null });
      expect(res.body).toMatchObject({ uses_allowed: null, expiry_time: null, note: null });
      expect((await get('putme2')).body).toEqual(res.body);
    });

    it('ignores the fields only the server sets (token, pending, completed), as Synapse', async () => {
      await made({ token: 'putme3' });
      const res = await put('putme3', { token: 'renamed', pending: 5, completed: 9 });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ token: 'putme3', pending: 0, completed: 0 });
      expect(await countRows(hs, 'registration_tokens', { token: 'renamed' })).toBe(0);
    });

    it('refuses bad values with 400 M_INVALID_PARAM (an expiry in the past too), changing nothing', async () => {
      await made({ token: 'putme4', uses_allowed: 2, note: 'same' });
      const before = await hs.db()('registration_tokens').where({ token: 'putme4' }).first();
      for (const body of [
        { uses_allowed: -1 },
        { uses_allowed: 1.5 },
        { uses_allowed: true },
        { uses_allowed: '3' },
        { uses_allowed: 2 ** 31 },
        { expiry_time: Date.now() - 1 },
        { expiry_time: 1.5 },
        { expiry_time: false },
        { note: 'x'.repeat(1001) },
        { note: 3 },
        { note: 'a\u0000' },
        // A good field next to a bad one changes nothing either.
        { uses_allowed: 9, expiry_time: 'tomorrow' },
      ]) {
        const res = await put('putme4', body);
        expect({ body, status: res.status, errcode: res.body?.errcode }).toEqual({ body, status: 400, errcode: 'M_INVALID_PARAM' });
      }
      expect(await hs.db()('registration_tokens').where({ token: 'putme4' }).first()).toEqual(before);
    });

    it('a body that is not a JSON object is 400 M_BAD_JSON', async () => {
      for (const rawBody of ['null', '[]', '"x"']) expectMatrixError(await hs.request('PUT', `${BASE}/putme4`, { rawBody, token: admin, headers: { 'Content-Type': 'application/json' } }), 400, 'M_BAD_JSON');
    });

    it('an unknown token is 404 M_NOT_FOUND, and nothing is created; bad values are refused first (as Synapse)', async () => {
      await refused(async () => {
        expectMatrixError(await put('no-such-token', { uses_allowed: 1 }), 404, 'M_NOT_FOUND');
        expectMatrixError(await put('no-such-token', {}), 404, 'M_NOT_FOUND');
        expectMatrixError(await put('x'.repeat(65), { uses_allowed: 1 }), 404, 'M_NOT_FOUND');
        expectMatrixError(await put('bad%20name', {}), 404, 'M_NOT_FOUND');
        expectMatrixError(await put('no-such-token', { uses_allowed: -1 }), 400, 'M_INVALID_PARAM');
      });
    });
  });

  describe('DELETE /{token}', () => {
    it('deletes the token: {}, then 404; an unknown one is 404', async () => {
      await made({ token: 'delme' });
      const res = await del('delme');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({});
      expect(await countRows(hs, 'registration_tokens', { token: 'delme' })).toBe(0);
      expectMatrixError(await get('delme'), 404, 'M_NOT_FOUND');
      expectMatrixError(await del('delme'), 404, 'M_NOT_FOUND');
      expectMatrixError(await del('x'.repeat(65)), 404, 'M_NOT_FOUND');
    });

    it('has no request body: any valid JSON sent is ignored', async () => {
      for (const rawBody of ['null', '[]', '1', '"x"', '{"uses_allowed": -1}', '']) {
        await made({ token: 'delbody' });
        const res = await hs.request('DELETE', `${BASE}/delbody`, { rawBody, token: admin, headers: { 'Content-Type': 'application/json' } });
        expect({ rawBody, status: res.status, body: res.body }).toEqual({ rawBody, status: 200, body: {} });
      }
    });

    it('the token no longer registers anyone', async () => {
      await made({ token: 'gone-soon' });
      await del('gone-soon');
      await expectNoChange(hs, async () => {
        const res = await registerWith('tok_gone', 'gone-soon');
        expect(res.status).toBe(401);
        expect(res.body.errcode).toBe('M_UNAUTHORIZED');
      }, ['users', 'registration_token_uses']);
    });
  });

  describe('garbage', () => {
    const values: unknown[] = [null, true, false, 0, -1, 1.5, 1e308, -1e308, 12345678901234567890, 2 ** 53, '', 'x', '\u0000', 'é'.repeat(2000), [], [1], {}, { a: 1 }];
    const fields = ['token', 'length', 'uses_allowed', 'expiry_time', 'note'];

    it('never a 500, whatever value any field holds, on POST /new and PUT', async () => {
      await made({ token: 'garbage-target' });
      for (const field of fields) {
        for (const value of values) {
          for (const [method, path] of [['POST', `${BASE}/new`], ['PUT', `${BASE}/garbage-target`]] as const) {
            const res = await hs.request(method, path, { body: { [field]: value }, token: admin });
            const where = `${method} ${field}=${JSON.stringify(value)?.slice(0, 20)}`;
            expect([200, 400], where).toContain(res.status);
            if (res.status === 400) expect(res.body.errcode, where).toBe('M_INVALID_PARAM');
          }
        }
      }
      expect(hs.logs()).not.toContain('request failed');
    });
  });

  describe('the list', () => {
    beforeEach(async () => {
      await hs.db()('registration_tokens').delete();
    });
    const names = (res: { body: { registration_tokens: { token: string }[] } }) => res.body.registration_tokens.map((t) => t.token);

    it('is {registration_tokens: [...]} in Synapse\'s shape plus note, oldest first, without next_token when it all fits', async () => {
      expect((await list()).body).toEqual({ registration_tokens: [] });
      await made({ token: 'first', uses_allowed: 1, note: 'a' });
      await made({ token: 'second' });
      const res = await list();
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        registration_tokens: [
          { token: 'first', uses_allowed: 1, pending: 0, completed: 0, expiry_time: null, note: 'a' },
          { token: 'second', uses_allowed: null, pending: 0, completed: 0, expiry_time: null, note: null },
        ],
      });
    });

    it('?valid=true and ?valid=false split the tokens: expired, used up (pending uses count, uses_allowed 0) are invalid', async () => {
      const now = Date.now();
      await insertRow({ token: 'v-unlimited', created_ts: 1 });
      await insertRow({ token: 'v-future', expiry_time: now + HOUR, created_ts: 2 });
      await insertRow({ token: 'v-uses-left', uses_allowed: 3, completed: 1, pending: 1, created_ts: 3 });
      await insertRow({ token: 'i-expired', expiry_time: now - 1, created_ts: 4 });
      await insertRow({ token: 'i-zero', uses_allowed: 0, created_ts: 5 });
      await insertRow({ token: 'i-completed', uses_allowed: 2, completed: 2, created_ts: 6 });
      await insertRow({ token: 'i-pending', uses_allowed: 2, completed: 1, pending: 1, created_ts: 7 });
      await insertRow({ token: 'i-both', uses_allowed: 5, completed: 1, expiry_time: now - HOUR, created_ts: 8 });
      expect(names(await list('?valid=true'))).toEqual(['v-unlimited', 'v-future', 'v-uses-left']);
      expect(names(await list('?valid=false'))).toEqual(['i-expired', 'i-zero', 'i-completed', 'i-pending', 'i-both']);
      expect(names(await list())).toHaveLength(8);
    });

    it('?valid= other than true or false is 400 M_INVALID_PARAM', async () => {
      for (const q of ['?valid=yes', '?valid=1', '?valid=TRUE', '?valid=', '?valid=true&valid=false'])
        expectMatrixError(await list(q), 400, 'M_INVALID_PARAM');
    });

    it('pages with from and limit; next_token is the next page\'s from, absent on the last page', async () => {
      for (let i = 0; i < 7; i++) await insertRow({ token: `page-${i}`, created_ts: 1000 + i });
      const seen: string[] = [];
      let from: string | undefined = '0';
      let pages = 0;
      while (from !== undefined) {
        const res = await list(`?limit=3&from=${from}`);
        expect(res.status).toBe(200);
        expect(res.body.registration_tokens.length).toBeLessThanOrEqual(3);
        seen.push(...names(res));
        from = res.body.next_token;
        if (from !== undefined) expect(typeof from).toBe('string');
        pages++;
      }
      expect(pages).toBe(3);
      expect(seen).toEqual(Array.from({ length: 7 }, (_, i) => `page-${i}`));
      // An exact fit has no next page; past the end is empty.
      expect((await list('?limit=7')).body.next_token).toBeUndefined();
      expect((await list('?limit=6')).body.next_token).toBe('6');
      expect((await list('?from=50')).body).toEqual({ registration_tokens: [] });
      // The filter applies before paging.
      await insertRow({ token: 'page-expired', expiry_time: 1, created_ts: 1003 });
      expect(names(await list('?valid=false&limit=1'))).toEqual(['page-expired']);
      expect((await list('?valid=true&limit=1000')).body.registration_tokens).toHaveLength(7);
    });

    it('a bad from or limit is 400 M_INVALID_PARAM', async () => {
      for (const q of ['?limit=0', '?limit=1001', '?limit=-1', '?limit=abc', '?limit=1.5', '?limit=1e3', '?limit=', '?from=-1', '?from=abc', '?from=1.5', '?from=99999999999999999999', '?limit=2&limit=3'])
        expectMatrixError(await list(q), 400, 'M_INVALID_PARAM');
      expect((await list('?limit=1000&from=0')).status).toBe(200);
    });
  });

  describe('the accounts a token registered', () => {
    it('registration with the token counts a completed use and is listed with its time', async () => {
      await made({ token: 'audit-1', uses_allowed: 2, note: 'for the Smiths' });
      const t0 = Date.now();
      const first = await registerWith('smith_a', 'audit-1');
      expect(first.status).toBe(200);
      const second = await registerWith('smith_b', 'audit-1');
      expect(second.status).toBe(200);
      const t1 = Date.now();
      const res = await get('audit-1', '?registrations=true');
      expect(res.body).toMatchObject({ token: 'audit-1', uses_allowed: 2, pending: 0, completed: 2, note: 'for the Smiths' });
      expect(res.body.registrations.map((r: { user_id: string }) => r.user_id)).toEqual(['@smith_a:test.local', '@smith_b:test.local']);
      for (const r of res.body.registrations) {
        expect(Object.keys(r).sort()).toEqual(['registered_at', 'user_id']);
        expect(r.registered_at).toBeGreaterThanOrEqual(t0);
        expect(r.registered_at).toBeLessThanOrEqual(t1);
      }
      // Used up now: in the invalid list, and a third account is refused.
      expect((await list('?valid=false&limit=1000')).body.registration_tokens.map((t: { token: string }) => t.token)).toContain('audit-1');
      expect((await registerWith('smith_c', 'audit-1')).status).toBe(401);
    });

    it('the trail outlives the token, and a new token of the same name starts with none', async () => {
      await made({ token: 'audit-2' });
      expect((await registerWith('jones_a', 'audit-2')).status).toBe(200);
      await del('audit-2');
      expect(await countRows(hs, 'registration_token_uses', { token: 'audit-2', user_id: '@jones_a:test.local' })).toBe(1);
      // A clock tick between the old use and the new token.
      await new Promise((r) => setTimeout(r, 5));
      await made({ token: 'audit-2' });
      expect((await get('audit-2', '?registrations=true')).body.registrations).toEqual([]);
    });
  });
});
