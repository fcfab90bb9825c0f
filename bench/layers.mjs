// Per-layer costs of the whoami path, measured in-process on the compiled
// server code (dist/): what one request spends in each piece, as CPU time of
// the whole process (all threads) per operation. Steadier than end-to-end
// HTTP numbers on a shared machine, and it says where the time goes.
// Usage: npm run build && node bench/layers.mjs

import { hash as oneShotHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pino from 'pino';
import sqlite3 from 'sqlite3';

const dist = new URL('../dist/src/', import.meta.url);
const { createLogger } = await import(new URL('logger.js', dist));
const { hashToken, newToken } = await import(new URL('crypto/tokens.js', dist));
const { openDatabase, migrateToLatest } = await import(new URL('db/database.js', dist));
const Users = await import(new URL('repositories/users.js', dist));
const Tokens = await import(new URL('repositories/tokens.js', dist));

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-layers-'));
const results = [];

/** Runs `fn` `n` times with `inFlight` operations outstanding; CPU and wall time per operation. */
async function measure(name, n, fn, inFlight = 1) {
  for (let i = 0; i < Math.min(2000, n / 10); i++) await fn(); // warm up
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  const lane = async () => {
    while (next++ < n) await fn();
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const r = { name, cpuUs: (cpu.user + cpu.system) / n, wallUs: (wall * 1000) / n };
  results.push(r);
  process.stderr.write(`  ${name}: ${r.cpuUs.toFixed(1)} µs CPU/op\n`);
}

// 1. The request log line, as request-log.ts writes it, to a file as in the bench.
const line = { method: 'GET', path: '/_matrix/client/v3/account/whoami', status: 200, ms: 0.42, ip: '127.0.0.1', user: '@bench:bench.local' };
const dest = (name) => pino.destination({ dest: join(dir, name), sync: false });
const withRedact = createLogger('info', dest('a.log'));
const noRedact = pino({ level: 'info', base: { name: 'gatehouse' } }, dest('b.log'));
const disabled = createLogger('warn', dest('c.log'));
await measure('pino info line, Gatehouse logger (redact paths)', 100_000, () => withRedact.info({ ...line }, 'request'));
await measure('pino info line, same logger without redact', 100_000, () => noRedact.info({ ...line }, 'request'));
await measure('pino info line below level (log_level warn)', 100_000, () => disabled.info({ ...line }, 'request'));

// 2. Token hashing.
const token = newToken('access');
await measure('hashToken (createHash sha256)', 200_000, () => hashToken(token));
await measure('crypto.hash one-shot sha256', 200_000, () => oneShotHash('sha256', token, 'hex'));

// 3. The token lookup: knex + node-sqlite3 (one pooled connection), as the server does it.
const dbPath = join(dir, 'homeserver.db');
const db = openDatabase({ name: 'sqlite3', args: { database: dbPath } });
await migrateToLatest(db);
await Users.insertUser(
  db,
  { user_id: '@bench:bench.local', localpart: 'bench', password_hash: null, is_admin: false, is_guest: false, displayname: null },
  Date.now(),
);
for (let i = 0; i < 1000; i++) {
  await Tokens.insertAccessToken(
    db,
    { token_hash: hashToken(`${token}${i}`), user_id: '@bench:bench.local', device_id: `D${i}`, refresh_token_id: null, expires_ts: null },
    Date.now(),
  );
}
const h = hashToken(`${token}7`);
if (!(await Tokens.findAccessTokenWithUser(db, h))) throw new Error('token not found');
await measure('findAccessTokenWithUser (knex + sqlite3), 1 in flight', 5_000, () => Tokens.findAccessTokenWithUser(db, h));
await measure('findAccessTokenWithUser (knex + sqlite3), 50 in flight', 10_000, () => Tokens.findAccessTokenWithUser(db, h), 50);
const sql =
  'SELECT t.id, t.token_hash, t.user_id, t.device_id, t.refresh_token_id, t.used, t.expires_ts, u.is_guest, u.deactivated FROM access_tokens t JOIN users u ON u.user_id = t.user_id WHERE t.token_hash = ? LIMIT 1';
await measure('same SQL through knex.raw, 50 in flight', 10_000, () => db.raw(sql, [h]), 50);
await measure('knex query builder only (build + toSQL, no I/O)', 50_000, () =>
  db('access_tokens as t')
    .join('users as u', 'u.user_id', 't.user_id')
    .where('t.token_hash', h)
    .first('t.id', 't.token_hash', 't.user_id', 't.device_id', 't.refresh_token_id', 't.used', 't.expires_ts', 'u.is_guest', 'u.deactivated')
    .toSQL(),
);
const raw = new sqlite3.Database(dbPath, sqlite3.OPEN_READONLY);
const rawStmt = raw.prepare(sql);
const rawGet = () => new Promise((res, rej) => rawStmt.get([h], (e, row) => (e ? rej(e) : res(row))));
await measure('same SQL, node-sqlite3 prepared statement (no knex), 1 in flight', 10_000, rawGet);
await measure('same SQL, node-sqlite3 prepared statement (no knex), 50 in flight', 20_000, rawGet, 50);
await new Promise((r) => rawStmt.finalize(() => raw.close(r)));
const sync = new DatabaseSync(dbPath, { readOnly: true });
const stmt = sync.prepare(sql);
await measure('same SQL, node:sqlite prepared statement (sync)', 100_000, () => stmt.get(h));
sync.close();
await db.destroy();
rmSync(dir, { recursive: true, force: true });

const w = Math.max(...results.map((r) => r.name.length));
process.stdout.write(`\nper-operation cost (CPU of the whole process, all threads), Node ${process.version}\n`);
for (const r of results) process.stdout.write(`${r.name.padEnd(w)}  ${r.cpuUs.toFixed(1).padStart(7)} µs CPU  ${r.wallUs.toFixed(1).padStart(7)} µs wall\n`);
