// Spawns the real, compiled server on a free port with a temp config and
// database, as Complement does, and speaks HTTP to it.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { stringify } from 'yaml';
import pino from 'pino';
import { type EphemeralServer, startEphemeral } from '../../src/index.js';
import { type Backend, createPgDatabase, type PgDatabase, pgKnex } from './backends.js';

const MAIN = new URL('../../dist/src/main.js', import.meta.url).pathname;

/** Rate limits out of the way; tests that exercise them set their own. */
const OPEN = { per_second: 100000, burst_count: 100000 };

export interface Response<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface RequestOptions {
  body?: unknown;
  /** Sent as-is instead of JSON-encoding `body`. */
  rawBody?: string;
  token?: string;
  headers?: Record<string, string>;
}

export interface TestServer {
  url: string;
  serverName: string;
  backend: Backend;
  dataDir: string;
  logs: () => string;
  request<T = any>(method: string, path: string, opts?: RequestOptions): Promise<Response<T>>;
  /** Registers through the one-request dummy flow; returns the 200 body. */
  register(username: string, password?: string, extra?: Record<string, unknown>): Promise<{ user_id: string; access_token: string; device_id: string }>;
  login(username: string, password?: string, extra?: Record<string, unknown>): Promise<{ user_id: string; access_token: string; device_id: string }>;
  /** A direct connection to the server's database, for asserting what changed. */
  db(): Knex;
  /** Stops the process and starts it again on the same config, data directory and database (`url` changes). */
  restart(): Promise<void>;
  stop(): Promise<void>;
  /** The PostgreSQL database this server uses (null on SQLite), for `shareDatabaseWith`. */
  pgArgs: PgDatabase['args'] | null;
}

export interface StartOptions {
  /**
   * PostgreSQL only: run this server on the database of an already running
   * one (several processes behind one database). The first server owns the
   * database and drops it on stop; stop this one first.
   */
  shareDatabaseWith?: TestServer;
  /**
   * Run the server inside this test process with the package's own
   * `startEphemeral` (no second process to spawn), on the same config and
   * database as a spawned one. For suites that only speak HTTP and read the
   * database: the signing key lives in memory (not in `dataDir`), the server
   * has an extra admin account (`ephemeral_admin`), and `logs()` are the
   * server's log lines only (no stderr of a process).
   */
  inProcess?: boolean;
}

export const DEFAULT_PASSWORD = 'correct horse battery staple';

export async function startServer(
  backend: Backend = 'sqlite',
  overrides: Record<string, unknown> = {},
  options: StartOptions = {},
): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-test-'));
  /** Set when this server created the database (and so drops it). */
  let pg: PgDatabase | null = null;
  let pgArgs: PgDatabase['args'] | null = null;
  let database: Record<string, unknown>;
  if (options.shareDatabaseWith) {
    if (backend !== 'postgres' || !options.shareDatabaseWith.pgArgs) throw new Error('shareDatabaseWith needs two PostgreSQL servers');
    pgArgs = options.shareDatabaseWith.pgArgs;
    database = { name: 'psycopg2', args: pgArgs };
  } else if (backend === 'postgres') {
    pg = await createPgDatabase();
    pgArgs = pg.args;
    database = { name: 'psycopg2', args: pg.args };
  } else {
    database = { name: 'sqlite3', args: { database: join(dir, 'homeserver.db') } };
  }
  const serverName = 'test.local';
  const config = {
    server_name: serverName,
    listeners: [{ port: 0, bind_addresses: ['127.0.0.1'], type: 'http' }],
    database,
    signing_key_path: join(dir, 'signing.key'),
    enable_registration: true,
    enable_registration_without_verification: true,
    registration_shared_secret: 'test-shared-secret',
    rc_login: { address: OPEN, account: OPEN, failed_attempts: OPEN },
    rc_registration: OPEN,
    rc_registration_token_validity: OPEN,
    rc_3pid_validation: OPEN,
    log_level: 'info',
    // Fast hashing keeps the suites quick; the parameters are still argon2id.
    argon2: { memory_cost: 1024, time_cost: 1, parallelism: 1 },
    ...overrides,
  };
  const configPath = join(dir, 'homeserver.yaml');
  writeFileSync(configPath, stringify(config));

  let child!: ChildProcess;
  let output = '';
  let inProcess: EphemeralServer | null = null;
  /** Starts the server inside this process (options.inProcess) on the config above; resolves to its URL. */
  const launchInProcess = async (): Promise<string> => {
    const logger = pino({ level: String(config.log_level), base: { name: 'gatehouse' } }, { write: (line: string) => void (output += line) });
    inProcess = await startEphemeral({
      serverName,
      port: 0,
      logger,
      adminLocalpart: 'ephemeral_admin',
      // As a spawned test server: no public_baseurl unless the suite gives one (links then use https://test.local/).
      config: { public_baseurl: null, ...config },
    });
    return inProcess.baseUrl;
  };
  /** Spawns the server on the config above; resolves to its URL once it is ready. */
  const launch = async (): Promise<string> => {
    if (options.inProcess) return launchInProcess();
    child = spawn(process.execPath, [MAIN, 'start', '--config', configPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, GATEHOUSE_CONFIG: '' },
    });
    // Only this run's output counts towards readiness (a restart appends to the log).
    const from = output.length;
    const ready = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 20_000);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        for (const line of output.slice(from).split('\n')) {
          if (!line.includes('Gatehouse is ready')) continue;
          try {
            const parsed = JSON.parse(line) as { listening: string[] };
            clearTimeout(timer);
            resolve(parsed.listening[0]!);
          } catch {
            /* partial line */
          }
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`server exited with ${code}:\n${output}`));
      });
    });
    child.removeAllListeners('exit');
    return ready;
  };
  let url = await launch();
  const killChild = async () => {
    if (options.inProcess) {
      await inProcess?.close();
      inProcess = null;
      return;
    }
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  };

  let knex: Knex | null = null;
  const server: TestServer = {
    // A getter: a restart listens on a new port.
    get url() {
      return url;
    },
    serverName,
    backend,
    dataDir: dir,
    pgArgs,
    logs: () => output,
    async request(method, path, opts = {}) {
      const headers: Record<string, string> = { ...opts.headers };
      let body: string | undefined;
      if (opts.rawBody !== undefined) body = opts.rawBody;
      else if (opts.body !== undefined) {
        body = JSON.stringify(opts.body);
        headers['Content-Type'] ??= 'application/json';
      }
      if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
      const res = await fetch(url + path, { method, headers, body });
      const text = await res.text();
      let parsed: unknown = undefined;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      return { status: res.status, headers: res.headers, body: parsed as any, text };
    },
    async register(username, password = DEFAULT_PASSWORD, extra = {}) {
      const res = await server.request('POST', '/_matrix/client/v3/register', {
        body: { username, password, auth: { type: 'm.login.dummy' }, ...extra },
      });
      if (res.status !== 200) throw new Error(`register ${username}: ${res.status} ${res.text}`);
      return res.body;
    },
    async login(username, password = DEFAULT_PASSWORD, extra = {}) {
      const res = await server.request('POST', '/_matrix/client/v3/login', {
        body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: username }, password, ...extra },
      });
      if (res.status !== 200) throw new Error(`login ${username}: ${res.status} ${res.text}`);
      return res.body;
    },
    db() {
      knex ??=
        backend === 'postgres'
          ? pgKnex(pgArgs!)
          : knexFactory({ client: 'sqlite3', connection: { filename: join(dir, 'homeserver.db') }, useNullAsDefault: true });
      return knex;
    },
    async restart() {
      await killChild();
      url = await launch();
    },
    async stop() {
      if (knex) await knex.destroy();
      await killChild();
      if (pg) await pg.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/**
 * startServer inside this test process (`inProcess`): for suites that only
 * speak HTTP and read the database. Import it as `startServer` in such a suite.
 */
export function startInProcessServer(backend: Backend = 'sqlite', overrides: Record<string, unknown> = {}): Promise<TestServer> {
  return startServer(backend, overrides, { inProcess: true });
}
