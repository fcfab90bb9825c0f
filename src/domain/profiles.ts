// Profile field names and values (spec: "Profiles"; MSC4133, MSC4175): the
// grammar and bounds that config, routes and handlers share.

/** The fields kept in the `profiles` table; every other field is a custom one. */
export const DISPLAYNAME = 'displayname';
export const AVATAR_URL = 'avatar_url';
/** MSC4175: the user's IANA time zone. */
export const TIME_ZONE = 'm.tz';

/** Longest field name, in UTF-8 bytes (the spec's M_KEY_TOO_LARGE bound). */
export const MAX_FIELD_NAME_BYTES = 255;
/** Largest profile, as canonical JSON in UTF-8 bytes, display name and avatar included (MSC4133). */
export const MAX_PROFILE_BYTES = 64 * 1024;
/** Longest display name and avatar URL, in code points (Synapse's MAX_DISPLAYNAME_LEN, MAX_AVATAR_URL_LEN). */
export const MAX_DISPLAYNAME = 256;
export const MAX_AVATAR_URL = 1000;

/**
 * The Common Namespaced Identifier Grammar (spec appendix), which field names
 * follow: 1–255 characters of a-z, 0-9, `_`, `-`, `.`, starting with a-z (as
 * Synapse's check; `displayname` and `avatar_url` fit it).
 */
const FIELD_NAME = /^[a-z][a-z0-9_.-]{0,254}$/;

export function isFieldName(name: string): boolean {
  return FIELD_NAME.test(name);
}

/** UTC offsets ("+01:00", "-0500"), which the runtime accepts as zones but the IANA database does not name. */
const OFFSET = /^[+-]/;

/**
 * Whether `name` is an IANA time zone (MSC4175's `m.tz`): a name the runtime's
 * time-zone database (ICU, through Intl) knows, canonical or a link, such as
 * `Europe/Paris`, `Asia/Kolkata`, `US/Eastern` or `UTC`. Compared as ECMA-402
 * does, ignoring case. Offsets are refused: they name no zone. A name newer
 * than the runtime's database is refused too (MSC4175 admits the gap).
 */
export function isTimeZone(name: string): boolean {
  if (name.length === 0 || name.length > 64 || OFFSET.test(name)) return false;
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** Code points in `s` (as Synapse counts with Python's len). */
export function codePoints(s: string): number {
  return s.length - (s.match(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g)?.length ?? 0);
}
