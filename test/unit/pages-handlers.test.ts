// The fallback and invite handlers over a two-stage registration flow (the
// token, then the terms), on a real database: what the server will offer once
// the m.login.terms stage is served. The terms stage here is a small stand-in
// with MSC1692's params; registration's flows are set by a subclass (the
// config has no terms key yet). Everything else is the real thing.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load.js';
import { PasswordHasher } from '../../src/crypto/passwords.js';
import { migrateToLatest, openDatabase } from '../../src/db/database.js';
import { MatrixError } from '../../src/errors.js';
import { FallbackHandler } from '../../src/handlers/fallback.js';
import { InviteHandler } from '../../src/handlers/invite.js';
import { RegistrationHandler } from '../../src/handlers/registration.js';
import { SessionHandler } from '../../src/handlers/sessions.js';
import { MemoryBucketStore, RateLimiter } from '../../src/ratelimit/limiter.js';
import { type Flow, UiaChallenge, UiaEngine } from '../../src/uia/engine.js';
import { DummyStage } from '../../src/uia/stages/dummy.js';
import { RegistrationTokenStage } from '../../src/uia/stages/registration-token.js';
import type { StageContext, StageOutcome, UiaOperation, UiaStage } from '../../src/uia/types.js';
import { backends, createPgDatabase, type PgDatabase } from '../support/backends.js';

const TOKEN = 'm.login.registration_token';
const TERMS = 'm.login.terms';
const POLICIES = { policies: { tos: { version: '1.0', en: { name: 'Terms of Service', url: 'https://example.org/tos' } } } };

/** m.login.terms as MSC1692 describes it: publishes the policies, passes on an empty auth dict, remembers who passed. */
class TermsStage implements UiaStage {
  readonly type = TERMS;
  readonly passed: string[] = [];
  readonly paramsFor: string[] = [];
  params(operation: UiaOperation) {
    this.paramsFor.push(operation.name);
    return POLICIES;
  }
  async check(_auth: Record<string, unknown>, ctx: StageContext): Promise<StageOutcome> {
    this.passed.push(ctx.sessionId);
    return { ok: true };
  }
}

class TokenAndTermsRegistration extends RegistrationHandler {
  override flows(): Flow[] {
    return [[TOKEN, TERMS]];
  }
}

/** The MatrixError `act` throws. */
async function errorOf(act: () => Promise<unknown>): Promise<MatrixError> {
  try {
    await act();
  } catch (e) {
    expect(e).toBeInstanceOf(MatrixError);
    return e as MatrixError;
  }
  throw new Error('no error');
}

describe.each(backends())('fallback and invite handlers over the token and terms flow (%s)', (backend) => {
  let db: Knex;
  let dir: string;
  let pg: PgDatabase | null = null;
  let terms: TermsStage;
  let registration: TokenAndTermsRegistration;
  let fallback: FallbackHandler;
  let invite: InviteHandler;

  const seedToken = (token: string) =>
    db('registration_tokens').insert({ token, uses_allowed: 1, pending: 0, completed: 0, expiry_time: null, note: null, created_ts: Date.now() });
  const uses = async (token: string) => {
    const r = await db('registration_tokens').where({ token }).first();
    return { pending: Number(r.pending), completed: Number(r.completed) };
  };
  const userExists = async (localpart: string) => (await db('users').where({ localpart }).first()) !== undefined;
  /** Starts a registration as a client does (the session of the 401). */
  const start = async (username: string): Promise<string> => {
    const err = await errorOf(() =>
      registration.register({ username, password: 'pw', deviceId: null, initialDeviceDisplayName: null, inhibitLogin: null, refreshToken: null, guestAccessToken: null, auth: undefined, ip: '1.2.3.4', userAgent: null }),
    );
    expect(err).toBeInstanceOf(UiaChallenge);
    return (err as UiaChallenge).challenge.session as string;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-pages-handlers-'));
    if (backend === 'postgres') {
      pg = await createPgDatabase();
      db = openDatabase({ name: 'postgres', args: pg.args });
    } else db = openDatabase({ name: 'sqlite3', args: { database: join(dir, 'hs.db') } });
    await migrateToLatest(db);
    const { config } = buildConfig({ server_name: 'example.org', enable_registration: true, registration_requires_token: true }, dir);
    const hasher = new PasswordHasher({ memory_cost: 1024, time_cost: 1, parallelism: 1 });
    terms = new TermsStage();
    const uia = new UiaEngine(db, [new DummyStage(), new RegistrationTokenStage(), terms], 60_000, hasher);
    const open = new RateLimiter(new MemoryBucketStore(), 'open', { per_second: 1000, burst_count: 1000 });
    registration = new TokenAndTermsRegistration(db, config, uia, new SessionHandler(db, config), open, open);
    fallback = new FallbackHandler(uia, (operation) => (operation === 'POST /register' ? registration.flows() : []));
    invite = new InviteHandler(db, config, registration, uia, open);
  });
  afterAll(async () => {
    await db?.destroy();
    await pg?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('fallback: each stage has its page (the terms with their params), passes for the session, and the client finishes with only the session', async () => {
    await seedToken('fh-token');
    const session = await start('fh_user');
    expect(await fallback.show(TERMS, session, '1.2.3.4')).toEqual({ type: TERMS, done: false, params: POLICIES });
    expect(await fallback.show('org.matrix.msc3231.login.registration_token', session, '1.2.3.4')).toEqual({ type: TOKEN, done: false, params: undefined });

    const wrong = await fallback.submit(TOKEN, session, { token: 'nope' }, '1.2.3.4');
    expect(wrong.ok).toBe(false);
    expect(!wrong.ok && wrong.error.errcode).toBe('M_UNAUTHORIZED');
    expect((await fallback.submit(TOKEN, session, { token: 'fh-token' }, '1.2.3.4')).ok).toBe(true);
    expect((await fallback.show(TOKEN, session, '1.2.3.4')).done).toBe(true);
    expect((await fallback.show(TERMS, session, '1.2.3.4')).done).toBe(false);
    expect((await fallback.submit(TERMS, session, {}, '1.2.3.4')).ok).toBe(true);
    expect(terms.passed).toContain(session);

    const done = await registration.register({ username: null, password: null, deviceId: null, initialDeviceDisplayName: null, inhibitLogin: true, refreshToken: null, guestAccessToken: null, auth: { session }, ip: '1.2.3.4', userAgent: null });
    expect(done.user_id).toBe('@fh_user:example.org');
    expect(await uses('fh-token')).toEqual({ pending: 0, completed: 1 });
    expect((await errorOf(() => fallback.show(TERMS, session, '1.2.3.4'))).errcode).toBe('M_UNKNOWN');
  });

  it('fallback: unknown sessions and stages without a page are refused', async () => {
    const session = await start('fh_refused');
    expect(await errorOf(() => fallback.show(TERMS, 'NoSuchSession', '1.2.3.4'))).toMatchObject({ status: 400, errcode: 'M_UNKNOWN' });
    expect(await errorOf(() => fallback.show('m.login.dummy', session, '1.2.3.4'))).toMatchObject({ status: 404, errcode: 'M_UNRECOGNIZED' });
    expect(await errorOf(() => fallback.submit('toString', session, {}, '1.2.3.4'))).toMatchObject({ status: 404, errcode: 'M_UNRECOGNIZED' });
  });

  it('invite: shows the terms, refuses without them (reserving nothing), then registers through both stages in one session', async () => {
    await seedToken('inv-token');
    expect(await invite.state('inv-token')).toBe('valid');
    const form = await invite.form('1.2.3.4');
    expect(form.terms).toEqual(POLICIES);
    expect(terms.paramsFor.at(-1)).toBe('POST /register');

    const req = { token: 'inv-token', username: 'inv_user', password: 'pw', passwordAgain: 'pw', acceptedTerms: false, ip: '1.2.3.4', userAgent: null };
    expect(await errorOf(() => invite.register(req))).toMatchObject({ status: 400, errcode: 'M_INVALID_PARAM', message: 'Accept the terms to create an account' });
    expect(await uses('inv-token')).toEqual({ pending: 0, completed: 0 });
    expect(await userExists('inv_user')).toBe(false);

    const passedBefore = terms.passed.length;
    expect(await invite.register({ ...req, acceptedTerms: true })).toEqual({ user_id: '@inv_user:example.org', awaiting_approval: false });
    expect(terms.passed.length).toBe(passedBefore + 1);
    expect(await uses('inv-token')).toEqual({ pending: 0, completed: 1 });
    // inhibit_login: no device.
    expect(await db('devices').where({ user_id: '@inv_user:example.org' }).first()).toBeUndefined();
    expect(await invite.state('inv-token')).toBe('used_up');
  });
});
