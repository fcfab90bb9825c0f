// Opens the database named in the config: SQLite (embedded default) or PostgreSQL.

import { createRequire } from 'node:module';
import knexFactory, { type Knex } from 'knex';
import type { DatabaseConfig } from '../config/types.js';
import { migrationSource } from '../../migrations/index.js';
import { SQLITE_SNAPSHOT } from '../../migrations/sqlite-snapshot.js';
import { createPrivateFile } from '../private-files.js';

const require = createRequire(import.meta.url);

/**
 * The pg driver, loaded on first use only: an SQLite server (and `start
 * --ephemeral`) starts faster and smaller without it. knex loads the same
 * module instance.
 */
function loadPg(): typeof import('pg') {
  const pg = require('pg') as typeof import('pg');
  // PostgreSQL returns BIGINT as a string by default; our timestamps fit in a double.
  pg.types.setTypeParser(20, (v: string) => Number.parseInt(v, 10));
  return pg;
}

export type Dialect = 'sqlite' | 'postgres';

export function dialectOf(db: Knex): Dialect {
  return db.client.config.client === 'pg' ? 'postgres' : 'sqlite';
}

/** The rows of a `knex.raw` result: the array itself on SQLite, its `rows` on PostgreSQL. */
export function rawRows<T = Record<string, unknown>>(result: unknown): T[] {
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}

export function openDatabase(config: DatabaseConfig): Knex {
  if (config.name === 'sqlite3') {
    const file = config.args.database;
    // Created empty (SQLite takes it for a new database) and private before SQLite opens it: it holds
    // password and token hashes. SQLite gives the -wal and -shm files the main file's mode.
    if (file !== ':memory:') createPrivateFile(file);
    return knexFactory({
      client: 'sqlite3',
      connection: { filename: file },
      useNullAsDefault: true,
      // Errors carry the SQL without its values: those can be hashes and user input, and errors get logged.
      compileSqlOnError: false,
      // SQLite serialises writers anyway; one connection avoids SQLITE_BUSY and
      // keeps an in-memory database alive for the life of the process.
      pool: {
        min: 1,
        max: 1,
        idleTimeoutMillis: 2 ** 31 - 1,
        afterCreate(conn: { exec(sql: string, cb: (err: Error | null) => void): void }, done: (err: Error | null, c: unknown) => void) {
          conn.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;', (err) =>
            done(err, conn),
          );
        },
      },
    });
  }
  loadPg();
  return knexFactory({
    client: 'pg',
    compileSqlOnError: false,
    connection: {
      host: config.args.host,
      port: config.args.port,
      user: config.args.user,
      password: config.args.password ?? undefined,
      database: config.args.database,
      ssl: pgSsl(config.args.sslmode),
    },
    pool: { min: 0, max: 10 },
  });
}

/**
 * libpq's sslmode in node-postgres terms. node-postgres cannot fall back from
 * TLS to plain text, so "prefer" and "allow" (libpq's default) connect in
 * plain text, as they do against a server without TLS.
 */
function pgSsl(mode: string | undefined): false | { rejectUnauthorized: boolean; checkServerIdentity?: () => undefined } {
  if (mode === 'require') return { rejectUnauthorized: false };
  // verify-ca checks the certificate chain but not the host name.
  if (mode === 'verify-ca') return { rejectUnauthorized: true, checkServerIdentity: () => undefined };
  if (mode === 'verify-full') return { rejectUnauthorized: true };
  return false;
}

/** How long a starting process waits for another process's migration to finish. */
const MIGRATION_LOCK_WAIT_MS = 120_000;
/** PostgreSQL advisory lock key held while migrating ("gatehouse" in ASCII, as a number). */
const MIGRATION_ADVISORY_LOCK = 0x6761746568;

/**
 * Brings the schema up to date. Several processes may start at once on one
 * PostgreSQL database: an advisory lock lets one migrate while the others
 * wait (even knex's own bookkeeping tables cannot be created concurrently),
 * and they then find nothing left to do. knex's lock table is the second line
 * of defence: a process refused by it waits and tries again.
 */
export async function migrateToLatest(db: Knex, options: { snapshot?: boolean } = {}): Promise<string[]> {
  if (options.snapshot !== false && isMemorySqlite(db)) {
    const fromSnapshot = await applySqliteSnapshot(db);
    if (fromSnapshot !== null) return fromSnapshot;
  }
  const run = async () => ((await db.migrate.latest({ migrationSource })) as [number, string[]])[1];
  const deadline = Date.now() + MIGRATION_LOCK_WAIT_MS;
  for (;;) {
    try {
      if (dialectOf(db) !== 'postgres') return await run();
      // The lock lives as long as this transaction's connection holds it; the
      // migrations themselves run on other connections from the pool.
      return await db.transaction(async (trx) => {
        await trx.raw('SELECT pg_advisory_xact_lock(?)', [MIGRATION_ADVISORY_LOCK]);
        return run();
      });
    } catch (err) {
      const locked = err instanceof Error && /already locked/i.test(err.message);
      if (!locked || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

function isMemorySqlite(db: Knex): boolean {
  const connection = db.client.config.connection as { filename?: string } | undefined;
  return dialectOf(db) === 'sqlite' && connection?.filename === ':memory:';
}

/** The shape of a migration's name (quoted into SQL below, so checked first). */
const MIGRATION_NAME_RE = /^[0-9]{14}_[a-z0-9_]+$/;

/**
 * A fresh in-memory SQLite database (`start --ephemeral`, startEphemeral(),
 * tests) gets its schema from migrations/sqlite-snapshot.ts, the schema the
 * migrations leave, in one exec instead of replaying them one by one (knex's
 * migrator: ~40–130 ms and ~30 ms of loading). knex's own tables are part of
 * the snapshot and filled as knex would (batch 1), so a later migration
 * still applies on top: when the snapshot lags behind the migrations (a new
 * one not yet snapshotted), the rest are run by knex after it. Returns the
 * migrations applied, or null (nothing done) when the database is not empty
 * or the snapshot does not start the migrations' list.
 * test/unit/sqlite-snapshot.test.ts checks that the snapshot equals the
 * migrated schema; scripts/generate-sqlite-snapshot.mjs regenerates it.
 */
export async function applySqliteSnapshot(db: Knex): Promise<string[] | null> {
  const names = await migrationSource.getMigrations([]);
  const covered = SQLITE_SNAPSHOT.migrations;
  if (covered.length > names.length || covered.some((n, i) => n !== names[i] || !MIGRATION_NAME_RE.test(n))) return null;
  // The pool's one connection holds the in-memory database: everything below runs on it.
  const conn = (await db.client.acquireConnection()) as { exec(sql: string, cb: (err: Error | null) => void): void };
  try {
    const exec = (sql: string) => new Promise<void>((resolve, reject) => conn.exec(sql, (err) => (err ? reject(err) : resolve())));
    const empty = await new Promise<boolean>((resolve, reject) =>
      (conn as unknown as { get(sql: string, cb: (err: Error | null, row: { n: number }) => void): void }).get(
        'SELECT count(*) AS n FROM sqlite_master',
        (err, row) => (err ? reject(err) : resolve(row.n === 0)),
      ),
    );
    if (!empty) return null;
    const now = Date.now();
    await exec(
      [
        'BEGIN',
        ...SQLITE_SNAPSHOT.statements,
        ...covered.map((n) => `INSERT INTO knex_migrations (name, batch, migration_time) VALUES ('${n}', 1, ${now})`),
        'INSERT INTO knex_migrations_lock (is_locked) VALUES (0)',
        'COMMIT',
      ].join(';\n'),
    );
  } finally {
    await db.client.releaseConnection(conn);
  }
  if (covered.length === names.length) return [...covered];
  return [...covered, ...(await migrateToLatest(db, { snapshot: false }))];
}

/**
 * What SqliteWriter.transaction hands its function: SQL run on the writer
 * connection, each text prepared once on it. Plain `?` parameters, as knex.raw.
 */
export interface PreparedTx {
  readonly kind: 'prepared-sqlite';
  /** Runs `sql` (any statement; RETURNING rows come back) and resolves to its rows. Rejects once the transaction has ended. */
  all(sql: string, params: unknown[]): Promise<Record<string, unknown>[]>;
  /** Runs `fn` once the transaction has ended, committed or rolled back. */
  afterEnd(fn: () => void): void;
}

/** Either a knex connection (pool or transaction) or a prepared SQLite transaction: what the sign-in statements run on. */
export type Runner = Knex | PreparedTx;

export function isPreparedTx(q: Runner): q is PreparedTx {
  return (q as PreparedTx).kind === 'prepared-sqlite';
}

/** The rows of `sql` on either runner (knex.raw on a knex one). */
export async function runAll<T = Record<string, unknown>>(q: Runner, sql: string, params: unknown[]): Promise<T[]> {
  if (isPreparedTx(q)) return (await q.all(sql, params)) as T[];
  return rawRows<T>(await q.raw(sql, params as Knex.RawBinding[]));
}

/** The part of a node-sqlite3 connection and statement used here. */
export interface SqliteStatement {
  all(params: unknown[], cb: (err: Error | null, rows: Record<string, unknown>[]) => void): void;
  finalize(cb: () => void): void;
}
export interface SqliteConnection {
  prepare(sql: string, cb: (err: Error | null) => void): SqliteStatement;
}

/** Prepares `sql` on a node-sqlite3 connection; rejects with SQLite's error. */
export function prepareStatement<S extends SqliteStatement>(conn: { prepare(sql: string, cb: (err: Error | null) => void): S }, sql: string): Promise<S> {
  return new Promise((resolve, reject) => {
    const stmt = conn.prepare(sql, (err) => (err ? reject(err) : resolve(stmt)));
  });
}

/**
 * The rows of a prepared statement run with `params`. `all`, not `get`: stepping
 * to the end finishes (resets) the statement, so no read transaction stays open
 * between calls (it would hold back WAL checkpoints).
 */
export function statementRows(stmt: SqliteStatement, params: unknown[]): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => stmt.all(params, (err, rows) => (err ? reject(err) : resolve(rows))));
}

/**
 * Short write transactions on SQLite's one writer connection (knex's pool
 * of one) through statements prepared once, instead of knex's transaction
 * runner and a fresh statement per query: the sign-in's hot path, where
 * knex's machinery cost more main-thread time than the SQL (docs/benchmarks.md).
 * The connection is taken from knex's pool for the whole transaction, so no
 * other query (knex queues them) can run inside it; SQLite connections only.
 */
export class SqliteWriter {
  /** Per connection (the pool may replace it), its prepared statements by SQL text (a promise while preparing). */
  private readonly prepared = new Map<SqliteConnection, Map<string, SqliteStatement | Promise<SqliteStatement>>>();

  constructor(private readonly db: Knex) {}

  /**
   * Runs `fn` between BEGIN IMMEDIATE and COMMIT; when `fn` (or the COMMIT)
   * rejects, rolls back and rejects with that error. `fn` must run its SQL on
   * the `tx` given only: a query through knex would wait for this very
   * connection for ever.
   */
  async transaction<T>(fn: (tx: PreparedTx) => Promise<T>): Promise<T> {
    const conn = (await this.db.client.acquireConnection()) as SqliteConnection;
    let open = true;
    const ended: (() => void)[] = [];
    const run = (sql: string, params: unknown[]) => this.run(conn, sql, params);
    const tx: PreparedTx = {
      kind: 'prepared-sqlite',
      all: (sql, params) => (open ? run(sql, params) : Promise.reject(new Error('The transaction has ended'))),
      afterEnd: (f) => void ended.push(f),
    };
    try {
      await run('BEGIN IMMEDIATE', []);
      let result: T;
      try {
        result = await fn(tx);
        await run('COMMIT', []);
      } catch (err) {
        // SQLite may have rolled back already (e.g. SQLITE_FULL): nothing left to undo then.
        await run('ROLLBACK', []).catch(() => undefined);
        throw err;
      }
      return result;
    } finally {
      open = false;
      await this.db.client.releaseConnection(conn);
      for (const f of ended) f();
    }
  }

  private run(conn: SqliteConnection, sql: string, params: unknown[]): Promise<Record<string, unknown>[]> {
    let statements = this.prepared.get(conn);
    if (!statements) this.prepared.set(conn, (statements = new Map()));
    const stmt = statements.get(sql);
    if (stmt && !(stmt instanceof Promise)) return statementRows(stmt, params);
    return (stmt ?? prepareKept(conn, statements, sql)).then((s) => statementRows(s, params));
  }

  /** Finalizes the prepared statements (before knex closes the connection: SQLite refuses to close with live ones). */
  async close(): Promise<void> {
    const all = [...this.prepared.values()].flatMap((m) => [...m.values()]);
    this.prepared.clear();
    await Promise.all(
      all.map(async (s) => {
        const stmt = await Promise.resolve(s).catch(() => null);
        if (stmt) await new Promise<void>((resolve) => stmt.finalize(() => resolve()));
      }),
    );
  }
}

/** Prepares `sql` on `conn` and keeps it in `statements` once ready (a failed one is not kept, and rejects). */
function prepareKept(conn: SqliteConnection, statements: Map<string, SqliteStatement | Promise<SqliteStatement>>, sql: string): Promise<SqliteStatement> {
  const ready = prepareStatement(conn, sql).then(
    (stmt) => {
      statements.set(sql, stmt);
      return stmt;
    },
    (err: unknown) => {
      statements.delete(sql);
      throw err;
    },
  );
  statements.set(sql, ready);
  return ready;
}
