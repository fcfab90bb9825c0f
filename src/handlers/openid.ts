// OpenID tokens (spec: POST /user/{userId}/openid/request_token, and the
// federation API's GET /openid/userinfo): how widgets and Element Call learn
// who a user is without their access token.

import type { Knex } from 'knex';
import { hashToken, randomString } from '../crypto/tokens.js';
import { forbidden, MatrixError } from '../errors.js';
import * as Push from '../repositories/push.js';

/** As Synapse: an OpenID token lives an hour. */
export const OPENID_TOKEN_LIFETIME_MS = 60 * 60_000;

export interface OpenIdToken {
  access_token: string;
  token_type: 'Bearer';
  matrix_server_name: string;
  /** Seconds. */
  expires_in: number;
}

export class OpenIdHandler {
  constructor(
    private readonly db: Knex,
    private readonly serverName: string,
    private readonly clock: () => number = Date.now,
  ) {}

  /** A new token for the requester; another user's ID is 403 M_FORBIDDEN. Only its hash is stored. */
  async requestToken(requesterId: string, userId: string): Promise<OpenIdToken> {
    if (userId !== requesterId) throw forbidden('Cannot request tokens for other users');
    const token = `gho_${randomString(40)}`;
    const now = this.clock();
    await Push.deleteExpiredOpenIdTokens(this.db, now);
    await Push.insertOpenIdToken(this.db, hashToken(token), userId, now + OPENID_TOKEN_LIFETIME_MS);
    return { access_token: token, token_type: 'Bearer', matrix_server_name: this.serverName, expires_in: OPENID_TOKEN_LIFETIME_MS / 1000 };
  }

  /** `{sub: userId}` for a valid token; a missing, unknown or expired one is 401 M_UNKNOWN_TOKEN (spec). */
  async userinfo(token: string | null): Promise<{ sub: string }> {
    const user = token ? await Push.openIdUser(this.db, hashToken(token), this.clock()) : null;
    if (!user) throw new MatrixError(401, 'M_UNKNOWN_TOKEN', 'Access token unknown or expired');
    return { sub: user };
  }
}
