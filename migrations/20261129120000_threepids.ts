// Third-party identifiers (email addresses): the ones bound to accounts, and
// the validation sessions that prove someone controls an address (spec:
// Client-Server API, "Adding Account Administrative Contact Information" and
// the requestToken endpoints).

import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('user_threepids', (t) => {
    t.string('user_id', 255).notNullable().references('user_id').inTable('users').onDelete('CASCADE');
    // 'email' (the only medium Gatehouse validates).
    t.string('medium', 16).notNullable();
    // Canonical form (domain/threepids.ts canonicaliseEmail): what lookups compare.
    t.string('address', 320).notNullable();
    // Milliseconds since the epoch.
    t.bigInteger('validated_at').notNullable();
    t.bigInteger('added_at').notNullable();
    // An address belongs to one account at most (as Synapse): login by email and password reset name one user.
    t.primary(['medium', 'address']);
    t.index(['user_id']);
  });

  await knex.schema.createTable('threepid_validation_sessions', (t) => {
    // The `sid` handed to the client.
    t.string('session_id', 64).primary();
    // What the validation is for: 'registration', 'add_threepid' or 'password_reset'. A session
    // validated for one purpose authorises nothing else (a registration mail is not a reset mail).
    t.string('purpose', 32).notNullable();
    t.string('medium', 16).notNullable();
    t.string('address', 320).notNullable();
    t.string('client_secret', 255).notNullable();
    // The highest send_attempt seen: a request repeating it (or a lower one) sends nothing.
    t.integer('last_send_attempt').notNullable();
    // Where the validation page sends the browser afterwards (checked when stored).
    t.text('next_link');
    t.bigInteger('created_ts').notNullable();
    // Unvalidated: until the last token expires; validated: how long it may still be used.
    t.bigInteger('expires_ts').notNullable();
    t.bigInteger('validated_ts');
    // Set when an operation used the validated address (registration, add, reset): used once.
    t.bigInteger('consumed_ts');
    // Wrong tokens submitted for this session: bounded, then the session is dead.
    t.integer('failed_attempts').notNullable().defaultTo(0);
    // With request_token_inhibit_3pid_errors, a request that must be refused (address in use, or
    // unknown at password reset) gets a session like any other that never sends and never validates,
    // so that its answer (and the answer to a repeat) looks the same.
    t.boolean('decoy').notNullable().defaultTo(false);
    // requestToken finds an existing session by these (spec: same client_secret and address, same sid).
    t.unique(['purpose', 'medium', 'address', 'client_secret']);
    t.index(['expires_ts']);
  });

  await knex.schema.createTable('threepid_validation_tokens', (t) => {
    // SHA-256 of the token (hex): the token itself is never stored.
    t.string('token_hash', 64).primary();
    t.string('session_id', 64).notNullable().references('session_id').inTable('threepid_validation_sessions').onDelete('CASCADE');
    t.bigInteger('expires_ts').notNullable();
    t.index(['session_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('threepid_validation_tokens');
  await knex.schema.dropTableIfExists('threepid_validation_sessions');
  await knex.schema.dropTableIfExists('user_threepids');
}
