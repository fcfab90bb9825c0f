// The user admin API: whether a deactivated account was also erased (its
// profile cleared at the user's or an admin's request, as Synapse's `erased`).

import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    // Set by deactivation with `erase: true`; cleared when an admin reactivates the account.
    t.boolean('erased').notNullable().defaultTo(false);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => t.dropColumn('erased'));
}
