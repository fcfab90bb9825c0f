// Small client endpoints that real clients call while starting up, answered
// with what Gatehouse has: TURN credentials, and empty lists where rooms,
// notifications and bridges do not exist yet.

import { createHmac } from 'node:crypto';
import type { Config } from '../config/types.js';

export interface TurnServer {
  username: string;
  password: string;
  uris: string[];
  /** Seconds. */
  ttl: number;
}

export class ClientMiscHandler {
  constructor(
    private readonly turn: Config,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Whether guests may ask for TURN credentials (Synapse's `turn_allow_guests`). */
  get turnAllowsGuests(): boolean {
    return this.turn.turn_allow_guests;
  }

  /**
   * GET /voip/turnServer, as Synapse: `{}` without `turn_uris` or without
   * credentials. With `turn_shared_secret` (the TURN REST API): username
   * `<expiry in s>:<user ID>`, password base64(HMAC-SHA1(secret, username)).
   * Otherwise the static `turn_username` and `turn_password`.
   */
  turnServer(userId: string): TurnServer | Record<string, never> {
    const t = this.turn;
    if (t.turn_uris.length === 0) return {};
    const ttl = Math.floor(t.turn_user_lifetime / 1000);
    if (t.turn_shared_secret !== null) {
      const username = `${Math.floor((this.clock() + t.turn_user_lifetime) / 1000)}:${userId}`;
      const password = createHmac('sha1', t.turn_shared_secret).update(username, 'utf8').digest('base64');
      return { username, password, uris: t.turn_uris, ttl };
    }
    if (t.turn_username !== null && t.turn_password !== null) return { username: t.turn_username, password: t.turn_password, uris: t.turn_uris, ttl };
    return {};
  }
}
