// Login tokens (MSC3882, spec v1.7 `POST /login/get_token`): short-lived,
// single-use tokens a signed-in device asks for, to sign in another device.

import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('login_tokens', (t) => {
    // SHA-256 of the token (hex): the token itself is never stored.
    t.string('token_hash', 64).primary();
    t.string('user_id', 255).notNullable();
    // The device that asked for it: the token dies with that sign-in (logout, a password change
    // that signs other devices out, deactivation, device deletion), through the cascade.
    t.string('device_id', 255).notNullable();
    // Milliseconds since the epoch; the token is valid while now < expires_ts.
    t.bigInteger('created_ts').notNullable();
    t.bigInteger('expires_ts').notNullable();
    t.foreign(['user_id', 'device_id']).references(['user_id', 'device_id']).inTable('devices').onDelete('CASCADE');
    // For the cascade (PostgreSQL does not index referencing columns) and the sweep.
    t.index(['user_id', 'device_id']);
    t.index(['expires_ts']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('login_tokens');
}
