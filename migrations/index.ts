// The ordered list of schema migrations. Listing them in code (rather than
// reading a directory) keeps them working from dist/ and inside bundles.

import type { Knex } from 'knex';
import * as initial from './20261123000000_initial.js';

interface Migration {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

const migrations: Record<string, Migration> = {
  '20261123000000_initial': initial,
};

export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(migrations).sort(),
  getMigrationName: (name) => name,
  getMigration: async (name) => migrations[name]!,
};
