// Edges of the HTTP layer that cut across every endpoint:
// - request bodies that are not UTF-8 (or hold lone surrogate escapes) are
//   refused before any handler, so two byte strings never read as the same text;
// - paths and query strings whose percent escapes are not UTF-8 are refused;
// - endpoints whose request has no body accept any valid JSON body (Nheko's
//   logout sends `null`), while every endpoint that reads one wants an object
//   (the route table is taken from docs/endpoints.md, so a new route must be
//   listed here);
// - a body over the size limit gets its 413 even with `Connection: close`
//   (the rest of the body is drained, within bounds).

import { readFileSync } from 'node:fs';
import net from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';
const LIMIT = 4096;
/** The drain bounds of src/http/middleware/drain.ts. */
const DRAIN_MAX_BYTES = 8 * 1024 * 1024;
const DRAIN_MAX_MS = 5_000;

interface Reply {
  status: number;
  body: any;
}

/** Sends raw bytes as the body (fetch passes them through untouched). */
async function sendBytes(hs: TestServer, method: string, path: string, body: Buffer | string | undefined, token?: string, headers: Record<string, string> = {}): Promise<Reply> {
  const h: Record<string, string> = { 'Content-Type': 'application/json', ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  const res = await fetch(hs.url + path, { method, headers: h, body: typeof body === 'string' || body === undefined ? body : new Uint8Array(body) });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed };
}

const bytes = (...parts: (string | number[] | Buffer)[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

// --------------------------------------------------------------------------
// The route table, from docs/endpoints.md
// --------------------------------------------------------------------------

type Route = `${string} ${string}`;
/** Served routes that read a JSON body (so any other JSON value is 400 M_BAD_JSON). */
const BODY_ROUTES: Route[] = [
  `POST ${V3}/register`,
  `POST ${V3}/login`,
  `POST ${V3}/refresh`,
  'POST /_matrix/client/v1/refresh',
  'POST /_matrix/client/v1/login/get_token',
  'POST /_matrix/client/unstable/org.matrix.msc3882/login/token',
  `POST ${V3}/account/password`,
  `POST ${V3}/account/deactivate`,
  `POST ${V3}/account/3pid`,
  `POST ${V3}/account/3pid/add`,
  `POST ${V3}/account/3pid/bind`,
  `POST ${V3}/account/3pid/delete`,
  `POST ${V3}/account/3pid/unbind`,
  `PUT ${V3}/devices/{deviceId}`,
  `DELETE ${V3}/devices/{deviceId}`,
  `POST ${V3}/delete_devices`,
  'POST /_synapse/admin/v1/register',
  'POST /_synapse/admin/v1/registration_tokens/new',
  'PUT /_synapse/admin/v1/registration_tokens/{token}',
  'PUT /_matrix/client/v1/admin/suspend/{userId}',
  'PUT /_matrix/client/unstable/uk.timedout.msc4323/admin/suspend/{userId}',
  'PUT /_matrix/client/v1/admin/lock/{userId}',
  'PUT /_matrix/client/unstable/uk.timedout.msc4323/admin/lock/{userId}',
  'PUT /_synapse/admin/v1/suspend/{userId}',
  `PUT ${V3}/profile/{userId}/{keyName}`,
  `POST ${V3}/user_directory/search`,
  'PUT /_synapse/admin/v2/users/{userId}',
  'POST /_synapse/admin/v1/deactivate/{userId}',
  'POST /_synapse/admin/v1/reset_password/{userId}',
  'PUT /_synapse/admin/v1/users/{userId}/admin',
  `POST ${V3}/user/{userId}/filter`,
  `PUT ${V3}/user/{userId}/account_data/{type}`,
  `PUT ${V3}/user/{userId}/rooms/{roomId}/account_data/{type}`,
  `PUT ${V3}/sendToDevice/{eventType}/{txnId}`,
  `PUT ${V3}/presence/{userId}/status`,
  `PUT ${V3}/pushrules/global/{kind}/{ruleId}`,
  `PUT ${V3}/pushrules/global/{kind}/{ruleId}/enabled`,
  `PUT ${V3}/pushrules/global/{kind}/{ruleId}/actions`,
  `POST ${V3}/pushers/set`,
  `POST ${V3}/publicRooms`,
  `POST ${V3}/user/{userId}/openid/request_token`,
  `POST ${V3}/keys/upload`,
  `POST ${V3}/keys/query`,
  `POST ${V3}/keys/claim`,
  `POST ${V3}/keys/device_signing/upload`,
  `POST ${V3}/keys/signatures/upload`,
  `POST ${V3}/room_keys/version`,
  `PUT ${V3}/room_keys/version/{version}`,
  `PUT ${V3}/room_keys/keys`,
  `PUT ${V3}/room_keys/keys/{roomId}`,
  `PUT ${V3}/room_keys/keys/{roomId}/{sessionId}`,
  `POST ${V3}/register/email/requestToken`,
  `POST ${V3}/account/3pid/email/requestToken`,
  `POST ${V3}/account/password/email/requestToken`,
  `POST ${V3}/register/msisdn/requestToken`,
  `POST ${V3}/account/3pid/msisdn/requestToken`,
  `POST ${V3}/account/password/msisdn/requestToken`,
  'POST /_gatehouse/client/email/submit_token',
];
/** Served routes whose request has no body: they ignore any valid JSON. */
const NO_BODY_ROUTES: Route[] = [
  `POST ${V3}/logout`,
  `POST ${V3}/logout/all`,
  'DELETE /_synapse/admin/v1/registration_tokens/{token}',
  `DELETE ${V3}/profile/{userId}/{keyName}`,
  'DELETE /_synapse/admin/v2/users/{userId}/devices/{deviceId}',
  `DELETE ${V3}/pushrules/global/{kind}/{ruleId}`,
  `DELETE ${V3}/room_keys/version/{version}`,
  `DELETE ${V3}/room_keys/keys`,
  `DELETE ${V3}/room_keys/keys/{roomId}`,
  `DELETE ${V3}/room_keys/keys/{roomId}/{sessionId}`,
];
/**
 * The path with its parameters filled in (a registration token need not exist: these requests are refused
 * before any lookup), for the signed-in user (`userId`: their own profile, whose display name they may set).
 * The Synapse admin API's user routes name a user that does not exist, so that nothing of the caller's changes.
 */
const fill = (path: string, deviceId: string, userId: string) =>
  path
    .replace('{deviceId}', deviceId)
    .replace('{token}', 'edge-token')
    .replace('{userId}', encodeURIComponent(path.startsWith('/_synapse/admin/') ? '@edge_target:test.local' : userId))
    .replace('{keyName}', 'displayname')
    .replace('{type}', 'org.example.edge')
    .replace('{roomId}', encodeURIComponent('!edge:test.local'))
    .replace('{eventType}', 'org.example.edge')
    .replace('{txnId}', 'edge-txn')
    .replace('{kind}', 'override')
    .replace('{ruleId}', 'edge-rule')
    .replace('{version}', '1')
    .replace('{sessionId}', 'edge-session');
/**
 * Served routes whose request is an HTML form (application/x-www-form-urlencoded), read by the
 * route under the same limits and strict UTF-8, and answered in HTML: fallback-pages.test.ts and
 * invite-page.test.ts test their bodies.
 */
const FORM_ROUTES: Route[] = [`POST ${V3}/auth/{stage}/fallback/web`, 'POST /_gatehouse/invite/{token}', 'POST /_gatehouse/client/email/validate'];

/** The POST/PUT/PATCH/DELETE routes of docs/endpoints.md's "Implemented" section, `{v3,r0}` read as v3. */
function documentedRoutesWithMethodsThatMayCarryABody(): Route[] {
  const doc = readFileSync(new URL('../../docs/endpoints.md', import.meta.url), 'utf8');
  const implemented = doc.slice(doc.indexOf('## Implemented'));
  const section = implemented.slice(0, implemented.indexOf('\n## ', 3));
  const routes: Route[] = [];
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 4 || !/^[A-Z, ]+$/.test(cells[1]!) || cells[1] === '') continue;
    const methods = cells[1]!.split(',').map((m) => m.trim());
    const paths = [...cells[2]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!.replace('{v3,r0}', 'v3').replace(/\?.*$/, ''));
    for (const method of methods) {
      if (['POST', 'PUT', 'PATCH', 'DELETE'].includes(method)) for (const path of paths) routes.push(`${method} ${path}`);
    }
  }
  return routes;
}

// --------------------------------------------------------------------------
// Raw HTTP over a socket, for Connection: close and chunked bodies
// --------------------------------------------------------------------------

interface RawReply {
  /** Status of each response read, in order. */
  statuses: number[];
  /** Headers (lower-case names) and parsed body of the first response. */
  headers: Record<string, string>;
  body: any;
  /** The socket error the client saw, if any (EPIPE, ECONNRESET). */
  error: string | null;
  /** Milliseconds from connecting to the first response's end of headers. */
  firstAnswerMs: number | null;
  closed: boolean;
}

/**
 * Connects, writes `head` and then whatever `feed` writes, and collects every
 * response until the server closes the connection (or `timeoutMs`).
 */
function rawExchange(url: string, head: string, feed: (socket: net.Socket) => void | Promise<void>, timeoutMs = 20_000): Promise<RawReply> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const start = Date.now();
    const socket = net.connect(Number(port), hostname);
    let received = Buffer.alloc(0);
    let error: string | null = null;
    let firstAnswerMs: number | null = null;
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (firstAnswerMs === null && received.includes('\r\n\r\n')) firstAnswerMs = Date.now() - start;
    });
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ ...parseResponses(received), error, firstAnswerMs, closed: Date.now() - start < timeoutMs });
    });
    socket.on('connect', () => {
      socket.write(head);
      Promise.resolve(feed(socket)).catch(() => {});
    });
  });
}

/** Splits a byte stream into HTTP/1.1 responses (Content-Length framed, as the server sends them). */
function parseResponses(data: Buffer): { statuses: number[]; headers: Record<string, string>; body: any } {
  const statuses: number[] = [];
  let first: { headers: Record<string, string>; body: any } | null = null;
  let rest = data;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const lines = rest.subarray(0, end).toString('latin1').split('\r\n');
    const status = /^HTTP\/1\.1 (\d{3})/.exec(lines[0]!);
    if (!status) break;
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    const bodyText = rest.subarray(end + 4, end + 4 + length).toString('utf8');
    statuses.push(Number(status[1]));
    if (!first) {
      let body: unknown;
      try {
        body = JSON.parse(bodyText);
      } catch {
        body = undefined;
      }
      first = { headers, body };
    }
    rest = rest.subarray(end + 4 + length);
  }
  return { statuses, headers: first?.headers ?? {}, body: first?.body };
}

const head = (lines: string[]) => `${lines.join('\r\n')}\r\n\r\n`;

/** Writes `total` bytes of body in 64 KiB pieces, as chunks when `chunked`. */
async function writeBody(socket: net.Socket, total: number, chunked: boolean): Promise<void> {
  const piece = Buffer.alloc(64 * 1024, 'x');
  for (let sent = 0; sent < total && !socket.destroyed; sent += piece.length) {
    const part = piece.subarray(0, Math.min(piece.length, total - sent));
    // One write per piece: a chunk's size line, data and CRLF must all go out, whatever the backpressure.
    const ok = socket.write(chunked ? Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]) : part);
    if (!ok) await new Promise((r) => socket.once('drain', r));
  }
  if (chunked && !socket.destroyed) socket.write('0\r\n\r\n');
}

describe.each(backends())('HTTP edges (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, { max_request_body_size: '4K', allow_guest_access: true, login_via_existing_session: { enabled: true } });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const whoamiStatus = async (token: string) => (await hs.request('GET', `${V3}/account/whoami`, { token })).status;

  describe('bodies that are not UTF-8', () => {
    it('a username with a byte that is not UTF-8 is 400 M_NOT_JSON (not M_INVALID_USERNAME from a decoded U+FFFD)', async () => {
      await expectNoChange(hs, async () => {
        const res = await sendBytes(hs, 'POST', `${V3}/register`, bytes('{"username": "a', [0x81], '"}'));
        expectMatrixError(res, 400, 'M_NOT_JSON');
      });
    });

    it('two passwords that differ only in invalid bytes are not the same password', async () => {
      const register = (password: Buffer) =>
        sendBytes(hs, 'POST', `${V3}/register`, bytes('{"username": "edge_pwbytes", "auth": {"type": "m.login.dummy"}, "password": "', password, '"}'));
      const login = (password: Buffer) =>
        sendBytes(hs, 'POST', `${V3}/login`, bytes('{"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "edge_pwbytes"}, "password": "', password, '"}'));
      const sent = bytes('pw', [0x81, 0x81], '-secret-1');
      const other = bytes('pw', [0xfe, 0xff], '-secret-1');

      await expectNoChange(hs, async () => expectMatrixError(await register(sent), 400, 'M_NOT_JSON'));
      expect(await hs.db()('users').where({ localpart: 'edge_pwbytes' })).toHaveLength(0);

      // The password the lenient decoder would have stored: real U+FFFD characters (valid UTF-8).
      const replaced = bytes('pw\uFFFD\uFFFD-secret-1');
      const ok = await register(replaced);
      expect(ok.status).toBe(200);
      // Neither invalid byte string signs in as it, and no token is made.
      await expectNoChange(hs, async () => {
        expectMatrixError(await login(other), 400, 'M_NOT_JSON');
        expectMatrixError(await login(sent), 400, 'M_NOT_JSON');
      });
      // The password itself still works (so the refusals above are about the bytes).
      expect((await login(replaced)).status).toBe(200);
    });

    it('every endpoint that reads a body (and those that ignore one) refuses bytes that are not UTF-8, before any handler', async () => {
      const s = await hs.register('edge_utf8');
      const invalid: [string, Buffer][] = [
        ['lone continuation byte', bytes('{"a": "', [0x80], '"}')],
        ['0xff', bytes('{"a": "', [0xff], '"}')],
        ['overlong "/"', bytes('{"a": "', [0xc0, 0xaf], '"}')],
        ['UTF-8-encoded surrogate', bytes('{"a": "', [0xed, 0xa0, 0x80], '"}')],
        ['code point past U+10FFFF', bytes('{"a": "', [0xf4, 0x90, 0x80, 0x80], '"}')],
        ['truncated sequence at the end', bytes('{"a": "b"}', [0xe2, 0x82])],
        ['in a key', bytes('{"', [0xc3], '": 1}')],
        ['outside any string', bytes('{"a": 1}', [0xa0])],
        ['byte order mark', bytes([0xef, 0xbb, 0xbf], '{"a": 1}')],
        ['UTF-16 with a byte order mark', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('{"a": 1}', 'utf16le')])],
      ];
      const targets: [string, string][] = [
        ...[...BODY_ROUTES, ...NO_BODY_ROUTES].map((r): [string, string] => {
          const [method, path] = r.split(' ') as [string, string];
          return [method, fill(path, s.device_id, s.user_id)];
        }),
        ['POST', '/_matrix/client/r0/login'],
        ['POST', `${V3}/register?kind=guest`],
        ['POST', `${V3}/no_such_endpoint`],
      ];
      await expectNoChange(hs, async () => {
        for (const [label, body] of invalid) {
          for (const [method, path] of targets) {
            const res = await sendBytes(hs, method, path, body, s.access_token);
            expect({ where: `${method} ${path}: ${label}`, status: res.status, errcode: res.body?.errcode }).toEqual({
              where: `${method} ${path}: ${label}`,
              status: 400,
              errcode: 'M_NOT_JSON',
            });
          }
          // The same bytes, gzip-compressed, are checked once decompressed.
          const zipped = await sendBytes(hs, 'POST', `${V3}/login`, gzipSync(body), undefined, { 'Content-Encoding': 'gzip' });
          expectMatrixError(zipped, 400, 'M_NOT_JSON');
        }
      });
      // Logout ran no handler: the token still works.
      expect(await whoamiStatus(s.access_token)).toBe(200);
      expect(hs.logs()).not.toContain('request failed');
    });

    it('multi-byte UTF-8, U+FFFD itself and noncharacters are text like any other, stored as sent', async () => {
      const name = 'Zoë 🐈 \uFFFD \uFFFE 中文';
      const body = bytes(JSON.stringify({ username: 'edge_utf8ok', password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' }, initial_device_display_name: name }));
      const res = await sendBytes(hs, 'POST', `${V3}/register`, body);
      expect(res.status).toBe(200);
      const row = await hs.db()('devices').where({ user_id: res.body.user_id, device_id: res.body.device_id }).first();
      expect(row.display_name).toBe(name);
      // Escaped as a surrogate pair, the same text.
      const renamed = await sendBytes(hs, 'PUT', `${V3}/devices/${res.body.device_id}`, '{"display_name": "cat \\ud83d\\udc08"}', res.body.access_token);
      expect(renamed.status).toBe(200);
      expect((await hs.db()('devices').where({ user_id: res.body.user_id, device_id: res.body.device_id }).first()).display_name).toBe('cat 🐈');
    });
  });

  describe('lone surrogate escapes', () => {
    it('a "\\ud800" in a username, password, display name or key is 400 M_BAD_JSON and changes nothing', async () => {
      const s = await hs.register('edge_surrogate');
      const before = await hs.db()('users').where({ user_id: s.user_id }).first();
      const cases: [string, string, string, string?][] = [
        ['POST', `${V3}/register`, '{"username": "edge_sur\\ud800", "password": "x-secret-abc-123", "auth": {"type": "m.login.dummy"}}'],
        ['POST', `${V3}/register`, '{"username": "edge_sur2", "password": "x-secret-\\ud800", "auth": {"type": "m.login.dummy"}}'],
        ['POST', `${V3}/register`, '{"username": "edge_sur3", "password": "x-secret-\\udfff\\ud800", "auth": {"type": "m.login.dummy"}}'],
        ['POST', `${V3}/register`, '{"username": "edge_sur4", "password": "x-secret-abc-123", "auth": {"type": "m.login.dummy"}, "initial_device_display_name": "a\\udc00b"}'],
        ['POST', `${V3}/register`, '{"username": "edge_sur5", "password": "x-secret-abc-123", "auth": {"type": "m.login.dummy"}, "x\\ud800": 1}'],
        ['POST', `${V3}/register?kind=guest`, '{"initial_device_display_name": "\\ud83d"}'],
        ['POST', `${V3}/login`, '{"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "edge_surrogate"}, "password": "correct horse battery staple\\ud800"}'],
        ['PUT', `${V3}/devices/${s.device_id}`, '{"display_name": "\\ude00"}', s.access_token],
        ['POST', `${V3}/account/password`, '{"new_password": "n\\ud800ew-password-1", "auth": {"type": "m.login.password", "user": "edge_surrogate", "password": "correct horse battery staple"}}', s.access_token],
        ['POST', '/_synapse/admin/v1/register', '{"nonce": "n", "username": "edge_sur6", "password": "\\ud800", "mac": "00"}'],
        // Deep in a value no route reads.
        ['POST', `${V3}/login`, '{"type": "m.login.password", "extra": [[{"deep": ["\\udbff"]}]]}'],
        // Endpoints without a body refuse it too: it is not text, as bytes that are not UTF-8 are not.
        ['POST', `${V3}/logout`, '{"x": "\\ud800"}', s.access_token],
      ];
      await expectNoChange(hs, async () => {
        for (const [method, path, raw, token] of cases) {
          const res = await sendBytes(hs, method, path, raw, token);
          expect({ where: `${method} ${path} ${raw}`, status: res.status, errcode: res.body?.errcode }).toEqual({
            where: `${method} ${path} ${raw}`,
            status: 400,
            errcode: 'M_BAD_JSON',
          });
        }
      }, ['users', 'profiles', 'devices', 'access_tokens', 'refresh_tokens', 'uia_sessions']);
      const after = await hs.db()('users').where({ user_id: s.user_id }).first();
      expect(after.password_hash).toBe(before.password_hash);
      expect((await hs.db()('devices').where({ user_id: s.user_id, device_id: s.device_id }).first()).display_name).toBeNull();
      expect(await whoamiStatus(s.access_token)).toBe(200);
      // A password with a replacement character where the surrogate was is not a way in either.
      const sneaky = await hs.request('POST', `${V3}/login`, { body: { type: 'm.login.password', user: 'edge_surrogate', password: `${DEFAULT_PASSWORD}\uFFFD` } });
      expectMatrixError(sneaky, 403, 'M_FORBIDDEN');
    });

    it('a key "__proto__" is 400 M_BAD_JSON', async () => {
      await expectNoChange(hs, async () => {
        const res = await sendBytes(hs, 'POST', `${V3}/register`, '{"username": "edge_proto", "password": "x-secret-abc-123", "auth": {"type": "m.login.dummy"}, "__proto__": {"admin": true}}');
        expectMatrixError(res, 400, 'M_BAD_JSON');
      });
    });
  });

  describe('paths and query strings', () => {
    const badEscapes = ['%81', '%FF', '%C0%AF', '%ED%A0%80', '%F4%90%80%80', '%E2%82', '%zz', '%', '%4'];

    it('a query parameter that is not percent-encoded UTF-8 is 400 M_INVALID_PARAM', async () => {
      for (const e of badEscapes) {
        for (const query of [`username=a${e}`, `username=ok&x=${e}`, `${e}=1&username=ok`]) {
          const res = await hs.request('GET', `${V3}/register/available?${query}`);
          expect({ query, status: res.status, errcode: res.body?.errcode }).toEqual({ query, status: 400, errcode: 'M_INVALID_PARAM' });
        }
      }
      // Also the access token, and on POST endpoints (before the body is read).
      const s = await hs.register('edge_query');
      const who = await hs.request('GET', `${V3}/account/whoami?access_token=${s.access_token}%FF`);
      expectMatrixError(who, 400, 'M_INVALID_PARAM');
      await expectNoChange(hs, async () => {
        const reg = await hs.request('POST', `${V3}/register?kind=guest%FF`, { body: {} });
        expectMatrixError(reg, 400, 'M_INVALID_PARAM');
      });
      // Well-formed escapes (and + for a space) still decode.
      const ok = await hs.request('GET', `${V3}/register/available?username=edge%5Fq%2Davail&unused=a+b%20%C3%A9`);
      expect(ok.status).toBe(200);
      expect(ok.body).toEqual({ available: true });
    });

    it('a path that is not percent-encoded UTF-8 is 400 M_INVALID_PARAM, and deletes nothing', async () => {
      const s = await hs.register('edge_path');
      await expectNoChange(hs, async () => {
        for (const e of badEscapes) {
          for (const [method, path] of [
            ['GET', `${V3}/devices/${e}`],
            ['PUT', `${V3}/devices/${e}`],
            ['DELETE', `${V3}/devices/${e}`],
            ['DELETE', `${V3}/devices/${s.device_id}${e}`],
            ['GET', `${V3}/no_such_endpoint/${e}`],
            ['POST', `/_matrix/client/r0${e}/login`],
          ] as const) {
            const res = await hs.request(method, path, { token: s.access_token, body: method === 'GET' ? undefined : {} });
            expect({ where: `${method} ${path}`, status: res.status, errcode: res.body?.errcode }).toEqual({
              where: `${method} ${path}`,
              status: 400,
              errcode: 'M_INVALID_PARAM',
            });
          }
        }
      });
      // A device ID with well-formed escapes is found as before.
      const get = await hs.request('GET', `${V3}/devices/${encodeURIComponent(s.device_id)}`, { token: s.access_token });
      expect(get.status).toBe(200);
      expect(get.body.device_id).toBe(s.device_id);
      expect((await hs.request('GET', `${V3}/devices/caf%C3%A9`, { token: s.access_token })).status).toBe(404);
      expect(hs.logs()).not.toContain('request failed');
    });
  });

  describe('endpoints without a request body', () => {
    const values = ['null', '[]', '1', '"x"', 'true', 'false', '[{"a": 1}]', '{}', '{"unexpected": [1, 2]}', ''];

    it('POST /logout and /logout/all answer normally whatever valid JSON is sent', async () => {
      await hs.register('edge_nobody');
      for (const route of [...NO_BODY_ROUTES.filter((r) => r.includes('/logout')), `POST /_matrix/client/r0/logout`]) {
        const path = route.split(' ')[1]!;
        for (const raw of values) {
          const s = await hs.login('edge_nobody');
          const res = await sendBytes(hs, 'POST', path, raw, s.access_token);
          expect({ where: `${path} ${raw}`, status: res.status, body: res.body }).toEqual({ where: `${path} ${raw}`, status: 200, body: {} });
          expect(await whoamiStatus(s.access_token)).toBe(401);
        }
      }
      // Without Content-Type, and gzip-compressed, too (Nheko sends its null as application/json).
      const s = await hs.login('edge_nobody');
      expect((await sendBytes(hs, 'POST', `${V3}/logout`, gzipSync('null'), s.access_token, { 'Content-Encoding': 'gzip' })).status).toBe(200);
      expect(await whoamiStatus(s.access_token)).toBe(401);
    });

    it('invalid JSON is still 400 M_NOT_JSON there, and signs nobody out', async () => {
      const s = await hs.register('edge_nobody_bad');
      for (const route of NO_BODY_ROUTES) {
        for (const raw of ['{', 'nul', "{'a': 1}", ' ', '{"a": 1}{}']) {
          const res = await sendBytes(hs, 'POST', route.split(' ')[1]!, raw, s.access_token);
          expect({ where: `${route} ${raw}`, status: res.status, errcode: res.body?.errcode }).toEqual({ where: `${route} ${raw}`, status: 400, errcode: 'M_NOT_JSON' });
        }
      }
      expect(await whoamiStatus(s.access_token)).toBe(200);
    });

    it('every endpoint that reads a body answers 400 M_BAD_JSON to JSON that is not an object, and changes nothing', async () => {
      const s = await hs.register('edge_badjson');
      // A server admin, so that the admin API's routes get as far as the body.
      await hs.db()('users').where({ user_id: s.user_id }).update({ is_admin: true });
      await expectNoChange(hs, async () => {
        for (const route of BODY_ROUTES) {
          const [method, template] = route.split(' ') as [string, string];
          const path = fill(template, s.device_id, s.user_id);
          for (const raw of values.filter((v) => !v.startsWith('{') && v !== '')) {
            const res = await sendBytes(hs, method, path, raw, s.access_token);
            expect({ where: `${route} ${raw}`, status: res.status, errcode: res.body?.errcode }).toEqual({ where: `${route} ${raw}`, status: 400, errcode: 'M_BAD_JSON' });
          }
        }
      }, ['users', 'profiles', 'devices', 'access_tokens', 'refresh_tokens', 'uia_sessions', 'registration_tokens']);
      expect(await whoamiStatus(s.access_token)).toBe(200);
    });

    it('the lists above cover every POST, PUT and DELETE route of docs/endpoints.md', () => {
      const documented = documentedRoutesWithMethodsThatMayCarryABody();
      expect(documented.length).toBeGreaterThan(5);
      expect([...new Set(documented)].sort()).toEqual([...BODY_ROUTES, ...NO_BODY_ROUTES, ...FORM_ROUTES].sort());
    });
  });

  describe('a body over the limit with Connection: close', () => {
    const size = 1024 * 1024;
    const registerHead = (extra: string[]) =>
      head(['POST /_matrix/client/v3/register HTTP/1.1', 'Host: gatehouse.test', 'Connection: close', 'Content-Type: application/json', ...extra]);

    it.each([
      ['Content-Length', false],
      ['chunked', true],
    ])('always gets its 413 (%s, 20 tries of 1 MiB)', async (_label, chunked) => {
      const outcomes: string[] = [];
      await expectNoChange(hs, async () => {
        for (let i = 0; i < 20; i++) {
          const r = await rawExchange(
            hs.url,
            registerHead(chunked ? ['Transfer-Encoding: chunked'] : [`Content-Length: ${size}`]),
            (socket) => writeBody(socket, size, chunked),
          );
          outcomes.push(`${r.statuses.join(',')} ${r.body?.errcode ?? '-'} ${r.error ?? 'ok'}`);
        }
      });
      expect(outcomes).toEqual(Array(20).fill('413 M_TOO_LARGE ok'));
    });

    it('keeps a keep-alive connection usable after a drained 413, and drains an ignored GET body', async () => {
      const r = await rawExchange(
        hs.url,
        head(['POST /_matrix/client/v3/register HTTP/1.1', 'Host: gatehouse.test', `Content-Length: ${size}`]),
        async (socket) => {
          await writeBody(socket, size, false);
          socket.write(head(['GET /_matrix/client/versions HTTP/1.1', 'Host: gatehouse.test', 'Content-Length: 9']) + '{"a": 1}\n');
          socket.write(head(['GET /_matrix/client/v3/login HTTP/1.1', 'Host: gatehouse.test', 'Connection: close']));
        },
      );
      expect(r.statuses).toEqual([413, 200, 200]);
      expect(r.error).toBeNull();
    });

    it('answers at once, and closes, when the declared body is past the drain bound', async () => {
      const declared = DRAIN_MAX_BYTES + 1024 * 1024;
      const r = await rawExchange(hs.url, registerHead([`Content-Length: ${declared}`]), async (socket) => {
        // A little of it, then nothing: the server must not wait for the rest.
        socket.write(Buffer.alloc(1024, 'x'));
      });
      expect(r.statuses).toEqual([413]);
      expect(r.body.errcode).toBe('M_TOO_LARGE');
      expect(r.headers.connection).toBe('close');
      expect(r.firstAnswerMs!).toBeLessThan(2_000);
      expect(r.closed).toBe(true);
    });

    it('stops draining a body that never ends after the time bound, answers and closes', async () => {
      let stop = false;
      const r = await rawExchange(
        hs.url,
        registerHead(['Transfer-Encoding: chunked']),
        async (socket) => {
          socket.write(`${(2 * LIMIT).toString(16)}\r\n${'x'.repeat(2 * LIMIT)}\r\n`);
          // A chunk every 100 ms, forever: under the byte bound, past the time bound.
          while (!stop && !socket.destroyed) {
            socket.write('10\r\nxxxxxxxxxxxxxxxx\r\n');
            await new Promise((res) => setTimeout(res, 100));
          }
        },
        DRAIN_MAX_MS + 10_000,
      );
      stop = true;
      expect(r.statuses).toEqual([413]);
      expect(r.headers.connection).toBe('close');
      expect(r.firstAnswerMs!).toBeGreaterThanOrEqual(DRAIN_MAX_MS - 500);
      expect(r.firstAnswerMs!).toBeLessThan(DRAIN_MAX_MS + 3_000);
      expect(r.closed).toBe(true);
    }, 30_000);

    it('stops draining past the byte bound (chunked), and the server stays up', async () => {
      const r = await rawExchange(hs.url, registerHead(['Transfer-Encoding: chunked']), (socket) => writeBody(socket, DRAIN_MAX_BYTES + 4 * 1024 * 1024, true));
      expect(r.closed).toBe(true);
      // The answer may be lost to the reset that closing over unread bytes causes; if it came, it is the 413.
      if (r.statuses.length > 0) expect(r.statuses).toEqual([413]);
      expect((await hs.request('GET', '/_matrix/client/versions')).status).toBe(200);
      expect(hs.logs()).not.toContain('request failed');
    }, 30_000);
  });
});
