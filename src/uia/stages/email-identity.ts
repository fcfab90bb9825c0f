// m.login.email.identity (spec: Client-Server API, "Email-based (identity /
// homeserver)"): the client proves control of an email address with the
// `threepid_creds` {sid, client_secret} of a validation session whose link the
// user followed. The session must have been made for this operation
// (registration's, or password reset's), and the operation's completion uses
// it up, so one mail authorises one account or one reset.

import type { Knex } from 'knex';
import { constantTimeEqual } from '../../crypto/tokens.js';
import { CLIENT_SECRET_RE } from '../../domain/threepids.js';
import { MatrixError } from '../../errors.js';
import * as Threepids from '../../repositories/threepids.js';
import type { ValidationPurpose } from '../../repositories/threepids.js';
import type { CompletionContext, StageContext, StageOutcome, UiaStage } from '../types.js';

/** What the stage keeps in the UIA session, and what the operation's handler binds or looks up. */
export interface EmailIdentityState {
  sid: string;
  medium: 'email';
  address: string;
  validated_at: number;
}

/** Which validation sessions authorise which UIA operation. */
const PURPOSE_OF_OPERATION: Record<string, ValidationPurpose> = {
  'POST /register': 'registration',
  'POST /account/password': 'password_reset',
};

/** Validation session IDs are 24 letters and digits: a wider string names none. */
export const SID_RE = /^[A-Za-z0-9]{1,64}$/;

/**
 * The validated address of validation session `sid`, when it can authorise
 * an operation of `purpose` now: made for that purpose with this client
 * secret, validated, not used yet, not expired. null otherwise.
 */
export async function findValidatedThreepid(
  q: Knex,
  purpose: ValidationPurpose,
  sid: string,
  clientSecret: string,
  now: number,
): Promise<EmailIdentityState | null> {
  if (!SID_RE.test(sid) || !CLIENT_SECRET_RE.test(clientSecret)) return null;
  const s = await Threepids.findSession(q, sid);
  if (!s || s.decoy || s.purpose !== purpose || !constantTimeEqual(s.client_secret, clientSecret)) return null;
  if (s.validated_ts === null || s.consumed_ts !== null || s.expires_ts <= now) return null;
  return { sid: s.session_id, medium: 'email', address: s.address, validated_at: s.validated_ts };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const fail = (errcode: string, message: string): StageOutcome => ({ ok: false, error: new MatrixError(401, errcode, message) });

export class EmailIdentityStage implements UiaStage {
  readonly type = 'm.login.email.identity';

  /**
   * Passes for `threepid_creds` (or r0's `threepidCreds`) naming a validated
   * session of this operation's purpose. Errors (in the 401 body):
   * M_MISSING_PARAM (no creds), M_INVALID_PARAM (not strings),
   * M_UNAUTHORIZED (as Synapse: "Unable to get validated threepid" for a
   * session unknown, not validated yet, used or expired).
   */
  async check(auth: Record<string, unknown>, ctx: StageContext): Promise<StageOutcome> {
    const creds = auth.threepid_creds ?? auth.threepidCreds;
    if (creds === undefined || creds === null) return fail('M_MISSING_PARAM', 'Missing parameter: threepid_creds');
    if (!isObject(creds)) return fail('M_INVALID_PARAM', 'threepid_creds must be an object');
    const { sid, client_secret: clientSecret } = creds;
    if (typeof sid !== 'string' || typeof clientSecret !== 'string')
      return fail('M_INVALID_PARAM', 'threepid_creds needs sid and client_secret, as strings');
    const purpose = PURPOSE_OF_OPERATION[ctx.operation.name];
    const found = purpose ? await findValidatedThreepid(ctx.db, purpose, sid, clientSecret, ctx.now) : null;
    if (!found) return fail('M_UNAUTHORIZED', 'Unable to get validated threepid');
    // A session of the UIA flow proves one address: a second, different one is refused.
    const held = ctx.state as EmailIdentityState | undefined;
    if (held && held.sid !== found.sid) return fail('M_INVALID_PARAM', 'This session already used another email validation');
    return { ok: true, state: found };
  }

  async onComplete(state: unknown, trx: Knex.Transaction, done: CompletionContext): Promise<void> {
    const { sid } = state as EmailIdentityState;
    if (!(await Threepids.consumeSession(trx, sid, done.now)))
      throw new MatrixError(401, 'M_UNAUTHORIZED', 'The email validation has been used or has expired; validate the address again');
  }
}
