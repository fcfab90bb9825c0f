// Opens the database named in the config: SQLite (embedded default) or PostgreSQL.

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import type { DatabaseConfig } from '../config/types.js';
import { migrationSource } from '../../migrations/index.js';

// PostgreSQL returns BIGINT as a string by default; our timestamps fit in a double.
pg.types.setTypeParser(20, (v: string) => Number.parseInt(v, 10));

export type Db = Knex;
export type Dialect = 'sqlite' | 'postgres';

export function dialectOf(db: Knex): Dialect {
  return db.client.config.client === 'pg' ? 'postgres' : 'sqlite';
}

export function openDatabase(config: DatabaseConfig): Knex {
  if (config.name === 'sqlite3') {
    const file = config.args.database;
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    return knexFactory({
      client: 'sqlite3',
      connection: { filename: file },
      useNullAsDefault: true,
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
  return knexFactory({
    client: 'pg',
    connection: {
      host: config.args.host,
      port: config.args.port,
      user: config.args.user,
      password: config.args.password ?? undefined,
      database: config.args.database,
    },
    pool: { min: 0, max: 10 },
  });
}

export async function migrateToLatest(db: Knex): Promise<string[]> {
  const [, applied] = (await db.migrate.latest({ migrationSource })) as [number, string[]];
  return applied;
}
