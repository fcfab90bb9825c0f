// The registration-token repository on SQLite (and PostgreSQL when
// GATEHOUSE_TEST_PG is set): validity at the expiry boundary, and reservation
// as one conditional statement (one use per session, never more than allowed).

import type { Knex } from 'knex';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  completeTokenUse,
  findToken,
  insertToken,
  isTokenValid,
  releaseTokenUse,
  reserveTokenUse,
} from '../../src/repositories/registration-tokens.js';
import { backends, type MigratedDatabases, openMigratedDatabases } from '../support/backends.js';

/** Beyond 2^32, so that a BIGINT read back as a string or truncated shows. */
const T0 = 1_763_856_000_123;

describe.each(backends())('registration-token repository (%s)', (backend) => {
  let db: Knex;
  let db2: Knex;
  let databases: MigratedDatabases | undefined;

  beforeAll(async () => {
    databases = await openMigratedDatabases(backend, 'tokens');
    ({ db, db2 } = databases);
  });
  afterAll(async () => {
    await databases?.close();
  });
  beforeEach(async () => {
    await db('registration_token_reservations').delete();
    await db('registration_token_uses').delete();
    await db('registration_tokens').delete();
  });

  const token = (name: string, over: Partial<{ uses_allowed: number | null; pending: number; completed: number; expiry_time: number | null }> = {}) =>
    insertToken(db, { token: name, uses_allowed: 1, pending: 0, completed: 0, expiry_time: null, note: null, created_ts: T0, ...over });

  it('stores a token once, reading numbers back as numbers', async () => {
    expect(await token('a', { expiry_time: T0 + 5 })).toBe(true);
    expect(await token('a')).toBe(false);
    expect(await findToken(db, 'a')).toEqual({
      token: 'a', uses_allowed: 1, pending: 0, completed: 0, expiry_time: T0 + 5, note: null, created_ts: T0,
    });
    expect(await findToken(db, 'b')).toBeNull();
  });

  it('is valid until, not at, its expiry time', async () => {
    await token('exp', { expiry_time: T0 + 1000 });
    expect(await isTokenValid(db, 'exp', T0 + 999)).toBe(true);
    expect(await isTokenValid(db, 'exp', T0 + 1000)).toBe(false);
    expect(await reserveTokenUse(db, 's-at', 'exp', T0 + 1000)).toBe('invalid');
    expect(await reserveTokenUse(db, 's-before', 'exp', T0 + 999)).toBe('reserved');
  });

  it('counts pending and completed uses against uses_allowed; 0 is used up, null unlimited', async () => {
    await token('zero', { uses_allowed: 0 });
    await token('unl', { uses_allowed: null, completed: 1_000_000 });
    await token('two', { uses_allowed: 2, pending: 1, completed: 1 });
    expect(await isTokenValid(db, 'zero', T0)).toBe(false);
    expect(await isTokenValid(db, 'unl', T0)).toBe(true);
    expect(await isTokenValid(db, 'two', T0)).toBe(false);
    expect(await isTokenValid(db, 'nope', T0)).toBe(false);
  });

  it('reserves once per session, refuses another token for it, and completes or releases the use', async () => {
    await token('t', { uses_allowed: 5 });
    await token('u', { uses_allowed: 5 });
    expect(await reserveTokenUse(db, 's1', 't', T0)).toBe('reserved');
    expect(await reserveTokenUse(db, 's1', 't', T0)).toBe('held');
    expect(await reserveTokenUse(db, 's1', 'u', T0)).toBe('other');
    expect(await reserveTokenUse(db, 's2', 't', T0)).toBe('reserved');
    expect((await findToken(db, 't'))!.pending).toBe(2);
    expect((await findToken(db, 'u'))!.pending).toBe(0);

    expect(await db.transaction((trx) => completeTokenUse(trx, 's1', '@a:x', T0 + 1))).toBe(true);
    await db.transaction((trx) => releaseTokenUse(trx, 's2'));
    expect(await findToken(db, 't')).toMatchObject({ pending: 0, completed: 1 });
    expect(await db('registration_token_uses').select('token', 'user_id')).toEqual([{ token: 't', user_id: '@a:x' }]);
    // Nothing is held any more: completing or releasing again changes nothing.
    expect(await db.transaction((trx) => completeTokenUse(trx, 's1', '@a:x', T0 + 2))).toBe(false);
    await db.transaction((trx) => releaseTokenUse(trx, 's2'));
    expect(await findToken(db, 't')).toMatchObject({ pending: 0, completed: 1 });
  });

  it('a deleted token takes its sessions\' reservations with it', async () => {
    await token('gone');
    expect(await reserveTokenUse(db, 's-gone', 'gone', T0)).toBe('reserved');
    await db('registration_tokens').where({ token: 'gone' }).delete();
    expect(await db('registration_token_reservations').where({ session_id: 's-gone' })).toHaveLength(0);
    expect(await db.transaction((trx) => completeTokenUse(trx, 's-gone', '@b:x', T0))).toBe(false);
  });

  it('never hands out more uses than allowed to parallel sessions, on two connections', async () => {
    await token('race', { uses_allowed: 3 });
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => reserveTokenUse(i % 2 ? db : db2, `r${i}`, 'race', T0)),
    );
    expect(results.filter((r) => r === 'reserved')).toHaveLength(3);
    expect(results.filter((r) => r !== 'reserved').every((r) => r === 'invalid')).toBe(true);
    expect((await findToken(db, 'race'))!.pending).toBe(3);
  });

  it('reserves one use however many requests of one session race', async () => {
    await token('same', { uses_allowed: 10 });
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => reserveTokenUse(i % 2 ? db : db2, 'one-session', 'same', T0)));
    expect(results.filter((r) => r === 'reserved')).toHaveLength(1);
    expect(results.filter((r) => r === 'held')).toHaveLength(9);
    expect((await findToken(db, 'same'))!.pending).toBe(1);
  });
});
