// startEphemeral(), the package's entry point for client and SDK test
// authors: imported by the package's own name (as a user's test would), run
// inside this process, spoken to over HTTP only.

import { createHmac } from 'node:crypto';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { ConfigError, type EphemeralServer, startEphemeral } from 'gatehouse';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, createPgDatabase, type PgDatabase } from '../support/backends.js';
import { runGatehouse, runNode } from '../support/cli.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const PASSWORD = 'correct horse battery staple';
/** Fast hashing keeps the suite quick; still argon2id. */
const FAST_ARGON2 = { argon2: { memory_cost: 1024, time_cost: 1, parallelism: 1 } };

async function call(hs: EphemeralServer, method: string, path: string, opts: { body?: unknown; token?: string } = {}) {
  const headers: Record<string, string> = {};
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  const res = await fetch(hs.baseUrl + path, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const register = (hs: EphemeralServer, username: string) =>
  call(hs, 'POST', '/_matrix/client/v3/register', { body: { username, password: PASSWORD, auth: { type: 'm.login.dummy' } } });

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Whether anything accepts a TCP connection on `url` (fetch fails with ECONNREFUSED once it is closed). */
async function refuses(url: string): Promise<boolean> {
  try {
    await fetch(`${url}/_matrix/client/versions`);
    return false;
  } catch (err) {
    return /ECONNREFUSED/.test(String((err as { cause?: unknown }).cause ?? err));
  }
}

describe.each(backends())('startEphemeral (%s)', (backend) => {
  let pg: PgDatabase | null = null;
  let one: EphemeralServer;
  let two: EphemeralServer;
  beforeAll(async () => {
    // On PostgreSQL, `config.database` replaces the in-memory SQLite database: an override like any other.
    let database = {};
    if (backend === 'postgres') {
      pg = await createPgDatabase();
      database = { database: { name: 'psycopg2', args: pg.args } };
    }
    // Two at once in this process, each with its own database, key and listener.
    [one, two] = await Promise.all([
      startEphemeral({ serverName: 'one.test', logLevel: 'silent', config: { ...FAST_ARGON2, ...database } }),
      startEphemeral({ serverName: 'two.test', logLevel: 'silent', config: FAST_ARGON2 }),
    ]);
  });
  afterAll(async () => {
    await one?.close();
    await two?.close();
    await pg?.drop();
  });

  it('gives each server its own URL, name and admin', () => {
    for (const [hs, name] of [
      [one, 'one.test'],
      [two, 'two.test'],
    ] as const) {
      expect(hs.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(hs.baseUrl).not.toMatch(/:0$/);
      expect(hs.serverName).toBe(name);
      expect(hs.adminUserId).toBe(`@admin:${name}`);
      expect(hs.adminToken.length).toBeGreaterThanOrEqual(20);
      expect(hs.sharedSecret.length).toBeGreaterThanOrEqual(16);
    }
    expect(one.baseUrl).not.toBe(two.baseUrl);
    expect(one.sharedSecret).not.toBe(two.sharedSecret);
  });

  it('registers, logs in and answers whoami on each, and keeps their accounts apart', async () => {
    for (const hs of [one, two]) {
      const reg = await register(hs, 'alice');
      expect(reg.status).toBe(200);
      expect(reg.body.user_id).toBe(`@alice:${hs.serverName}`);
      const login = await call(hs, 'POST', '/_matrix/client/v3/login', {
        body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' }, password: PASSWORD },
      });
      expect(login.status).toBe(200);
      expect(login.body.access_token).not.toBe(reg.body.access_token);
      // Login's well_known advertises the port actually picked.
      expect(login.body.well_known).toEqual({ 'm.homeserver': { base_url: `${hs.baseUrl}/` } });
      const who = await call(hs, 'GET', '/_matrix/client/v3/account/whoami', { token: login.body.access_token });
      expect(who.status).toBe(200);
      expect(who.body.user_id).toBe(`@alice:${hs.serverName}`);
    }
    // One server's token means nothing to the other.
    const a = await register(one, 'bob');
    const cross = await call(two, 'GET', '/_matrix/client/v3/account/whoami', { token: a.body.access_token });
    expect(cross.status).toBe(401);
    expect(cross.body.errcode).toBe('M_UNKNOWN_TOKEN');
  });

  it('gives an admin token that the admin API takes, and a user token that it refuses', async () => {
    const me = await call(one, 'GET', `/_synapse/admin/v2/users/${encodeURIComponent(one.adminUserId)}`, { token: one.adminToken });
    expect(me.status).toBe(200);
    expect(me.body.admin).toBe(true);
    const user = await register(one, 'carol');
    const refused = await call(one, 'GET', `/_synapse/admin/v2/users/${encodeURIComponent(one.adminUserId)}`, { token: user.body.access_token });
    expect(refused.status).toBe(403);
    expect(refused.body.errcode).toBe('M_FORBIDDEN');
    // Not the other server's admin.
    const other = await call(two, 'GET', `/_synapse/admin/v2/users/${encodeURIComponent(two.adminUserId)}`, { token: one.adminToken });
    expect(other.status).toBe(401);
  });

  it('takes its shared secret on /_synapse/admin/v1/register, and no other', async () => {
    const path = '/_synapse/admin/v1/register';
    const mac = (nonce: string, secret: string) => createHmac('sha1', secret).update([nonce, 'dave', PASSWORD, 'notadmin'].join('\x00'), 'utf8').digest('hex');
    // The other server's secret: refused, and nothing created.
    const n1 = (await call(two, 'GET', path)).body.nonce as string;
    const wrong = await call(two, 'POST', path, { body: { nonce: n1, username: 'dave', password: PASSWORD, admin: false, mac: mac(n1, one.sharedSecret) } });
    expect(wrong.status).toBe(403);
    expect(wrong.body.errcode).toBe('M_FORBIDDEN');
    const absent = await call(two, 'GET', `/_synapse/admin/v2/users/${encodeURIComponent('@dave:two.test')}`, { token: two.adminToken });
    expect(absent.status).toBe(404);

    const n2 = (await call(two, 'GET', path)).body.nonce as string;
    const ok = await call(two, 'POST', path, { body: { nonce: n2, username: 'dave', password: PASSWORD, admin: false, mac: mac(n2, two.sharedSecret) } });
    expect(ok.status).toBe(200);
    expect(ok.body.user_id).toBe('@dave:two.test');
    const who = await call(two, 'GET', '/_matrix/client/v3/account/whoami', { token: ok.body.access_token });
    expect(who.body.user_id).toBe('@dave:two.test');
  });

  it('answers /versions and advertises its URL on the well-known', async () => {
    const versions = await call(one, 'GET', '/_matrix/client/versions');
    expect(versions.status).toBe(200);
    expect(Array.isArray(versions.body.versions)).toBe(true);
    const wk = await call(two, 'GET', '/.well-known/matrix/client');
    expect(wk.body['m.homeserver'].base_url).toBe(`${two.baseUrl}/`);
  });
});

describe('startEphemeral options', () => {
  it('applies config overrides: registration closed answers 403 and creates nobody', async () => {
    const hs = await startEphemeral({ logLevel: 'silent', config: { ...FAST_ARGON2, enable_registration: false } });
    try {
      const reg = await register(hs, 'eve');
      expect(reg.status).toBe(403);
      expect(reg.body.errcode).toBe('M_FORBIDDEN');
      const absent = await call(hs, 'GET', `/_synapse/admin/v2/users/${encodeURIComponent('@eve:localhost')}`, { token: hs.adminToken });
      expect(absent.status).toBe(404);
      expect(hs.config.enable_registration).toBe(false);
      // The default server name.
      expect(hs.serverName).toBe('localhost');
    } finally {
      await hs.close();
    }
  });

  it('rejects bad overrides with the config error, naming each key, and leaves nothing listening', async () => {
    const err = await startEphemeral({ config: { enable_registration: 'yes', max_request_body_size: -1, log_level: 'loud' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join('\n');
    expect(problems).toContain('enable_registration');
    expect(problems).toContain('log_level');
    await expect(startEphemeral({ serverName: 'not a server name' })).rejects.toBeInstanceOf(ConfigError);
    await expect(startEphemeral({ port: 70000 })).rejects.toThrow(/port/);
    await expect(startEphemeral({ port: 1.5 })).rejects.toThrow(/port/);
  });

  it('listens on the port asked for; a taken port rejects with EADDRINUSE', async () => {
    const port = await freePort();
    const hs = await startEphemeral({ port, logLevel: 'silent', config: FAST_ARGON2 });
    try {
      expect(hs.baseUrl).toBe(`http://127.0.0.1:${port}`);
      expect((await call(hs, 'GET', '/_matrix/client/versions')).status).toBe(200);
      await expect(startEphemeral({ port, logLevel: 'silent' })).rejects.toMatchObject({ code: 'EADDRINUSE' });
      // The first one is unharmed.
      expect((await call(hs, 'GET', '/_matrix/client/versions')).status).toBe(200);
    } finally {
      await hs.close();
    }
  });

  it('hashes passwords cheaply unless config.argon2 says otherwise', async () => {
    const cheap = await startEphemeral({ logLevel: 'silent' });
    const dear = await startEphemeral({ logLevel: 'silent', config: { argon2: { memory_cost: 19456, time_cost: 2, parallelism: 1 } } });
    try {
      expect(cheap.config.argon2).toEqual({ memory_cost: 1024, time_cost: 1, parallelism: 1 });
      expect(dear.config.argon2).toEqual({ memory_cost: 19456, time_cost: 2, parallelism: 1 });
      // Both still log the admin in with its password.
      for (const hs of [cheap, dear]) {
        const login = await call(hs, 'POST', '/_matrix/client/v3/login', {
          body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'admin' }, password: hs.adminPassword },
        });
        expect(login.status).toBe(200);
        expect(login.body.user_id).toBe(hs.adminUserId);
      }
    } finally {
      await cheap.close();
      await dear.close();
    }
  });

  it('start --ephemeral with a bad --server-name exits 1 with the reason, not a stack trace', async () => {
    const { code, stdout: out, stderr: err } = await runGatehouse(['start', '--ephemeral', '--port', '0', '--server-name', 'not a name'], { cwd: ROOT });
    expect(code).toBe(1);
    expect(err).toMatch(/^gatehouse: --server-name: invalid configuration:/);
    expect(err).toContain('server_name');
    expect(err).not.toMatch(/\n\s+at /);
    expect(out).toBe('');
  });

  it('writes to the logger it is given', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        done();
      },
    });
    const hs = await startEphemeral({ logger: pino({ level: 'info' }, sink), config: FAST_ARGON2 });
    await call(hs, 'GET', '/_matrix/client/versions');
    await hs.close();
    const msgs = lines.map((l) => JSON.parse(l) as { msg: string; url?: string });
    expect(msgs.some((m) => m.msg === 'Gatehouse is ready')).toBe(true);
    // Request lines carry no access token.
    expect(lines.join('\n')).not.toContain(hs.adminToken);
  });

  it('close() stops listening (connections refused), and may be called again', async () => {
    const hs = await startEphemeral({ logLevel: 'silent', config: FAST_ARGON2 });
    expect(await refuses(hs.baseUrl)).toBe(false);
    await hs.close();
    expect(await refuses(hs.baseUrl)).toBe(true);
    await hs.close();
  });

  it("resolves by the package's name from the repository, and its process exits after close() (no open handles)", async () => {
    const script = `
      const { startEphemeral } = await import('gatehouse');
      const hs = await startEphemeral({ logLevel: 'silent' });
      const r = await fetch(hs.baseUrl + '/_matrix/client/v3/account/whoami', { headers: { authorization: 'Bearer ' + hs.adminToken } });
      console.log(JSON.stringify({ status: r.status, body: await r.json(), admin: hs.adminUserId }));
      await hs.close();`;
    // Exiting on its own (not killed) within the time-out is the "no open handles" check: runNode rejects otherwise.
    const { code, stdout: out, stderr: err } = await runNode(['--input-type=module', '-e', script], { cwd: ROOT, timeoutMs: 20_000 });
    expect(code, err).toBe(0);
    const result = JSON.parse(out.trim());
    expect(result.status).toBe(200);
    expect(result.body.user_id).toBe('@admin:localhost');
    expect(result.admin).toBe('@admin:localhost');
  });
});
