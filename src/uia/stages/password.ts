// m.login.password: re-authenticates the signed-in user with their password.
// The identifier must name that same user; failures count against
// rc_login.failed_attempts, as Synapse does for UIA.

import type { PasswordHasher } from '../../crypto/passwords.js';
import { badJson, forbidden, MatrixError, missingParam } from '../../errors.js';
import { attemptsKey, namedUser } from '../../domain/user-ids.js';
import { findUser } from '../../repositories/users.js';
import type { RateLimiter } from '../../ratelimit/limiter.js';
import type { StageContext, StageOutcome, UiaStage } from '../types.js';

export class PasswordStage implements UiaStage {
  readonly type = 'm.login.password';

  constructor(
    private readonly serverName: string,
    private readonly hasher: PasswordHasher,
    private readonly failedAttempts: RateLimiter,
  ) {}

  async check(auth: Record<string, unknown>, ctx: StageContext): Promise<StageOutcome> {
    const userId = ctx.operation.userId;
    if (userId === null) return { ok: false, error: forbidden('Password authentication needs a signed-in user') };
    if (auth.password === undefined || auth.password === null) throw missingParam('Missing parameter: auth.password');
    if (typeof auth.password !== 'string') throw badJson('auth.password must be a string');
    if (auth.password.includes('\u0000')) throw badJson('auth.password must not contain NUL characters');
    // Clients may leave the identifier out; it then means the signed-in user.
    if (auth.identifier !== undefined || auth.user !== undefined) {
      const named = namedUser(auth, this.serverName);
      // Naming someone else (another local user, or a user of another server) is a plain 403,
      // not a failed stage to retry, and is refused before any password is checked: Synapse
      // checks the other user's password first, which lets a caller test it.
      // Sign-in names are matched without regard to case (as at login).
      if (!named || attemptsKey(named.userId) !== attemptsKey(userId))
        throw forbidden('The identifier does not name the signed-in user');
    }
    // Counted before the check, so parallel guesses cannot all slip under the limit;
    // given back when the password turns out right.
    const key = attemptsKey(userId);
    await this.failedAttempts.take(key);
    const user = await findUser(ctx.db, userId);
    if (user && !user.password_hash) return { ok: false, error: forbidden('This account has no password') };
    if (!user || !(await this.hasher.verify(user.password_hash, auth.password)))
      return { ok: false, error: new MatrixError(401, 'M_FORBIDDEN', 'Invalid password') };
    await this.failedAttempts.refund(key);
    return { ok: true };
  }
}
