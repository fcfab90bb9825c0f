// Registration tokens (MSC3231): the tokens, the use each UIA session holds,
// and which accounts each token registered (an audit trail for admins).

import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('registration_tokens', (t) => {
    // At most 64 characters of [A-Za-z0-9._~-] (MSC3231).
    t.string('token', 64).primary();
    // null = unlimited; 0 = used up (never unlimited).
    t.integer('uses_allowed').nullable();
    // Uses held by UIA sessions that passed the stage but have not registered yet.
    t.integer('pending').notNullable().defaultTo(0);
    t.integer('completed').notNullable().defaultTo(0);
    // Milliseconds since the epoch; null = never. Valid while now < expiry_time.
    t.bigInteger('expiry_time').nullable();
    // Free text for the admin (who the token was for).
    t.text('note').nullable();
    t.bigInteger('created_ts').notNullable();
  });

  // The one pending use a UIA session holds: its primary key makes a second reservation
  // by the same session (parallel requests) impossible.
  await knex.schema.createTable('registration_token_reservations', (t) => {
    t.string('session_id', 64).primary();
    t.string('token', 64).notNullable().references('registration_tokens.token').onDelete('CASCADE');
    t.index(['token']);
  });

  // Kept when the token is deleted: the trail of who registered with what.
  await knex.schema.createTable('registration_token_uses', (t) => {
    t.increments('id').primary();
    t.string('token', 64).notNullable();
    t.string('user_id', 255).notNullable();
    t.bigInteger('used_ts').notNullable();
    t.index(['token']);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['registration_token_uses', 'registration_token_reservations', 'registration_tokens'])
    await knex.schema.dropTableIfExists(table);
}
