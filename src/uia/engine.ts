// One user-interactive auth engine for every protected endpoint. Sessions live
// in the database, so any process can continue any session.

import type { Knex } from 'knex';
import { canonicalJson } from '../crypto/canonical-json.js';
import { randomString } from '../crypto/tokens.js';
import { badJson, forbidden, MatrixError } from '../errors.js';
import * as Sessions from '../repositories/uia-sessions.js';
import type { CompletedAuth, SecretHasher, StageOutcome, UiaOperation, UiaStage } from './types.js';

export type Flow = string[];

const unknownSession = () => new MatrixError(400, 'M_UNKNOWN', 'Unknown or expired UIA session');

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The 403 of a request that changes what its session was started for. */
const operationChanged = () => forbidden('Requested operation has changed during the UI authentication session.');

/** How often a request retries remembering its parameters when other requests of the session race it. */
const REMEMBER_ATTEMPTS = 20;

export class UiaEngine {
  private readonly stages = new Map<string, UiaStage>();

  constructor(
    private readonly db: Knex,
    stages: UiaStage[],
    private readonly sessionLifetimeMs: number,
    /** Hashes secret parameters (a new password) before the session remembers them. */
    private readonly secrets: SecretHasher,
    private readonly clock: () => number = Date.now,
  ) {
    for (const s of stages) {
      this.stages.set(s.type, s);
      for (const alias of s.aliases ?? []) this.stages.set(alias, s);
    }
  }

  /**
   * Runs one round of UIA for `operation` (spec: Client-Server API, "User-interactive
   * authentication API"). Returns when the completed stages satisfy one of `flows`;
   * otherwise throws the 401 challenge (`UiaChallenge`, with the error of a failed
   * stage, if one failed). Other errors: 400 M_BAD_JSON (malformed `auth`), 400
   * M_UNKNOWN (unknown or expired session), 403 M_FORBIDDEN (the request changes the
   * session's operation or its parameters), 400 M_UNRECOGNIZED (a stage no flow offers).
   *
   * As Synapse, the session remembers the operation's parameters from the requests
   * that set them, so a later request (e.g. after a fallback page) may send only
   * `auth`; the returned `params`/`secretHashes` are the merged ones. A request for a
   * session that already completed its operation returns with `previous` set.
   */
  async authenticate(operation: UiaOperation, flows: Flow[], auth: unknown): Promise<CompletedAuth> {
    for (const flow of flows)
      for (const t of flow) if (!this.stages.has(t)) throw new Error(`UIA flow names unknown stage ${t}`);
    const now = this.clock();

    if (auth === undefined || auth === null) {
      const session = await this.newSession(operation, now);
      throw await this.challenge(operation, flows, session.session_id, [], null);
    }
    if (!isObject(auth)) throw badJson('auth must be an object');
    if (auth.session !== undefined && typeof auth.session !== 'string') throw badJson('auth.session must be a string');
    if (auth.type !== undefined && typeof auth.type !== 'string') throw badJson('auth.type must be a string');

    // A stage no flow offers is refused before any session is made or touched.
    const stage = typeof auth.type === 'string' ? this.stages.get(auth.type) : undefined;
    if (typeof auth.type === 'string' && (!stage || !flows.some((f) => f.includes(stage.type))))
      throw new MatrixError(400, 'M_UNRECOGNIZED', `Unrecognised login type ${auth.type}`);

    let session: Sessions.UiaSessionRow;
    let startedHere = false;
    if (typeof auth.session === 'string') {
      // Session IDs are 24 letters and digits; anything else cannot name one.
      const row = /^[A-Za-z0-9]{1,64}$/.test(auth.session) ? await Sessions.findSession(this.db, auth.session) : null;
      if (!row || row.expires_ts <= now) throw unknownSession();
      if (row.operation !== operation.name || row.user_id !== operation.userId) throw operationChanged();
      session = await this.remember(row, operation);
    } else {
      // No session: start one and try the stage in this same request, so that a
      // single `m.login.dummy` request can register (as test suites do).
      session = await this.newSession(operation, now);
      startedHere = true;
    }

    const sessionId = session.session_id;
    const { params, secretHashes } = session.remembered;
    let completed = session.completed;
    let stageState = session.stage_state;
    // A repeat of the request that completed the session: its stages are spent, answer from the record.
    if (session.result !== null)
      return { sessionId, completed, stageState, operation, params, secretHashes, previous: { result: session.result } };

    if (stage) {
      let outcome: StageOutcome;
      try {
        outcome = await stage.check(auth, { db: this.db, operation, sessionId, state: stageState[stage.type], now });
      } catch (err) {
        // A stage throws for a request it refuses outright (malformed, or not the caller's to
        // make): a session this request started for it has no use and must not linger.
        if (startedHere) await Sessions.deleteSession(this.db, sessionId);
        throw err;
      }
      if (!outcome.ok) throw await this.challenge(operation, flows, sessionId, completed, outcome.error);
      await Sessions.recordStage(this.db, sessionId, stage.type, outcome.state);
      if (!completed.includes(stage.type)) completed = [...completed, stage.type];
      if (outcome.state !== undefined) stageState = { ...stageState, [stage.type]: outcome.state };
    }

    if (flows.some((flow) => flow.every((t) => completed.includes(t))))
      return { sessionId, completed, stageState, operation, params, secretHashes, previous: null };
    throw await this.challenge(operation, flows, sessionId, completed, null);
  }

  /**
   * Runs one stage for an existing session outside its operation: what a
   * fallback page (spec: "Fallback") does for a client that lacks the stage.
   * The client then finishes with `{"auth": {"session": ...}}` and the
   * operation's parameters the session remembers. Returns the stage's outcome
   * (a failure carries the stage's error, for the page to show). Errors: 400
   * M_UNKNOWN (unknown, expired or completed session), 400 M_UNRECOGNIZED (a
   * stage the session's flows do not offer).
   */
  async runStageForSession(
    sessionId: string,
    flows: (operation: string) => Flow[],
    auth: Record<string, unknown>,
    clientIp: string,
  ): Promise<StageOutcome> {
    const now = this.clock();
    const row = /^[A-Za-z0-9]{1,64}$/.test(sessionId) ? await Sessions.findSession(this.db, sessionId) : null;
    if (!row || row.expires_ts <= now || row.result !== null) throw unknownSession();
    const stage = typeof auth.type === 'string' ? this.stages.get(auth.type) : undefined;
    if (!stage || !flows(row.operation).some((f) => f.includes(stage.type)))
      throw new MatrixError(400, 'M_UNRECOGNIZED', `Unrecognised login type ${String(auth.type)}`);
    const operation: UiaOperation = { name: row.operation, userId: row.user_id, params: row.remembered.params, clientIp };
    const outcome = await stage.check(auth, { db: this.db, operation, sessionId, state: row.stage_state[stage.type], now });
    if (outcome.ok) await Sessions.recordStage(this.db, sessionId, stage.type, outcome.state);
    return outcome;
  }

  /** The session's operation (and its user: null before sign-in), and whether it may still be continued (for a fallback page). */
  async describeSession(sessionId: string): Promise<{ operation: string; userId: string | null; completed: string[] } | null> {
    const row = /^[A-Za-z0-9]{1,64}$/.test(sessionId) ? await Sessions.findSession(this.db, sessionId) : null;
    if (!row || row.expires_ts <= this.clock() || row.result !== null) return null;
    return { operation: row.operation, userId: row.user_id, completed: row.completed };
  }

  /**
   * The `params` a stage publishes for `operation` (what the 401 body carries
   * under its type; an alias names the same stage), or undefined when it
   * publishes none or is unknown: for a page that shows a stage (the terms'
   * documents) before any session exists.
   */
  async stageParams(type: string, operation: UiaOperation): Promise<unknown> {
    return this.stages.get(type)?.params?.(operation);
  }

  /** `stageParams` for an existing session's operation (a fallback page); undefined for an unknown, expired or completed session. */
  async sessionStageParams(sessionId: string, type: string, clientIp: string): Promise<unknown> {
    const row = /^[A-Za-z0-9]{1,64}$/.test(sessionId) ? await Sessions.findSession(this.db, sessionId) : null;
    if (!row || row.expires_ts <= this.clock() || row.result !== null) return undefined;
    return this.stageParams(type, { name: row.operation, userId: row.user_id, params: row.remembered.params, clientIp });
  }

  /**
   * Completes the session inside the operation's transaction, recording what
   * the operation produced (`result`, returned to a repeat of the request as
   * `previous`), and lets each stage finish (e.g. turn a pending token use into
   * a completed one). A session completes once: a second request racing with
   * the same session fails with 403 M_FORBIDDEN.
   */
  async complete(auth: CompletedAuth, trx: Knex.Transaction, result: unknown = {}): Promise<void> {
    if (auth.previous) throw new Error('complete() called for a session that had already completed');
    if (!(await Sessions.markCompleted(trx, auth.sessionId, result)))
      throw forbidden('This UI authentication session has already been used');
    for (const type of auth.completed) {
      const stage = this.stages.get(type);
      if (stage?.onComplete)
        await stage.onComplete(auth.stageState[type], trx, { operation: auth.operation, sessionId: auth.sessionId, result, now: this.clock() });
    }
  }

  /**
   * Deletes expired sessions, letting the stages of sessions that never
   * completed release what they held. Safe to run in several processes.
   */
  async expireSessions(): Promise<number> {
    let n = 0;
    // Batches until none are left, so that a flood of abandoned sessions cannot outgrow the sweep.
    for (;;) {
      const expired = await Sessions.findExpiredSessions(this.db, this.clock(), 100);
      for (const s of expired) {
        await this.db.transaction(async (trx) => {
          if (!(await Sessions.deleteSession(trx, s.session_id))) return; // another process got it
          n++;
          if (s.result !== null) return; // completed: its stages finished then
          for (const type of s.completed) {
            const stage = this.stages.get(type);
            if (stage?.onExpire) await stage.onExpire(s.stage_state[type], trx, s.session_id);
          }
        });
      }
      if (expired.length < 100) return n;
    }
  }

  /**
   * Merges this request's parameters into what the session remembers: a
   * parameter the session has not seen is added (a session opened by an empty
   * probe, as Element and Nheko send, takes the real request's); one it has
   * seen must be equal (secrets are checked against their hash). A completed
   * session takes no new parameters. Returns the session as it now stands.
   */
  private async remember(row: Sessions.UiaSessionRow, operation: UiaOperation): Promise<Sessions.UiaSessionRow> {
    for (let attempt = 0; attempt < REMEMBER_ATTEMPTS; attempt++) {
      const next: Sessions.RememberedParams = {
        params: { ...row.remembered.params },
        secretHashes: { ...row.remembered.secretHashes },
      };
      let added = false;
      for (const [k, v] of Object.entries(operation.params)) {
        if (!(k in next.params)) {
          next.params[k] = v;
          added = true;
        } else if (canonicalJson(next.params[k]) !== canonicalJson(v)) throw operationChanged();
      }
      for (const [k, secret] of Object.entries(operation.secrets ?? {})) {
        const known = next.secretHashes[k];
        if (known === undefined) {
          next.secretHashes[k] = await this.secrets.hash(secret);
          added = true;
        } else if (!(await this.secrets.verify(known, secret))) throw operationChanged();
      }
      if (!added) return row;
      if (row.result !== null) throw operationChanged();
      if (await Sessions.updateRemembered(this.db, row.session_id, row.remembered, next)) return { ...row, remembered: next };
      // Another request of this session added parameters first: start again from what it stored.
      const fresh = await Sessions.findSession(this.db, row.session_id);
      if (!fresh) throw unknownSession();
      row = fresh;
    }
    throw new Error(`UIA session ${row.session_id}: too many concurrent updates`);
  }

  private async newSession(operation: UiaOperation, now: number): Promise<Sessions.UiaSessionRow> {
    const secretHashes: Record<string, string> = {};
    for (const [k, secret] of Object.entries(operation.secrets ?? {})) secretHashes[k] = await this.secrets.hash(secret);
    const session: Sessions.UiaSessionRow = {
      session_id: randomString(24),
      operation: operation.name,
      user_id: operation.userId,
      completed: [],
      stage_state: {},
      remembered: { params: { ...operation.params }, secretHashes },
      result: null,
      created_ts: now,
      expires_ts: now + this.sessionLifetimeMs,
    };
    await Sessions.insertSession(this.db, session);
    return session;
  }

  private async challenge(
    operation: UiaOperation,
    flows: Flow[],
    sessionId: string,
    completed: string[],
    error: MatrixError | null,
  ): Promise<MatrixError> {
    const params: Record<string, unknown> = {};
    for (const type of new Set(flows.flat())) {
      const value = await this.stages.get(type)?.params?.(operation);
      if (value !== undefined) params[type] = value;
    }
    const body: Record<string, unknown> = { flows: flows.map((stages) => ({ stages })), params, session: sessionId, completed };
    if (error) return new UiaChallenge(body, error.errcode, error.message, error.extra);
    return new UiaChallenge(body);
  }
}

/** The 401 answer of an unfinished UIA round. Its body is the challenge itself, plus errcode/error after a failure. */
export class UiaChallenge extends MatrixError {
  constructor(
    public readonly challenge: Record<string, unknown>,
    errcode?: string,
    error?: string,
    extra: Record<string, unknown> = {},
  ) {
    super(401, errcode ?? 'M_UNAUTHORIZED', error ?? 'Additional authentication required', extra);
    this.hasError = errcode !== undefined;
  }
  readonly hasError: boolean;

  override toJSON(): Record<string, unknown> {
    return this.hasError ? { ...this.challenge, errcode: this.errcode, error: this.message, ...this.extra } : this.challenge;
  }
}
