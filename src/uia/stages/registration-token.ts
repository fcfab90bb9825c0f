// m.login.registration_token (MSC3231, spec v1.2): registration needs a token
// an admin issued. Passing the stage reserves one pending use of the token for
// the UIA session; the account's creation turns it into a completed use in the
// same transaction; a session that expires unused gives it back. Unlike
// Synapse, the check and the reservation are one conditional statement, so a
// one-use token registers exactly one account however many try at once.

import { MatrixError } from '../../errors.js';
import * as Tokens from '../../repositories/registration-tokens.js';
import type { CompletionContext, StageContext, StageOutcome, UiaStage } from '../types.js';

/** MSC3231: at most 64 characters of [A-Za-z0-9._~-]. */
export const REGISTRATION_TOKEN_RE = /^[A-Za-z0-9._~-]{1,64}$/;

/** What the stage keeps in the UIA session: the token it reserved a use of. */
interface TokenState {
  token: string;
}

const fail = (errcode: string, message: string): StageOutcome => ({ ok: false, error: new MatrixError(401, errcode, message) });

export class RegistrationTokenStage implements UiaStage {
  readonly type = 'm.login.registration_token';
  readonly aliases = ['org.matrix.msc3231.login.registration_token'];

  /**
   * Errors (in the 401 body, nothing reserved): M_MISSING_PARAM (no `token`),
   * M_INVALID_PARAM (not a string, or another token than the one this session
   * holds), M_UNAUTHORIZED (unknown, expired or used up).
   */
  async check(auth: Record<string, unknown>, ctx: StageContext): Promise<StageOutcome> {
    const token = auth.token;
    if (token === undefined || token === null) return fail('M_MISSING_PARAM', 'Missing parameter: token');
    if (typeof token !== 'string') return fail('M_INVALID_PARAM', 'token must be a string');
    // A string that no token can be is simply not a valid token (and never reaches SQL).
    if (!REGISTRATION_TOKEN_RE.test(token)) return fail('M_UNAUTHORIZED', 'Invalid registration token');
    switch (await Tokens.reserveTokenUse(ctx.db, ctx.sessionId, token, ctx.now)) {
      case 'reserved':
      case 'held':
        return { ok: true, state: { token } satisfies TokenState };
      case 'other':
        return fail('M_INVALID_PARAM', 'This session already used another registration token');
      case 'invalid':
        return fail('M_UNAUTHORIZED', 'Invalid registration token');
    }
  }

  async onComplete(_state: unknown, trx: Parameters<NonNullable<UiaStage['onComplete']>>[1], done: CompletionContext): Promise<void> {
    const userId = (done.result as { user_id?: unknown } | null)?.user_id;
    if (typeof userId !== 'string') throw new Error('registration token stage completed an operation without a user_id');
    // The token was deleted while the session held a use: this registration cannot go on.
    if (!(await Tokens.completeTokenUse(trx, done.sessionId, userId, done.now)))
      throw new MatrixError(401, 'M_UNAUTHORIZED', 'The registration token is no longer valid; start the registration again');
  }

  async onExpire(_state: unknown, trx: Parameters<NonNullable<UiaStage['onExpire']>>[1], sessionId: string): Promise<void> {
    await Tokens.releaseTokenUse(trx, sessionId);
  }
}
