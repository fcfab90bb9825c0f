// The third-party identifier repository on SQLite (and PostgreSQL when
// GATEHOUSE_TEST_PG is set): one account per address however many bind it at
// once, one mail per send_attempt, and a validated session used exactly once.

import type { Knex } from 'knex';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import * as Threepids from '../../src/repositories/threepids.js';
import { backends, type MigratedDatabases, openMigratedDatabases } from '../support/backends.js';

/** Beyond 2^32, so that a BIGINT read back as a string or truncated shows. */
const T0 = 1_763_856_000_123;

describe.each(backends())('threepid repository (%s)', (backend) => {
  let db: Knex;
  let db2: Knex;
  let databases: MigratedDatabases | undefined;

  beforeAll(async () => {
    databases = await openMigratedDatabases(backend, 'threepids');
    ({ db, db2 } = databases);
    for (const u of ['@a:t', '@b:t'])
      await db('users').insert({ user_id: u, localpart: u.slice(1, 2), password_hash: null, is_admin: false, is_guest: false, created_ts: T0 });
  });
  afterAll(async () => {
    await databases?.close();
  });
  beforeEach(async () => {
    await db('threepid_validation_tokens').delete();
    await db('threepid_validation_sessions').delete();
    await db('user_threepids').delete();
  });

  const session = (over: Partial<Threepids.ValidationSessionRow> = {}): Threepids.ValidationSessionRow => ({
    session_id: 'S1',
    purpose: 'registration',
    medium: 'email',
    address: 'x@example.org',
    client_secret: 'cs',
    last_send_attempt: -1,
    next_link: null,
    created_ts: T0,
    expires_ts: T0 + 3_600_000,
    validated_ts: null,
    consumed_ts: null,
    failed_attempts: 0,
    decoy: false,
    ...over,
  });

  it('binds an address to one account: parallel binds by two users, exactly one wins', async () => {
    const bind = (q: Knex, user: string) => Threepids.insertThreepid(q, { user_id: user, medium: 'email', address: 'x@example.org', validated_at: T0, added_at: T0 + 1 });
    const results = await Promise.all([bind(db, '@a:t'), bind(db2, '@b:t'), bind(db, '@b:t'), bind(db2, '@a:t')]);
    expect(results.filter(Boolean)).toHaveLength(1);
    const owner = await Threepids.findUserIdByThreepid(db, 'email', 'x@example.org');
    expect(['@a:t', '@b:t']).toContain(owner);
    const listed = await Threepids.listThreepids(db, owner!);
    expect(listed).toEqual([{ user_id: owner, medium: 'email', address: 'x@example.org', validated_at: T0, added_at: T0 + 1 }]);
    expect(await Threepids.deleteThreepid(db, owner === '@a:t' ? '@b:t' : '@a:t', 'email', 'x@example.org')).toBe(false);
    expect(await Threepids.deleteThreepid(db, owner!, 'email', 'x@example.org')).toBe(true);
    expect(await Threepids.findUserIdByThreepid(db, 'email', 'x@example.org')).toBeNull();
  });

  it('reads a session back as it was stored, numbers as numbers', async () => {
    expect(await Threepids.insertSession(db, session({ validated_ts: T0 + 5, decoy: true, next_link: 'https://x/' }))).toBe(true);
    expect(await Threepids.findSession(db, 'S1')).toEqual(session({ validated_ts: T0 + 5, decoy: true, next_link: 'https://x/' }));
    // The same request key is one session: a second insert (a parallel requestToken) is refused.
    expect(await Threepids.insertSession(db2, session({ session_id: 'S2' }))).toBe(false);
    expect((await Threepids.findSessionByRequest(db, { purpose: 'registration', medium: 'email', address: 'x@example.org', client_secret: 'cs' }))?.session_id).toBe('S1');
    // Another purpose is another session.
    expect(await Threepids.insertSession(db, session({ session_id: 'S3', purpose: 'password_reset' }))).toBe(true);
  });

  it('claims each send attempt once, however many ask at once, and only when it is higher', async () => {
    await Threepids.insertSession(db, session({ failed_attempts: 4 }));
    const claims = await Promise.all(Array.from({ length: 8 }, (_, i) => Threepids.claimSendAttempt(i % 2 ? db : db2, 'S1', 1, T0 + 10)));
    expect(claims.filter(Boolean)).toHaveLength(1);
    expect(await Threepids.claimSendAttempt(db, 'S1', 1, T0 + 10)).toBe(false);
    expect(await Threepids.claimSendAttempt(db, 'S1', 0, T0 + 10)).toBe(false);
    const after = await Threepids.findSession(db, 'S1');
    // A new mail gives a fresh count of wrong tokens and extends the session.
    expect(after).toMatchObject({ last_send_attempt: 1, failed_attempts: 0, expires_ts: T0 + 10 });
    // Giving the attempt back lets the same attempt be claimed again (after a failed send).
    await Threepids.releaseSendAttempt(db, 'S1', 1, -1);
    expect(await Threepids.claimSendAttempt(db, 'S1', 1, T0 + 10)).toBe(true);
    // A validated session keeps its expiry when a new mail is claimed.
    await Threepids.markValidated(db, 'S1', T0 + 20, T0 + 999);
    expect(await Threepids.claimSendAttempt(db, 'S1', 2, T0 + 30)).toBe(true);
    expect((await Threepids.findSession(db, 'S1'))?.expires_ts).toBe(T0 + 999);
  });

  it('finds a token only with its own session, and counts wrong ones', async () => {
    await Threepids.insertSession(db, session());
    await Threepids.insertSession(db, session({ session_id: 'S2', address: 'y@example.org' }));
    await Threepids.insertToken(db, { token_hash: 'h1', session_id: 'S1', expires_ts: T0 + 7 });
    expect(await Threepids.findTokenExpiry(db, 'S1', 'h1')).toBe(T0 + 7);
    expect(await Threepids.findTokenExpiry(db, 'S2', 'h1')).toBeNull();
    expect(await Threepids.countFailedAttempt(db, 'S1')).toBe(1);
    expect(await Threepids.countFailedAttempt(db, 'S1')).toBe(2);
    await Threepids.deleteToken(db, 'h1');
    expect(await Threepids.findTokenExpiry(db, 'S1', 'h1')).toBeNull();
  });

  it('uses a validated session exactly once, never an unvalidated or expired one', async () => {
    await Threepids.insertSession(db, session());
    expect(await Threepids.consumeSession(db, 'S1', T0)).toBe(false);
    expect(await Threepids.markValidated(db, 'S1', T0 + 1, T0 + 100)).toBe(true);
    expect(await Threepids.markValidated(db, 'S1', T0 + 2, T0 + 200)).toBe(false);
    expect(await Threepids.consumeSession(db, 'S1', T0 + 100)).toBe(false);
    const uses = await Promise.all(Array.from({ length: 6 }, (_, i) => Threepids.consumeSession(i % 2 ? db : db2, 'S1', T0 + 50)));
    expect(uses.filter(Boolean)).toHaveLength(1);
    expect((await Threepids.findSession(db, 'S1'))?.consumed_ts).toBe(T0 + 50);
  });

  it('sweeps expired sessions with their tokens, and unbinds every address of a user', async () => {
    await Threepids.insertSession(db, session({ expires_ts: T0 }));
    await Threepids.insertSession(db, session({ session_id: 'S2', address: 'y@example.org', expires_ts: T0 + 10 }));
    await Threepids.insertToken(db, { token_hash: 'h1', session_id: 'S1', expires_ts: T0 });
    expect(await Threepids.deleteExpiredSessions(db, T0)).toBe(1);
    expect(Number((await db('threepid_validation_tokens').count({ n: '*' }).first())!.n)).toBe(0);
    expect(await Threepids.findSession(db, 'S2')).not.toBeNull();
    for (const address of ['p@x.org', 'q@x.org'])
      await Threepids.insertThreepid(db, { user_id: '@a:t', medium: 'email', address, validated_at: T0, added_at: T0 });
    await Threepids.insertThreepid(db, { user_id: '@b:t', medium: 'email', address: 'r@x.org', validated_at: T0, added_at: T0 });
    expect(await Threepids.deleteUserThreepids(db, '@a:t')).toBe(2);
    expect(await Threepids.listThreepids(db, '@b:t')).toHaveLength(1);
  });
});
