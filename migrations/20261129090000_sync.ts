// What /sync delivers besides rooms: filters, account data, to-device
// messages (with the transaction IDs that make sending idempotent) and
// presence. Rows that /sync streams carry the stream position they were
// written at (see 20261129080000_sync_streams.ts).

import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sync_filters', (t) => {
    t.increments('id').primary();
    t.string('user_id', 255).notNullable().index();
    t.text('filter_json').notNullable();
  });
  // room_id '' is global account data.
  await knex.schema.createTable('account_data', (t) => {
    t.string('user_id', 255).notNullable();
    t.string('room_id', 255).notNullable();
    t.string('type', 255).notNullable();
    t.text('content').notNullable();
    t.bigInteger('stream_position').notNullable();
    t.primary(['user_id', 'room_id', 'type']);
    t.index(['user_id', 'stream_position']);
  });
  await knex.schema.createTable('to_device_messages', (t) => {
    t.increments('id').primary();
    t.string('user_id', 255).notNullable();
    t.string('device_id', 255).notNullable();
    t.bigInteger('stream_position').notNullable();
    t.text('event_json').notNullable();
    t.index(['user_id', 'device_id', 'stream_position']);
  });
  await knex.schema.createTable('to_device_txns', (t) => {
    t.string('user_id', 255).notNullable();
    t.string('device_id', 255).notNullable();
    t.string('txn_id', 255).notNullable();
    t.bigInteger('created_ts').notNullable();
    t.primary(['user_id', 'device_id', 'txn_id']);
  });
  await knex.schema.createTable('presence', (t) => {
    t.string('user_id', 255).primary();
    t.string('state', 16).notNullable();
    t.text('status_msg');
    t.bigInteger('last_active_ts').notNullable();
    t.bigInteger('stream_position').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const t of ['presence', 'to_device_txns', 'to_device_messages', 'account_data', 'sync_filters']) await knex.schema.dropTableIfExists(t);
}
