// User ID grammar (spec: appendices, "User Identifiers") and login identifiers.

import { badJson, invalidParam, MatrixError, missingParam } from '../errors.js';
import { canonicaliseEmail } from './threepids.js';

/** Characters the spec allows in new localparts. */
const LOCALPART_RE = /^[a-z0-9._=\-/+]+$/;

export function userIdFor(localpart: string, serverName: string): string {
  return `@${localpart}:${serverName}`;
}

/**
 * Checks a requested localpart for registration. The spec's grammar plus
 * Synapse's rules: no leading underscore (reserved for appservices and the
 * server), not purely numeric (reserved for guests and generated IDs).
 */
export function checkNewLocalpart(localpart: string, serverName: string): void {
  if (localpart.length === 0) throw new MatrixError(400, 'M_INVALID_USERNAME', 'User ID cannot be empty');
  if (!LOCALPART_RE.test(localpart))
    throw new MatrixError(400, 'M_INVALID_USERNAME', "User ID can only contain characters a-z, 0-9, or '=_-./+'");
  if (localpart.startsWith('_')) throw new MatrixError(400, 'M_INVALID_USERNAME', 'User ID may not begin with _');
  if (/^\d+$/.test(localpart))
    throw new MatrixError(400, 'M_INVALID_USERNAME', 'Numeric user IDs are reserved for guest users');
  if (userIdFor(localpart, serverName).length > 255)
    throw new MatrixError(400, 'M_INVALID_USERNAME', 'User ID may not be longer than 255 characters');
}

/**
 * A localpart asked for by a new account, down-cased (as Synapse does at
 * /register, /register/available and shared-secret registration), then
 * checked with `checkNewLocalpart`. Returns the localpart to create.
 */
export function newLocalpart(requested: string, serverName: string): string {
  // ASCII only: full Unicode case folding would turn e.g. the Kelvin sign into a 'k'.
  const localpart = requested.replace(/[A-Z]/g, (c) => c.toLowerCase());
  checkNewLocalpart(localpart, serverName);
  return localpart;
}

/** Splits "@local:server" (or returns null when it is not a user ID). */
export function parseUserId(userId: string): { localpart: string; serverName: string } | null {
  if (!userId.startsWith('@')) return null;
  const colon = userId.indexOf(':');
  if (colon < 2 || colon === userId.length - 1) return null;
  return { localpart: userId.slice(1, colon), serverName: userId.slice(colon + 1) };
}

/** A user named by a login or a UIA password stage: its user ID on this server, and the localpart as given. */
export interface NamedUser {
  userId: string;
  localpart: string;
}

/**
 * The user a login (or UIA password stage) names: `identifier` of type
 * m.id.user, or the legacy top-level `user` field; a localpart or a full
 * user ID. Returns null when the name cannot be a user of this server (a user
 * ID of another server, or longer than any user ID): callers answer that as
 * they answer a wrong name. Malformed input throws: 400 M_BAD_JSON (wrong
 * types, or a NUL in a string, as everywhere), 400 M_MISSING_PARAM (no
 * identifier), 400 M_UNKNOWN (another identifier type), 400
 * M_INVALID_USERNAME (a malformed user ID).
 */
export function namedUser(body: Record<string, unknown>, serverName: string): NamedUser | null {
  let user: unknown;
  const identifier = body.identifier;
  if (identifier !== undefined) {
    if (typeof identifier !== 'object' || identifier === null || Array.isArray(identifier))
      throw badJson('identifier must be an object');
    const id = identifier as Record<string, unknown>;
    if (typeof id.type !== 'string') throw badJson('identifier.type must be a string');
    if (id.type.includes('\u0000')) throw badJson('identifier.type must not contain NUL characters');
    if (id.type !== 'm.id.user')
      // Synapse answers unknown identifier types with M_UNKNOWN (3PIDs at login: see loginIdentifier).
      throw new MatrixError(400, 'M_UNKNOWN', `Unknown login identifier type: ${id.type}`);
    user = id.user;
  } else if (body.user !== undefined) {
    user = body.user;
  } else {
    throw missingParam('Missing identifier (or legacy user field)');
  }
  if (typeof user !== 'string') throw badJson('The user identifier must be a string');
  // As every string field (docs/endpoints.md): a NUL is malformed input, not a wrong name.
  if (user.includes('\u0000')) throw badJson('The user identifier must not contain NUL characters');
  // No user ID is longer than 255 characters: such a name is no one here.
  if (user.length > 255) return null;
  if (user.startsWith('@')) {
    const parsed = parseUserId(user);
    if (!parsed) throw new MatrixError(400, 'M_INVALID_USERNAME', 'Invalid user ID');
    if (parsed.serverName !== serverName) return null;
    return { userId: user, localpart: parsed.localpart };
  }
  return { userId: userIdFor(user, serverName), localpart: user };
}

/** Who a login names: a user (by name, see namedUser), or a third-party identifier to look up. */
export type LoginIdentifier =
  | { kind: 'user'; user: NamedUser | null }
  /**
   * `address` is canonical (canonicaliseEmail) for medium `email`; null for
   * the media Gatehouse binds no address of (msisdn, m.id.phone's numbers,
   * anything else): such a login names no one.
   */
  | { kind: 'threepid'; medium: string; address: string | null };

/** A string field of a login identifier: 400 M_MISSING_PARAM when absent, M_BAD_JSON when not a string or holding a NUL. */
function identifierString(obj: Record<string, unknown>, name: string, where: string): string {
  const v = obj[name];
  if (v === undefined || v === null) throw missingParam(`Missing parameter: ${where}${name}`);
  if (typeof v !== 'string') throw badJson(`${where}${name} must be a string`);
  if (v.includes('\u0000')) throw badJson(`${where}${name} must not contain NUL characters`);
  return v;
}

/** A third-party identifier at login: canonical for email; any other medium binds nothing here. */
function thirdParty(medium: string, rawAddress: string): LoginIdentifier {
  if (medium !== 'email') return { kind: 'threepid', medium, address: null };
  // As Synapse (400 for an address it cannot parse), with the code requestToken uses for one.
  const address = canonicaliseEmail(rawAddress);
  if (address === null) throw invalidParam('address is not a valid email address');
  return { kind: 'threepid', medium, address };
}

/**
 * What a POST /login names (spec: "Identifier types"): `identifier` of type
 * m.id.user (see namedUser), m.id.thirdparty {medium, address} or m.id.phone
 * {country, phone}; without `identifier`, the legacy top-level `medium` and
 * `address` (both given; as Synapse they win over a legacy `user`) or
 * `user`. Email addresses are canonicalised (trimmed, case-folded). Errors:
 * namedUser's; 400 M_MISSING_PARAM / M_BAD_JSON for a missing or non-string
 * medium, address, country or phone; 400 M_INVALID_PARAM for an email
 * address that is not one.
 */
export function loginIdentifier(body: Record<string, unknown>, serverName: string): LoginIdentifier {
  const identifier = body.identifier;
  if (typeof identifier === 'object' && identifier !== null && !Array.isArray(identifier)) {
    const id = identifier as Record<string, unknown>;
    if (id.type === 'm.id.thirdparty') return thirdParty(identifierString(id, 'medium', 'identifier.'), identifierString(id, 'address', 'identifier.'));
    if (id.type === 'm.id.phone') {
      identifierString(id, 'country', 'identifier.');
      // Synapse reads `number` where `phone` is missing (an older spelling).
      identifierString(id, id.phone === undefined && id.number !== undefined ? 'number' : 'phone', 'identifier.');
      // As Synapse, a phone number is an msisdn 3PID; Gatehouse binds none, so it names no one.
      return { kind: 'threepid', medium: 'msisdn', address: null };
    }
  } else if (identifier === undefined && body.medium !== undefined && body.address !== undefined) {
    return thirdParty(identifierString(body, 'medium', ''), identifierString(body, 'address', ''));
  }
  return { kind: 'user', user: namedUser(body, serverName) };
}

/**
 * The rate-limit key for sign-in attempts on an account. Lookups ignore case,
 * so the limits must too (as Synapse), or "Alice", "aLice", ... would each get
 * a fresh set of attempts.
 */
export function attemptsKey(userId: string): string {
  return userId.toLowerCase();
}
