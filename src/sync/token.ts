// The opaque `next_batch` / `since` token: the position of every stream kind,
// in STREAM_KINDS order (`gh1_<account_data>_<to_device>_<device_lists>_<presence>`).
// New kinds (rooms) are appended; a token from before a kind existed reads it
// as 0 (nothing of that kind delivered yet). Positions live in the database,
// so a token survives a restart.

import { invalidParam } from '../errors.js';
import { STREAM_KINDS, type StreamKind } from '../repositories/streams.js';

const PREFIX = 'gh1';

export function encodeSyncToken(positions: Record<StreamKind, number>): string {
  return [PREFIX, ...STREAM_KINDS.map((k) => String(positions[k]))].join('_');
}

/** The positions in `token`; 400 M_INVALID_PARAM for anything this server did not write (as Synapse: an unparsable since is 400). */
export function decodeSyncToken(token: string): Record<StreamKind, number> {
  const parts = token.split('_');
  if (parts[0] !== PREFIX || parts.length < 2 || parts.length > STREAM_KINDS.length + 1 || !parts.slice(1).every((p) => /^[0-9]{1,15}$/.test(p)))
    throw invalidParam('Invalid sync token');
  return Object.fromEntries(STREAM_KINDS.map((k, i) => [k, Number(parts[i + 1] ?? 0)])) as Record<StreamKind, number>;
}

/** The device_lists position of a sync token, or null when it is not one of this server's (for /keys/changes). */
export function deviceListPositionOf(token: string): number | null {
  try {
    return decodeSyncToken(token).device_lists;
  } catch {
    return null;
  }
}
