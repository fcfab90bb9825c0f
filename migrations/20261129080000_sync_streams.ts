// Stream positions for /sync: one counter per kind of data (account data,
// to-device messages, device-list changes, ...). A writer takes the next
// position by incrementing its kind's row inside its own transaction: the row
// lock makes writers of one kind commit in position order, so a reader never
// sees position n+1 before n (the gap Synapse's stream id generators track).

import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('stream_positions', (t) => {
    t.string('kind', 64).primary();
    t.bigInteger('position').notNullable().defaultTo(0);
  });
  // Whose device list changed, at which device_lists position (the user's own devices now; room members later).
  await knex.schema.createTable('device_list_changes', (t) => {
    t.increments('id').primary();
    t.string('user_id', 255).notNullable();
    t.bigInteger('stream_position').notNullable();
    t.index(['user_id', 'stream_position']);
    t.index(['stream_position']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('device_list_changes');
  await knex.schema.dropTableIfExists('stream_positions');
}
