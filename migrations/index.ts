// The ordered list of schema migrations. Listing them in code (rather than
// reading a directory) keeps them working from dist/ and inside bundles.

import type { Knex } from 'knex';
import * as initial from './20261123000000_initial.js';
import * as foundationCorrections from './20261129000000_foundation_corrections.js';
import * as registrationTokens from './20261129010000_registration_tokens.js';
import * as terms from './20261129020000_terms.js';
import * as accountApproval from './20261129030000_account_approval.js';
import * as accountState from './20261129040000_account_state.js';
import * as userAdmin from './20261129050000_user_admin.js';
import * as profileFields from './20261129060000_profile_fields.js';
import * as loginTokens from './20261129070000_login_tokens.js';
import * as syncStreams from './20261129080000_sync_streams.js';
import * as sync from './20261129090000_sync.js';
import * as e2eKeys from './20261129100000_e2e_keys.js';
import * as push from './20261129110000_push.js';
import * as threepids from './20261129120000_threepids.js';

interface Migration {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

const migrations: Record<string, Migration> = {
  '20261123000000_initial': initial,
  '20261129000000_foundation_corrections': foundationCorrections,
  '20261129010000_registration_tokens': registrationTokens,
  '20261129020000_terms': terms,
  '20261129030000_account_approval': accountApproval,
  '20261129040000_account_state': accountState,
  '20261129050000_user_admin': userAdmin,
  '20261129060000_profile_fields': profileFields,
  '20261129070000_login_tokens': loginTokens,
  '20261129080000_sync_streams': syncStreams,
  '20261129090000_sync': sync,
  '20261129100000_e2e_keys': e2eKeys,
  '20261129110000_push': push,
  '20261129120000_threepids': threepids,
};

export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(migrations).sort(),
  getMigrationName: (name) => name,
  getMigration: async (name) => migrations[name]!,
};
