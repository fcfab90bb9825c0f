// Accounts that wait for an admin's approval (registration_requires_approval, MSC3866).

import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    // Existing accounts are approved; a new one waits only when the config asks for approval.
    t.boolean('approved').notNullable().defaultTo(true);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => t.dropColumn('approved'));
}
