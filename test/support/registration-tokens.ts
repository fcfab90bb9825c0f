// Registration tokens seeded straight into a test server's database (the
// admin API has suites of its own), and their counts read back.

import type { TestServer } from './server.js';

export interface TokenSpec {
  /** Default 1; null = unlimited. */
  uses_allowed?: number | null;
  pending?: number;
  completed?: number;
  /** Milliseconds since the epoch; default null (never). */
  expiry_time?: number | null;
}

export async function seedToken(hs: TestServer, token: string, spec: TokenSpec = {}): Promise<void> {
  await hs.db()('registration_tokens').insert({
    token,
    uses_allowed: spec.uses_allowed === undefined ? 1 : spec.uses_allowed,
    pending: spec.pending ?? 0,
    completed: spec.completed ?? 0,
    expiry_time: spec.expiry_time ?? null,
    note: null,
    created_ts: Date.now(),
  });
}

/** The token's pending and completed uses, or undefined when there is no such token. */
export async function tokenUses(hs: TestServer, token: string): Promise<{ pending: number; completed: number } | undefined> {
  const r = await hs.db()('registration_tokens').where({ token }).first();
  return r ? { pending: Number(r.pending), completed: Number(r.completed) } : undefined;
}
