// Account state: locking (MSC3939) and suspension (MSC3823), each with an
// optional reason and end time (it lifts itself then), and Synapse's user_type.

import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.boolean('locked').notNullable().defaultTo(false);
    t.text('lock_reason').nullable();
    // Milliseconds since the epoch; null = until unlocked.
    t.bigInteger('locked_until').nullable();
    t.boolean('suspended').notNullable().defaultTo(false);
    t.text('suspension_reason').nullable();
    t.bigInteger('suspended_until').nullable();
    // Synapse's user types: null (a person), "support" or "bot".
    t.string('user_type', 64).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    for (const c of ['locked', 'lock_reason', 'locked_until', 'suspended', 'suspension_reason', 'suspended_until', 'user_type']) t.dropColumn(c);
  });
}
