// Accounts, devices, tokens, UIA sessions, rate limits.

import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('users', (t) => {
    t.string('user_id', 255).primary();
    t.string('localpart', 255).notNullable().unique();
    t.text('password_hash').nullable();
    t.boolean('is_admin').notNullable().defaultTo(false);
    t.boolean('is_guest').notNullable().defaultTo(false);
    // A deactivated account keeps its row forever, so its localpart is never handed out again.
    t.boolean('deactivated').notNullable().defaultTo(false);
    t.bigInteger('created_ts').notNullable();
  });
  // Sign-in and availability checks match localparts case-insensitively (accounts from before the
  // lower-case rule may hold capitals); this index keeps those lookups off a table scan.
  await knex.raw('CREATE INDEX users_localpart_lower ON users (lower(localpart))');

  await knex.schema.createTable('profiles', (t) => {
    t.string('user_id', 255).primary().references('users.user_id');
    t.text('displayname').nullable();
    t.text('avatar_url').nullable();
  });

  await knex.schema.createTable('devices', (t) => {
    t.string('user_id', 255).notNullable().references('users.user_id');
    t.string('device_id', 255).notNullable();
    t.text('display_name').nullable();
    t.bigInteger('created_ts').notNullable();
    t.bigInteger('last_seen_ts').nullable();
    t.string('last_seen_ip', 64).nullable();
    t.text('last_seen_user_agent').nullable();
    t.primary(['user_id', 'device_id']);
  });

  await knex.schema.createTable('refresh_tokens', (t) => {
    t.increments('id').primary();
    t.string('token_hash', 64).notNullable().unique();
    t.string('user_id', 255).notNullable();
    t.string('device_id', 255).notNullable();
    // Set when this token has been exchanged; it stays usable until the successor's access token is used.
    t.integer('next_token_id').nullable();
    t.bigInteger('created_ts').notNullable();
    t.bigInteger('expires_ts').nullable();
    t.index(['user_id', 'device_id']);
    t.index(['next_token_id']);
  });

  await knex.schema.createTable('access_tokens', (t) => {
    t.increments('id').primary();
    t.string('token_hash', 64).notNullable().unique();
    t.string('user_id', 255).notNullable();
    t.string('device_id', 255).notNullable();
    t.integer('refresh_token_id').nullable();
    // First use of a refreshed access token retires the refresh token it was exchanged for.
    t.boolean('used').notNullable().defaultTo(false);
    t.bigInteger('created_ts').notNullable();
    t.bigInteger('expires_ts').nullable();
    t.index(['user_id', 'device_id']);
    t.index(['refresh_token_id']);
  });

  await knex.schema.createTable('uia_sessions', (t) => {
    t.string('session_id', 64).primary();
    // e.g. "POST /account/deactivate": the operation the session may authorise.
    t.string('operation', 255).notNullable();
    // Hash of the request's meaningful fields; null until a non-empty request binds it.
    t.string('body_hash', 64).nullable();
    t.string('user_id', 255).nullable();
    t.text('completed').notNullable().defaultTo('[]');
    t.text('stage_state').notNullable().defaultTo('{}');
    t.bigInteger('created_ts').notNullable();
    t.bigInteger('expires_ts').notNullable();
    t.index(['expires_ts']);
  });

  await knex.schema.createTable('registration_nonces', (t) => {
    t.string('nonce', 64).primary();
    t.bigInteger('expires_ts').notNullable();
  });

  await knex.schema.createTable('rate_limits', (t) => {
    t.string('key', 512).primary();
    t.double('level').notNullable();
    t.bigInteger('updated_ts').notNullable();
    // When the bucket will have drained empty: from then on the row can be deleted.
    t.bigInteger('empty_ts').notNullable();
    t.index(['empty_ts']);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['rate_limits', 'registration_nonces', 'uia_sessions', 'access_tokens', 'refresh_tokens', 'devices', 'profiles', 'users'])
    await knex.schema.dropTableIfExists(table);
}
