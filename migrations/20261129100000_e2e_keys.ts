// End-to-end encryption keys (spec: "End-to-End Encryption") and server-side
// room key backup. A device's keys (device keys, one-time keys, fallback
// keys) hang on its devices row with ON DELETE CASCADE, so every way a device
// ends (logout, deletion, deactivation, password change) takes its keys along.

import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  const deviceForeignKey = (t: Knex.CreateTableBuilder) =>
    t.foreign(['user_id', 'device_id']).references(['user_id', 'device_id']).inTable('devices').onDelete('CASCADE');

  // The signed device keys of POST /keys/upload, as uploaded (canonical JSON, `unsigned` removed).
  await knex.schema.createTable('e2e_device_keys', (t) => {
    t.string('user_id', 255).notNullable();
    t.string('device_id', 255).notNullable();
    t.text('key_json').notNullable();
    t.primary(['user_id', 'device_id']);
    deviceForeignKey(t);
  });

  // One-time keys: each is handed out once by POST /keys/claim (a DELETE ... RETURNING picks it).
  await knex.schema.createTable('e2e_one_time_keys', (t) => {
    t.increments('id').primary();
    t.string('user_id', 255).notNullable();
    t.string('device_id', 255).notNullable();
    t.string('algorithm', 64).notNullable();
    t.string('key_id', 255).notNullable();
    t.text('key_json').notNullable();
    t.unique(['user_id', 'device_id', 'algorithm', 'key_id']);
    deviceForeignKey(t);
  });

  // One fallback key per device and algorithm: claimed when no one-time key is left, it stays claimable.
  await knex.schema.createTable('e2e_fallback_keys', (t) => {
    t.string('user_id', 255).notNullable();
    t.string('device_id', 255).notNullable();
    t.string('algorithm', 64).notNullable();
    t.string('key_id', 255).notNullable();
    t.text('key_json').notNullable();
    t.boolean('used').notNullable().defaultTo(false);
    t.primary(['user_id', 'device_id', 'algorithm']);
    deviceForeignKey(t);
  });

  // Cross-signing keys: master, self_signing, user_signing per user; `public_key` is the unpadded base64 ed25519 key.
  await knex.schema.createTable('e2e_cross_signing_keys', (t) => {
    t.string('user_id', 255).notNullable();
    t.string('key_type', 16).notNullable();
    t.string('public_key', 255).notNullable();
    t.text('key_json').notNullable();
    t.primary(['user_id', 'key_type']);
  });

  // Signatures from POST /keys/signatures/upload, merged into the signed keys' `signatures` when queried.
  // The target is a device (target_key_id = its device ID) or a cross-signing key (its public key).
  await knex.schema.createTable('e2e_signatures', (t) => {
    t.string('signer_user_id', 255).notNullable();
    t.string('signer_key_id', 255).notNullable();
    t.string('target_user_id', 255).notNullable();
    t.string('target_key_id', 255).notNullable();
    t.text('signature').notNullable();
    t.primary(['target_user_id', 'target_key_id', 'signer_user_id', 'signer_key_id']);
  });

  // Server-side key backup (spec: "Server-side key backups"): versions, then the keys of each.
  await knex.schema.createTable('room_key_backup_versions', (t) => {
    t.increments('id').primary();
    t.string('user_id', 255).notNullable();
    t.string('algorithm', 255).notNullable();
    t.text('auth_data').notNullable();
    t.bigInteger('etag').notNullable().defaultTo(0);
    t.index(['user_id', 'id']);
  });
  await knex.schema.createTable('room_key_backup_keys', (t) => {
    t.integer('version_id').unsigned().notNullable().references('room_key_backup_versions.id').onDelete('CASCADE');
    t.string('room_id', 255).notNullable();
    t.string('session_id', 255).notNullable();
    t.bigInteger('first_message_index').notNullable();
    t.bigInteger('forwarded_count').notNullable();
    t.boolean('is_verified').notNullable();
    t.text('session_data').notNullable();
    t.primary(['version_id', 'room_id', 'session_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of [
    'room_key_backup_keys',
    'room_key_backup_versions',
    'e2e_signatures',
    'e2e_cross_signing_keys',
    'e2e_fallback_keys',
    'e2e_one_time_keys',
    'e2e_device_keys',
  ])
    await knex.schema.dropTableIfExists(table);
}
