// Push rules (only the user's own rules and their changes to the server's
// defaults are stored; the defaults are code), pushers, and OpenID tokens.

import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('push_rules', (t) => {
    t.string('user_id', 255).notNullable();
    // override, content, room, sender or underride.
    t.string('kind', 16).notNullable();
    t.string('rule_id', 255).notNullable();
    // Order within the user's rules of one kind: the highest comes first.
    t.integer('priority').notNullable();
    // JSON: the conditions (override and underride rules) and the actions.
    t.text('conditions').nullable();
    t.text('pattern').nullable();
    t.text('actions').notNullable();
    t.boolean('enabled').notNullable().defaultTo(true);
    t.primary(['user_id', 'kind', 'rule_id']);
  });
  // A user's changes to a server-default rule: null keeps the default's value.
  await knex.schema.createTable('push_rule_defaults', (t) => {
    t.string('user_id', 255).notNullable();
    t.string('rule_id', 255).notNullable();
    t.boolean('enabled').nullable();
    t.text('actions').nullable();
    t.primary(['user_id', 'rule_id']);
  });
  await knex.schema.createTable('pushers', (t) => {
    t.increments('id').primary();
    t.string('user_id', 255).notNullable();
    // The session that set it: the pusher goes with that session (logout, a password change
    // that signs other sessions out, deactivation, device deletion), through the cascade.
    t.string('device_id', 255).notNullable();
    t.string('app_id', 64).notNullable();
    t.text('pushkey').notNullable();
    t.string('kind', 16).notNullable();
    t.text('app_display_name').notNullable();
    t.text('device_display_name').notNullable();
    t.text('profile_tag').nullable();
    t.text('lang').notNullable();
    // JSON object (url, format, anything the client adds for its gateway).
    t.text('data').notNullable();
    t.bigInteger('created_ts').notNullable();
    t.unique(['app_id', 'pushkey', 'user_id']);
    t.foreign(['user_id', 'device_id']).references(['user_id', 'device_id']).inTable('devices').onDelete('CASCADE');
    t.index(['user_id', 'device_id']);
  });
  await knex.schema.createTable('openid_tokens', (t) => {
    // SHA-256 of the token (hex): the token itself is never stored.
    t.string('token_hash', 64).primary();
    t.string('user_id', 255).notNullable();
    // Milliseconds since the epoch; valid while now < expires_ts.
    t.bigInteger('expires_ts').notNullable();
    t.index(['expires_ts']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('openid_tokens');
  await knex.schema.dropTableIfExists('pushers');
  await knex.schema.dropTableIfExists('push_rule_defaults');
  await knex.schema.dropTableIfExists('push_rules');
}
