// Sign-in sessions: issuing, checking, refreshing and revoking access tokens.
// A session is a device plus its access (and optional refresh) token.

import type { Knex } from 'knex';
import type { TokenCache } from '../cache/token-cache.js';
import type { Config } from '../config/types.js';
import { constantTimeEqual, hashToken, newDeviceId, newToken } from '../crypto/tokens.js';
import { dialectOf, isPreparedTx, type Runner } from '../db/database.js';
import { awaitingApproval, unknownToken } from '../errors.js';
import * as Devices from '../repositories/devices.js';
import * as SyncData from '../repositories/sync-data.js';
import { recordDeviceListChange } from '../repositories/streams.js';
import * as Tokens from '../repositories/tokens.js';
import { isInForce } from '../repositories/users.js';
import type { Notifier } from '../sync/notifier.js';
import { announceTokenInvalidation } from '../sync/pg-notifier.js';
import { forbidIfSuspended, userLocked } from './account-state.js';

export interface Requester {
  userId: string;
  deviceId: string;
  accessTokenId: number;
  isGuest: boolean;
  /** A server admin (Synapse's `admin` flag): may call the admin APIs. */
  isAdmin: boolean;
  /** Suspended now (MSC3823): signed in, but refused the writes `forbidIfSuspended` guards. */
  suspended: boolean;
}

export interface IssuedSession {
  access_token: string;
  device_id: string;
  refresh_token?: string;
  expires_in_ms?: number;
}

export interface SessionRequest {
  userId: string;
  deviceId: string | null;
  displayName: string | null;
  wantRefreshToken: boolean;
  ip: string | null;
  userAgent: string | null;
}

/** An address fit to store: a proxy's X-Forwarded-For can hold anything, of any length. */
function clientAddress(ip: string | null): string | null {
  return ip === null ? null : ip.slice(0, 64);
}

/** How long expired tokens are kept before the sweep deletes them (see sweepExpiredTokens). */
const EXPIRED_REFRESH_GRACE_MS = 24 * 3_600_000;
const EXPIRED_ACCESS_GRACE_MS = 7 * 24 * 3_600_000;

/** How often a device's last-seen fields are written at most (per process). */
const LAST_SEEN_INTERVAL_MS = 60_000;

/** What the account-state, approval and admin writers need of SessionHandler. */
export interface TokenInvalidator {
  invalidateUsers(q: Knex, userIds: string[]): Promise<void>;
}

export class SessionHandler implements TokenInvalidator {
  private readonly lastSeenWrites = new Map<number, number>();
  /** PostgreSQL: other processes may cache tokens too, and hear of changes through NOTIFY. */
  private readonly announce: boolean;

  constructor(
    private readonly db: Knex,
    private readonly config: Pick<
      Config,
      'refreshable_access_token_lifetime' | 'refresh_token_lifetime' | 'nonrefreshable_access_token_lifetime' | 'session_lifetime'
    >,
    /** Finds an access token by hash; app.ts picks the fastest lookup the database allows. */
    private readonly lookupToken: (tokenHash: string) => Promise<Tokens.AccessTokenWithUser | null> = (h) =>
      Tokens.findAccessTokenWithUser(db, h),
    private readonly clock: () => number = Date.now,
    /** Wakes the user's waiting /sync requests when a device goes (absent in the CLI). */
    private readonly notifier?: Notifier,
    /** This process's access-token cache (absent in the CLI, which serves no requests). */
    private readonly tokenCache?: TokenCache,
  ) {
    this.announce = dialectOf(db) === 'postgres';
  }

  /**
   * The one choke point for every write that ends or changes what a user's
   * tokens may do (token deletion, lock, suspension, approval, admin flag,
   * deactivation, guest upgrade): drops the users' cached tokens in this
   * process and announces it to the others (PostgreSQL). Call it after the
   * write, on the same `q`: in a transaction the announcement is delivered on
   * commit, and this process drops the entries again once the transaction
   * ends, so that a lookup that read the old row meanwhile cannot keep it.
   * Rejects as the query does (the caller's transaction then rolls back).
   */
  async invalidateUsers(q: Knex, userIds: string[]): Promise<void> {
    const users = [...new Set(userIds)];
    if (users.length === 0) return;
    const cache = this.tokenCache;
    cache?.invalidateUsers(users);
    if (cache && (q as Knex.Transaction).isTransaction) {
      // The outermost transaction: a savepoint's release commits nothing yet.
      let trx = q as Knex.Transaction & { parentTransaction?: Knex.Transaction };
      while (trx.parentTransaction) trx = trx.parentTransaction;
      const again = () => cache.invalidateUsers(users);
      trx.executionPromise?.then(again, again);
    }
    if (this.announce) await announceTokenInvalidation(q, users);
  }

  /**
   * Creates (or reuses) the device and gives it a fresh token pair. Signing in
   * again on an existing device ID ends that device's earlier tokens, as the spec asks.
   * Every sign-in (login, registration, guests, shared-secret registration, the
   * CLI's admin) comes through here, so here its end is set: now +
   * session_lifetime, when that is configured.
   */
  async issue(q: Knex, req: SessionRequest): Promise<IssuedSession> {
    const session = await this.issueWith(q, req, async (device, now) => {
      await Devices.upsertDevice(q, device, now);
      return true;
    });
    return session!;
  }

  /**
   * `issue` for a password login whose user row was read before the password
   * check: signs in only while that row still has `passwordHash` and lets the
   * user sign in (see Devices.upsertDeviceIfUserMaySignIn, which also locks
   * the row on PostgreSQL); null, with nothing written, otherwise (the caller
   * then reads the row again and says why). Saves the login a statement.
   * `q` is a knex transaction, or on SQLite a prepared one (SqliteWriter).
   */
  async issueIfUserMaySignIn(q: Runner, req: SessionRequest, passwordHash: string): Promise<IssuedSession | null> {
    return this.issueWith(q, req, (device, now) => Devices.upsertDeviceIfUserMaySignIn(q, device, now, passwordHash));
  }

  private async issueWith(
    q: Runner,
    req: SessionRequest,
    writeDevice: (device: Parameters<typeof Devices.upsertDevice>[1], now: number) => Promise<boolean>,
  ): Promise<IssuedSession | null> {
    const now = this.clock();
    const deviceId = req.deviceId ?? newDeviceId();
    const device = { user_id: req.userId, device_id: deviceId, display_name: req.displayName, ip: clientAddress(req.ip), user_agent: req.userAgent };
    // The device first: a guarded write that refuses has then written nothing, and the user's row
    // is locked (PostgreSQL) before any token row, as in every sign-in.
    if (!(await writeDevice(device, now))) return null;
    // A generated device ID is new, so it has no earlier tokens to end.
    if (req.deviceId !== null) {
      await Tokens.deleteTokensForDevice(q, req.userId, deviceId);
      await this.invalidateUsersIn(q, [req.userId]);
    }
    // As Synapse, the end is fixed at sign-in: a later change of session_lifetime leaves it be.
    // (Synapse refuses session_lifetime for guests; here guests' sign-ins end too, the closed choice.)
    const sessionEnd = this.config.session_lifetime === null ? null : now + this.config.session_lifetime;
    return (await this.issueTokens(q, req.userId, deviceId, req.wantRefreshToken, now, sessionEnd)).issued;
  }

  /**
   * Makes the access token (and, when asked for and configured, the refresh
   * token) of a sign-in. `sessionEnd` (ms since the epoch, null = never) caps
   * both tokens' expiry and is stored with the refresh token, so that the
   * tokens /refresh gives out inherit it. `expires_in_ms` is sent whenever
   * the access token expires, counted from `now` (as Synapse).
   */
  private async issueTokens(
    q: Runner,
    userId: string,
    deviceId: string,
    wantRefresh: boolean,
    now: number,
    sessionEnd: number | null,
  ): Promise<{ issued: IssuedSession; refreshTokenId: number | null }> {
    const clip = (expiry: number | null) => (sessionEnd === null ? expiry : Math.min(expiry ?? sessionEnd, sessionEnd));
    const after = (lifetime: number | null) => (lifetime === null ? null : now + lifetime);
    const accessToken = newToken('access');
    let refreshToken: string | undefined;
    let refreshTokenId: number | null = null;
    let accessExpiry = clip(after(this.config.nonrefreshable_access_token_lifetime));
    if (wantRefresh && this.config.refreshable_access_token_lifetime !== null) {
      refreshToken = newToken('refresh');
      accessExpiry = clip(after(this.config.refreshable_access_token_lifetime));
      refreshTokenId = await Tokens.insertRefreshToken(
        q,
        {
          token_hash: hashToken(refreshToken),
          user_id: userId,
          device_id: deviceId,
          expires_ts: clip(after(this.config.refresh_token_lifetime)),
          ultimate_session_expiry_ts: sessionEnd,
        },
        now,
      );
    }
    await Tokens.insertAccessToken(
      q,
      { token_hash: hashToken(accessToken), user_id: userId, device_id: deviceId, refresh_token_id: refreshTokenId, expires_ts: accessExpiry },
      now,
    );
    const issued: IssuedSession = { access_token: accessToken, device_id: deviceId };
    if (refreshToken !== undefined) issued.refresh_token = refreshToken;
    if (accessExpiry !== null) issued.expires_in_ms = Math.max(0, accessExpiry - now);
    return { issued, refreshTokenId };
  }

  /** `invalidateUsers` for a sign-in's transaction, which may be a prepared SQLite one. */
  private async invalidateUsersIn(q: Runner, userIds: string[]): Promise<void> {
    if (!isPreparedTx(q)) return this.invalidateUsers(q, userIds);
    // SQLite (nothing to announce): drop the entries now and again once the transaction
    // has ended, as invalidateUsers does for a knex transaction.
    this.tokenCache?.invalidateUsers(userIds);
    q.afterEnd(() => this.tokenCache?.invalidateUsers(userIds));
  }

  /**
   * Resolves an access token to its user and device, and enforces the
   * account's state: every authenticated request comes through here, so no
   * endpoint can forget a state. In this order (the first that holds answers):
   * 1. 401 M_UNKNOWN_TOKEN: unknown or revoked token, or deactivated account.
   * 2. 401 M_UNKNOWN_TOKEN with `soft_logout: true`: expired token (as Synapse, the
   *    token is judged before the account; a refreshed token then hears the account's state).
   * 3. With `signOut` (/logout and /logout/all only) the token is accepted here, expired
   *    or not and whatever the account's state (MSC3939 keeps sign-out open to locked accounts).
   * 4. 401 M_USER_LOCKED, `soft_logout: true` (MSC3939): the lock comes before approval,
   *    being an admin's decision about an account that exists, told on every endpoint.
   * 5. 403 M_USER_AWAITING_APPROVAL (MSC3866).
   * 6. 403 M_USER_SUSPENDED (MSC3823), with `forbidWhenSuspended` only (see forbidIfSuspended).
   * A lock or suspension whose end time has passed no longer holds (no job lifts it).
   * Tokens are never deleted here: unlocking restores every session.
   */
  authenticate(
    token: string,
    ip: string | null,
    userAgent: string | null,
    opts: { signOut?: boolean; forbidWhenSuspended?: boolean } = {},
  ): Requester | Promise<Requester> {
    const hash = hashToken(token);
    const cached = this.tokenCache?.get(hash);
    // A cached token needs no database read, and mostly no write: then the answer comes without a promise.
    if (cached) return this.admit(cached, hash, ip, userAgent, opts);
    return this.lookupAndCache(hash).then((row) => this.admit(row, hash, ip, userAgent, opts));
  }

  /** The checks of `authenticate` on the token's row (null: unknown), then its first-use and last-seen writes. */
  private admit(
    row: Tokens.AccessTokenWithUser | null,
    hash: string,
    ip: string | null,
    userAgent: string | null,
    opts: { signOut?: boolean; forbidWhenSuspended?: boolean },
  ): Requester | Promise<Requester> {
    if (!row || !constantTimeEqual(row.token_hash, hash) || row.deactivated) throw unknownToken('Unknown access token');
    const now = this.clock();
    const requester: Requester = {
      userId: row.user_id,
      deviceId: row.device_id,
      accessTokenId: row.id,
      isGuest: row.is_guest,
      isAdmin: row.is_admin,
      suspended: isInForce(row.suspension, now),
    };
    if (row.expires_ts !== null && row.expires_ts <= now) {
      // An expired token may still sign out; it is not revived, and its device's last-seen stays.
      if (opts.signOut) return requester;
      // A soft logout: the client may refresh or sign in again on the same device.
      throw unknownToken('Access token has expired', true);
    }
    if (!opts.signOut) {
      if (isInForce(row.lock, now)) throw userLocked();
      // An account waiting for approval (e.g. approval withdrawn after sign-in) may only sign out.
      if (!row.approved) throw awaitingApproval();
      if (opts.forbidWhenSuspended) forbidIfSuspended(requester);
    }
    const refreshTokenId = row.refresh_token_id;
    if (refreshTokenId !== null && !row.used) {
      // First use of a refreshed token (never cached): the refresh token it replaced (and its access token) retire now.
      return this.db
        .transaction(async (trx) => {
          if (!(await Tokens.markAccessTokenUsed(trx, row.id))) return;
          await Tokens.deletePredecessorRefreshTokens(trx, refreshTokenId);
          await this.invalidateUsers(trx, [row.user_id]);
        })
        .then(() => this.noteLastSeen(row.id, row.user_id, row.device_id, now, ip, userAgent))
        .then(() => requester);
    }
    const seen = this.noteLastSeen(row.id, row.user_id, row.device_id, now, ip, userAgent);
    return seen ? seen.then(() => requester) : requester;
  }

  /**
   * Reads the token from the database and caches it when that is safe: not an
   * unknown token (no negative caching), not a deactivated account's, and not
   * a refreshed token before its first use (which must reach the database, to
   * retire its predecessor).
   */
  private async lookupAndCache(hash: string): Promise<Tokens.AccessTokenWithUser | null> {
    const cache = this.tokenCache;
    if (!cache?.enabled) return this.lookupToken(hash);
    const ticket = cache.ticket();
    const readAt = this.clock();
    const row = await this.lookupToken(hash);
    if (row && !row.deactivated && (row.refresh_token_id === null || row.used)) cache.store(row, ticket, readAt);
    return row;
  }

  /** Records the device's last use at most once a minute per token: a promise when it writes, else undefined. */
  private noteLastSeen(tokenId: number, userId: string, deviceId: string, now: number, ip: string | null, ua: string | null) {
    const last = this.lastSeenWrites.get(tokenId);
    if (last !== undefined && now - last < LAST_SEEN_INTERVAL_MS) return undefined;
    if (this.lastSeenWrites.size > 100_000) this.lastSeenWrites.clear();
    this.lastSeenWrites.set(tokenId, now);
    return Devices.touchDevice(this.db, userId, deviceId, now, clientAddress(ip), ua);
  }

  /**
   * Exchanges a refresh token for a new pair. The old refresh token keeps
   * working (a client may retry after a lost response) until the new access
   * or refresh token is first used; then it is deleted (spec: /refresh). A
   * retry replaces the unused pair made last time, so one refresh token has at
   * most one live successor. The new pair ends with the sign-in (session_lifetime).
   * Errors: 401 M_UNKNOWN_TOKEN (soft_logout false) for a token that is unknown,
   * expired, or whose sign-in has ended (spec: /refresh; Synapse says 403 M_FORBIDDEN
   * for the last two).
   */
  async refresh(refreshToken: string): Promise<Omit<IssuedSession, 'device_id'>> {
    const hash = hashToken(refreshToken);
    return this.db.transaction(async (trx) => {
      const now = this.clock();
      // Locked (PostgreSQL) for the rest of the transaction: parallel refreshes of one token take turns.
      const row = await Tokens.findRefreshToken(trx, hash);
      if (!row) throw unknownToken('Unknown refresh token');
      const sessionEnd = row.ultimate_session_expiry_ts;
      if (sessionEnd !== null && sessionEnd <= now) throw unknownToken('The session has ended; sign in again');
      if (row.expires_ts !== null && row.expires_ts <= now) throw unknownToken('Refresh token has expired');
      // Lock the device too: a logout racing this refresh either waits for it (and then ends the
      // new pair as well) or has deleted the device already (and this refresh fails).
      if (!(await Devices.lockDevice(trx, row.user_id, row.device_id))) throw unknownToken('Unknown refresh token');
      // Using this token retires the one it was exchanged for.
      await Tokens.deletePredecessorRefreshTokens(trx, row.id);
      if (row.next_token_id !== null) await Tokens.deleteRefreshTokenWithAccessTokens(trx, row.next_token_id);
      const { issued, refreshTokenId } = await this.issueTokens(trx, row.user_id, row.device_id, true, now, sessionEnd);
      await Tokens.linkNextRefreshToken(trx, row.id, refreshTokenId!);
      // The retired pairs' access tokens may be cached.
      await this.invalidateUsers(trx, [row.user_id]);
      const { device_id: _sameDevice, ...pair } = issued;
      return pair;
    });
  }

  /**
   * Ends sessions: the given devices of the user (all when `deviceIds` is
   * null), except `keepDeviceId`, with every token they hold. Devices go first,
   * so that a refresh racing this (which locks its device row) is either
   * finished and its new tokens deleted here, or finds its device gone.
   */
  async endSessions(trx: Knex, userId: string, deviceIds: string[] | null, keepDeviceId: string | null = null): Promise<void> {
    // A deleted device's keys go with it (ON DELETE CASCADE); the user's other devices hear of it through device_lists.
    if ((await Devices.deleteDevices(trx, userId, deviceIds, keepDeviceId)) > 0) {
      await recordDeviceListChange(trx as Knex.Transaction, userId);
      // The caller owns the transaction: wake the other devices' syncs once it commits (not on rollback).
      (trx as Knex.Transaction).executionPromise?.then(
        () => this.notifier?.notify([userId]),
        () => undefined,
      );
    }
    await Tokens.deleteTokensForDevices(trx, userId, deviceIds, keepDeviceId);
    await this.invalidateUsers(trx, [userId]);
    // A deleted device's pending to-device messages can never be delivered.
    await SyncData.deleteToDeviceForDevices(trx, userId, deviceIds, keepDeviceId);
  }

  /**
   * Deletes tokens that can no longer be used. An expired access token is kept
   * for a while so that its client is told "soft logout" (sign in again on the
   * same device) rather than "unknown token"; a day after its refresh token
   * (or a week after itself, without one) nothing can revive it.
   */
  async sweepExpiredTokens(): Promise<void> {
    const now = this.clock();
    this.tokenCache?.purgeExpired();
    const deleted = await this.db.transaction(async (trx) => {
      const refresh = await Tokens.deleteExpiredRefreshTokens(trx, now - EXPIRED_REFRESH_GRACE_MS);
      return refresh + (await Tokens.deleteExpiredAccessTokens(trx, now - EXPIRED_ACCESS_GRACE_MS));
    });
    // Rare, and the users are not known here: forget every cached token of this process. (Every
    // process sweeps; another one's cached rows for these tokens say "expired" until their max age.)
    if (deleted > 0) this.tokenCache?.clear();
  }

  /** Ends one device's session: the device and all its tokens. */
  async logout(requester: Requester): Promise<void> {
    await this.db.transaction((trx) => this.endSessions(trx, requester.userId, [requester.deviceId]));
  }

  /** Ends every session of the user. */
  async logoutAll(userId: string): Promise<void> {
    await this.db.transaction((trx) => this.endSessions(trx, userId, null));
  }
}
