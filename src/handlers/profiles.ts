// Profiles (spec "Profiles"; MSC4133 custom fields, MSC4175 m.tz, MSC4170
// refused lookups): who may read and write which field, what a value may be,
// and the 64 KiB bound on the whole profile.

import type { Knex } from 'knex';
import type { Config } from '../config/types.js';
import { canonicalJson } from '../crypto/canonical-json.js';
import {
  AVATAR_URL,
  codePoints,
  DISPLAYNAME,
  isFieldName,
  isTimeZone,
  MAX_AVATAR_URL,
  MAX_DISPLAYNAME,
  MAX_FIELD_NAME_BYTES,
  MAX_PROFILE_BYTES,
  TIME_ZONE,
} from '../domain/profiles.js';
import { parseUserId } from '../domain/user-ids.js';
import { badJson, forbidden, invalidParam, MatrixError, notFound } from '../errors.js';
import * as Profiles from '../repositories/profiles.js';
import * as Users from '../repositories/users.js';

/** Deepest nesting of arrays and objects in a custom field's value (deeper JSON could not even be sent back). */
const MAX_VALUE_DEPTH = 100;

/** Who asks: a signed-in user, or nobody (an unauthenticated lookup). */
export interface ProfileActor {
  userId: string;
  isAdmin: boolean;
}

export type ProfileBody = Record<string, unknown>;

/**
 * The `{userId}` of a profile path. 400 M_INVALID_PARAM when it is not a user
 * ID (as Synapse): no `@`, no `:`, an empty part, over 255 characters, a NUL.
 */
export function profileUserId(userId: string): string {
  if (!parseUserId(userId) || userId.length > 255 || userId.includes('\u0000')) throw invalidParam('Invalid user ID');
  return userId;
}

/**
 * The `{keyName}` of a profile path: 400 M_KEY_TOO_LARGE over 255 UTF-8 bytes,
 * 400 M_INVALID_PARAM outside the Common Namespaced Identifier Grammar (as Synapse).
 */
export function profileFieldName(name: string): string {
  if (Buffer.byteLength(name, 'utf8') > MAX_FIELD_NAME_BYTES)
    throw new MatrixError(400, 'M_KEY_TOO_LARGE', `Profile field names are at most ${MAX_FIELD_NAME_BYTES} bytes`);
  if (!isFieldName(name)) throw invalidParam('Profile field names follow the Common Namespaced Identifier Grammar (a-z, 0-9, "_", "-", ".")');
  return name;
}

/**
 * The `m.profile_fields`, `m.set_displayname` and `m.set_avatar_url`
 * capabilities, from `profile_fields`, `enable_set_displayname` and
 * `enable_set_avatar_url` (spec: capabilities; the deprecated two follow the
 * new one, as the spec asks).
 */
export function profileCapabilities(config: Config) {
  const policy = new ProfilePolicy(config);
  const pf = config.profile_fields;
  let fields: { enabled: boolean; allowed?: string[]; disallowed?: string[] };
  if (!pf.enabled) fields = { enabled: false };
  else if (pf.allowed !== null) {
    const allowed = pf.allowed.filter((k) => policy.mayChange(k));
    fields = allowed.length ? { enabled: true, allowed } : { enabled: false };
  } else {
    // As Synapse: the fields its two switches close are listed as disallowed.
    const disallowed = [...(pf.disallowed ?? [])];
    for (const k of [DISPLAYNAME, AVATAR_URL]) if (!policy.mayChange(k) && !disallowed.includes(k)) disallowed.push(k);
    fields = disallowed.length ? { enabled: true, disallowed } : { enabled: true };
  }
  return {
    'm.set_displayname': { enabled: policy.mayChange(DISPLAYNAME) },
    'm.set_avatar_url': { enabled: policy.mayChange(AVATAR_URL) },
    'm.profile_fields': fields,
  };
}

/** Which fields a user may change on their own profile (server admins are not bound by it, as Synapse). */
class ProfilePolicy {
  constructor(private readonly config: Config) {}

  mayChange(name: string): boolean {
    const c = this.config;
    const pf = c.profile_fields;
    if (!pf.enabled) return false;
    if (name === DISPLAYNAME && !c.enable_set_displayname) return false;
    if (name === AVATAR_URL && !c.enable_set_avatar_url) return false;
    return pf.allowed !== null ? pf.allowed.includes(name) : !(pf.disallowed ?? []).includes(name);
  }
}

export class ProfileHandler {
  private readonly policy: ProfilePolicy;

  constructor(
    private readonly db: Knex,
    private readonly config: Config,
  ) {
    this.policy = new ProfilePolicy(config);
  }

  /**
   * GET /profile/{userId}: `{displayname?, avatar_url?, <custom field>...}`,
   * only the fields that are set. 403 M_FORBIDDEN (lookup refused, see
   * `checkLookup`), 404 M_NOT_FOUND (no such local user, a deactivated one,
   * a user of another server (no federation yet), or nothing set: as Synapse).
   * `userId` is checked by `profileUserId` first.
   */
  async profile(reader: string | null, userId: string): Promise<ProfileBody> {
    this.checkLookup(reader, userId);
    const stored = await this.readable(userId);
    const body = flatten(stored);
    if (Object.keys(body).length === 0) throw notFound('Profile not found');
    return body;
  }

  /**
   * GET /profile/{userId}/{keyName}: `{<keyName>: value}`. 404 M_NOT_FOUND
   * when the field is not set (a custom field set to null is set), and as
   * `profile`; 403 as `profile`.
   */
  async field(reader: string | null, userId: string, name: string): Promise<ProfileBody> {
    this.checkLookup(reader, userId);
    const body = flatten(await this.readable(userId));
    if (!Object.hasOwn(body, name)) throw notFound('Profile field not found');
    return { [name]: body[name] };
  }

  /**
   * PUT /profile/{userId}/{keyName} with the route's body, which must hold
   * `name` (400 M_MISSING_PARAM). Values: `displayname` a string, trimmed,
   * at most 256 code points ("" or only spaces removes it); `avatar_url` an
   * `mxc://` URI of at most 1000 characters ("" removes it); `m.tz` an IANA
   * zone (400 M_INVALID_PARAM); any other field any JSON value, null
   * included, with integers only (canonical JSON) and at most 100 levels of
   * nesting. Errors: 403 M_FORBIDDEN (another user's profile, for anyone but
   * a server admin; a field the config does not let users change), 400
   * M_BAD_JSON (wrong type, NUL, fraction), 400 M_TOO_LARGE (display name or
   * avatar URL too long), 400 M_PROFILE_TOO_LARGE (the profile would exceed
   * 64 KiB of canonical JSON), 404 M_NOT_FOUND (an admin naming no local
   * account). A refused request changes nothing.
   */
  async setField(actor: ProfileActor, userId: string, name: string, body: ProfileBody): Promise<Record<string, never>> {
    this.checkWrite(actor, userId, name);
    if (!Object.hasOwn(body, name)) throw new MatrixError(400, 'M_MISSING_PARAM', `Missing key '${name}'`);
    const value = checkValue(name, body[name]);
    await this.db.transaction(async (trx) => {
      // Locks the account's row: concurrent writes to one profile are measured one after the other.
      const user = await Users.lockUser(trx, userId);
      if (!user || user.deactivated) throw notFound('User not found');
      const stored = await Profiles.readProfile(trx, userId);
      const next = withValue(stored, name, value);
      if (Buffer.byteLength(canonicalJson(flatten(next)), 'utf8') > MAX_PROFILE_BYTES)
        throw new MatrixError(400, 'M_PROFILE_TOO_LARGE', `The profile would exceed ${MAX_PROFILE_BYTES} bytes of canonical JSON`);
      if (name === DISPLAYNAME || name === AVATAR_URL) await Profiles.setProfileColumn(trx, userId, name, value as string | null);
      else await Profiles.setField(trx, userId, name, value);
    });
    return {};
  }

  /**
   * DELETE /profile/{userId}/{keyName}: removes the field; 200 `{}` also when
   * it was not set. Errors: 403 and 404 as `setField`.
   */
  async deleteField(actor: ProfileActor, userId: string, name: string): Promise<Record<string, never>> {
    this.checkWrite(actor, userId, name);
    await this.db.transaction(async (trx) => {
      const user = await Users.lockUser(trx, userId);
      if (!user || user.deactivated) throw notFound('User not found');
      if (name === DISPLAYNAME || name === AVATAR_URL) await Profiles.setProfileColumn(trx, userId, name, null);
      else await Profiles.deleteField(trx, userId, name);
    });
    return {};
  }

  /**
   * Erases a user's whole profile (display name, avatar, custom fields), in
   * the caller's transaction: for deactivation with erasure. Its lookups are
   * 404 M_NOT_FOUND afterwards.
   */
  static erase(trx: Knex, userId: string): Promise<void> {
    return Profiles.eraseProfile(trx, userId);
  }

  /**
   * MSC4170: with `limit_profile_requests_to_users_who_share_rooms`, only
   * profiles of users who share a room with the reader may be looked up,
   * and one's own. Gatehouse has no rooms yet, so that is one's own only;
   * an unauthenticated reader shares no room (unlike Synapse, which lets an
   * unauthenticated lookup through unless `require_auth_for_profile_requests`
   * is set too). 403 M_FORBIDDEN, whether the user exists or not (as MSC4170
   * recommends for a server that refuses lookups).
   */
  private checkLookup(reader: string | null, userId: string): void {
    if (!this.config.limit_profile_requests_to_users_who_share_rooms || reader === userId) return;
    throw forbidden('Profile lookup is limited to users who share a room');
  }

  /** A local, active account's profile, or 404 M_NOT_FOUND. */
  private async readable(userId: string): Promise<Profiles.StoredProfile> {
    if (parseUserId(userId)?.serverName !== this.config.server_name) throw notFound('Profile not found');
    const user = await Users.findUser(this.db, userId);
    // A deactivated account's profile is cleared (and would stay out of sight if it were not).
    if (!user || user.deactivated) throw notFound('Profile not found');
    return Profiles.readProfile(this.db, userId);
  }

  /** 403 M_FORBIDDEN unless the actor may change this field of this profile. */
  private checkWrite(actor: ProfileActor, userId: string, name: string): void {
    // As Synapse: a server admin may change anyone's profile, whatever the config lets users change.
    if (actor.isAdmin) return;
    if (actor.userId !== userId) throw forbidden("You cannot change another user's profile");
    if (!this.policy.mayChange(name)) throw forbidden(`Changing ${name} is not allowed on this server`);
  }
}

/** The profile as the API shows it: set fields only, display name and avatar first. */
function flatten(p: Profiles.StoredProfile): ProfileBody {
  const body: ProfileBody = {};
  if (p.displayname !== null) body[DISPLAYNAME] = p.displayname;
  if (p.avatar_url !== null) body[AVATAR_URL] = p.avatar_url;
  for (const [k, v] of Object.entries(p.fields)) body[k] = v;
  return body;
}

function withValue(p: Profiles.StoredProfile, name: string, value: unknown): Profiles.StoredProfile {
  if (name === DISPLAYNAME) return { ...p, displayname: value as string | null };
  if (name === AVATAR_URL) return { ...p, avatar_url: value as string | null };
  return { ...p, fields: { ...p.fields, [name]: value } };
}

/** An `mxc://<server-name>/<media-id>` URI (spec: "Matrix Content (mxc://) URIs"). */
const MXC = /^mxc:\/\/[A-Za-z0-9.:[\]-]+\/[A-Za-z0-9_-]+$/;

/** The value to store for `name` (null: remove the display name or avatar). Throws the 400s of `setField`. */
function checkValue(name: string, value: unknown): unknown {
  if (name === DISPLAYNAME) {
    const s = plainString(name, value);
    // Spaces around a name are dropped; nothing left means no name (as Synapse for "").
    const trimmed = s.trim();
    if (codePoints(trimmed) > MAX_DISPLAYNAME) throw new MatrixError(400, 'M_TOO_LARGE', `displayname is at most ${MAX_DISPLAYNAME} characters`);
    return trimmed === '' ? null : trimmed;
  }
  if (name === AVATAR_URL) {
    const s = plainString(name, value);
    if (s === '') return null;
    if (codePoints(s) > MAX_AVATAR_URL) throw new MatrixError(400, 'M_TOO_LARGE', `avatar_url is at most ${MAX_AVATAR_URL} characters`);
    if (!MXC.test(s)) throw invalidParam('avatar_url must be an mxc:// URI');
    return s;
  }
  if (name === TIME_ZONE) {
    if (typeof value !== 'string' || !isTimeZone(value)) throw invalidParam('m.tz must be an IANA time zone name, such as Europe/Paris');
    return value;
  }
  checkCanonical(name, value);
  return value;
}

function plainString(name: string, value: unknown): string {
  if (typeof value !== 'string') throw badJson(`${name} must be a string`);
  // PostgreSQL cannot store U+0000 in text, and no name needs it.
  if (value.includes('\u0000')) throw badJson(`${name} must not contain NUL characters`);
  return value;
}

/**
 * A custom value must have a canonical JSON form (the profile is measured in
 * it): numbers are integers in ±(2^53−1), and nesting is bounded. 400 M_BAD_JSON.
 */
function checkCanonical(name: string, root: unknown): void {
  const pending: [unknown, number][] = [[root, 0]];
  while (pending.length > 0) {
    const [value, depth] = pending.pop()!;
    if (typeof value === 'number') {
      if (!Number.isSafeInteger(value)) throw badJson(`${name}: numbers must be integers between -(2^53-1) and 2^53-1`);
    } else if (value !== null && typeof value === 'object') {
      if (depth >= MAX_VALUE_DEPTH) throw badJson(`${name}: values may nest at most ${MAX_VALUE_DEPTH} levels deep`);
      for (const item of Array.isArray(value) ? value : Object.values(value)) pending.push([item, depth + 1]);
    }
  }
}
