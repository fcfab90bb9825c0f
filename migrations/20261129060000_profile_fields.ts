// Custom profile fields (MSC4133): one row per user and field, the value as
// JSON text. Display name and avatar stay in `profiles`.

import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('profile_fields', (t) => {
    t.string('user_id', 255).notNullable().references('users.user_id');
    // A Common Namespaced Identifier: at most 255 characters, all ASCII.
    t.string('field_name', 255).notNullable();
    // JSON text (not jsonb: PostgreSQL's jsonb refuses "\u0000", which a JSON value may hold).
    t.text('value_json').notNullable();
    t.primary(['user_id', 'field_name']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('profile_fields');
}
