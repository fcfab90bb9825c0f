// Accounts for server admins: Synapse's user admin API (what synadm's `user`
// commands and admin UIs call) and `gatehouse users`, both through this
// handler so they keep the same rules. Shapes are Synapse's; keys for things
// Gatehouse does not have (SSO IDs, appservices, shadow bans) are sent as
// Synapse sends them when empty.

import type { Knex } from 'knex';
import type { Config } from '../../config/types.js';
import type { PasswordHasher } from '../../crypto/passwords.js';
import { MAX_AVATAR_URL, MAX_DISPLAYNAME } from '../../domain/profiles.js';
import { canonicaliseEmail } from '../../domain/threepids.js';
import { checkNewLocalpart, newLocalpart, parseUserId } from '../../domain/user-ids.js';
import { forbidden, invalidParam, MatrixError, notFound } from '../../errors.js';
import { USER_CONSENT_POLICY_ID } from '../../config/terms.js';
import * as Acceptances from '../../repositories/policy-acceptances.js';
import * as Threepids from '../../repositories/threepids.js';
import * as UserAdmin from '../../repositories/user-admin.js';
import * as Users from '../../repositories/users.js';
import { deactivateAccount } from '../account.js';
import type { AccountStateHandler } from '../account-state.js';
import { createAccount, USER_TYPES, userInUse } from '../accounts.js';
import { checkPassword } from '../password-policy.js';
import { threepidInUse } from '../threepid-validation.js';
import type { SessionHandler } from '../sessions.js';
import type { AccountApprovalHandler } from './account-approval.js';

export const DEFAULT_LIST_LIMIT = 100;
/** A larger `limit` is served as this many (the list says where the next page starts). */
export const MAX_LIST_LIMIT = 1000;

/** An account in GET /_synapse/admin/v2/users. */
export interface UserListItem {
  name: string;
  displayname: string | null;
  avatar_url: string | null;
  is_guest: boolean;
  admin: boolean;
  deactivated: boolean;
  erased: boolean;
  shadow_banned: boolean;
  /** Whether a lock is in force now (one past its end time has lifted). */
  locked: boolean;
  /** Whether a suspension is in force now. */
  suspended: boolean;
  /** False while the account waits for an admin's approval (MSC3866). */
  approved: boolean;
  user_type: string | null;
  /** Milliseconds since the epoch (as Synapse's list; the details give seconds). */
  creation_ts: number;
  /** Milliseconds since the epoch: when a device of the account was last seen; null if never. */
  last_seen_ts: number | null;
}

/** An account as GET /_synapse/admin/v2/users/{userId} shows it (Synapse's keys, all of them): the list's, and these. */
export interface UserDetails extends UserListItem {
  /** The account's email addresses, oldest first (times in milliseconds since the epoch). */
  threepids: { medium: string; address: string; added_at: number; validated_at: number }[];
  /** Always [] (no SSO). */
  external_ids: { auth_provider: string; external_id: string }[];
  /** Seconds since the epoch, as Synapse's here (the list's creation_ts is in milliseconds, as Synapse's there). */
  creation_ts: number;
  appservice_id: null;
  consent_server_notice_sent: null;
  /** The version of Synapse's consent policy (`privacy_policy`) the user accepted last, null if none. */
  consent_version: string | null;
  /** When (milliseconds since the epoch, as Synapse), null if never. */
  consent_ts: number | null;
}

export interface UserList {
  users: UserListItem[];
  /** How many accounts match the filters, over all pages. */
  total: number;
  /** The `from` of the next page (a string, as Synapse); absent on the last page. */
  next_token?: string;
}

export interface ListRequest {
  from: number;
  limit: number;
  userId: string | null;
  name: string | null;
  guests: boolean;
  deactivated: boolean;
  locked: boolean;
  admins: boolean | null;
  /** false: only accounts waiting for approval; true (the default): all. */
  approved: boolean;
  notUserTypes: string[];
  orderBy: UserAdmin.AccountOrder;
  backwards: boolean;
}

/** What PUT /_synapse/admin/v2/users/{userId} asks for; an absent (undefined) field is left as it is. The route has checked the types. */
export interface UserChanges {
  password?: string;
  /** With `password`: end every session of the account (default true). */
  logoutDevices?: boolean;
  /** "" or null removes it; on creation it defaults to the localpart. */
  displayname?: string | null;
  /** An mxc:// URI; "" or null removes it. */
  avatarUrl?: string | null;
  /**
   * The account's addresses, replacing the ones it has (as Synapse: those
   * kept keep their times; new ones are validated and added now). Medium
   * `email` only; addresses are canonicalised.
   */
  threepids?: ThreepidInput[];
  /** Addresses to add and to remove, leaving the others (what `gatehouse users modify --email/--remove-email` asks). */
  threepidEdits?: { add: ThreepidInput[]; remove: ThreepidInput[] };
  /** Only [] (no SSO). */
  externalIds?: unknown[];
  admin?: boolean;
  deactivated?: boolean;
  locked?: boolean;
  userType?: string | null;
  approved?: boolean;
}

/** An address as an admin gives it. */
export interface ThreepidInput {
  medium: string;
  address: string;
}

/** Who acts: an admin signed in on a device, or null for the command line. */
export type Actor = { userId: string; deviceId: string } | null;

const userNotFound = () => notFound('User not found');

/**
 * The user ID of a local account named in a path. 400 M_INVALID_PARAM for
 * something that is not a user ID and (as Synapse, "Can only look up local
 * users") for one of another server.
 */
export function localUserId(userId: string, serverName: string): string {
  const parsed = parseUserId(userId);
  if (!parsed || userId.length > 255 || userId.includes('\u0000')) throw invalidParam('Invalid user ID');
  if (parsed.serverName !== serverName) throw invalidParam('Can only look up local users');
  return userId;
}

/** What `details` shows of the user's consent: Synapse's consent is the `privacy_policy` document. */
interface Consent {
  version: string | null;
  ts: number | null;
}

function details(a: UserAdmin.AccountRow, now: number, consent: Consent, threepids: Threepids.ThreepidRow[]): UserDetails {
  return {
    ...listItem(a, now),
    threepids: threepids.map((t) => ({ medium: t.medium, address: t.address, added_at: t.added_at, validated_at: t.validated_at })),
    external_ids: [],
    creation_ts: Math.floor(a.created_ts / 1000),
    appservice_id: null,
    consent_server_notice_sent: null,
    consent_version: consent.version,
    consent_ts: consent.ts,
  };
}

function listItem(a: UserAdmin.AccountRow, now: number): UserListItem {
  return {
    name: a.user_id,
    displayname: a.displayname,
    avatar_url: a.avatar_url,
    is_guest: a.is_guest,
    admin: a.is_admin,
    deactivated: a.deactivated,
    erased: a.erased,
    shadow_banned: false,
    locked: Users.isInForce(a.lock, now),
    suspended: Users.isInForce(a.suspension, now),
    approved: a.approved,
    user_type: a.user_type,
    creation_ts: a.created_ts,
    last_seen_ts: a.last_seen_ts,
  };
}

/**
 * The canonical addresses of a list of {medium, address}, without repeats.
 * 400 M_THREEPID_MEDIUM_NOT_SUPPORTED for a medium other than email (the only
 * one Gatehouse binds), 400 M_INVALID_PARAM for an address that is not one.
 */
function canonicalThreepids(list: ThreepidInput[]): string[] {
  const out = new Set<string>();
  for (const { medium, address } of list) {
    if (medium !== 'email') throw new MatrixError(400, 'M_THREEPID_MEDIUM_NOT_SUPPORTED', `threepids: medium ${JSON.stringify(medium.slice(0, 32))} is not supported (only email)`);
    const canonical = canonicaliseEmail(address);
    if (canonical === null) throw invalidParam(`threepids: ${JSON.stringify(address.slice(0, 320))} is not a valid email address`);
    out.add(canonical);
  }
  return [...out];
}

/** A display name to store: "" is none; at most 256 characters, as Synapse. */
function checkDisplayname(name: string | null): string | null {
  if (name === null || name === '') return null;
  if (name.length > MAX_DISPLAYNAME && [...name].length > MAX_DISPLAYNAME)
    throw invalidParam(`displayname must be at most ${MAX_DISPLAYNAME} characters`);
  return name;
}

/** An avatar URL to store: "" is none; else an mxc://server/media URI of at most 1000 characters. */
function checkAvatarUrl(url: string | null): string | null {
  if (url === null || url === '') return null;
  if (url.length > MAX_AVATAR_URL) throw invalidParam(`avatar_url must be at most ${MAX_AVATAR_URL} characters`);
  if (!/^mxc:\/\/[^/\s]+\/[^/\s]+$/.test(url)) throw invalidParam('avatar_url must be an mxc:// URI');
  return url;
}

export class UserAdminHandler {
  constructor(
    private readonly db: Knex,
    private readonly config: Pick<Config, 'server_name' | 'password_config'>,
    private readonly hasher: PasswordHasher,
    private readonly sessions: SessionHandler,
    private readonly accountState: AccountStateHandler,
    private readonly approval: AccountApprovalHandler,
    private readonly clock: () => number = Date.now,
  ) {}

  /** GET /_synapse/admin/v2/users/{userId}. Errors: 400 M_INVALID_PARAM (see localUserId), 404 M_NOT_FOUND. */
  async get(userId: string): Promise<UserDetails> {
    const account = await UserAdmin.findAccount(this.db, localUserId(userId, this.config.server_name));
    if (!account) throw userNotFound();
    // Synapse's consent_version/consent_ts: the latest acceptance of its one consent policy.
    const privacy = (await Acceptances.listAcceptances(this.db, account.user_id)).filter((a) => a.policy_id === USER_CONSENT_POLICY_ID).at(-1);
    const threepids = await Threepids.listThreepids(this.db, account.user_id);
    return details(account, this.clock(), { version: privacy?.version ?? null, ts: privacy?.accepted_ts ?? null }, threepids);
  }

  /**
   * GET /_synapse/admin/v2/users: one page of the accounts matching the
   * filters, `total` over all pages, and `next_token` while there are more.
   * Defaults as Synapse: guests included; deactivated and locked accounts
   * left out. A `limit` over MAX_LIST_LIMIT is served as MAX_LIST_LIMIT.
   * Errors: 400 M_INVALID_PARAM for a negative `from` or `limit`.
   */
  async list(req: ListRequest): Promise<UserList> {
    if (!Number.isSafeInteger(req.from) || req.from < 0) throw invalidParam('Query parameter from must be a string representing a positive integer.');
    if (!Number.isSafeInteger(req.limit) || req.limit < 0) throw invalidParam('Query parameter limit must be a string representing a positive integer.');
    const limit = Math.min(req.limit, MAX_LIST_LIMIT);
    const now = this.clock();
    const filter: UserAdmin.AccountFilter = {
      userIdContains: req.userId,
      nameContains: req.name,
      includeGuests: req.guests,
      includeDeactivated: req.deactivated,
      includeLocked: req.locked,
      admins: req.admins,
      onlyAwaitingApproval: !req.approved,
      excludeUserTypes: req.notUserTypes,
      now,
    };
    const { rows, total } = await UserAdmin.listAccounts(this.db, filter, { by: req.orderBy, backwards: req.backwards }, req.from, limit);
    const page: UserList = { users: rows.map((r) => listItem(r, now)), total };
    // As Synapse, but never a next page that starts where this one did (limit=0 asks only for the total).
    if (rows.length > 0 && req.from + rows.length < total) page.next_token = String(req.from + rows.length);
    return page;
  }

  /**
   * PUT /_synapse/admin/v2/users/{userId}: creates the account (`created`:
   * true, 201) or changes it (200), returning it as `get` does. Everything is
   * checked before anything changes. Creation: the localpart must be one
   * /register would accept; no password unless given; the display name
   * defaults to the localpart. Changes: `password` (with `logoutDevices`,
   * default true, every session ends, but the acting admin's own device when
   * it is their account), `displayname`/`avatarUrl` ("" removes),
   * `admin` (an admin cannot demote themselves), `deactivated` (true:
   * `deactivateAccount` without erasing; false: reactivates, without a
   * password unless one is given), `locked` (AccountStateHandler, only when it
   * changes, so a reason or end time set elsewhere stays), `userType`,
   * `approved` (AccountApprovalHandler). Errors: 400 M_INVALID_PARAM (not a
   * local user ID; `deactivated` with `locked`; an unknown user type; a
   * display name over 256 characters; an avatar URL that is not mxc:// or
   * over 1000 characters; an empty password; a `threepids` address that is
   * not one; non-empty `externalIds`, which Gatehouse does not support yet;
   * self-demotion), 400 M_THREEPID_MEDIUM_NOT_SUPPORTED (a medium other than
   * email), 400 M_THREEPID_IN_USE (an address bound to another account:
   * unlike Synapse, which moves it silently; the registration policy is not
   * applied, an admin's choice), 400
   * M_BAD_JSON (a password over 512 characters), 400 M_INVALID_USERNAME and
   * M_USER_IN_USE (creation, as at /register, case-insensitively), 403
   * M_FORBIDDEN (a password while password_config.enabled is false).
   */
  async put(actor: Actor, userId: string, changes: UserChanges): Promise<{ created: boolean; user: UserDetails }> {
    localUserId(userId, this.config.server_name);
    const threepids = changes.threepids === undefined ? undefined : canonicalThreepids(changes.threepids);
    const edits = changes.threepidEdits === undefined ? undefined : { add: canonicalThreepids(changes.threepidEdits.add), remove: canonicalThreepids(changes.threepidEdits.remove) };
    // Told before anything changes (the transaction checks again, for a race).
    for (const address of [...(threepids ?? []), ...(edits?.add ?? [])]) {
      const owner = await Threepids.findUserIdByThreepid(this.db, 'email', address);
      if (owner !== null && owner !== userId) throw threepidInUse();
    }
    if (changes.externalIds !== undefined && changes.externalIds.length > 0)
      throw invalidParam('external_ids: Gatehouse does not support single sign-on yet; only [] is accepted');
    if (changes.userType !== undefined && changes.userType !== null && !USER_TYPES.includes(changes.userType))
      throw invalidParam(`Invalid user type: must be one of ${USER_TYPES.join(', ')}, or null`);
    // As Synapse.
    if (changes.deactivated === true && changes.locked === true) throw invalidParam("An user can't be deactivated and locked");
    const displayname = changes.displayname === undefined ? undefined : checkDisplayname(changes.displayname);
    const avatarUrl = changes.avatarUrl === undefined ? undefined : checkAvatarUrl(changes.avatarUrl);
    if (changes.password !== undefined) this.checkNewPassword(changes.password);

    const existing = await Users.findUser(this.db, userId);
    if (existing && changes.admin === false && existing.is_admin && actor?.userId === userId) throw invalidParam('You may not demote yourself.');
    if (!existing) checkNewLocalpart(parseUserId(userId)!.localpart, this.config.server_name);
    const passwordHash = changes.password === undefined ? undefined : await this.hasher.hash(changes.password);

    let created: boolean | null = null;
    // A second round only when another request created the account meanwhile: then it is a change.
    for (let round = 0; created === null && round < 2; round++) {
      created = await this.db.transaction(async (trx) => {
        // Locked (PostgreSQL) so that parallel changes of one account take turns.
        const before = await Users.lockUser(trx, userId);
        if (!before) {
          if (!(await this.create(trx, userId, changes, displayname, passwordHash))) return null;
          if (avatarUrl !== undefined) await UserAdmin.setProfile(trx, userId, { avatar_url: avatarUrl });
        } else {
          await UserAdmin.setProfile(trx, userId, { displayname, avatar_url: avatarUrl });
          if (changes.admin !== undefined) await UserAdmin.setAdmin(trx, userId, changes.admin);
          if (passwordHash !== undefined) await this.setPassword(trx, actor, userId, passwordHash, changes.logoutDevices ?? true);
          if (changes.deactivated === false && before.deactivated) await UserAdmin.markActive(trx, userId);
          // The admin flag, a reactivation: what the account's cached tokens say changed.
          await this.sessions.invalidateUsers(trx, [userId]);
        }
        if (threepids !== undefined || edits !== undefined) await this.setThreepids(trx, userId, threepids, edits);
        if (changes.userType !== undefined) await Users.setUserType(trx, userId, changes.userType);
        if (changes.deactivated === true && !before?.deactivated) await deactivateAccount(trx, this.sessions, userId, { erase: false });
        return !before;
      });
    }
    if (created === null) throw userInUse();

    // Through their handlers, which use their own connection (so after the transaction). Only on a
    // change: re-locking would drop the reason and end time of a lock set elsewhere.
    const after = await Users.findUser(this.db, userId);
    if (after && changes.locked !== undefined && changes.locked !== Users.isInForce(after.lock, this.clock()))
      await this.accountState.setLocked(userId, { on: changes.locked });
    if (after && !created && changes.approved !== undefined && changes.approved !== after.approved) await this.approval.setApproved(userId, changes.approved);
    return { created, user: await this.get(userId) };
  }

  /**
   * Sets the account's email addresses (canonical): `replace` them all, and/or
   * `edits`. Addresses kept keep their times; new ones are validated and
   * added now (as Synapse). 400 M_THREEPID_IN_USE when one is bound to another account.
   */
  private async setThreepids(trx: Knex, userId: string, replace: string[] | undefined, edits: { add: string[]; remove: string[] } | undefined): Promise<void> {
    const current = (await Threepids.listThreepids(trx, userId)).filter((t) => t.medium === 'email').map((t) => t.address);
    let wanted = replace ?? current;
    if (edits) wanted = [...new Set([...wanted, ...edits.add])].filter((a) => !edits.remove.includes(a));
    for (const address of current) if (!wanted.includes(address)) await Threepids.deleteThreepid(trx, userId, 'email', address);
    const now = this.clock();
    for (const address of wanted) {
      if (current.includes(address)) continue;
      // The primary key decides a race with another account taking the address.
      if (!(await Threepids.insertThreepid(trx, { user_id: userId, medium: 'email', address, validated_at: now, added_at: now }))) throw threepidInUse();
    }
  }

  /**
   * GET /_synapse/admin/v1/threepid/{medium}/users/{address}: `{user_id}` of
   * the account the address is bound to (an email address canonicalised
   * first, which Synapse does not do). Errors: 404 M_NOT_FOUND (bound to
   * none, not an address, or a medium Gatehouse binds nothing of).
   */
  async userByThreepid(medium: string, address: string): Promise<{ user_id: string }> {
    const canonical = medium === 'email' ? canonicaliseEmail(address) : null;
    const userId = canonical === null ? null : await Threepids.findUserIdByThreepid(this.db, 'email', canonical);
    if (userId === null) throw userNotFound();
    return { user_id: userId };
  }

  /** Creates the account; false when another request created it meanwhile. 400 M_USER_IN_USE when the name is taken in another case. */
  private async create(trx: Knex, userId: string, changes: UserChanges, displayname: string | null | undefined, passwordHash: string | undefined): Promise<boolean> {
    const localpart = parseUserId(userId)!.localpart;
    // As /register: a name taken in another case is taken.
    if (await Users.localpartExists(trx, localpart)) {
      if (await Users.findUser(trx, userId)) return false;
      throw userInUse();
    }
    const account = {
      localpart,
      passwordHash: passwordHash ?? null,
      isAdmin: changes.admin ?? false,
      isGuest: false,
      // As Synapse: the display name defaults to the localpart.
      displayname: displayname === undefined ? localpart : displayname,
      approved: changes.approved ?? true,
    };
    // The primary key decides a race with another creation of the same account.
    return (await createAccount(trx, this.config.server_name, account, this.clock())) !== null;
  }

  /**
   * POST /_synapse/admin/v1/deactivate/{userId}: `deactivateAccount`, erasing
   * with `erase`. Returns `{"id_server_unbind_result": "success"}` (nothing is
   * bound anywhere). Errors: 400 M_INVALID_PARAM (see localUserId), 404 M_NOT_FOUND.
   */
  async deactivate(userId: string, erase: boolean): Promise<{ id_server_unbind_result: 'success' }> {
    localUserId(userId, this.config.server_name);
    await this.db.transaction(async (trx) => {
      if (!(await Users.lockUser(trx, userId))) throw userNotFound();
      await deactivateAccount(trx, this.sessions, userId, { erase });
    });
    return { id_server_unbind_result: 'success' };
  }

  /**
   * POST /_synapse/admin/v1/reset_password/{userId}: sets the password (no
   * policy, as Synapse: an admin's choice); with `logoutDevices` (default
   * true) every session ends but the acting admin's own device. Errors: 400
   * M_INVALID_PARAM (see localUserId; an empty password), 400 M_BAD_JSON (over
   * 512 characters), 403 M_FORBIDDEN (password_config.enabled is false), 404 M_NOT_FOUND.
   */
  async resetPassword(actor: Actor, userId: string, newPassword: string, logoutDevices: boolean): Promise<Record<string, never>> {
    localUserId(userId, this.config.server_name);
    this.checkNewPassword(newPassword);
    if (!(await Users.findUser(this.db, userId))) throw userNotFound();
    const hash = await this.hasher.hash(newPassword);
    await this.db.transaction(async (trx) => {
      if (!(await Users.lockUser(trx, userId))) throw userNotFound();
      await this.setPassword(trx, actor, userId, hash, logoutDevices);
    });
    return {};
  }

  /** GET /_synapse/admin/v1/users/{userId}/admin. Errors as `get`. */
  async isAdmin(userId: string): Promise<{ admin: boolean }> {
    const user = await Users.findUser(this.db, localUserId(userId, this.config.server_name));
    if (!user) throw userNotFound();
    return { admin: user.is_admin };
  }

  /**
   * PUT /_synapse/admin/v1/users/{userId}/admin: `{}`. Errors as `get`, and
   * 400 M_INVALID_PARAM "You may not demote yourself." (as Synapse).
   */
  async setAdmin(actor: Actor, userId: string, admin: boolean): Promise<Record<string, never>> {
    localUserId(userId, this.config.server_name);
    if (!admin && actor?.userId === userId) throw invalidParam('You may not demote yourself.');
    if (!(await UserAdmin.setAdmin(this.db, userId, admin))) throw userNotFound();
    await this.sessions.invalidateUsers(this.db, [userId]);
    return {};
  }

  /**
   * GET /_synapse/admin/v1/username_available: as /register/available (the
   * name down-cased, then checked), but also while registration is closed and
   * whatever inhibit_user_in_use_error says. Errors: 400 M_INVALID_USERNAME, 400 M_USER_IN_USE.
   */
  async usernameAvailable(username: string): Promise<{ available: true }> {
    const localpart = newLocalpart(username, this.config.server_name);
    if (await Users.localpartExists(this.db, localpart)) throw userInUse();
    return { available: true };
  }

  private checkNewPassword(password: string): void {
    // As Synapse: no password can be set while password authentication is off.
    if (!this.config.password_config.enabled) throw forbidden('Password change disabled');
    if (password === '') throw invalidParam('The password must not be empty');
    // The length limit only (M_BAD_JSON over 512 characters): the policy is for users, not admins.
    checkPassword(password, { ...this.config.password_config.policy, enabled: false });
  }

  private async setPassword(trx: Knex, actor: Actor, userId: string, hash: string, logoutDevices: boolean): Promise<void> {
    await Users.setPasswordHash(trx, userId, hash);
    // As Synapse: an admin changing their own password keeps the device they do it from.
    if (logoutDevices) await this.sessions.endSessions(trx, userId, null, actor?.userId === userId ? actor.deviceId : null);
  }
}
