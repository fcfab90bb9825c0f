// SQL for user-interactive auth sessions. Every server process can continue
// any session because all of its state lives here.

import type { Knex } from 'knex';

/** What a session remembers of its requests: parameters as sent, secrets only as argon2 hashes. */
export interface RememberedParams {
  params: Record<string, unknown>;
  secretHashes: Record<string, string>;
}

export interface UiaSessionRow {
  session_id: string;
  operation: string;
  user_id: string | null;
  completed: string[];
  stage_state: Record<string, unknown>;
  remembered: RememberedParams;
  /** What the completed operation produced; null while the session is not completed. */
  result: unknown;
  created_ts: number;
  expires_ts: number;
}

const EMPTY: RememberedParams = { params: {}, secretHashes: {} };
const EMPTY_JSON = JSON.stringify(EMPTY);

function toSession(r: Record<string, unknown>): UiaSessionRow {
  return {
    session_id: r.session_id as string,
    operation: r.operation as string,
    user_id: (r.user_id as string | null) ?? null,
    completed: JSON.parse(r.completed as string) as string[],
    stage_state: JSON.parse(r.stage_state as string) as Record<string, unknown>,
    remembered: r.params == null ? EMPTY : (JSON.parse(r.params as string) as RememberedParams),
    result: r.result == null ? null : (JSON.parse(r.result as string) as { value: unknown }).value,
    created_ts: Number(r.created_ts),
    expires_ts: Number(r.expires_ts),
  };
}

export async function insertSession(q: Knex, s: UiaSessionRow): Promise<void> {
  await q('uia_sessions').insert({
    session_id: s.session_id,
    operation: s.operation,
    user_id: s.user_id,
    completed: JSON.stringify(s.completed),
    stage_state: JSON.stringify(s.stage_state),
    params: JSON.stringify(s.remembered),
    result: null,
    created_ts: s.created_ts,
    expires_ts: s.expires_ts,
  });
}

export async function findSession(q: Knex, sessionId: string): Promise<UiaSessionRow | null> {
  const r = await q('uia_sessions').where({ session_id: sessionId }).first();
  return r ? toSession(r) : null;
}

/**
 * Replaces what the session remembers, if it still holds `expected` (a
 * compare-and-set, so that two requests adding parameters at once cannot both
 * win). Returns false when another request changed it first.
 */
export async function updateRemembered(q: Knex, sessionId: string, expected: RememberedParams, next: RememberedParams): Promise<boolean> {
  const expectedJson = JSON.stringify(expected);
  const n = await q('uia_sessions')
    .where({ session_id: sessionId })
    // Sessions from before this column existed hold NULL, which reads as "nothing remembered".
    .andWhere((w) => (expectedJson === EMPTY_JSON ? w.where({ params: expectedJson }).orWhereNull('params') : w.where({ params: expectedJson })))
    .update({ params: JSON.stringify(next) });
  return n > 0;
}

/**
 * Adds a completed stage (idempotent) and merges that stage's state. A
 * compare-and-set on the stored values, so that two requests passing different
 * stages of one session at once do not overwrite each other's stage.
 */
export async function recordStage(q: Knex, sessionId: string, stage: string, state: unknown): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const r = await q('uia_sessions').where({ session_id: sessionId }).first('completed', 'stage_state');
    if (!r) return;
    const completedNow = JSON.parse(r.completed as string) as string[];
    const stateNow = JSON.parse(r.stage_state as string) as Record<string, unknown>;
    const completed = completedNow.includes(stage) ? completedNow : [...completedNow, stage];
    const stageState = state === undefined ? stateNow : { ...stateNow, [stage]: state };
    const n = await q('uia_sessions')
      .where({ session_id: sessionId, completed: r.completed, stage_state: r.stage_state })
      .update({ completed: JSON.stringify(completed), stage_state: JSON.stringify(stageState) });
    if (n > 0) return;
  }
  throw new Error(`UIA session ${sessionId}: too many concurrent updates`);
}

/**
 * Marks the session completed with what its operation produced. Only the first
 * call succeeds (false for a second one, or when the session is gone): a
 * session authorises its operation once.
 */
export async function markCompleted(q: Knex, sessionId: string, result: unknown): Promise<boolean> {
  const n = await q('uia_sessions')
    .where({ session_id: sessionId })
    .whereNull('result')
    .update({ result: JSON.stringify({ value: result }) });
  return n > 0;
}

/** Removes a session. Returns false when it was already gone (expired by another process). */
export async function deleteSession(q: Knex, sessionId: string): Promise<boolean> {
  return (await q('uia_sessions').where({ session_id: sessionId }).delete()) > 0;
}

export async function findExpiredSessions(q: Knex, now: number, limit: number): Promise<UiaSessionRow[]> {
  return (await q('uia_sessions').where('expires_ts', '<=', now).limit(limit)).map(toSession);
}
