// JSON values clients hand over for storage (device keys, key backups):
// canonical, NUL-free and bounded in size.

import { canonicalJson } from '../crypto/canonical-json.js';
import { badJson, MatrixError } from '../errors.js';

/**
 * The canonical JSON of `value` (spec appendix: floats are not allowed), at
 * most `maxBytes` of UTF-8. Errors: 400 M_BAD_JSON (not canonical JSON, or a
 * NUL anywhere: PostgreSQL cannot store it), 400 M_TOO_LARGE. `what` names the
 * value in the message.
 */
export function boundedCanonicalJson(value: unknown, what: string, maxBytes: number): string {
  let text: string;
  try {
    text = canonicalJson(value);
  } catch {
    throw badJson(`${what} must be canonical JSON (integers only)`);
  }
  if (text.includes('\\u0000')) throw badJson(`${what} must not contain NUL characters`);
  if (Buffer.byteLength(text) > maxBytes) throw new MatrixError(400, 'M_TOO_LARGE', `${what} is too large`);
  return text;
}
