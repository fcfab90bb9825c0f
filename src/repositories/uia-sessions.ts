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

/** Adds a completed stage (idempotent) and merges that stage's state. */
export async function recordStage(q: Knex, sessionId: string, stage: string, state: unknown): Promise<void> {
  const current = await findSession(q, sessionId);
  if (!current) return;
  const completed = current.completed.includes(stage) ? current.completed : [...current.completed, stage];
  const stageState = state === undefined ? current.stage_state : { ...current.stage_state, [stage]: state };
  await q('uia_sessions')
    .where({ session_id: sessionId })
    .update({ completed: JSON.stringify(completed), stage_state: JSON.stringify(stageState) });
}

/** Removes a session. Returns false when it was already gone (completed or expired by another request). */
export async function deleteSession(q: Knex, sessionId: string): Promise<boolean> {
  return (await q('uia_sessions').where({ session_id: sessionId }).delete()) > 0;
}

export async function findExpiredSessions(q: Knex, now: number, limit: number): Promise<UiaSessionRow[]> {
  return (await q('uia_sessions').where('expires_ts', '<=', now).limit(limit)).map(toSession);
}
