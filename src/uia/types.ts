// The seam between the UIA engine and its stages. A stage is a plug-in: it
// checks its part of an `auth` dict, may keep state in the session (e.g. a
// reserved registration-token use), may publish `params` in the 401 body (e.g.
// terms policies), and takes part in the session's completion (inside the
// operation's own transaction) and expiry (to give back what it holds).

import type { Knex } from 'knex';
import type { MatrixError } from '../errors.js';

/** What a UIA session may authorise: one operation, for one user (or none, for registration). */
export interface UiaOperation {
  /** Method and version-less path, e.g. "POST /account/deactivate" or "DELETE /devices/ABC". */
  name: string;
  /** The authenticated user, or null for unauthenticated operations such as registration. */
  userId: string | null;
  /**
   * The operation's parameters that this request sets (leave out the ones it
   * does not). The session remembers them: a later request may leave them out
   * (the engine fills them in) but may not change them (403). Secrets go in
   * `secrets`, never here.
   */
  params: Record<string, unknown>;
  /** Secret parameters this request sets (e.g. a new password), remembered only as their argon2 hash. */
  secrets?: Record<string, string>;
  /** Caller facts a stage may need (e.g. the client's IP for rate limits). */
  clientIp: string;
}

export interface StageContext {
  db: Knex;
  operation: UiaOperation;
  sessionId: string;
  /** This stage's state from earlier requests in the session, if any. */
  state: unknown;
  now: number;
}

export type StageOutcome = { ok: true; state?: unknown } | { ok: false; error: MatrixError };

/** What a stage learns when a session that passed it completes its operation. */
export interface CompletionContext {
  operation: UiaOperation;
  sessionId: string;
  /** What the operation produced (e.g. `{user_id}` of the registered account). */
  result: unknown;
  now: number;
}

export interface UiaStage {
  readonly type: string;
  /** Other `auth.type` names that mean this stage (e.g. an MSC's unstable prefix). */
  readonly aliases?: readonly string[];
  /** The value of `params[type]` in the 401 body, or undefined for none. */
  params?(operation: UiaOperation): Promise<unknown> | unknown;
  /** Checks this stage's fields of the `auth` dict. */
  check(auth: Record<string, unknown>, ctx: StageContext): Promise<StageOutcome>;
  /**
   * Runs in the operation's transaction when a session that passed this stage
   * completes; a MatrixError thrown here fails the operation (its transaction
   * rolls back).
   */
  onComplete?(state: unknown, trx: Knex.Transaction, done: CompletionContext): Promise<void>;
  /** Runs when a session that passed this stage expires without completing, to release what it held. */
  onExpire?(state: unknown, trx: Knex.Transaction, sessionId: string): Promise<void>;
}

/** The result of a UIA round that satisfied a flow. Pass it to `UiaEngine.complete`. */
export interface CompletedAuth {
  sessionId: string;
  completed: string[];
  stageState: Record<string, unknown>;
  operation: UiaOperation;
  /** The operation's parameters: this request's, plus those an earlier request of the session set and this one left out. */
  params: Record<string, unknown>;
  /** argon2 hashes of the session's secrets, by name (this request's or an earlier one's). */
  secretHashes: Record<string, string>;
  /**
   * Set when this session already completed its operation (this request
   * repeats the final one, e.g. after a lost response): what `complete`
   * recorded then. The handler answers from it and does not run the operation again.
   */
  previous: { result: unknown } | null;
}

/** Hashes and checks secret parameters (argon2id, off the event loop). */
export interface SecretHasher {
  hash(secret: string): Promise<string>;
  verify(hash: string | null, secret: string): Promise<boolean>;
}
