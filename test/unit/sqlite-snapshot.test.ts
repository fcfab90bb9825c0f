// A fresh in-memory SQLite database gets its schema from
// migrations/sqlite-snapshot.ts instead of replaying the migrations
// (src/db/database.ts): the snapshot must be exactly what the migrations
// leave, and knex must see the migrations as applied, so that a later one
// still applies on top. When this suite fails after a migration was added
// or changed: `npm run build && node scripts/generate-sqlite-snapshot.mjs`.

import type { Knex } from 'knex';
import { afterEach, describe, expect, it } from 'vitest';
import { migrationSource } from '../../migrations/index.js';
import { SQLITE_SNAPSHOT } from '../../migrations/sqlite-snapshot.js';
import { applySqliteSnapshot, migrateToLatest, openDatabase } from '../../src/db/database.js';

const open: Knex[] = [];
afterEach(async () => {
  for (const db of open.splice(0)) await db.destroy();
});

function memory(): Knex {
  const db = openDatabase({ name: 'sqlite3', args: { database: ':memory:' } });
  open.push(db);
  return db;
}

/** Everything that makes up a schema: sqlite_master (autoindexes included), and knex's bookkeeping rows. */
async function schemaOf(db: Knex) {
  const master = await db.raw('SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name');
  const tables = (master as { type: string; name: string }[]).filter((r) => r.type === 'table').map((r) => r.name);
  const counts: Record<string, number> = {};
  for (const t of tables) counts[t] = Number((await db.raw(`SELECT count(*) AS n FROM "${t}"`))[0].n);
  return {
    master,
    counts,
    migrations: await db('knex_migrations').select('id', 'name', 'batch').orderBy('id'),
    lock: await db('knex_migrations_lock').select('*'),
    sequence: await db.raw('SELECT name, seq FROM sqlite_sequence ORDER BY name'),
    pragmas: {
      userVersion: await db.raw('PRAGMA user_version'),
      foreignKeys: await db.raw('PRAGMA foreign_keys'),
    },
  };
}

describe('the SQLite schema snapshot', () => {
  it('covers every migration, in order', async () => {
    expect(SQLITE_SNAPSHOT.migrations).toEqual(await migrationSource.getMigrations([]));
  });

  it('equals the migrated schema: sqlite_master, knex_migrations, the lock row, sqlite_sequence', async () => {
    const migrated = memory();
    await migrateToLatest(migrated, { snapshot: false });
    const snapshotted = memory();
    expect(await applySqliteSnapshot(snapshotted)).toEqual(SQLITE_SNAPSHOT.migrations);
    const a = await schemaOf(migrated);
    const b = await schemaOf(snapshotted);
    expect(b.master.length).toBeGreaterThan(50);
    expect(b).toEqual(a);
    // Only knex's bookkeeping holds rows: no migration seeds data the snapshot would miss.
    expect(Object.entries(a.counts).filter(([, n]) => n > 0).map(([t]) => t).sort()).toEqual(['knex_migrations', 'knex_migrations_lock', 'sqlite_sequence']);
  });

  it('is what migrateToLatest gives a fresh :memory: database, and a second call finds nothing to do', async () => {
    const db = memory();
    expect(await migrateToLatest(db)).toEqual(SQLITE_SNAPSHOT.migrations);
    expect(await migrateToLatest(db)).toEqual([]);
    expect(await db.migrate.currentVersion({ migrationSource })).toBe(SQLITE_SNAPSHOT.migrations.at(-1)!.slice(0, 14));
    // Foreign keys are enforced as on a migrated database (the connection's PRAGMA).
    await expect(db('profiles').insert({ user_id: '@nobody:example.org' })).rejects.toThrow(/FOREIGN KEY/);
  });

  it('is not applied to a database that already has tables', async () => {
    const db = memory();
    await db.schema.createTable('something', (t) => t.integer('x'));
    expect(await applySqliteSnapshot(db)).toBeNull();
    expect((await db.raw("SELECT name FROM sqlite_master WHERE type = 'table'")).map((r: { name: string }) => r.name)).toEqual(['something']);
  });

  it('a later migration applies on top of it, alone, as on a migrated database', async () => {
    const later = '29991231000000_later';
    const source: Knex.MigrationSource<string> = {
      getMigrations: async () => [...(await migrationSource.getMigrations([])), later],
      getMigrationName: (n) => n,
      getMigration: async (n) =>
        n === later
          ? {
              up: (k: Knex) => k.schema.alterTable('users', (t) => t.text('later_column').nullable()),
              down: (k: Knex) => k.schema.alterTable('users', (t) => t.dropColumn('later_column')),
            }
          : migrationSource.getMigration(n),
    };
    const results: Record<string, unknown> = {};
    for (const how of ['snapshot', 'migrations'] as const) {
      const db = memory();
      await migrateToLatest(db, { snapshot: how === 'snapshot' });
      const [batch, applied] = (await db.migrate.latest({ migrationSource: source })) as [number, string[]];
      expect(applied).toEqual([later]);
      expect(batch).toBe(2);
      results[how] = await schemaOf(db);
    }
    expect(results.snapshot).toEqual(results.migrations);
  });
});
