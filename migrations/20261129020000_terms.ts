// Terms of service at registration (MSC1692): which version of which policy
// each user accepted, and when.

import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('user_policy_acceptances', (t) => {
    t.string('user_id', 255).notNullable().references('users.user_id');
    // Opaque identifiers (MSC1597): at most 255 characters of [0-9a-zA-Z._~-].
    t.string('policy_id', 255).notNullable();
    t.string('version', 255).notNullable();
    // Milliseconds since the epoch.
    t.bigInteger('accepted_ts').notNullable();
    t.primary(['user_id', 'policy_id', 'version']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('user_policy_acceptances');
}
