// The server's ed25519 signing key, in Synapse's key file format: one line
// "ed25519 <version> <unpadded base64 seed>", so a key can move between servers.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import nacl from 'tweetnacl';
import { canonicalJson } from './canonical-json.js';
import { randomString } from './tokens.js';

export interface SigningKey {
  /** e.g. "ed25519:a_AbCd" */
  keyId: string;
  seed: Uint8Array;
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

export const unpaddedBase64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64').replace(/=+$/, '');

function fromSeed(version: string, seed: Uint8Array): SigningKey {
  const pair = nacl.sign.keyPair.fromSeed(seed);
  return { keyId: `ed25519:${version}`, seed, publicKey: pair.publicKey, secretKey: pair.secretKey };
}

export function generateSigningKey(): SigningKey {
  // Synapse's versions look like "a_" plus four random letters.
  return fromSeed(`a_${randomString(4)}`, nacl.randomBytes(32));
}

export function formatSigningKey(key: SigningKey): string {
  return `ed25519 ${key.keyId.slice('ed25519:'.length)} ${unpaddedBase64(key.seed)}\n`;
}

export function parseSigningKey(text: string, path: string): SigningKey {
  const line = text.split('\n').map((l) => l.trim()).find((l) => l.length > 0);
  const parts = line?.split(/\s+/) ?? [];
  if (parts.length !== 3 || parts[0] !== 'ed25519' || !/^[A-Za-z0-9_]+$/.test(parts[1]!))
    throw new Error(`${path}: expected a line "ed25519 <version> <base64 seed>"`);
  const seed = Buffer.from(parts[2]!, 'base64');
  if (seed.length !== 32) throw new Error(`${path}: the key seed must be 32 bytes`);
  return fromSeed(parts[1]!, new Uint8Array(seed));
}

/** Reads the key file, creating it (mode 0600) on first start. */
export function loadOrCreateSigningKey(path: string): { key: SigningKey; created: boolean } {
  if (existsSync(path)) return { key: parseSigningKey(readFileSync(path, 'utf8'), path), created: false };
  const key = generateSigningKey();
  mkdirSync(dirname(path), { recursive: true });
  try {
    writeFileSync(path, formatSigningKey(key), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another process starting at the same moment wrote it first: use that one.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { key: parseSigningKey(readFileSync(path, 'utf8'), path), created: false };
    throw err;
  }
  return { key, created: true };
}

/** Adds `signatures[serverName][keyId]` over the canonical JSON of the object (sans signatures/unsigned). */
export function signJson<T extends Record<string, unknown>>(obj: T, serverName: string, key: SigningKey): T {
  const { signatures, unsigned, ...rest } = obj as Record<string, unknown>;
  const sig = nacl.sign.detached(Buffer.from(canonicalJson(rest), 'utf8'), key.secretKey);
  const existing = (signatures ?? {}) as Record<string, Record<string, string>>;
  return {
    ...obj,
    signatures: { ...existing, [serverName]: { ...(existing[serverName] ?? {}), [key.keyId]: unpaddedBase64(sig) } },
  };
}
