// The signed-in user's email addresses (spec: Client-Server API, "Adding
// Account Administrative Contact Information"): list, add (with a validated
// `add_threepid` session and re-authentication), delete. Gatehouse has no
// identity server: bind is refused and unbind has nothing to do.

import type { Knex } from 'knex';
import type { Config } from '../config/types.js';
import { canonicaliseEmail, CLIENT_SECRET_RE, threepidAllowed } from '../domain/threepids.js';
import { forbidden, invalidParam, MatrixError, missingParam } from '../errors.js';
import * as Threepids from '../repositories/threepids.js';
import * as UserAdmin from '../repositories/user-admin.js';
import type { UiaEngine } from '../uia/engine.js';
import { hasSession, reauthFlows } from './account.js';
import type { Requester } from './sessions.js';
import { threepidDenied, threepidInUse, type ThreepidValidationHandler } from './threepid-validation.js';

/** A bound address as GET /account/3pid shows it (all four keys always; times in milliseconds since the epoch). */
export interface ThreepidView {
  medium: string;
  address: string;
  validated_at: number;
  added_at: number;
}

/** The unbind result of a homeserver without an identity server (spec: "no-support"). */
export type UnbindResult = { id_server_unbind_result: 'no-support' };

/** Longest `sid` read: Gatehouse's are 24 characters; a longer one names no session. */
export const MAX_SID_LENGTH = 255;

export const threepidAuthFailed = () => new MatrixError(400, 'M_THREEPID_AUTH_FAILED', 'No validated 3pid session found');
// As Synapse the message; 403 as the issue asks (Synapse answers 400 with M_FORBIDDEN).
const changesDisabled = () => forbidden('3PID changes are disabled on this server');
const NO_SUPPORT: UnbindResult = Object.freeze({ id_server_unbind_result: 'no-support' as const });

/** A medium the delete/unbind bodies may name (spec: enum email, msisdn). */
export const MEDIA = ['email', 'msisdn'] as const;

export class ThreepidHandler {
  constructor(
    private readonly db: Knex,
    private readonly config: Config,
    private readonly uia: UiaEngine,
    private readonly validation: ThreepidValidationHandler,
    private readonly clock: () => number = Date.now,
  ) {}

  /** GET /account/3pid: `{threepids: [{medium, address, validated_at, added_at}]}`, oldest first. */
  async list(requester: Requester): Promise<{ threepids: ThreepidView[] }> {
    const rows = await Threepids.listThreepids(this.db, requester.userId);
    return { threepids: rows.map(({ medium, address, validated_at, added_at }) => ({ medium, address, validated_at, added_at })) };
  }

  /**
   * POST /account/3pid/add (UIA: the re-authentication flows, as Synapse).
   * Binds the address of the validated `add_threepid` session `sid` (with
   * its client secret), using the session up in the same transaction. The
   * UIA session remembers `sid` and `client_secret`, so the completing
   * request may send only `auth`. An address this user has already is a
   * success (as Synapse, whose add is an upsert; the new validation time is
   * kept). Errors: 403 M_FORBIDDEN (enable_3pid_changes false), 400
   * M_MISSING_PARAM (no sid or client_secret), 400 M_INVALID_PARAM (a
   * malformed client_secret, as Synapse), UIA's 401, 400
   * M_THREEPID_AUTH_FAILED (the session is unknown, of another client secret
   * or purpose, not validated, used or expired), 403 M_THREEPID_DENIED (the
   * registration policy refuses the address now), 400 M_THREEPID_IN_USE (the
   * address is bound to another account: as the spec asks, unlike Synapse,
   * which moves it).
   */
  async add(
    requester: Requester,
    req: { sid: string | null; clientSecret: string | null; auth: unknown; ip: string },
  ): Promise<Record<string, never>> {
    if (!this.config.enable_3pid_changes) throw changesDisabled();
    // Without a UIA session there is no earlier request that could have given them.
    if (!hasSession(req.auth)) {
      if (req.clientSecret === null) throw missingParam('Missing parameter: client_secret');
      if (req.sid === null) throw missingParam('Missing parameter: sid');
    }
    if (req.clientSecret !== null && !CLIENT_SECRET_RE.test(req.clientSecret)) throw invalidParam('Invalid client_secret parameter');
    const params: Record<string, unknown> = {};
    if (req.sid !== null) params.sid = req.sid;
    if (req.clientSecret !== null) params.client_secret = req.clientSecret;
    const auth = await this.uia.authenticate(
      { name: 'POST /account/3pid/add', userId: requester.userId, params, clientIp: req.ip },
      reauthFlows(this.config),
      req.auth,
    );
    if (auth.previous) return {};
    const sid = auth.params.sid;
    const clientSecret = auth.params.client_secret;
    if (typeof clientSecret !== 'string') throw missingParam('Missing parameter: client_secret');
    if (typeof sid !== 'string') throw missingParam('Missing parameter: sid');

    await this.db.transaction(async (trx) => {
      const validated = await this.validation.validatedThreepid(trx, 'add_threepid', sid, clientSecret);
      if (!validated) throw threepidAuthFailed();
      // The policy may have changed since the mail was sent.
      if (!threepidAllowed(this.config.threepid_policy, validated.medium, validated.address)) throw threepidDenied();
      const owner = await Threepids.findUserIdByThreepid(trx, validated.medium, validated.address);
      if (owner !== null && owner !== requester.userId) throw threepidInUse();
      // Once only: of two parallel adds with one session, the second finds it used.
      if (!(await this.validation.consume(trx, sid))) throw threepidAuthFailed();
      const now = this.clock();
      if (owner === requester.userId) {
        await UserAdmin.refreshThreepidValidation(trx, requester.userId, validated.medium, validated.address, validated.validated_at);
      } else {
        const row = { user_id: requester.userId, medium: validated.medium, address: validated.address, validated_at: validated.validated_at, added_at: now };
        // The primary key decides a race with another account adding the same address.
        if (!(await Threepids.insertThreepid(trx, row)) && (await Threepids.findUserIdByThreepid(trx, row.medium, row.address)) !== requester.userId)
          throw threepidInUse();
      }
      await this.uia.complete(auth, trx);
    });
    return {};
  }

  /**
   * POST /account/3pid/delete: unbinds `address` (canonicalised for email)
   * from the user. As Synapse, an address the user does not have is a
   * success too ("should succeed if there is nothing to delete"), so the
   * answer tells nothing about other accounts' addresses. Returns
   * `{id_server_unbind_result: "no-support"}`: no identity server was ever
   * told. Errors: 403 M_FORBIDDEN (enable_3pid_changes false).
   */
  async delete(requester: Requester, req: { medium: (typeof MEDIA)[number]; address: string }): Promise<UnbindResult> {
    if (!this.config.enable_3pid_changes) throw changesDisabled();
    if (req.medium === 'email') {
      const address = canonicaliseEmail(req.address);
      // Not an address: no account can have it.
      if (address !== null) await Threepids.deleteThreepid(this.db, requester.userId, 'email', address);
    }
    // msisdn: Gatehouse binds no phone numbers, so there is nothing to delete.
    return { ...NO_SUPPORT };
  }

  /**
   * POST /account/3pid/bind (and the deprecated POST /account/3pid, which
   * the spec now defines as the same). Gatehouse trusts no identity server,
   * so no bind can succeed: 400 M_SERVER_NOT_TRUSTED (as Synapse answered
   * for an identity server not in its trusted list). Errors before that:
   * 403 M_FORBIDDEN (enable_3pid_changes false).
   */
  bind(): never {
    if (!this.config.enable_3pid_changes) throw changesDisabled();
    throw new MatrixError(400, 'M_SERVER_NOT_TRUSTED', 'This server does not use identity servers; add an email address with POST /account/3pid/add');
  }

  /**
   * POST /account/3pid/unbind: nothing was ever bound at an identity server
   * through Gatehouse, so `{id_server_unbind_result: "no-support"}` (spec: the
   * homeserver cannot determine an identity server to unbind from). The
   * address stays bound to the account. Errors: 403 M_FORBIDDEN
   * (enable_3pid_changes false).
   */
  unbind(): UnbindResult {
    if (!this.config.enable_3pid_changes) throw changesDisabled();
    return { ...NO_SUPPORT };
  }
}
