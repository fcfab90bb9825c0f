// The Docker packaging, tested by running what the image runs. Docker itself
// is not available here, so: the Complement entrypoint script is run as is
// (its in-container paths overridden by env vars), the healthcheck script is
// run against it, the Dockerfile and .dockerignore are checked statically, and
// docker-compose.yml's mounted config is loaded by the real config loader and
// served by the real server.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import knexFactory, { type Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { buildConfig, loadConfigFile } from '../../src/config/load.js';
import { backends } from '../support/backends.js';
import { startServer, type TestServer } from '../support/server.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const ENTRYPOINT = join(ROOT, 'docker/complement-entrypoint.sh');
const HEALTHCHECK = join(ROOT, 'docker/healthcheck.mjs');
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

function healthcheck(port: number): number | null {
  return spawnSync(process.execPath, [HEALTHCHECK], { env: { ...process.env, GATEHOUSE_PORT: String(port) }, timeout: 10_000 }).status;
}

// --------------------------------------------------------------------------
// Dockerfile, statically
// --------------------------------------------------------------------------

interface Instruction {
  op: string;
  args: string;
}

/** Dockerfile instructions, with continuation lines joined and comments dropped. */
function instructions(text: string): Instruction[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || line === '') continue;
    if (line.endsWith('\\')) current += `${line.slice(0, -1)} `;
    else {
      logical.push(current + line);
      current = '';
    }
  }
  return logical.map((l) => {
    const m = /^(\S+)\s*(.*)$/.exec(l)!;
    return { op: m[1]!.toUpperCase(), args: m[2]! };
  });
}

/** Stages by name (or index), each with its instructions after FROM. */
function stages(all: Instruction[]): { from: string; name: string; body: Instruction[] }[] {
  const out: { from: string; name: string; body: Instruction[] }[] = [];
  for (const i of all) {
    if (i.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(i.args)!;
      out.push({ from: m[1]!, name: m[2] ?? String(out.length), body: [] });
    } else out.at(-1)?.body.push(i);
  }
  return out;
}

/** Which files the runtime stage puts in the image from the build context: image path → context path. */
function contextCopies(body: Instruction[]): Map<string, string> {
  const files = new Map<string, string>();
  let workdir = '/';
  for (const i of body) {
    if (i.op === 'WORKDIR') workdir = posix.resolve(workdir, i.args);
    if (i.op !== 'COPY' || i.args.includes('--from=')) continue;
    const parts = i.args.split(/\s+/).filter((p) => !p.startsWith('--'));
    const dest = parts.pop()!;
    for (const src of parts) {
      const target = dest.endsWith('/') ? posix.join(posix.resolve(workdir, dest), posix.basename(src)) : posix.resolve(workdir, dest);
      files.set(target, src);
    }
  }
  return files;
}

/** Parses `CMD ["a", "b"]` (exec form) into its argv. */
const execForm = (args: string): string[] => JSON.parse(args.replace(/^CMD\s+/i, '')) as string[];

describe('Dockerfile', () => {
  const text = read('Dockerfile');
  const all = instructions(text);
  const st = stages(all);
  const runtime = st.at(-1)!;

  it('builds in stages on Node 24 and ends on node:24-bookworm-slim', () => {
    expect(st.length).toBeGreaterThanOrEqual(2);
    expect(runtime.from).toBe('node:24-bookworm-slim');
    // Every base image is pinned to Node's major version (stages may build on each other).
    for (const s of st) {
      if (st.some((o) => o.name === s.from)) continue;
      expect(s.from).toMatch(/^node:24-bookworm-slim$/);
    }
  });

  it('compiles with npm ci + tsc, and ships only production dependencies built with a toolchain', () => {
    const runs = (s: { body: Instruction[] }) => s.body.filter((i) => i.op === 'RUN').map((i) => i.args);
    const builder = st.find((s) => runs(s).some((r) => /\btsc\b/.test(r)));
    expect(builder, 'a stage runs tsc').toBeDefined();
    expect(text).toMatch(/npm ci\b/);
    const prod = st.find((s) => runs(s).some((r) => /npm ci\b.*--omit=dev/.test(r)))!;
    expect(prod, 'a stage runs npm ci --omit=dev').toBeDefined();
    // sqlite3 builds from source: the stage that installs production deps (or its parent) has python3, make and g++.
    const lineage = [prod, ...st.filter((s) => s.name === prod.from)];
    const apt = lineage.flatMap(runs).join(' ');
    for (const tool of ['python3', 'make', 'g++']) expect(apt).toContain(tool);
    // The runtime takes node_modules from that stage, dist from the builder, and runs no compiler.
    const fromCopies = runtime.body.filter((i) => i.op === 'COPY' && i.args.includes('--from='));
    expect(fromCopies.some((c) => c.args.includes(`--from=${prod.name}`) && c.args.includes('node_modules'))).toBe(true);
    expect(fromCopies.some((c) => c.args.includes(`--from=${builder!.name}`) && c.args.includes('dist'))).toBe(true);
    expect(runs(runtime).join(' ')).not.toMatch(/apt-get install|npm (ci|install)/);
    // dist/ is ESM because package.json says "type": "module"; the image must carry it next to dist/.
    expect(JSON.parse(read('package.json')).type).toBe('module');
    expect(contextCopies(runtime.body).get('/app/package.json')).toBe('package.json');
  });

  it('declares no VOLUME (Complement commits containers; state lives in the image filesystem)', () => {
    expect(all.filter((i) => i.op === 'VOLUME')).toEqual([]);
  });

  it('exposes 8008 and 8448', () => {
    const ports = runtime.body.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(/\s+/));
    expect(ports).toContain('8008');
    expect(ports).toContain('8448');
  });

  it('has Complement\'s HEALTHCHECK timings and runs a health script that is in the image', () => {
    const hc = runtime.body.filter((i) => i.op === 'HEALTHCHECK');
    expect(hc).toHaveLength(1);
    const args = hc[0]!.args;
    expect(args).toContain('--start-period=5s');
    expect(args).toContain('--interval=1s');
    expect(args).toContain('--timeout=1s');
    const argv = execForm(args.slice(args.indexOf('CMD')));
    expect(argv[0]).toBe('node');
    const inImage = contextCopies(runtime.body);
    expect(inImage.get(argv[1]!)).toBe('docker/healthcheck.mjs');
    expect(read('docker/healthcheck.mjs')).toContain('/_matrix/client/versions');
  });

  it('starts the Complement entrypoint script, which is in the image', () => {
    const cmd = runtime.body.filter((i) => i.op === 'CMD' || i.op === 'ENTRYPOINT');
    expect(cmd).toHaveLength(1);
    const argv = execForm(cmd[0]!.args);
    const script = argv.find((a) => a.endsWith('.sh'))!;
    expect(contextCopies(runtime.body).get(script)).toBe('docker/complement-entrypoint.sh');
    // Run by /bin/sh (POSIX), so the file's mode bits do not matter.
    expect(argv[0]).toBe('/bin/sh');
    expect(read('docker/complement-entrypoint.sh').split('\n')[0]).toBe('#!/bin/sh');
  });

  it('runs as an unprivileged user that owns the data directory the entrypoint uses by default', () => {
    const users = runtime.body.filter((i) => i.op === 'USER');
    expect(users.at(-1)?.args).toBe('node');
    const dataDefault = /GATEHOUSE_DATA_DIR:-([^}]+)}/.exec(read('docker/complement-entrypoint.sh'))![1]!;
    const appDefault = /GATEHOUSE_APP_DIR:-([^}]+)}/.exec(read('docker/complement-entrypoint.sh'))![1]!;
    const chown = runtime.body.findIndex((i) => i.op === 'RUN' && new RegExp(`chown\\s+node:node\\s+${dataDefault}(\\s|$)`).test(i.args));
    expect(chown, `${dataDefault} is chowned to node`).toBeGreaterThanOrEqual(0);
    expect(chown).toBeLessThan(runtime.body.lastIndexOf(users.at(-1)!));
    expect(runtime.body.find((i) => i.op === 'WORKDIR')?.args).toBe(appDefault);
  });

  it('copies only files that exist and that .dockerignore lets through', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const must of ['node_modules', 'dist', 'data', '.git']) expect(ignored).toContain(must);
    const sources = all
      .filter((i) => i.op === 'COPY' && !i.args.includes('--from='))
      .flatMap((i) => i.args.split(/\s+/).filter((p) => !p.startsWith('--')).slice(0, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const src of sources) {
      expect(existsSync(join(ROOT, src)), `${src} exists`).toBe(true);
      expect(ignored, `${src} is not ignored`).not.toContain(src.split('/')[0]);
    }
  });

  it('needs nothing at run time beyond package.json "dependencies" (the image omits devDependencies)', () => {
    const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
    const files: string[] = [];
    const walk = (d: string) => {
      for (const n of readdirSync(d)) {
        const p = join(d, n);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.js')) files.push(p);
      }
    };
    walk(join(ROOT, 'dist/src'));
    walk(join(ROOT, 'dist/migrations'));
    expect(files.length).toBeGreaterThan(10);
    const used = new Set<string>();
    for (const f of files) {
      for (const m of readFileSync(f, 'utf8').matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"]([^'"]+)['"]/g)) {
        const spec = m[1]!;
        if (spec.startsWith('.') || spec.startsWith('node:')) continue;
        used.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
      }
    }
    expect(used.size).toBeGreaterThan(3);
    for (const name of used) expect(Object.keys(pkg.dependencies), `${name} is a production dependency`).toContain(name);
  });
});

// --------------------------------------------------------------------------
// The Complement entrypoint, run for real
// --------------------------------------------------------------------------

interface Running {
  child: ChildProcess;
  url: string;
  output: () => string;
}

function runEntrypoint(env: Record<string, string>): ChildProcess {
  return spawn('sh', [ENTRYPOINT], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so that a failing run leaves nothing behind (see killGroup).
    detached: true,
    env: { ...process.env, GATEHOUSE_CONFIG: '', GATEHOUSE_APP_DIR: ROOT, GATEHOUSE_BIND_ADDRESS: '127.0.0.1', ...env },
  });
}

/** Starts the entrypoint and polls /_matrix/client/versions until it is 200, as Complement does. */
async function startEntrypoint(env: Record<string, string>): Promise<Running> {
  const port = await freePort();
  const child = runEntrypoint({ ...env, GATEHOUSE_PORT: String(port) });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`entrypoint exited with ${child.exitCode}:\n${out}`);
    if (Date.now() > deadline) {
      killGroup(child);
      throw new Error(`entrypoint did not become ready:\n${out}`);
    }
    const ok = await fetch(`${url}/_matrix/client/versions`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return { child, url, output: () => out };
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Kills whatever is left of a run (a shell that did not exec would leave node behind). */
function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

/** docker stop: SIGTERM to the container's main process only, then wait for its exit code. */
async function stopEntrypoint(r: Running): Promise<number | null> {
  if (r.child.exitCode !== null) {
    killGroup(r.child);
    return r.child.exitCode;
  }
  const exited = new Promise<number | null>((resolve) => r.child.once('exit', (code) => resolve(code)));
  r.child.kill('SIGTERM');
  const timer = setTimeout(() => r.child.kill('SIGKILL'), 5000);
  const code = await exited;
  clearTimeout(timer);
  killGroup(r.child);
  return code;
}

async function call(base: string, method: string, path: string, body?: unknown, token?: string) {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as any) : undefined };
}

/** Synapse's shared-secret MAC: hex HMAC-SHA1 over nonce\0user\0pass\0admin|notadmin. */
const mac = (secret: string, nonce: string, user: string, pass: string, admin: boolean) =>
  createHmac('sha1', secret).update([nonce, user, pass, admin ? 'admin' : 'notadmin'].join('\x00')).digest('hex');

const USER_PASSWORD = 'complement_meets_min_pasword_req_user-1';

describe('Complement entrypoint (docker/complement-entrypoint.sh)', () => {
  let dataRoot: string;
  let hs: Running;
  let db: Knex;
  let keyId: string;
  const hsDir = () => join(dataRoot, 'hs1');

  beforeAll(async () => {
    dataRoot = mkdtempSync(join(tmpdir(), 'gatehouse-entrypoint-'));
    hs = await startEntrypoint({ SERVER_NAME: 'hs1', GATEHOUSE_DATA_DIR: dataRoot });
    db = knexFactory({ client: 'sqlite3', connection: { filename: join(hsDir(), 'homeserver.db') }, useNullAsDefault: true });
  });
  afterAll(async () => {
    await db?.destroy();
    if (hs) await stopEntrypoint(hs);
    rmSync(dataRoot, { recursive: true, force: true });
  });

  it('writes a config with Complement\'s settings that the loader accepts without warnings', () => {
    const path = join(hsDir(), 'homeserver.yaml');
    const { config, warnings } = loadConfigFile(path);
    expect(warnings).toEqual([]);
    expect(config.server_name).toBe('hs1');
    expect(config.public_baseurl).toBe('http://127.0.0.1:8008/');
    expect(config.registration_shared_secret).toBe('complement');
    expect(config.enable_registration).toBe(true);
    expect(config.enable_registration_without_verification).toBe(true);
    expect(config.password_config.policy.enabled).toBe(false);
    const off = { per_second: 9999, burst_count: 9999 };
    expect(config.rc_login).toEqual({ address: off, account: off, failed_attempts: off });
    expect(config.rc_registration).toEqual(off);
    expect(config.database).toEqual({ name: 'sqlite3', args: { database: join(hsDir(), 'homeserver.db') } });
    expect(config.signing_key_path).toBe(join(hsDir(), 'hs1.signing.key'));
    expect(existsSync(config.signing_key_path)).toBe(true);
  });

  it('replaces the shell with node, so docker stop\'s SIGTERM reaches the server', () => {
    const cmdline = readFileSync(`/proc/${hs.child.pid}/cmdline`, 'utf8').split('\0');
    expect(cmdline).toContain(join(ROOT, 'dist/src/main.js'));
    expect(cmdline.join(' ')).not.toContain('complement-entrypoint');
  });

  it('is healthy by the image\'s healthcheck script, and unhealthy where nothing listens', async () => {
    expect(healthcheck(Number(new URL(hs.url).port))).toBe(0);
    expect(healthcheck(await freePort())).toBe(1);
  });

  it('registers user-1 with one m.login.dummy request', async () => {
    const res = await call(hs.url, 'POST', '/_matrix/client/v3/register', {
      auth: { type: 'm.login.dummy' },
      username: 'user-1',
      password: USER_PASSWORD,
    });
    expect(res.status).toBe(200);
    expect(res.body.user_id).toBe('@user-1:hs1');
    expect(typeof res.body.access_token).toBe('string');
    expect(typeof res.body.device_id).toBe('string');
    const who = await call(hs.url, 'GET', '/_matrix/client/v3/account/whoami', undefined, res.body.access_token);
    expect(who.body).toEqual({ user_id: '@user-1:hs1', device_id: res.body.device_id, is_guest: false });
    expect(await db('users').where({ user_id: '@user-1:hs1' }).first()).toMatchObject({ is_admin: 0, deactivated: 0 });
  });

  it('accepts the simple passwords Complement uses (no password policy)', async () => {
    for (const [i, password] of ['helloworld', 'password', 'übers3kr1t', 'x'].entries()) {
      const res = await call(hs.url, 'POST', '/_matrix/client/v3/register', {
        auth: { type: 'm.login.dummy' },
        username: `user-pw${i}`,
        password,
      });
      expect(res.status, password).toBe(200);
    }
  });

  it('creates an admin through shared-secret registration with the secret "complement"', async () => {
    const nonce1 = await call(hs.url, 'GET', '/_synapse/admin/v1/register');
    expect(nonce1.status).toBe(200);
    // A MAC made with another secret is refused, and no user appears.
    const wrong = await call(hs.url, 'POST', '/_synapse/admin/v1/register', {
      nonce: nonce1.body.nonce,
      username: 'admin-1',
      password: 'sUp3rs3kr1t',
      admin: true,
      mac: mac('not-complement', nonce1.body.nonce, 'admin-1', 'sUp3rs3kr1t', true),
    });
    expect(wrong.status).toBe(403);
    expect(wrong.body.errcode).toBe('M_FORBIDDEN');
    expect(await db('users').where({ user_id: '@admin-1:hs1' }).first()).toBeUndefined();

    const nonce2 = await call(hs.url, 'GET', '/_synapse/admin/v1/register');
    const res = await call(hs.url, 'POST', '/_synapse/admin/v1/register', {
      nonce: nonce2.body.nonce,
      username: 'admin-1',
      password: 'sUp3rs3kr1t',
      admin: true,
      mac: mac('complement', nonce2.body.nonce, 'admin-1', 'sUp3rs3kr1t', true),
    });
    expect(res.status).toBe(200);
    expect(res.body.user_id).toBe('@admin-1:hs1');
    expect(typeof res.body.access_token).toBe('string');
    expect(await db('users').where({ user_id: '@admin-1:hs1' }).first()).toMatchObject({ is_admin: 1 });
  });

  it('logs in with the legacy body Complement sends for existing blueprint users', async () => {
    const res = await call(hs.url, 'POST', '/_matrix/client/v3/login', {
      type: 'm.login.password',
      user: 'user-1',
      password: USER_PASSWORD,
      auth: { type: 'm.login.dummy' },
    });
    expect(res.status).toBe(200);
    expect(res.body.user_id).toBe('@user-1:hs1');
    expect(res.body.home_server).toBe('hs1');
  });

  it('has rate limits out of the way: many failed logins in a row are 403, never 429', async () => {
    const devicesBefore = await db('devices').where({ user_id: '@user-1:hs1' }).count({ n: '*' });
    for (let i = 0; i < 12; i++) {
      const res = await call(hs.url, 'POST', '/_matrix/client/v3/login', { type: 'm.login.password', user: 'user-1', password: `wrong-${i}` });
      expect(res.status).toBe(403);
      expect(res.body.errcode).toBe('M_FORBIDDEN');
    }
    expect(await db('devices').where({ user_id: '@user-1:hs1' }).count({ n: '*' })).toEqual(devicesBefore);
  });

  it('keeps users and the signing key across a restart with the same SERVER_NAME', async () => {
    const before = await call(hs.url, 'GET', '/_matrix/key/v2/server');
    expect(before.status).toBe(200);
    keyId = Object.keys(before.body.verify_keys)[0]!;
    expect(keyId).toMatch(/^ed25519:/);

    await db.destroy();
    expect(await stopEntrypoint(hs)).toBe(0);
    expect(healthcheck(Number(new URL(hs.url).port))).toBe(1);

    hs = await startEntrypoint({ SERVER_NAME: 'hs1', GATEHOUSE_DATA_DIR: dataRoot });
    db = knexFactory({ client: 'sqlite3', connection: { filename: join(hsDir(), 'homeserver.db') }, useNullAsDefault: true });

    const login = await call(hs.url, 'POST', '/_matrix/client/v3/login', { type: 'm.login.password', user: 'user-1', password: USER_PASSWORD });
    expect(login.status).toBe(200);
    expect(login.body.user_id).toBe('@user-1:hs1');
    const after = await call(hs.url, 'GET', '/_matrix/key/v2/server');
    expect(Object.keys(after.body.verify_keys)).toEqual([keyId]);
    expect(after.body.verify_keys[keyId].key).toBe(before.body.verify_keys[keyId].key);
    expect(await db('users').where({ user_id: '@admin-1:hs1' }).first()).toMatchObject({ is_admin: 1 });
    // Registering the same localpart again is refused: the account is still there.
    const again = await call(hs.url, 'POST', '/_matrix/client/v3/register', { auth: { type: 'm.login.dummy' }, username: 'user-1', password: 'x' });
    expect(again.status).toBe(400);
    expect(again.body.errcode).toBe('M_USER_IN_USE');
  });

  it('gives another SERVER_NAME its own data directory and key', async () => {
    const hs2 = await startEntrypoint({ SERVER_NAME: 'hs2', GATEHOUSE_DATA_DIR: dataRoot });
    try {
      const key = await call(hs2.url, 'GET', '/_matrix/key/v2/server');
      expect(key.body.server_name).toBe('hs2');
      expect(Object.keys(key.body.verify_keys)).not.toContain(keyId);
      const login = await call(hs2.url, 'POST', '/_matrix/client/v3/login', { type: 'm.login.password', user: 'user-1', password: USER_PASSWORD });
      expect(login.status).toBe(403);
      expect(login.body.errcode).toBe('M_FORBIDDEN');
      expect(existsSync(join(dataRoot, 'hs2', 'homeserver.db'))).toBe(true);
    } finally {
      expect(await stopEntrypoint(hs2)).toBe(0);
    }
  });

  it.each([
    ['a server name with a space', { SERVER_NAME: 'hs 1' }, 'SERVER_NAME'],
    ['a server name that climbs out of the data directory', { SERVER_NAME: '..' }, 'SERVER_NAME'],
    ['a server name that would break the YAML', { SERVER_NAME: 'hs1"\nenable_registration: false' }, 'SERVER_NAME'],
    ['a port that is not a number', { SERVER_NAME: 'hs9', GATEHOUSE_PORT: '80; rm' }, 'GATEHOUSE_PORT'],
    ['an unknown log level', { SERVER_NAME: 'hs9', GATEHOUSE_LOG_LEVEL: 'loud' }, 'GATEHOUSE_LOG_LEVEL'],
  ])('refuses %s, writing nothing', async (_what, env, named) => {
    const root = mkdtempSync(join(tmpdir(), 'gatehouse-entrypoint-bad-'));
    try {
      const child = runEntrypoint({ GATEHOUSE_PORT: '1', ...env, GATEHOUSE_DATA_DIR: root });
      let err = '';
      child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code).toBe(1);
      expect(err).toContain(named);
      expect(readdirSync(root)).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

// --------------------------------------------------------------------------
// docker-compose.yml
// --------------------------------------------------------------------------

describe('docker-compose.yml', () => {
  const compose = parseYaml(read('docker-compose.yml')) as any;
  const gh = compose.services.gatehouse;
  const pgService = compose.services.postgres;
  const mount = (gh.volumes as string[]).map((v) => v.split(':')).find(([src]) => src!.endsWith('.yaml'))!;
  const configFile = join(ROOT, mount[0]!);
  const configRaw = parseYaml(readFileSync(configFile, 'utf8')) as Record<string, any>;

  it('runs PostgreSQL 16 with a named volume and a healthcheck', () => {
    expect(pgService.image).toMatch(/^postgres:16(-|$)/);
    const [volume, target] = (pgService.volumes[0] as string).split(':');
    expect(Object.keys(compose.volumes)).toContain(volume);
    expect(target).toBe('/var/lib/postgresql/data');
    expect(pgService.healthcheck.test.join(' ')).toContain('pg_isready');
  });

  it('builds Gatehouse from the Dockerfile and starts it with the mounted config', () => {
    expect(gh.build === '.' || gh.build?.context === '.').toBe(true);
    expect(mount[0]).toBe('./docker/homeserver.compose.yaml');
    expect(mount[2]).toBe('ro');
    const cmd = gh.command as string[];
    expect(cmd.slice(0, 3)).toEqual(['node', '/app/dist/src/main.js', 'start']);
    expect(cmd[cmd.indexOf('--config') + 1]).toBe(mount[1]);
    expect(gh.depends_on.postgres.condition).toBe('service_healthy');
    // The healthcheck runs the script the image carries.
    expect(gh.healthcheck.test).toEqual(['CMD', 'node', '/app/docker/healthcheck.mjs']);
    expect(contextCopies(stages(instructions(read('Dockerfile'))).at(-1)!.body).has('/app/docker/healthcheck.mjs')).toBe(true);
  });

  it('mounts a config that buildConfig accepts, pointing at the postgres service, with state in the named volume', () => {
    const { config, warnings } = buildConfig(configRaw, dirname(configFile));
    expect(warnings).toEqual([]);
    expect(config.database.name).toBe('postgres');
    const args = (config.database as Extract<typeof config.database, { name: 'postgres' }>).args;
    expect(Object.keys(compose.services)).toContain(args.host);
    expect(args.user).toBe(pgService.environment.POSTGRES_USER);
    expect(args.password).toBe(pgService.environment.POSTGRES_PASSWORD);
    expect(args.database).toBe(pgService.environment.POSTGRES_DB);
    const dataMount = (gh.volumes as string[]).map((v) => v.split(':')).find(([src]) => Object.keys(compose.volumes).includes(src!))!;
    expect(config.data_directory).toBe(dataMount[1]);
    expect(config.signing_key_path.startsWith(`${dataMount[1]}/`)).toBe(true);
    // The published port reaches the listener, which listens on every container interface.
    const [hostIp, , containerPort] = (gh.ports[0] as string).split(':');
    expect(hostIp).toBe('127.0.0.1');
    expect(config.listeners).toEqual([{ port: Number(containerPort), bind_addresses: ['0.0.0.0'], x_forwarded: false }]);
    // No secret is checked in: shared-secret registration stays off until the admin sets one.
    expect(config.registration_shared_secret).toBeNull();
  });

  describe.each(backends())('its config, served by the real server (%s)', (backend) => {
    let srv: TestServer;
    beforeAll(async () => {
      // Everything from the compose config except where the database and files are.
      const { database: _db, listeners: _l, data_directory: _d, signing_key_path: _s, ...rest } = configRaw;
      srv = await startServer(backend, { ...rest, registration_shared_secret: null });
    });
    afterAll(async () => {
      await srv?.stop();
    });

    it('starts without warnings and serves the client API', async () => {
      expect(srv.logs()).not.toContain('warning');
      const res = await srv.request('GET', '/_matrix/client/versions');
      expect(res.status).toBe(200);
    });

    it('keeps registration closed until the admin opens it', async () => {
      const reg = await srv.request('POST', '/_matrix/client/v3/register', {
        body: { auth: { type: 'm.login.dummy' }, username: 'compose-user', password: 'a long enough password' },
      });
      expect(reg.status).toBe(403);
      expect(reg.body.errcode).toBe('M_FORBIDDEN');
      const nonce = await srv.request('GET', '/_synapse/admin/v1/register');
      expect(nonce.status).toBe(400);
      expect(Number((await srv.db()('users').count({ n: '*' }))[0]!.n)).toBe(0);
      expect(Number((await srv.db()('registration_nonces').count({ n: '*' }))[0]!.n)).toBe(0);
    });
  });
});

// --------------------------------------------------------------------------
// The docs keep up with the code
// --------------------------------------------------------------------------

describe('docs', () => {
  it('docs/configuration.md describes every configuration key', () => {
    const doc = read('docs/configuration.md');
    const { config } = buildConfig({ server_name: 'example.org' }, ROOT);
    const { config: pg } = buildConfig({ server_name: 'example.org', database: { name: 'psycopg2' } }, ROOT);
    // YAML key paths whose name differs from the validated Config's field.
    const yamlName: Record<string, string> = {
      ui_auth_session_lifetime: 'ui_auth.session_lifetime',
      'threepid_policy.allowedLocal3pids': 'allowed_local_3pids',
      'threepid_policy.emailDomainWhitelist': 'register.policy.threepid.email.domain.whitelist',
      'threepid_policy.emailDomainBlacklist': 'register.policy.threepid.email.domain.blacklist',
    };
    const keys: string[] = [];
    const walk = (value: unknown, path: string) => {
      if (path === 'database') {
        keys.push('database.name');
        for (const k of [...Object.keys(config.database.args), ...Object.keys(pg.database.args)]) keys.push(`database.args.${k}`);
      } else if (Array.isArray(value)) {
        // A list of mappings documents its fields; a list of strings (turn_uris) is one key.
        if (typeof value[0] === 'object' && value[0] !== null) for (const k of Object.keys(value[0] as object)) keys.push(`${path}[].${k}`);
        else keys.push(yamlName[path] ?? path);
      } else if (typeof value === 'object' && value !== null && !('per_second' in value)) {
        for (const [k, v] of Object.entries(value)) walk(v, path ? `${path}.${k}` : k);
      } else keys.push(yamlName[path] ?? path);
    };
    walk(config, '');
    expect(keys.length).toBeGreaterThan(30);
    const missing = [...new Set(keys)].filter((k) => !doc.includes(`\`${k}\``));
    expect(missing).toEqual([]);
  });

  it('docs/endpoints.md lists every route under "Implemented", with its method', () => {
    const doc = read('docs/endpoints.md');
    const implemented = doc.slice(doc.indexOf('## Implemented'), doc.indexOf('## Planned'));
    expect(implemented.length).toBeGreaterThan(100);
    const rows = implemented.split('\n').filter((l) => l.startsWith('|'));
    const routeFiles: string[] = [];
    const walk = (d: string) => {
      for (const n of readdirSync(d)) {
        const p = join(d, n);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.ts')) routeFiles.push(p);
      }
    };
    walk(join(ROOT, 'src/http/routes'));
    // Each route opens with a comment naming its method and path (the project's convention).
    const routes = routeFiles.flatMap((f) =>
      [...readFileSync(f, 'utf8').matchAll(/^\s*\/\/ (GET|POST|PUT|DELETE|PATCH) (\/\S+)/gm)].map((m) => ({ method: m[1]!, path: m[2]! })),
    );
    expect(routes.length).toBeGreaterThan(15);
    const undocumented = routes
      .map(({ method, path }) => ({ method, path: path.replace('/_matrix/client/v3/', '/_matrix/client/{v3,r0}/') }))
      .filter(({ method, path }) => !rows.some((r) => r.startsWith(`| ${method} |`) && r.includes(`\`${path}`)))
      .map(({ method, path }) => `${method} ${path}`);
    expect(undocumented).toEqual([]);
  });
});
