// The UIA engine against a real database (SQLite file, and PostgreSQL when
// GATEHOUSE_TEST_PG is set), with small test stages and an injected clock.

import type { Knex } from 'knex';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MatrixError } from '../../src/errors.js';
import { PasswordHasher } from '../../src/crypto/passwords.js';
import { UiaChallenge, UiaEngine } from '../../src/uia/engine.js';
import type { CompletedAuth, CompletionContext, StageContext, StageOutcome, UiaOperation, UiaStage } from '../../src/uia/types.js';
import { backends, type MigratedDatabases, openMigratedDatabases } from '../support/backends.js';

const LIFETIME = 60_000;
/** The real argon2id hasher, at the cheapest parameters. */
const hasher = new PasswordHasher({ memory_cost: 1024, time_cost: 1, parallelism: 1 });
const LOG = 'uia_test_log';

/** Passes when `auth.secret` is "open"; publishes params; writes to LOG on completion and expiry. */
class SecretStage implements UiaStage {
  readonly type = 'test.secret';
  readonly completions: { state: unknown; operation: UiaOperation }[] = [];
  readonly expiries: unknown[] = [];

  params(operation: UiaOperation) {
    return { hint: `for ${operation.name}` };
  }

  async check(auth: Record<string, unknown>, ctx: StageContext): Promise<StageOutcome> {
    if (auth.secret !== 'open') return { ok: false, error: new MatrixError(401, 'M_FORBIDDEN', 'Wrong secret', { detail: 'nope' }) };
    return { ok: true, state: { reserved: `r-${ctx.sessionId}` } };
  }

  async onComplete(state: unknown, trx: Knex.Transaction, done: CompletionContext): Promise<void> {
    this.completions.push({ state, operation: done.operation });
    await trx(LOG).insert({ what: `complete:${(state as { reserved: string }).reserved}` });
  }

  async onExpire(state: unknown, trx: Knex.Transaction): Promise<void> {
    this.expiries.push(state);
    await trx(LOG).insert({ what: `expire:${(state as { reserved: string }).reserved}` });
  }
}

/** Always passes; counts how often it ran in the session (sees its earlier state). No params, no hooks. */
class CountStage implements UiaStage {
  readonly type = 'test.count';
  readonly seen: unknown[] = [];

  async check(_auth: Record<string, unknown>, ctx: StageContext): Promise<StageOutcome> {
    this.seen.push(ctx.state);
    const n = ((ctx.state as { n?: number } | undefined)?.n ?? 0) + 1;
    return { ok: true, state: { n } };
  }
}

/** Passes after a short delay, keeping `{ held: type }`: lets two requests overlap. */
class SlowStage implements UiaStage {
  constructor(readonly type: string) {}

  async check(): Promise<StageOutcome> {
    await new Promise((r) => setTimeout(r, 5));
    return { ok: true, state: { held: this.type } };
  }
}

/** Catches what `p` rejects with (failing the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<MatrixError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof MatrixError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

/** The 401 challenge body thrown by `p`. */
async function challengeOf(p: Promise<unknown>): Promise<Record<string, any>> {
  const err = await rejection(p);
  expect(err).toBeInstanceOf(UiaChallenge);
  expect(err.status).toBe(401);
  return err.toJSON();
}

describe.each(backends())('UIA engine (%s)', (backend) => {
  let db: Knex;
  let db2: Knex;
  let databases: MigratedDatabases | undefined;
  let now: number;
  const clock = () => now;
  let secret: SecretStage;
  let count: CountStage;
  let engine: UiaEngine;

  const op = (over: Partial<UiaOperation> = {}): UiaOperation => ({
    name: 'POST /thing',
    userId: '@alice:test.local',
    params: { target: 'A' },
    clientIp: '127.0.0.1',
    ...over,
  });
  const ONE = [['test.secret']];
  const TWO = [['test.secret', 'test.count']];
  const sessionRows = async () => db('uia_sessions').count<{ n: number | string }[]>({ n: '*' }).first().then((r) => Number(r?.n));
  const logRows = async () => (await db(LOG).orderBy('id')).map((r: { what: string }) => r.what);

  beforeAll(async () => {
    databases = await openMigratedDatabases(backend, 'uia');
    ({ db, db2 } = databases);
    await db.schema.createTable(LOG, (t) => {
      t.increments('id').primary();
      t.string('what', 255).notNullable();
    });
  });

  afterAll(async () => {
    await databases?.close();
  });

  beforeEach(async () => {
    await db('uia_sessions').delete();
    await db(LOG).delete();
    now = 1_700_000_000_000;
    secret = new SecretStage();
    count = new CountStage();
    engine = new UiaEngine(db, [secret, count], LIFETIME, hasher, clock);
  });

  it('answers a request without auth with a 401 challenge and stores the session', async () => {
    const body = await challengeOf(engine.authenticate(op(), [['test.secret'], ['test.count']], undefined));
    expect(body).toEqual({
      flows: [{ stages: ['test.secret'] }, { stages: ['test.count'] }],
      // Only stages that publish params appear, with what they return.
      params: { 'test.secret': { hint: 'for POST /thing' } },
      session: expect.any(String),
      completed: [],
    });
    expect(body.errcode).toBeUndefined();
    const row = await db('uia_sessions').where({ session_id: body.session }).first();
    expect(row.operation).toBe('POST /thing');
    expect(row.user_id).toBe('@alice:test.local');
    expect(JSON.parse(row.params)).toEqual({ params: { target: 'A' }, secretHashes: {} });
    expect(row.result).toBeNull();
    expect(Number(row.created_ts)).toBe(now);
    expect(Number(row.expires_ts)).toBe(now + LIFETIME);
    expect(JSON.parse(row.completed)).toEqual([]);

    // auth: null is the same as no auth; each such request opens a new session.
    const again = await challengeOf(engine.authenticate(op(), ONE, null));
    expect(again.session).not.toBe(body.session);
    expect(await sessionRows()).toBe(2);
  });

  it('gives a failing stage\'s errcode and error in the 401 body alongside the flows, and records nothing', async () => {
    const first = await challengeOf(engine.authenticate(op(), ONE, undefined));
    const body = await challengeOf(engine.authenticate(op(), ONE, { type: 'test.secret', secret: 'wrong', session: first.session }));
    expect(body).toEqual({
      flows: [{ stages: ['test.secret'] }],
      params: { 'test.secret': { hint: 'for POST /thing' } },
      session: first.session,
      completed: [],
      errcode: 'M_FORBIDDEN',
      error: 'Wrong secret',
      detail: 'nope',
    });
    const row = await db('uia_sessions').where({ session_id: first.session }).first();
    expect(JSON.parse(row.completed)).toEqual([]);
    expect(JSON.parse(row.stage_state)).toEqual({});
  });

  it('completes a single-stage flow in one request without a session', async () => {
    const auth = await engine.authenticate(op(), ONE, { type: 'test.secret', secret: 'open' });
    expect(auth.completed).toEqual(['test.secret']);
    expect(auth.stageState).toEqual({ 'test.secret': { reserved: `r-${auth.sessionId}` } });
    expect(auth.operation.name).toBe('POST /thing');
    // The session exists until complete() ends it.
    expect(await db('uia_sessions').where({ session_id: auth.sessionId }).first()).toBeDefined();
  });

  it('walks a multi-stage flow: completed grows, stage state persists, and a stage sees its earlier state', async () => {
    const s = (await challengeOf(engine.authenticate(op(), TWO, undefined))).session;
    const afterFirst = await challengeOf(engine.authenticate(op(), TWO, { type: 'test.secret', secret: 'open', session: s }));
    expect(afterFirst.completed).toEqual(['test.secret']);
    expect(afterFirst.session).toBe(s);
    expect(afterFirst.errcode).toBeUndefined();

    // A failure on the second stage keeps what was completed.
    const failed = await challengeOf(engine.authenticate(op(), TWO, { type: 'test.secret', secret: 'bad', session: s }));
    expect(failed.completed).toEqual(['test.secret']);
    expect(failed.errcode).toBe('M_FORBIDDEN');

    // A request with only the session (no type) reports progress without changing it.
    const progress = await challengeOf(engine.authenticate(op(), TWO, { session: s }));
    expect(progress.completed).toEqual(['test.secret']);

    const done = await engine.authenticate(op(), TWO, { type: 'test.count', session: s });
    expect(done.sessionId).toBe(s);
    expect(done.completed).toEqual(['test.secret', 'test.count']);
    expect(done.stageState).toEqual({ 'test.secret': { reserved: `r-${s}` }, 'test.count': { n: 1 } });
    expect(count.seen).toEqual([undefined]);

    // Running a stage again in the same session hands it its stored state.
    const again = await engine.authenticate(op(), TWO, { type: 'test.count', session: s });
    expect(count.seen).toEqual([undefined, { n: 1 }]);
    expect(again.stageState['test.count']).toEqual({ n: 2 });
    expect(again.completed).toEqual(['test.secret', 'test.count']);
    const row = await db('uia_sessions').where({ session_id: s }).first();
    expect(JSON.parse(row.completed)).toEqual(['test.secret', 'test.count']);
    expect(JSON.parse(row.stage_state)).toEqual({ 'test.secret': { reserved: `r-${s}` }, 'test.count': { n: 2 } });

    // Once a flow is satisfied, a retry with only the session succeeds too (lost response).
    const retry = await engine.authenticate(op(), TWO, { session: s });
    expect(retry.completed).toEqual(['test.secret', 'test.count']);
  });

  it('refuses an unknown stage type, and a known one that no flow offers, with 400 M_UNRECOGNIZED', async () => {
    const s = (await challengeOf(engine.authenticate(op(), ONE, undefined))).session;
    for (const type of ['m.login.nonsense', 'test.count']) {
      const err = await rejection(engine.authenticate(op(), ONE, { type, session: s }));
      expect(err).not.toBeInstanceOf(UiaChallenge);
      expect(err.status).toBe(400);
      expect(err.errcode).toBe('M_UNRECOGNIZED');
    }
    const row = await db('uia_sessions').where({ session_id: s }).first();
    expect(JSON.parse(row.completed)).toEqual([]);
    expect(count.seen).toEqual([]);
  });

  it('opens no session for a request whose stage throws or that names a stage no flow offers', async () => {
    const throwing: UiaStage = {
      type: 'test.throws',
      check: async () => {
        throw new MatrixError(403, 'M_FORBIDDEN', 'not yours');
      },
    };
    const e = new UiaEngine(db, [throwing, secret], LIFETIME, hasher, clock);
    const thrown = await rejection(e.authenticate(op({ secrets: { pw: 'x-secret' } }), [['test.throws']], { type: 'test.throws' }));
    expect(thrown.status).toBe(403);
    const unknown = await rejection(e.authenticate(op(), [['test.throws']], { type: 'test.secret', secret: 'open' }));
    expect(unknown.errcode).toBe('M_UNRECOGNIZED');
    expect(await sessionRows()).toBe(0);
    // A session the client already has survives its stage throwing.
    const s = (await challengeOf(e.authenticate(op(), [['test.throws']], undefined))).session;
    expect((await rejection(e.authenticate(op(), [['test.throws']], { type: 'test.throws', session: s }))).status).toBe(403);
    expect(await sessionRows()).toBe(1);
  });

  it('refuses auth that is not an object, and session/type of the wrong type, with M_BAD_JSON, opening no session', async () => {
    for (const auth of ['m.login.password', 42, true, [], [{ type: 'test.secret' }], { session: 5 }, { type: ['test.secret'] }, { type: 'test.secret', session: {} }]) {
      const err = await rejection(engine.authenticate(op(), ONE, auth));
      expect(err.status, JSON.stringify(auth)).toBe(400);
      expect(err.errcode, JSON.stringify(auth)).toBe('M_BAD_JSON');
    }
    expect(await sessionRows()).toBe(0);
  });

  it('refuses an unknown session with 400 and does not create it', async () => {
    const err = await rejection(engine.authenticate(op(), ONE, { type: 'test.secret', secret: 'open', session: 'nosuchsession' }));
    expect(err).not.toBeInstanceOf(UiaChallenge);
    expect(err.status).toBe(400);
    expect(err.errcode).toBe('M_UNKNOWN');
    expect(await sessionRows()).toBe(0);
  });

  it('refuses a session bound to another operation or another user with 403 M_FORBIDDEN', async () => {
    const s = (await challengeOf(engine.authenticate(op(), ONE, undefined))).session;
    const cases: UiaOperation[] = [
      op({ name: 'POST /other' }),
      op({ userId: '@mallory:test.local' }),
      op({ userId: null }),
    ];
    for (const other of cases) {
      const err = await rejection(engine.authenticate(other, ONE, { type: 'test.secret', secret: 'open', session: s }));
      expect(err.status, JSON.stringify(other)).toBe(403);
      expect(err.errcode).toBe('M_FORBIDDEN');
    }
    // The stage never ran for the intruders, and the session is intact for its owner.
    const row = await db('uia_sessions').where({ session_id: s }).first();
    expect(JSON.parse(row.completed)).toEqual([]);
    expect(row.operation).toBe('POST /thing');
    expect((await engine.authenticate(op(), ONE, { type: 'test.secret', secret: 'open', session: s })).sessionId).toBe(s);
  });

  it('refuses a request that changes a remembered parameter with 403; key order does not matter', async () => {
    const s = (await challengeOf(engine.authenticate(op({ params: { a: 1, b: [1, 2] } }), ONE, undefined))).session;
    for (const params of [{ a: 1, b: [1, 2, 3] }, { a: 2, b: [1, 2] }, { a: 1, b: [2, 1] }, { b: { x: 1 } }, { a: '1' }, { a: null }]) {
      const err = await rejection(engine.authenticate(op({ params }), ONE, { type: 'test.secret', secret: 'open', session: s }));
      expect(err.status, JSON.stringify(params)).toBe(403);
      expect(err.errcode).toBe('M_FORBIDDEN');
    }
    const row = await db('uia_sessions').where({ session_id: s }).first();
    expect(JSON.parse(row.completed)).toEqual([]);
    expect(JSON.parse(row.params).params).toEqual({ a: 1, b: [1, 2] });
    // The same values in another key order are the same parameters (canonical JSON).
    const ok = await engine.authenticate(op({ params: { b: [1, 2], a: 1 } }), ONE, { type: 'test.secret', secret: 'open', session: s });
    expect(ok.sessionId).toBe(s);
    expect(ok.params).toEqual({ a: 1, b: [1, 2] });
  });

  it('fills in parameters a later request leaves out, and adds ones no earlier request set', async () => {
    const s = (await challengeOf(engine.authenticate(op({ params: {} }), TWO, undefined))).session;
    // An empty probe remembers nothing; the next request's parameters are taken.
    await challengeOf(engine.authenticate(op({ params: { target: 'A' } }), TWO, { type: 'test.secret', secret: 'open', session: s }));
    await challengeOf(engine.authenticate(op({ params: { extra: true } }), TWO, { session: s }));
    expect(JSON.parse((await db('uia_sessions').where({ session_id: s }).first()).params).params).toEqual({ target: 'A', extra: true });
    // The completing request sends only auth (as after a fallback page): the operation gets all of them.
    const done = await engine.authenticate(op({ params: {} }), TWO, { type: 'test.count', session: s });
    expect(done.params).toEqual({ target: 'A', extra: true });
    expect(done.previous).toBeNull();
    // A parameter set earlier cannot change even after others were added.
    const err = await rejection(engine.authenticate(op({ params: { target: 'B' } }), TWO, { session: s }));
    expect(err.status).toBe(403);
  });

  it('remembers secrets only as argon2 hashes, checks a repeated secret against the hash, and refuses a different one', async () => {
    const s = (await challengeOf(engine.authenticate(op({ secrets: { password: 'hunter2-secret' } }), ONE, undefined))).session;
    const raw = (await db('uia_sessions').where({ session_id: s }).first()).params as string;
    expect(raw).not.toContain('hunter2');
    const stored = JSON.parse(raw);
    expect(stored.secretHashes.password).toMatch(/^\$argon2id\$/);
    expect(await hasher.verify(stored.secretHashes.password, 'hunter2-secret')).toBe(true);

    const err = await rejection(engine.authenticate(op({ secrets: { password: 'other-secret' } }), ONE, { type: 'test.secret', secret: 'open', session: s }));
    expect(err.status).toBe(403);
    expect(err.errcode).toBe('M_FORBIDDEN');
    const same = await engine.authenticate(op({ secrets: { password: 'hunter2-secret' } }), ONE, { type: 'test.secret', secret: 'open', session: s });
    expect(same.secretHashes).toEqual({ password: stored.secretHashes.password });
    const omitted = await engine.authenticate(op(), ONE, { session: s });
    expect(omitted.secretHashes).toEqual({ password: stored.secretHashes.password });
  });

  it('keeps the parameters of two requests adding different ones to a session at once', async () => {
    const other = new UiaEngine(db2, [new SecretStage(), new CountStage()], LIFETIME, hasher, clock);
    for (let i = 0; i < 5; i++) {
      const s = (await challengeOf(engine.authenticate(op({ params: {} }), TWO, undefined))).session;
      await Promise.allSettled([
        engine.authenticate(op({ params: { a: i } }), TWO, { session: s }),
        other.authenticate(op({ params: { b: i }, secrets: { pw: `secret-${i}` } }), TWO, { session: s }),
      ]);
      const stored = JSON.parse((await db('uia_sessions').where({ session_id: s }).first()).params);
      expect(stored.params).toEqual({ a: i, b: i });
      expect(Object.keys(stored.secretHashes)).toEqual(['pw']);
    }
  });

  it('complete() runs onComplete in the transaction, records the result once, and answers a repeat with it', async () => {
    const auth = await engine.authenticate(op(), TWO.concat([['test.secret']]), { type: 'test.secret', secret: 'open' });
    expect(auth.previous).toBeNull();
    await db.transaction((trx) => engine.complete(auth, trx, { user_id: '@made:test.local' }));
    expect(secret.completions).toEqual([{ state: { reserved: `r-${auth.sessionId}` }, operation: op() }]);
    expect(await logRows()).toEqual([`complete:r-${auth.sessionId}`]);
    expect(JSON.parse((await db('uia_sessions').where({ session_id: auth.sessionId }).first()).result)).toEqual({
      value: { user_id: '@made:test.local' },
    });

    const err = await rejection(db.transaction((trx) => engine.complete(auth, trx, { user_id: '@other:test.local' })));
    expect(err.status).toBe(403);
    expect(err.errcode).toBe('M_FORBIDDEN');
    expect(secret.completions).toHaveLength(1);
    expect(await logRows()).toEqual([`complete:r-${auth.sessionId}`]);

    // A repeat of the final request (lost response): no stage runs again, the record answers.
    const repeat = await engine.authenticate(op(), ONE, { type: 'test.secret', secret: 'wrong now', session: auth.sessionId });
    expect(repeat.previous).toEqual({ result: { user_id: '@made:test.local' } });
    expect(repeat.params).toEqual({ target: 'A' });
    await expect(db.transaction((trx) => engine.complete(repeat, trx))).rejects.toThrow();
    // The repeat may not change or add parameters: the operation it answers for is done.
    for (const params of [{ target: 'B' }, { target: 'A', more: 1 }]) {
      const changed = await rejection(engine.authenticate(op({ params }), ONE, { session: auth.sessionId }));
      expect(changed.status).toBe(403);
    }
    // Until the session expires; then it is unknown.
    now += LIFETIME;
    const gone = await rejection(engine.authenticate(op(), ONE, { session: auth.sessionId }));
    expect(gone.status).toBe(400);
    expect(gone.errcode).toBe('M_UNKNOWN');
  });

  it('expireSessions() does not release the stages of a completed session', async () => {
    const auth = await engine.authenticate(op(), ONE, { type: 'test.secret', secret: 'open' });
    await db.transaction((trx) => engine.complete(auth, trx));
    now += LIFETIME;
    expect(await engine.expireSessions()).toBe(1);
    expect(secret.expiries).toEqual([]);
    expect(await logRows()).toEqual([`complete:r-${auth.sessionId}`]);
    expect(await sessionRows()).toBe(0);
  });

  it('lets only one of two racing complete() calls of the same session succeed', async () => {
    const auth = await engine.authenticate(op(), ONE, { type: 'test.secret', secret: 'open' });
    const other = new UiaEngine(db2, [new SecretStage(), new CountStage()], LIFETIME, hasher, clock);
    const results = await Promise.allSettled([
      db.transaction((trx) => engine.complete(auth, trx)),
      db2.transaction((trx) => other.complete(auth, trx)),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect((failed.reason as MatrixError).errcode).toBe('M_FORBIDDEN');
    expect(await logRows()).toEqual([`complete:r-${auth.sessionId}`]);
  });

  it('keeps the session when the operation\'s transaction rolls back', async () => {
    const auth = await engine.authenticate(op(), ONE, { type: 'test.secret', secret: 'open' });
    await expect(
      db.transaction(async (trx) => {
        await engine.complete(auth, trx);
        throw new Error('operation failed after completing UIA');
      }),
    ).rejects.toThrow('operation failed');
    // onComplete ran, but its write went with the transaction; the session is still there.
    expect(secret.completions).toHaveLength(1);
    expect(await logRows()).toEqual([]);
    expect(await db('uia_sessions').where({ session_id: auth.sessionId }).first()).toBeDefined();

    // The client can retry with the same session.
    const retry = await engine.authenticate(op(), ONE, { session: auth.sessionId });
    expect(retry.previous).toBeNull();
    await db.transaction((trx) => engine.complete(retry, trx));
    expect(await logRows()).toEqual([`complete:r-${auth.sessionId}`]);
  });

  it('does not run onComplete of stages that were not completed', async () => {
    // Two alternative flows: completing test.count alone satisfies the second one.
    const flows = [['test.secret', 'test.count'], ['test.count']];
    const auth = await engine.authenticate(op(), flows, { type: 'test.count' });
    expect(auth.completed).toEqual(['test.count']);
    await db.transaction((trx) => engine.complete(auth, trx));
    expect(secret.completions).toEqual([]);
    expect(await logRows()).toEqual([]);
  });

  it('records both stages when two processes pass different stages of one session at once', async () => {
    const stages = () => [new SlowStage('slow.a'), new SlowStage('slow.b'), new SlowStage('slow.c')];
    const e1 = new UiaEngine(db, stages(), LIFETIME, hasher, clock);
    const e2 = new UiaEngine(db2, stages(), LIFETIME, hasher, clock);
    const flows = [['slow.a', 'slow.b', 'slow.c']];
    for (let i = 0; i < 10; i++) {
      const s = (await challengeOf(e1.authenticate(op(), flows, undefined))).session;
      const both = await Promise.allSettled([
        e1.authenticate(op(), flows, { type: 'slow.a', session: s }),
        e2.authenticate(op(), flows, { type: 'slow.b', session: s }),
      ]);
      // Neither satisfies the flow on its own.
      for (const r of both) expect(((r as PromiseRejectedResult).reason as MatrixError).status).toBe(401);
      const row = await db('uia_sessions').where({ session_id: s }).first();
      expect(JSON.parse(row.completed).sort()).toEqual(['slow.a', 'slow.b']);
      expect(JSON.parse(row.stage_state)).toEqual({ 'slow.a': { held: 'slow.a' }, 'slow.b': { held: 'slow.b' } });
      // So the last stage completes the flow, with both earlier stages' state.
      const done = await e1.authenticate(op(), flows, { type: 'slow.c', session: s });
      expect(done.completed.sort()).toEqual(['slow.a', 'slow.b', 'slow.c']);
      expect(Object.keys(done.stageState).sort()).toEqual(['slow.a', 'slow.b', 'slow.c']);
    }
  });

  it('refuses an expired session (at its expiry instant) with 400', async () => {
    const s = (await challengeOf(engine.authenticate(op(), TWO, undefined))).session;
    await challengeOf(engine.authenticate(op(), TWO, { type: 'test.secret', secret: 'open', session: s }));
    now += LIFETIME - 1;
    await challengeOf(engine.authenticate(op(), TWO, { session: s }));
    now += 1;
    const err = await rejection(engine.authenticate(op(), TWO, { type: 'test.count', session: s }));
    expect(err).not.toBeInstanceOf(UiaChallenge);
    expect(err.status).toBe(400);
    expect(count.seen).toEqual([]);
  });

  it('expireSessions() deletes only expired sessions and releases each exactly once when two processes sweep at once', async () => {
    const N = 25;
    const expiring: string[] = [];
    for (let i = 0; i < N; i++) {
      const s = (await challengeOf(engine.authenticate(op({ params: { i } }), TWO, undefined))).session;
      // Half have completed a stage (so hold something to release), half have not.
      if (i % 2 === 0) await challengeOf(engine.authenticate(op({ params: { i } }), TWO, { type: 'test.secret', secret: 'open', session: s }));
      expiring.push(s);
    }
    now += LIFETIME / 2;
    const young = (await challengeOf(engine.authenticate(op(), TWO, { type: 'test.secret', secret: 'open' }))).session;
    expect(await engine.expireSessions()).toBe(0);
    expect(secret.expiries).toEqual([]);

    now += LIFETIME / 2;
    // A second "process": its own engine, stages and database connection.
    const secret2 = new SecretStage();
    const engine2 = new UiaEngine(db2, [secret2, new CountStage()], LIFETIME, hasher, clock);
    const [a, b] = await Promise.all([engine.expireSessions(), engine2.expireSessions()]);
    expect(a + b).toBe(N);

    const released = [...secret.expiries, ...secret2.expiries].map((st) => (st as { reserved: string }).reserved).sort();
    const expected = expiring.filter((_, i) => i % 2 === 0).map((s) => `r-${s}`).sort();
    expect(released).toEqual(expected);
    expect((await logRows()).sort()).toEqual(expected.map((r) => `expire:${r}`));

    const left = (await db('uia_sessions').select('session_id')).map((r: { session_id: string }) => r.session_id);
    expect(left).toEqual([young]);
    expect(await engine.expireSessions()).toBe(0);
    expect(secret.expiries.length + secret2.expiries.length).toBe(expected.length);
    // The young session still works.
    expect((await engine.authenticate(op(), TWO, { type: 'test.count', session: young })).completed).toEqual(['test.secret', 'test.count']);
  });

  it('sweeps more than one batch', async () => {
    for (let i = 0; i < 130; i++) await challengeOf(engine.authenticate(op({ params: { i } }), ONE, undefined));
    now += LIFETIME;
    let total = 0;
    for (let round = 0; round < 5; round++) total += await engine.expireSessions();
    expect(total).toBe(130);
    expect(await sessionRows()).toBe(0);
  });

  it('rejects flows that name a stage it does not have (a programming error, not a client one)', async () => {
    await expect(engine.authenticate(op(), [['m.login.unknown']], undefined)).rejects.not.toBeInstanceOf(MatrixError);
    expect(await sessionRows()).toBe(0);
  });

  it('keeps sessions of different operations apart even for the same user and parameters', async () => {
    const a = (await challengeOf(engine.authenticate(op({ name: 'DELETE /devices/A' }), ONE, undefined))).session;
    const completed: CompletedAuth = await engine.authenticate(op({ name: 'DELETE /devices/A' }), ONE, { type: 'test.secret', secret: 'open', session: a });
    const err = await rejection(engine.authenticate(op({ name: 'DELETE /devices/B' }), ONE, { session: completed.sessionId }));
    expect(err.status).toBe(403);
    expect(err.errcode).toBe('M_FORBIDDEN');
  });
});

describe.each(backends())('UIA engine: expiring a flood of sessions (%s)', (backend) => {
  let db: Knex;
  let databases: MigratedDatabases | undefined;
  let now = 1_700_000_000_000;
  const clock = () => now;

  /** Always passes, keeping `{ n }`; counts the states it is asked to release. */
  class ReleaseStage implements UiaStage {
    readonly type = 'test.release';
    readonly released: unknown[] = [];
    async check(auth: Record<string, unknown>): Promise<StageOutcome> {
      return { ok: true, state: { n: auth.n } };
    }
    async onExpire(state: unknown): Promise<void> {
      this.released.push(state);
    }
  }

  beforeAll(async () => {
    databases = await openMigratedDatabases(backend, 'uia-flood');
    ({ db } = databases);
  });

  afterAll(async () => {
    await databases?.close();
  });

  it('deletes all of 250 expired sessions in one call, releasing each once, and keeps a live one', async () => {
    const stage = new ReleaseStage();
    /** Never passes: keeps the flow below from being satisfied by test.release alone. */
    const never: UiaStage = { type: 'test.never', check: async () => ({ ok: false, error: new MatrixError(401, 'M_FORBIDDEN', 'no') }) };
    const engine = new UiaEngine(db, [stage, never], LIFETIME, hasher, clock);
    const flows = [['test.release', 'test.never']];
    const op = (i: number): UiaOperation => ({ name: 'POST /flood', userId: '@flood:test.local', params: { i }, clientIp: '127.0.0.1' });
    for (let i = 0; i < 250; i++) {
      // Every fifth session has completed a stage and so holds something to release.
      const auth = i % 5 === 0 ? { type: 'test.release', n: i } : undefined;
      await challengeOf(engine.authenticate(op(i), flows, auth));
    }
    now += LIFETIME;
    const young = (await challengeOf(engine.authenticate(op(-1), flows, undefined))).session;
    expect(await db('uia_sessions').count<{ n: number | string }[]>({ n: '*' }).first().then((r) => Number(r?.n))).toBe(251);

    expect(await engine.expireSessions()).toBe(250);
    const left = (await db('uia_sessions').select('session_id')).map((r: { session_id: string }) => r.session_id);
    expect(left).toEqual([young]);
    expect((stage.released as { n: number }[]).map((s) => s.n).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 50 }, (_, k) => k * 5),
    );
    expect(await engine.expireSessions()).toBe(0);
    expect(stage.released).toHaveLength(50);
  });
});
