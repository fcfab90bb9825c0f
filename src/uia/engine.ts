// One user-interactive auth engine for every protected endpoint. Sessions live
// in the database, so any process can continue any session.

import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { canonicalJson } from '../crypto/canonical-json.js';
import { randomString } from '../crypto/tokens.js';
import { badJson, forbidden, MatrixError } from '../errors.js';
import * as Sessions from '../repositories/uia-sessions.js';
import type { CompletedAuth, UiaOperation, UiaStage } from './types.js';

export type Flow = string[];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function bindingHash(binding: Record<string, unknown>): string | null {
  if (Object.keys(binding).length === 0) return null;
  return createHash('sha256').update(canonicalJson(binding)).digest('hex');
}

export class UiaEngine {
  private readonly stages = new Map<string, UiaStage>();

  constructor(
    private readonly db: Knex,
    stages: UiaStage[],
    private readonly sessionLifetimeMs: number,
    private readonly clock: () => number = Date.now,
  ) {
    for (const s of stages) this.stages.set(s.type, s);
  }

  /**
   * Runs one round of UIA for `operation`. Returns when the completed stages
   * satisfy one of `flows`; otherwise throws the 401 challenge (with the error
   * of a failed stage, if one failed).
   */
  async authenticate(operation: UiaOperation, flows: Flow[], auth: unknown): Promise<CompletedAuth> {
    for (const flow of flows)
      for (const t of flow) if (!this.stages.has(t)) throw new Error(`UIA flow names unknown stage ${t}`);
    const now = this.clock();
    const hash = bindingHash(operation.binding);

    if (auth === undefined || auth === null) {
      const session = await this.newSession(operation, hash, now);
      throw await this.challenge(operation, flows, session.session_id, [], null);
    }
    if (!isObject(auth)) throw badJson('auth must be an object');
    if (auth.session !== undefined && typeof auth.session !== 'string') throw badJson('auth.session must be a string');
    if (auth.type !== undefined && typeof auth.type !== 'string') throw badJson('auth.type must be a string');

    let session: Sessions.UiaSessionRow;
    if (typeof auth.session === 'string') {
      // Session IDs are 24 letters and digits; anything else cannot name one.
      const row = /^[A-Za-z0-9]{1,64}$/.test(auth.session) ? await Sessions.findSession(this.db, auth.session) : null;
      if (!row || row.expires_ts <= now)
        throw new MatrixError(400, 'M_UNKNOWN', 'Unknown or expired UIA session');
      if (row.operation !== operation.name || row.user_id !== operation.userId)
        throw forbidden('Requested operation has changed during the UI authentication session.');
      if (row.body_hash !== hash) {
        // A session opened by an empty probe (e.g. Nheko's `POST /register {}`) binds to the first real body.
        const adopted = row.body_hash === null && hash !== null && (await Sessions.bindSessionBody(this.db, row.session_id, hash));
        if (!adopted) throw forbidden('Requested operation has changed during the UI authentication session.');
      }
      session = row;
    } else {
      // No session: start one and try the stage in this same request, so that a
      // single `m.login.dummy` request can register (as test suites do).
      session = await this.newSession(operation, hash, now);
    }

    const sessionId = session.session_id;
    let completed = session.completed;
    let stageState = session.stage_state;

    if (typeof auth.type === 'string') {
      const stage = this.stages.get(auth.type);
      if (!stage || !flows.some((f) => f.includes(auth.type as string)))
        throw new MatrixError(400, 'M_UNRECOGNIZED', `Unrecognised login type ${auth.type}`);
      const outcome = await stage.check(auth, { db: this.db, operation, sessionId, state: stageState[stage.type], now });
      if (!outcome.ok) throw await this.challenge(operation, flows, sessionId, completed, outcome.error);
      await Sessions.recordStage(this.db, sessionId, stage.type, outcome.state);
      if (!completed.includes(stage.type)) completed = [...completed, stage.type];
      if (outcome.state !== undefined) stageState = { ...stageState, [stage.type]: outcome.state };
    }

    if (flows.some((flow) => flow.every((t) => completed.includes(t))))
      return { sessionId, completed, stageState, operation };
    throw await this.challenge(operation, flows, sessionId, completed, null);
  }

  /**
   * Ends a completed session inside the operation's transaction and lets each
   * stage finish (e.g. turn a pending token use into a completed one). A
   * session completes once: a second request racing with the same session fails.
   */
  async complete(auth: CompletedAuth, trx: Knex.Transaction): Promise<void> {
    if (!(await Sessions.deleteSession(trx, auth.sessionId)))
      throw forbidden('This UI authentication session has already been used');
    for (const type of auth.completed) {
      const stage = this.stages.get(type);
      if (stage?.onComplete) await stage.onComplete(auth.stageState[type], trx, auth.operation);
    }
  }

  /** Deletes expired sessions, letting stages release what they held. Safe to run in several processes. */
  async expireSessions(): Promise<number> {
    let n = 0;
    // Batches until none are left, so that a flood of abandoned sessions cannot outgrow the sweep.
    for (;;) {
      const expired = await Sessions.findExpiredSessions(this.db, this.clock(), 100);
      for (const s of expired) {
        await this.db.transaction(async (trx) => {
          if (!(await Sessions.deleteSession(trx, s.session_id))) return; // another process got it
          n++;
          for (const type of s.completed) {
            const stage = this.stages.get(type);
            if (stage?.onExpire) await stage.onExpire(s.stage_state[type], trx);
          }
        });
      }
      if (expired.length < 100) return n;
    }
  }

  private async newSession(operation: UiaOperation, hash: string | null, now: number): Promise<Sessions.UiaSessionRow> {
    const session: Sessions.UiaSessionRow = {
      session_id: randomString(24),
      operation: operation.name,
      body_hash: hash,
      user_id: operation.userId,
      completed: [],
      stage_state: {},
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
