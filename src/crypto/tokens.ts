// Access and refresh tokens: random, stored only as a SHA-256 hash. The lookup
// goes by hash, so the database never compares the secret itself; the final
// comparison of hashes is constant-time.

import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

const ALPHANUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Uniformly random string over [A-Za-z0-9]. */
export function randomString(length: number, alphabet = ALPHANUM): string {
  const out: string[] = [];
  // Rejection sampling keeps the distribution uniform.
  const limit = 256 - (256 % alphabet.length);
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < limit) out.push(alphabet[b % alphabet.length]!);
      if (out.length === length) break;
    }
  }
  return out.join('');
}

export type TokenKind = 'access' | 'refresh';

/** A new secret token; the prefix says what it is when one turns up in a log or a bug report. */
export function newToken(kind: TokenKind): string {
  return `${kind === 'access' ? 'gha' : 'ghr'}_${randomString(40)}`;
}

/** SHA-256 of the token's UTF-8 bytes, as 64 hex digits: what the database stores and the cache is keyed by. */
export function hashToken(token: string): string {
  return hash('sha256', token, 'hex');
}

export function constantTimeEqual(a: string, b: string): boolean {
  const ba = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  return ba.length === bb.length && timingSafeEqual(ba, bb);
}

/** Device IDs as Synapse makes them: ten uppercase letters. */
export function newDeviceId(): string {
  return randomString(10, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ');
}
