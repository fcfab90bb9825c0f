// SQL for user-interactive auth sessions. Every server process can continue
// any session because all of its state lives here.

import type { Knex } from 'knex';

export interface UiaSessionRow {
  session_id: string;
  operation: string;
  body_hash: string | null;
  user_id: string | null;
  completed: string[];
  stage_state: Record<string, unknown>;
  created_ts: number;
  expires_ts: number;
}

function toSession(r: Record<string, unknown>): UiaSessionRow {
  return {
    session_id: r.session_id as string,
    operation: r.operation as string,
    body_hash: (r.body_hash as string | null) ?? null,
    user_id: (r.user_id as string | null) ?? null,
    completed: JSON.parse(r.completed as string) as string[],
    stage_state: JSON.parse(r.stage_state as string) as Record<string, unknown>,
    created_ts: Number(r.created_ts),
    expires_ts: Number(r.expires_ts),
  };
}

export async function insertSession(q: Knex, s: UiaSessionRow): Promise<void> {
  await q('uia_sessions').insert({
    ...s,
    completed: JSON.stringify(s.completed),
    stage_state: JSON.stringify(s.stage_state),
  });
}

export async function findSession(q: Knex, sessionId: string): Promise<UiaSessionRow | null> {
  const r = await q('uia_sessions').where({ session_id: sessionId }).first();
  return r ? toSession(r) : null;
}

/** Binds a session to a request body, once: returns false when another request bound it first. */
export async function bindSessionBody(q: Knex, sessionId: string, bodyHash: string): Promise<boolean> {
  const n = await q('uia_sessions').where({ session_id: sessionId }).whereNull('body_hash').update({ body_hash: bodyHash });
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

/** Removes a session. Returns false when it was already gone (completed or expired by another request). */
export async function deleteSession(q: Knex, sessionId: string): Promise<boolean> {
  return (await q('uia_sessions').where({ session_id: sessionId }).delete()) > 0;
}

export async function findExpiredSessions(q: Knex, now: number, limit: number): Promise<UiaSessionRow[]> {
  return (await q('uia_sessions').where('expires_ts', '<=', now).limit(limit)).map(toSession);
}
