// The scale section of `npm run bench` (BENCH_ONLY=scale): whoami and login
// with a million users in the database against the same with a thousand.
//
// For each backend (SQLite; PostgreSQL too when BENCH_PG is set) and each size
// (1,000 users, then BENCH_SCALE_USERS, default 1,000,000):
//   1. a fresh database; the server is started once to migrate it and to
//      register one user through the API (its argon2 hash, at the server's
//      default parameters, is what every seeded user gets: all share the
//      bench password, so any of them can log in);
//   2. with the server stopped, bulk SQL seeds N users (with profiles),
//      N devices, 2N access tokens (two per device; the token of row i is
//      `gha_bench_<i>`, stored as its SHA-256 like every token) and N/10
//      refresh tokens (so that their table is not empty when its plans are read):
//      SQLite: one transaction of prepared multi-row INSERTs (node:sqlite, in
//      this process; the server is not running, so no second SQLite copy
//      shares the file with it); PostgreSQL: INSERT ... SELECT FROM
//      generate_series, hashing in SQL, then VACUUM (ANALYZE) (what autovacuum
//      does soon after such a load: the measurement sees the steady state);
//   3. the query plans of the hot-path queries (token lookup, login lookups,
//      device upsert, token deletion, last-seen update) are printed: each must
//      use an index;
//   4. the server is started again on that database and measured:
//      whoami max req/s (tokens rotated over 1,000 seeded tokens, BENCH_SCALE_PROBE_TOKENS, spread over
//      the whole table, so neither a page cache nor a token cache sees one
//      hot row), whoami p50/p99 at a fixed moderate rate, login p50/p99 at a
//      fixed moderate rate (users rotated over 64 seeded users spread over the
//      table), and server CPU per request.
// Rows: each 1M figure against the same figure at 1,000 users (goal: within 1.5×).

import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';

const PASSWORD = 'bench-password-not-secret';
const SERVER_NAME = 'bench.local';
// Tokens the whoami load rotates over (BENCH_SCALE_PROBE_TOKENS). With an in-process token cache, set it above the
// cache's bound to measure the database lookup rather than the cache.
const PROBE_TOKENS = Number(process.env.BENCH_SCALE_PROBE_TOKENS ?? 1000);
// BENCH_SCALE_TOKEN_CACHE=off: the server's access-token cache off at both sizes, so that whoami measures the
// database lookup at 1k and at 1M rows alike (a probe set larger than the cache would compare a cached 1k run with
// an uncached 1M run instead).
const CACHE_OFF = process.env.BENCH_SCALE_TOKEN_CACHE === 'off';
const serverOverrides = CACHE_OFF ? { caches: { access_token_max_entries: 0 } } : {};
const PROBE_USERS = 64;
const BATCH = 256; // rows per multi-row INSERT (SQLite)
const WHOAMI = '/_matrix/client/v3/account/whoami';

const sha256 = (s) => createHash('sha256').update(s, 'utf8').digest('hex');
const userId = (i) => `@s${i}:${SERVER_NAME}`;
const tokenOf = (i) => `gha_bench_${i}`;
/** `count` indices spread evenly over [0, n). */
const spread = (n, count) => Array.from({ length: Math.min(n, count) }, (_, j) => Math.floor((j * n) / Math.min(n, count)));

/** The SQL the hot paths run, with sample arguments (see src/repositories/{tokens,users,devices}.ts). */
function hotQueries(n) {
  const mid = Math.floor(n / 2);
  return [
    {
      name: 'token lookup (every authenticated request)',
      sql: `SELECT t.id, t.token_hash, t.user_id, t.device_id, t.refresh_token_id, t.used, t.expires_ts, u.is_guest, u.is_admin, u.deactivated, u.approved, u.locked, u.locked_until, u.suspended, u.suspended_until FROM access_tokens t JOIN users u ON u.user_id = t.user_id WHERE t.token_hash = ? LIMIT 1`,
      args: [sha256(tokenOf(mid))],
    },
    { name: 'login: user by ID', sql: 'SELECT * FROM users WHERE user_id = ? LIMIT 1', args: [userId(mid)] },
    { name: 'login: user by localpart, case-insensitive', sql: 'SELECT * FROM users WHERE lower(localpart) = ? LIMIT 2', args: [`s${mid}`] },
    { name: 'login: access tokens of a device ID', sql: 'DELETE FROM access_tokens WHERE user_id = ? AND device_id IN (?)', args: [userId(mid), 'NEWDEVICE'] },
    { name: 'login: refresh tokens of a device ID', sql: 'DELETE FROM refresh_tokens WHERE user_id = ? AND device_id IN (?)', args: [userId(mid), 'NEWDEVICE'] },
    {
      name: 'login: device upsert',
      sql: 'INSERT INTO devices (user_id, device_id, display_name, created_ts, last_seen_ts, last_seen_ip, last_seen_user_agent) VALUES (?, ?, NULL, 1, 1, NULL, NULL) ON CONFLICT (user_id, device_id) DO UPDATE SET last_seen_ts = excluded.last_seen_ts',
      args: [userId(mid), `D${mid}`],
    },
    { name: 'last-seen update', sql: 'UPDATE devices SET last_seen_ts = 1 WHERE user_id = ? AND device_id = ?', args: [userId(mid), `D${mid}`] },
  ];
}

/** Seeds SQLite; resolves to the seconds it took. */
function seedSqlite(file, n, hash, now) {
  const db = new DatabaseSync(file);
  // This connection only: random token hashes make the unique index's inserts random, which SQLite's
  // default 2 MiB page cache turns into I/O; the server opens the file with its own settings afterwards.
  db.exec('PRAGMA cache_size = -1048576');
  const t0 = performance.now();
  const insertMany = (table, cols, count, row) => {
    const one = `(${cols.map(() => '?').join(', ')})`;
    const full = db.prepare(`INSERT INTO ${table} (${cols.join(', ')}) VALUES ${Array(BATCH).fill(one).join(', ')}`);
    for (let start = 0; start < count; start += BATCH) {
      const end = Math.min(count, start + BATCH);
      const args = [];
      for (let i = start; i < end; i++) args.push(...row(i));
      if (end - start === BATCH) full.run(...args);
      else db.prepare(`INSERT INTO ${table} (${cols.join(', ')}) VALUES ${Array(end - start).fill(one).join(', ')}`).run(...args);
    }
  };
  db.exec('BEGIN');
  insertMany('users', ['user_id', 'localpart', 'password_hash', 'created_ts'], n, (i) => [userId(i), `s${i}`, hash, now]);
  insertMany('profiles', ['user_id', 'displayname'], n, (i) => [userId(i), `Seeded ${i}`]);
  insertMany('devices', ['user_id', 'device_id', 'display_name', 'created_ts', 'last_seen_ts'], n, (i) => [userId(i), `D${i}`, null, now, now]);
  insertMany('access_tokens', ['token_hash', 'user_id', 'device_id', 'created_ts'], 2 * n, (i) => [sha256(tokenOf(i)), userId(i % n), `D${i % n}`, now]);
  insertMany('refresh_tokens', ['token_hash', 'user_id', 'device_id', 'created_ts'], Math.ceil(n / 10), (i) => [sha256(`ghr_bench_${i}`), userId(10 * i), `D${10 * i}`, now]);
  db.exec('COMMIT');
  const seconds = (performance.now() - t0) / 1000;
  db.close();
  return seconds;
}

function plansSqlite(file, n) {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return hotQueries(n).map((q) => {
      const detail = db
        .prepare(`EXPLAIN QUERY PLAN ${q.sql}`)
        .all(...q.args)
        .map((r) => r.detail)
        .join('; ');
      // SQLite prints no plan for an INSERT; its conflict target (user_id, device_id) is the primary key.
      return { name: q.name, plan: detail || '(INSERT: no plan rows; ON CONFLICT on the primary key)', indexed: !/\bSCAN\b/.test(detail) };
    });
  } finally {
    db.close();
  }
}

async function seedPg(client, n, hash, now) {
  const t0 = performance.now();
  await client.query('BEGIN');
  const series = `generate_series(0, ${n - 1}) g`;
  await client.query(`INSERT INTO users (user_id, localpart, password_hash, created_ts) SELECT '@s' || g || ':${SERVER_NAME}', 's' || g, $1, $2 FROM ${series}`, [hash, now]);
  await client.query(`INSERT INTO profiles (user_id, displayname) SELECT '@s' || g || ':${SERVER_NAME}', 'Seeded ' || g FROM ${series}`);
  await client.query(`INSERT INTO devices (user_id, device_id, created_ts, last_seen_ts) SELECT '@s' || g || ':${SERVER_NAME}', 'D' || g, $1, $1 FROM ${series}`, [now]);
  await client.query(
    `INSERT INTO access_tokens (token_hash, user_id, device_id, created_ts)
       SELECT encode(sha256(convert_to('gha_bench_' || g, 'UTF8')), 'hex'), '@s' || (g % ${n}) || ':${SERVER_NAME}', 'D' || (g % ${n}), $1
       FROM generate_series(0, ${2 * n - 1}) g`,
    [now],
  );
  await client.query(
    `INSERT INTO refresh_tokens (token_hash, user_id, device_id, created_ts)
       SELECT encode(sha256(convert_to('ghr_bench_' || g, 'UTF8')), 'hex'), '@s' || (10 * g) || ':${SERVER_NAME}', 'D' || (10 * g), $1
       FROM generate_series(0, ${Math.ceil(n / 10) - 1}) g`,
    [now],
  );
  await client.query('COMMIT');
  const seconds = (performance.now() - t0) / 1000;
  // The steady state of a database that has lived with these rows: statistics, visibility map and hint bits set.
  // Without it, autovacuum's insert-triggered VACUUM and the first reads' hint-bit writes land in the measurement.
  await client.query('VACUUM (ANALYZE)');
  return seconds;
}

async function plansPg(client, n) {
  const out = [];
  for (const q of hotQueries(n)) {
    let i = 0;
    const sql = q.sql.replace(/\?/g, () => `$${++i}`);
    // EXPLAIN (no ANALYZE): the plan only, nothing is executed.
    const res = await client.query(`EXPLAIN ${sql}`, q.args);
    const plan = res.rows.map((r) => r['QUERY PLAN'].trim()).join(' | ');
    out.push({ name: q.name, plan, indexed: !/Seq Scan/.test(plan) });
  }
  return out;
}

/**
 * Runs the section; resolves to `{ rows, notes }` for run.mjs's report.
 * deps: startGatehouse(overrides), stopChild, runLoad(url, opts), phase, log, cleanup(server), register(url, username)
 */
export async function scaleSection(deps) {
  const { startGatehouse, stopChild, runLoad, phase, log, cleanup, register, users, pgUrl, duration, connections, whoamiRate, loginRate } = deps;
  const rows = [];
  const notes = [];
  const only = process.env.BENCH_SCALE_BACKENDS ? process.env.BENCH_SCALE_BACKENDS.split(',').map((b) => b.trim()) : null;
  const backends = ['sqlite', ...(pgUrl ? ['postgres'] : [])].filter((b) => !only || only.includes(b));
  if (!pgUrl) notes.push('scale: PostgreSQL not measured (set BENCH_PG=postgres://... to include it)');

  for (const backend of backends) {
    const results = {};
    for (const n of [1000, users]) {
      log(`· scale, ${backend}, ${n.toLocaleString('en')} users`);
      // 1. A fresh database, migrated by the server itself; one user registered through the API.
      let database;
      let admin = null;
      let dbName = null;
      let dir = null;
      if (backend === 'sqlite') {
        dir = mkdtempSync(join(tmpdir(), 'gatehouse-scale-'));
        database = { name: 'sqlite3', args: { database: join(dir, 'homeserver.db') } };
      } else {
        const url = new URL(pgUrl);
        dbName = `gh_bench_${randomBytes(5).toString('hex')}`;
        admin = new pg.Client({ connectionString: pgUrl });
        await admin.connect();
        await admin.query(`CREATE DATABASE ${dbName}`);
        database = {
          name: 'psycopg2',
          args: { host: url.hostname, port: Number(url.port || 5432), user: decodeURIComponent(url.username), password: decodeURIComponent(url.password), database: dbName },
        };
      }
      const seeder = backend === 'postgres' ? new pg.Client({ ...database.args }) : null;
      try {
        let gh = await startGatehouse({ database, ...serverOverrides });
        await register(gh.url, 'model');
        await stopChild(gh.child);
        cleanup(gh);

        // 2. Bulk seed on the stopped server.
        const now = Date.now();
        let seedSeconds;
        let plans;
        if (backend === 'sqlite') {
          const hash = new DatabaseSync(database.args.database, { readOnly: true }).prepare('SELECT password_hash FROM users WHERE localpart = ?').get('model').password_hash;
          seedSeconds = seedSqlite(database.args.database, n, hash, now);
          plans = plansSqlite(database.args.database, n);
        } else {
          await seeder.connect();
          const hash = (await seeder.query('SELECT password_hash FROM users WHERE localpart = $1', ['model'])).rows[0].password_hash;
          seedSeconds = await seedPg(seeder, n, hash, now);
          plans = await plansPg(seeder, n);
        }
        log(`  seeded ${n} users, ${n} devices, ${2 * n} tokens in ${seedSeconds.toFixed(1)} s`);
        for (const p of plans) log(`  plan, ${p.name}: ${p.indexed ? 'index' : 'NO INDEX'}: ${p.plan}`);

        // 3. Measure on the seeded database.
        gh = await startGatehouse({ database, ...serverOverrides });
        const tokens = spread(2 * n, PROBE_TOKENS).map(tokenOf);
        const loginUsers = spread(n, PROBE_USERS).map((i) => `s${i}`);
        const check = await fetch(gh.url + WHOAMI, { headers: { authorization: `Bearer ${tokens.at(-1)}` } });
        if (check.status !== 200) throw new Error(`seeded token refused: ${check.status} ${await check.text()}`);
        const live = () => [gh.child.pid];
        const tokensLoad = { path: WHOAMI, mode: 'tokens', tokens };
        await runLoad(gh.url, { ...tokensLoad, connections, duration: 1 }); // warm-up
        const max = await phase(`whoami max, ${connections} connections, ${duration} s`, live, () => runLoad(gh.url, { ...tokensLoad, connections, duration }), gh.child.pid);
        const paced = await phase(`whoami at ${whoamiRate} req/s, ${Math.ceil(duration / 2)} s`, live, () =>
          runLoad(gh.url, { ...tokensLoad, connections: 10, overallRate: whoamiRate, duration: Math.ceil(duration / 2) }),
        );
        const login = await phase(
          `login at ${loginRate}/s, ${duration} s`,
          live,
          () => runLoad(gh.url, { mode: 'login', users: loginUsers, password: PASSWORD, connections: 4, overallRate: loginRate, duration }),
          gh.child.pid,
        );
        await stopChild(gh.child);
        cleanup(gh);
        results[n] = { seedSeconds, plans, max, paced, login };
        const errs = [max, paced, login].reduce((s, p) => s + p.result.non2xx + p.result.errors, 0);
        if (errs) notes.push(`WARNING: scale ${backend} ${n}: ${errs} non-2xx responses or errors`);
      } finally {
        await seeder?.end().catch(() => {});
        if (admin) {
          await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch((e) => log(`  could not drop ${dbName}: ${e.message}`));
          await admin.end();
        }
        if (dir) rmSync(dir, { recursive: true, force: true });
      }
    }

    const small = results[1000];
    const big = results[users];
    const label = `${(users / 1e6).toLocaleString('en')}M`;
    const latencyRow = (what, pick, phaseOf) => ({
      name: `${backend}: ${what} at ${label} users (ms; limit = 1k users)`,
      value: pick(big),
      limit: pick(small),
      ratio: pick(big) / pick(small),
      ratioNote: '×',
      target: '≤ 1.5×',
      pass: pick(big) <= 1.5 * pick(small),
      foreign: [phaseOf(big).foreign, phaseOf(small).foreign],
      errors: 0,
    });
    const usPer = (p) => (p.cpuMs * 1000) / p.result.ok;
    rows.push(
      {
        name: `${backend}: whoami req/s at ${label} users (limit = 1k users)`,
        value: big.max.result.perSecond,
        limit: small.max.result.perSecond,
        ratio: big.max.result.perSecond / small.max.result.perSecond,
        target: '≥ 0.67',
        pass: big.max.result.perSecond >= small.max.result.perSecond / 1.5,
        foreign: [big.max.foreign, small.max.foreign],
        errors: 0,
      },
      latencyRow(`whoami p50 at ${whoamiRate}/s`, (r) => r.paced.result.latency.p50, (r) => r.paced),
      latencyRow(`whoami p99 at ${whoamiRate}/s`, (r) => r.paced.result.latency.p99, (r) => r.paced),
      latencyRow(`login p50 at ${loginRate}/s`, (r) => r.login.result.latency.p50, (r) => r.login),
      latencyRow(`login p99 at ${loginRate}/s`, (r) => r.login.result.latency.p99, (r) => r.login),
    );
    notes.push(
      `scale ${backend}: seeding took ${small.seedSeconds.toFixed(1)} s (1k) / ${big.seedSeconds.toFixed(1)} s (${label}); ` +
        `whoami server CPU per request ${usPer(small.max).toFixed(0)} µs (1k) / ${usPer(big.max).toFixed(0)} µs (${label}); ` +
        `login server CPU per request ${(small.login.cpuMs / small.login.result.ok).toFixed(1)} ms / ${(big.login.cpuMs / big.login.result.ok).toFixed(1)} ms; ` +
        `logins served ${small.login.result.perSecond.toFixed(1)} / ${big.login.result.perSecond.toFixed(1)} per s of ${loginRate} asked`,
    );
    const unindexed = big.plans.filter((p) => !p.indexed);
    notes.push(
      unindexed.length
        ? `scale ${backend}: queries NOT using an index at ${label}: ${unindexed.map((p) => `${p.name} (${p.plan})`).join('; ')}`
        : `scale ${backend}: every hot-path query uses an index at ${label} (${big.plans.map((p) => p.name).join(', ')})`,
    );
  }
  return { rows, notes };
}
