// UIA sessions remember their first request and what a completed one did;
// refresh tokens carry the end of the sign-in session they belong to.

import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('uia_sessions', (t) => {
    // JSON: the operation's meaningful parameters from the session's first request that set
    // them (passwords only as their argon2 hash), used when a later request leaves them out.
    t.text('params').nullable();
    // JSON: what the completed operation produced (e.g. the registered user), so that a
    // repeat of the final request is answered the same way until the session expires.
    t.text('result').nullable();
  });
  await knex.schema.alterTable('refresh_tokens', (t) => {
    // session_lifetime: when the sign-in this token belongs to ends, refreshed or not (null = never).
    t.bigInteger('ultimate_session_expiry_ts').nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('refresh_tokens', (t) => t.dropColumn('ultimate_session_expiry_ts'));
  await knex.schema.alterTable('uia_sessions', (t) => {
    t.dropColumn('result');
    t.dropColumn('params');
  });
}
