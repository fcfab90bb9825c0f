// Which databases the suites run on. SQLite always; PostgreSQL when
// GATEHOUSE_TEST_PG names a server (.ci/run starts one and sets it), e.g.
// GATEHOUSE_TEST_PG=postgres://gatehouse:gatehouse@127.0.0.1:5432/postgres

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { describe } from 'vitest';
import type { DatabaseConfig } from '../../src/config/types.js';
import { migrateToLatest, openDatabase } from '../../src/db/database.js';

export type Backend = 'sqlite' | 'postgres';

export function backends(): Backend[] {
  return process.env.GATEHOUSE_TEST_PG ? ['sqlite', 'postgres'] : ['sqlite'];
}

/** Whether a PostgreSQL server is given for the suites. */
export const hasPostgres = Boolean(process.env.GATEHOUSE_TEST_PG);

/**
 * For suites that only make sense on PostgreSQL (several processes on one
 * database): without GATEHOUSE_TEST_PG they show as skipped, never vanish and
 * never leave a file with no suite (which fails the whole run).
 */
export const describeOnPostgres = (name: string, fn: () => void) =>
  describe.skipIf(!hasPostgres)(hasPostgres ? name : `${name} (skipped: GATEHOUSE_TEST_PG is not set)`, fn);

if (!process.env.GATEHOUSE_TEST_PG && !process.env.GATEHOUSE_TEST_PG_NOTICE_SHOWN) {
  process.env.GATEHOUSE_TEST_PG_NOTICE_SHOWN = '1';
  process.stderr.write('note: GATEHOUSE_TEST_PG is not set; running the suites on SQLite only (.ci/run sets it)\n');
}

export interface PgDatabase {
  args: { host: string; port: number; user: string; password: string | null; database: string };
  drop(): Promise<void>;
}

/** Creates a fresh, uniquely named PostgreSQL database for one test server. */
export async function createPgDatabase(): Promise<PgDatabase> {
  const url = new URL(process.env.GATEHOUSE_TEST_PG!);
  const name = `gh_test_${randomBytes(6).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: url.toString(), pool: { min: 0, max: 1 } });
  await admin.raw(`CREATE DATABASE ${name}`);
  await admin.destroy();
  return {
    args: {
      host: url.hostname,
      port: Number(url.port || 5432),
      user: decodeURIComponent(url.username),
      password: url.password ? decodeURIComponent(url.password) : null,
      database: name,
    },
    async drop() {
      const a = knexFactory({ client: 'pg', connection: url.toString(), pool: { min: 0, max: 1 } });
      try {
        // FORCE ends the test server's own leftover connections. It is refused while a backend of
        // another role is connected (an autovacuum worker, say): wait for it and try again.
        for (let attempt = 1; ; attempt++) {
          try {
            await a.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
            return;
          } catch (err) {
            if (attempt >= 20) {
              process.stderr.write(`note: could not drop test database ${name}: ${(err as Error).message}\n`);
              return;
            }
            await new Promise((r) => setTimeout(r, 250));
          }
        }
      } finally {
        await a.destroy();
      }
    },
  };
}

export function pgKnex(args: PgDatabase['args']): Knex {
  return knexFactory({ client: 'pg', connection: { ...args, password: args.password ?? undefined }, pool: { min: 0, max: 4 } });
}

/** A migrated database for repository and engine tests, open on two connection pools (as two processes would). */
export interface MigratedDatabases {
  db: Knex;
  /** The same database through a pool of its own, for races between "processes". */
  db2: Knex;
  /** Closes both pools and drops the database (PostgreSQL) or its folder (SQLite). */
  close(): Promise<void>;
}

/**
 * A fresh database of `backend` with every migration applied, through the
 * server's own `openDatabase` (SQLite: a file in a temp folder named after
 * `label`; PostgreSQL: a database of its own on GATEHOUSE_TEST_PG).
 */
export async function openMigratedDatabases(backend: Backend, label: string): Promise<MigratedDatabases> {
  const dir = mkdtempSync(join(tmpdir(), `gatehouse-${label}-`));
  const pg = backend === 'postgres' ? await createPgDatabase() : null;
  const config: DatabaseConfig = pg ? { name: 'postgres', args: pg.args } : { name: 'sqlite3', args: { database: join(dir, 'h.db') } };
  const db = openDatabase(config);
  const db2 = openDatabase(config);
  await migrateToLatest(db);
  return {
    db,
    db2,
    async close() {
      await db2.destroy();
      await db.destroy();
      await pg?.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
