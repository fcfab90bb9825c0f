// Cross-cutting HTTP behaviour: unknown endpoints and methods, JSON bodies
// (malformed, not an object, too large, without Content-Type), the exact
// Content-Type of responses, CORS, OPTIONS, the forms of the access token,
// garbage input never causing a 500, and secrets never reaching the log.

import http from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';
const LIMIT = 4096;

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  body: any;
}

/**
 * A request through node:http, for what fetch cannot send: no Content-Type at
 * all, or a streamed (chunked) body without Content-Length.
 */
function rawRequest(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string | number>,
  chunks: (string | Buffer)[],
  delayMs = 0,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const u = new URL(path, base);
    let responded = false;
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers }, (res) => {
      responded = true;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let body: unknown;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode!, headers: res.headers, text, body });
      });
    });
    // The server may answer (413) and stop reading before the whole body is sent.
    req.on('error', (e) => {
      if (!responded) reject(e);
    });
    (async () => {
      for (const c of chunks) {
        if (req.destroyed) return;
        req.write(c);
        if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      }
      req.end();
    })().catch(() => {});
  });
}

async function counts(hs: TestServer) {
  const db = hs.db();
  const n = async (t: string) => Number((await db(t).count({ n: '*' }))[0]!.n);
  return { users: await n('users'), devices: await n('devices'), access: await n('access_tokens'), refresh: await n('refresh_tokens') };
}

function expectCors(headers: { get(name: string): string | null } | http.IncomingHttpHeaders) {
  const get = (name: string) =>
    'get' in headers && typeof headers.get === 'function' ? (headers as Headers).get(name) : ((headers as http.IncomingHttpHeaders)[name] as string | undefined) ?? null;
  expect(get('access-control-allow-origin')).toBe('*');
  const methods = (get('access-control-allow-methods') ?? '').split(',').map((m) => m.trim());
  for (const m of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS']) expect(methods).toContain(m);
  const allowed = (get('access-control-allow-headers') ?? '').split(',').map((h) => h.trim().toLowerCase());
  for (const h of ['authorization', 'content-type', 'x-requested-with']) expect(allowed).toContain(h);
}

describe.each(backends())('HTTP errors and cross-cutting behaviour (%s)', (backend) => {
  let hs: TestServer;
  /** Every password and token this file sends; none may appear in the server's log. */
  const secrets = new Set<string>([DEFAULT_PASSWORD]);

  beforeAll(async () => {
    hs = await startServer(backend, { max_request_body_size: '4K' });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  async function user(name: string) {
    const s = await hs.register(name);
    secrets.add(s.access_token);
    return s;
  }

  describe('unknown endpoints and methods', () => {
    it('an unknown endpoint is 404 M_UNRECOGNIZED, with JSON and CORS', async () => {
      for (const [method, path] of [
        ['GET', `${V3}/no_such_endpoint`],
        ['POST', `${V3}/no_such_endpoint`],
        ['GET', '/'],
        ['GET', '/_matrix/client/v3'],
        ['GET', '/_matrix/client/v99/login'],
        ['PUT', `${V3}/login/extra`],
        ['GET', '/_matrix/federation/v1/version'],
      ] as const) {
        const res = await hs.request(method, path);
        expect(res.status, `${method} ${path}`).toBe(404);
        expect(res.body.errcode).toBe('M_UNRECOGNIZED');
        expect(typeof res.body.error).toBe('string');
        expect(res.headers.get('content-type')).toBe('application/json');
        expectCors(res.headers);
      }
    });

    it('a known path with the wrong method is 405 M_UNRECOGNIZED and runs nothing', async () => {
      const s = await user('err_405');
      const before = await counts(hs);
      for (const [method, path] of [
        ['DELETE', `${V3}/login`],
        ['PUT', `${V3}/login`],
        ['GET', `${V3}/logout`],
        ['GET', `${V3}/logout/all`],
        ['PUT', `${V3}/register`],
        ['GET', `${V3}/refresh`],
        ['POST', '/_matrix/client/versions'],
        ['POST', `${V3}/account/whoami`],
        ['POST', `${V3}/devices/${s.device_id}`],
      ] as const) {
        const res = await hs.request(method, path, { token: s.access_token, body: method === 'GET' ? undefined : {} });
        expect(res.status, `${method} ${path}`).toBe(405);
        expect(res.body.errcode).toBe('M_UNRECOGNIZED');
        expect(res.headers.get('content-type')).toBe('application/json');
        expectCors(res.headers);
      }
      // GET /logout did not log out.
      expect((await hs.request('GET', `${V3}/account/whoami`, { token: s.access_token })).status).toBe(200);
      expect(await counts(hs)).toEqual(before);
    });
  });

  describe('request bodies', () => {
    it('invalid JSON is 400 M_NOT_JSON and changes nothing', async () => {
      const before = await counts(hs);
      for (const raw of ['{', '{"username": "err_notjson"', 'not json', "{'a': 1}", '{"a":1,}', '{"a":1}{"b":2}', '{"a": NaN}', ' ']) {
        for (const path of [`${V3}/register`, `${V3}/login`]) {
          const res = await hs.request('POST', path, { rawBody: raw, headers: { 'Content-Type': 'application/json' } });
          expect(res.status, `${path} ${raw}`).toBe(400);
          expect(res.body.errcode, raw).toBe('M_NOT_JSON');
          expect(res.headers.get('content-type')).toBe('application/json');
          expectCors(res.headers);
        }
      }
      expect(await counts(hs)).toEqual(before);
    });

    it('JSON that is not an object is 400 M_BAD_JSON and changes nothing', async () => {
      const before = await counts(hs);
      const values = ['[]', '[{"username":"err_arr"}]', '1', '-2.5', '"a string"', 'true', 'false', 'null'];
      for (const raw of values) {
        for (const path of [`${V3}/register`, `${V3}/login`, `${V3}/refresh`]) {
          const res = await hs.request('POST', path, { rawBody: raw, headers: { 'Content-Type': 'application/json' } });
          expect(res.status, `${path} ${raw}`).toBe(400);
          expect(res.body.errcode, `${path} ${raw}`).toBe('M_BAD_JSON');
        }
      }
      expect(await counts(hs)).toEqual(before);
    });

    it('an empty body reads as an empty object', async () => {
      // {} lacks refresh_token: M_MISSING_PARAM, not M_NOT_JSON.
      for (const path of [`${V3}/refresh`, '/_matrix/client/v1/refresh']) {
        const res = await hs.request('POST', path, { rawBody: '' });
        expect(res.status).toBe(400);
        expect(res.body.errcode).toBe('M_MISSING_PARAM');
        const chunked = await rawRequest(hs.url, 'POST', path, {}, []);
        expect(chunked.status).toBe(400);
        expect(chunked.body.errcode).toBe('M_MISSING_PARAM');
      }
      // POST /logout needs no body at all.
      const s = await user('err_emptybody');
      const out = await rawRequest(hs.url, 'POST', `${V3}/logout`, { Authorization: `Bearer ${s.access_token}`, 'Content-Length': 0 }, []);
      expect(out.status).toBe(200);
      expect(out.body).toEqual({});
    });

    it('a body without Content-Type (or with another one) is still parsed as JSON', async () => {
      const body = JSON.stringify({ username: 'err_noctype', password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' } });
      const res = await rawRequest(hs.url, 'POST', `${V3}/register`, { 'Content-Length': Buffer.byteLength(body) }, [body]);
      expect(res.status).toBe(200);
      expect(res.body.user_id).toBe('@err_noctype:test.local');
      secrets.add(res.body.access_token);
      expect(await hs.db()('users').where({ user_id: '@err_noctype:test.local' })).toHaveLength(1);

      // Chunked, without Content-Type either.
      const login = JSON.stringify({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'err_noctype' }, password: DEFAULT_PASSWORD });
      const chunked = await rawRequest(hs.url, 'POST', `${V3}/login`, {}, [login.slice(0, 10), login.slice(10)]);
      expect(chunked.status).toBe(200);
      expect(chunked.body.user_id).toBe('@err_noctype:test.local');
      secrets.add(chunked.body.access_token);

      for (const ctype of ['text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream', 'multipart/form-data; boundary=x']) {
        const r = await hs.request('POST', `${V3}/login`, { rawBody: login, headers: { 'Content-Type': ctype } });
        expect(r.status, ctype).toBe(200);
        expect(r.body.user_id).toBe('@err_noctype:test.local');
        secrets.add(r.body.access_token);
      }
    });

    it('a body over max_request_body_size is 413 M_TOO_LARGE (Content-Length) and changes nothing', async () => {
      const before = await counts(hs);
      const big = JSON.stringify({ username: 'err_big', password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' }, pad: 'x'.repeat(LIMIT) });
      expect(Buffer.byteLength(big)).toBeGreaterThan(LIMIT);
      const res = await hs.request('POST', `${V3}/register`, { rawBody: big, headers: { 'Content-Type': 'application/json' } });
      expect(res.status).toBe(413);
      expect(res.body.errcode).toBe('M_TOO_LARGE');
      expect(res.headers.get('content-type')).toBe('application/json');
      expectCors(res.headers);
      // Declared too large is refused from the header alone, whatever the endpoint.
      const unknown = await hs.request('POST', `${V3}/no_such_endpoint`, { rawBody: big });
      expect(unknown.status).toBe(413);
      expect(unknown.body.errcode).toBe('M_TOO_LARGE');
      expect(await counts(hs)).toEqual(before);
      expect(await hs.db()('users').where({ localpart: 'err_big' })).toHaveLength(0);

      // Just under the limit is read normally.
      const fits = JSON.stringify({ username: 'err_fits', password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' }, pad: '' });
      const padded = fits.replace('"pad":""', `"pad":"${'x'.repeat(LIMIT - Buffer.byteLength(fits))}"`);
      expect(Buffer.byteLength(padded)).toBe(LIMIT);
      const ok = await hs.request('POST', `${V3}/register`, { rawBody: padded, headers: { 'Content-Type': 'application/json' } });
      expect(ok.status).toBe(200);
      secrets.add(ok.body.access_token);
    });

    it('a gzip-encoded body is read; one that inflates past the limit is 413 M_TOO_LARGE', async () => {
      await user('err_gzip');
      const login = JSON.stringify({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'err_gzip' }, password: DEFAULT_PASSWORD });
      const ok = await hs.request('POST', `${V3}/login`, { rawBody: gzipSync(login) as unknown as string, headers: { 'Content-Encoding': 'gzip' } });
      expect(ok.status).toBe(200);
      expect(ok.body.user_id).toBe('@err_gzip:test.local');
      secrets.add(ok.body.access_token);

      const before = await counts(hs);
      const bomb = gzipSync(JSON.stringify({ username: 'err_gzipbomb', password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' }, pad: 'z'.repeat(1_000_000) }));
      expect(bomb.length).toBeLessThan(LIMIT);
      const res = await hs.request('POST', `${V3}/register`, { rawBody: bomb as unknown as string, headers: { 'Content-Encoding': 'gzip' } });
      expect(res.status).toBe(413);
      expect(res.body.errcode).toBe('M_TOO_LARGE');
      expect(await counts(hs)).toEqual(before);
    });

    it('a chunked body over max_request_body_size is 413 M_TOO_LARGE and changes nothing', async () => {
      const before = await counts(hs);
      const big = JSON.stringify({ username: 'err_bigchunk', password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' }, pad: 'y'.repeat(3 * LIMIT) });
      const chunks: string[] = [];
      for (let i = 0; i < big.length; i += 512) chunks.push(big.slice(i, i + 512));
      const res = await rawRequest(hs.url, 'POST', `${V3}/register`, { 'Content-Type': 'application/json' }, chunks, 2);
      expect(res.headers['content-length']).not.toBe('0');
      expect(res.status).toBe(413);
      expect(res.body.errcode).toBe('M_TOO_LARGE');
      expect(res.headers['content-type']).toBe('application/json');
      expect(res.headers['access-control-allow-origin']).toBe('*');
      expect(await counts(hs)).toEqual(before);
      expect(await hs.db()('users').where({ localpart: 'err_bigchunk' })).toHaveLength(0);

      // The server still serves requests afterwards.
      expect((await hs.request('GET', '/_matrix/client/versions')).status).toBe(200);
    });
  });

  describe('headers', () => {
    it('every JSON response has Content-Type exactly application/json', async () => {
      const s = await user('err_ctype');
      const responses = [
        await hs.request('GET', '/_matrix/client/versions'),
        await hs.request('GET', `${V3}/login`),
        await hs.request('GET', `${V3}/account/whoami`, { token: s.access_token }),
        await hs.request('GET', `${V3}/account/whoami`),
        await hs.request('GET', `${V3}/account/whoami`, { token: 'gha_unknown' }),
        await hs.request('POST', `${V3}/login`, { body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'err_ctype' }, password: 'wrong' } }),
        await hs.request('POST', `${V3}/register`, { body: {} }),
        await hs.request('GET', `${V3}/nope`),
        await hs.request('DELETE', `${V3}/login`),
        await hs.request('GET', '/.well-known/matrix/client'),
      ];
      for (const res of responses) {
        expect(res.headers.get('content-type')).toBe('application/json');
        expect(typeof res.body).toBe('object');
        expectCors(res.headers);
      }
      expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 401, 401, 403, 401, 404, 405, 404]);
    });

    it('OPTIONS on any path is 204 with CORS headers and runs no endpoint logic', async () => {
      const before = await counts(hs);
      const s = await user('err_options');
      const afterRegister = await counts(hs);
      expect(afterRegister.users).toBe(before.users + 1);
      for (const path of [
        `${V3}/register`,
        `${V3}/login`,
        `${V3}/logout`,
        `${V3}/logout/all`,
        `${V3}/account/deactivate`,
        `${V3}/no_such_endpoint`,
        '/anything/at/all',
      ]) {
        const res = await hs.request('OPTIONS', path, {
          token: s.access_token,
          body: { username: 'err_options2', password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' } },
          headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST' },
        });
        expect(res.status, path).toBe(204);
        expect(res.text).toBe('');
        expectCors(res.headers);
      }
      // Nothing registered, nobody logged out.
      expect(await counts(hs)).toEqual(afterRegister);
      expect(await hs.db()('users').where({ localpart: 'err_options2' })).toHaveLength(0);
      expect((await hs.request('GET', `${V3}/account/whoami`, { token: s.access_token })).status).toBe(200);
    });
  });

  describe('access token forms', () => {
    it('Authorization: Bearer and ?access_token= both work', async () => {
      const s = await user('err_bearer');
      const header = await hs.request('GET', `${V3}/account/whoami`, { headers: { Authorization: `Bearer ${s.access_token}` } });
      expect(header.status).toBe(200);
      expect(header.body.user_id).toBe(s.user_id);
      const query = await hs.request('GET', `${V3}/account/whoami?access_token=${encodeURIComponent(s.access_token)}`);
      expect(query.status).toBe(200);
      expect(query.body.user_id).toBe(s.user_id);
      // An unknown token in the query string is rejected like one in the header.
      const bad = await hs.request('GET', `${V3}/account/whoami?access_token=gha_querynotvalid`);
      secrets.add('gha_querynotvalid');
      expect(bad.status).toBe(401);
      expect(bad.body.errcode).toBe('M_UNKNOWN_TOKEN');
    });

    it('a malformed Authorization header is 401 M_MISSING_TOKEN, even with a valid query token', async () => {
      const s = await user('err_malformed');
      for (const value of ['Basic dXNlcjpwYXNz', 'Bearer', 'Bearer ', `Bearer ${s.access_token} extra`, s.access_token, `Token ${s.access_token}`, 'x'.repeat(5000)]) {
        const res = await hs.request('GET', `${V3}/account/whoami`, { headers: { Authorization: value } });
        expect(res.status, value.slice(0, 40)).toBe(401);
        expect(res.body.errcode).toBe('M_MISSING_TOKEN');
        expectCors(res.headers);
        // The header is authoritative: a good query token does not rescue a bad header.
        const both = await hs.request('GET', `${V3}/account/whoami?access_token=${s.access_token}`, { headers: { Authorization: value } });
        expect(both.status).toBe(401);
      }
      // No token at all.
      const none = await hs.request('GET', `${V3}/account/whoami`);
      expect(none.status).toBe(401);
      expect(none.body.errcode).toBe('M_MISSING_TOKEN');
      // An unknown bearer token.
      const unknown = await hs.request('GET', `${V3}/account/whoami`, { token: 'gha_thisdoesnotexist' });
      expect(unknown.status).toBe(401);
      expect(unknown.body.errcode).toBe('M_UNKNOWN_TOKEN');
      expect(unknown.body.soft_logout).toBe(false);
    });
  });

  describe('garbage input', () => {
    const deep = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
    const rawGarbage: (string | Buffer)[] = [
      '',
      '{',
      '}',
      '[',
      'nul',
      '[]',
      '[1,"two",{}]',
      '0',
      '1e999',
      '"str"',
      'null',
      'true',
      '{"a":1}{"b":2}',
      '\u0000',
      '{"a":"\u0000"}',
      '{"__proto__":{"polluted":1}}',
      '{"constructor":{"prototype":{"polluted":1}}}',
      deep(3000),
      '['.repeat(1500) + ']'.repeat(1500),
      Buffer.from([0xff, 0xfe, 0x7b, 0x22, 0x61, 0x22, 0x3a, 0x31, 0x7d]),
      Buffer.from('{"a":"\xff\xfe"}', 'latin1'),
    ];
    const objectGarbage: Record<string, unknown>[] = [
      {},
      { type: 123 },
      { type: 'm.login.password', identifier: 'x' },
      { type: 'm.login.password', identifier: { type: 'm.id.user', user: 123 }, password: 'x' },
      { type: 'm.login.password', identifier: { type: 'm.id.thirdparty', medium: 1, address: [] }, password: 'x' },
      { type: 'm.login.password', identifier: { type: 'm.id.phone', country: {}, phone: null }, password: 'x' },
      { type: 'm.login.password', identifier: { type: 'x.unknown' }, password: 'x' },
      { type: 'm.login.password', user: ['a'], password: 'x' },
      { type: 'm.login.password', user: 'err_garbage', password: {} },
      { type: 'm.login.token', token: 5 },
      { username: {}, password: [] },
      { username: 'a'.repeat(1000), password: 'x' },
      { username: '\u0000', password: 'x' },
      { username: '@x:y', password: 'p', auth: 'x' },
      { auth: [] },
      { auth: { type: 123 } },
      { auth: { type: 'm.login.password', session: 123 } },
      { auth: { type: 'm.login.password', identifier: 'x', password: 1 } },
      { auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: {} }, password: 'x' } },
      { auth: { type: 'm.login.dummy', session: {} } },
      { auth: { session: 'no-such-session' } },
      { auth: { type: 'm.login.recaptcha', response: 1 } },
      { new_password: 5, logout_devices: 'yes' },
      { new_password: 'x'.repeat(3000) },
      { erase: 'no', id_server: 5 },
      { devices: 'x' },
      { devices: [1, 2] },
      { devices: [null] },
      { devices: Array.from({ length: 300 }, (_, i) => `D${i}`).slice(0, 300) },
      { display_name: 5 },
      { display_name: { a: 1 } },
      { refresh_token: 5 },
      { refresh_token: {} },
      { device_id: 5 },
      { device_id: 'x'.repeat(300) },
      { initial_device_display_name: [] },
      { inhibit_login: 'x', refresh_token: 'y' },
      { nonce: 5, username: [], password: {}, mac: 1, admin: 'x' },
      { nonce: 'unknown', username: 'x', password: 'y', mac: 'zz' },
      { a: -1e308, b: 1e308, c: 12345678901234567890, d: '\ud800' },
    ];

    it('never answers 500 to garbage on any POST endpoint, and answers JSON with an errcode', async () => {
      const victim = await user('err_garbage');
      let token = victim.access_token;
      const endpoints: [string, string, boolean][] = [
        ['POST', `${V3}/register`, false],
        ['POST', `${V3}/login`, false],
        ['POST', `${V3}/logout`, true],
        ['POST', `${V3}/refresh`, false],
        ['POST', `${V3}/account/password`, true],
        ['POST', `${V3}/account/deactivate`, true],
        ['POST', `${V3}/delete_devices`, true],
        ['PUT', `${V3}/devices/${victim.device_id}`, true],
        ['PUT', `${V3}/devices/NO_SUCH_DEVICE`, true],
        ['POST', '/_synapse/admin/v1/register', false],
        ['POST', `${V3}/register?kind=guest`, false],
        ['POST', `${V3}/register?kind=nonsense`, false],
      ];
      const usersBefore = await hs.db()('users').count({ n: '*' });
      const bodies: { raw: string | Buffer; label: string }[] = [
        ...rawGarbage.map((raw) => ({ raw, label: Buffer.isBuffer(raw) ? `bytes ${raw.toString('hex')}` : raw.slice(0, 40) })),
        ...objectGarbage.map((o) => ({ raw: JSON.stringify(o), label: JSON.stringify(o).slice(0, 60) })),
      ];
      let okCount = 0;
      for (const [method, path, authed] of endpoints) {
        for (const { raw, label } of bodies) {
          const res = await hs.request(method, path, {
            rawBody: raw as string,
            headers: { 'Content-Type': 'application/json' },
            token: authed ? token : undefined,
          });
          const where = `${method} ${path} ${label}`;
          expect(res.status, where).toBeLessThan(500);
          expect(res.headers.get('content-type'), where).toBe('application/json');
          expect(res.body, where).toBeTypeOf('object');
          if (res.status === 200) {
            okCount++;
            // Only endpoints that ignore or tolerate the body may succeed.
            expect([`${V3}/logout`, `${V3}/devices/${victim.device_id}`], where).toContain(path);
            if (path === `${V3}/logout`) {
              // Signed out: sign in again for the next body.
              token = (await hs.login('err_garbage')).access_token;
              secrets.add(token);
            }
          } else if (res.status === 401 && res.body.flows) {
            // A user-interactive auth challenge.
            expect(Array.isArray(res.body.flows), where).toBe(true);
          } else {
            expect(typeof res.body.errcode, where).toBe('string');
            expect(res.body.errcode, where).toMatch(/^M_[A-Z_]+$/);
          }
        }
      }
      expect(okCount).toBeGreaterThan(0);
      // Garbage made no account and deactivated nobody.
      expect(await hs.db()('users').count({ n: '*' })).toEqual(usersBefore);
      const row = await hs.db()('users').where({ user_id: victim.user_id }).first();
      expect(!!row.deactivated).toBe(false);
      expect((await hs.request('GET', `${V3}/account/whoami`, { token })).status).toBe(200);
      expect(hs.logs()).not.toContain('request failed');
    });

    it('never answers 500 to odd Content-Encoding or Content-Type headers', async () => {
      const body = JSON.stringify({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'nobody' }, password: 'x' });
      const odd: Record<string, string>[] = [
        { 'Content-Encoding': 'gzip' },
        { 'Content-Encoding': 'deflate' },
        { 'Content-Encoding': 'br' },
        { 'Content-Encoding': 'made-up' },
        { 'Content-Type': 'application/json; charset=latin-99' },
        { 'Content-Type': '???' },
      ];
      for (const headers of odd) {
        const res = await hs.request('POST', `${V3}/login`, { rawBody: body, headers });
        expect(res.status, JSON.stringify(headers)).toBeGreaterThanOrEqual(400);
        expect(res.status, JSON.stringify(headers)).toBeLessThan(500);
        expect(typeof res.body.errcode).toBe('string');
      }
      // A truncated body is not a 500 either.
      const bad = await rawRequest(hs.url, 'POST', `${V3}/login`, { 'Content-Length': 5 }, ['{"a":']);
      expect(bad.status).toBe(400);
      expect(bad.body.errcode).toBe('M_NOT_JSON');
      expect(hs.logs()).not.toContain('request failed');
    });
  });

  describe('logging', () => {
    it('the log never holds a password or an access token that was sent', async () => {
      const password = 'log-secret-Pa55word-e7c1b9';
      secrets.add(password);
      const reg = await hs.request('POST', `${V3}/register`, {
        body: { username: 'err_logsecret', password, auth: { type: 'm.login.dummy' }, refresh_token: true },
      });
      expect(reg.status).toBe(200);
      secrets.add(reg.body.access_token);
      secrets.add(reg.body.refresh_token);
      const login = await hs.login('err_logsecret', password);
      secrets.add(login.access_token);
      // Wrong password, wrong token, token in the query string, refresh token in a body.
      const wrongPassword = 'log-wrong-Pa55word-4d2a';
      secrets.add(wrongPassword);
      expect((await hs.request('POST', `${V3}/login`, { body: { type: 'm.login.password', user: 'err_logsecret', password: wrongPassword } })).status).toBe(403);
      expect((await hs.request('GET', `${V3}/account/whoami?access_token=${login.access_token}`)).status).toBe(200);
      expect((await hs.request('GET', `${V3}/account/whoami?access_token=gha_logwrongquery&x=1`)).status).toBe(401);
      secrets.add('gha_logwrongquery');
      expect((await hs.request('GET', `${V3}/account/whoami`, { token: 'gha_logwrongheader' })).status).toBe(401);
      secrets.add('gha_logwrongheader');
      expect((await hs.request('POST', `${V3}/refresh`, { body: { refresh_token: reg.body.refresh_token } })).status).toBe(200);
      const newPassword = 'log-new-Pa55word-88ab';
      secrets.add(newPassword);
      const change = await hs.request('POST', `${V3}/account/password`, {
        token: login.access_token,
        body: { new_password: newPassword, logout_devices: false, auth: { type: 'm.login.password', user: 'err_logsecret', password } },
      });
      expect(change.status).toBe(200);
      // Bodies that fail to parse are not echoed either.
      const broken = `{"password": "${password}"`;
      expect((await hs.request('POST', `${V3}/login`, { rawBody: broken })).status).toBe(400);

      await new Promise((r) => setTimeout(r, 300));
      const logs = hs.logs();
      // The requests were logged (so the check below is not vacuous), and the query-token warning too.
      expect(logs).toContain('"path":"/_matrix/client/v3/account/whoami"');
      expect(logs).toContain('"path":"/_matrix/client/v3/refresh"');
      expect(logs).toContain('query string');
      for (const secret of secrets) expect(logs.includes(secret), `log contains ${secret.slice(0, 8)}…`).toBe(false);
    });
  });
});
