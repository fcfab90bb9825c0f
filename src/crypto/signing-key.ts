// The server's ed25519 signing key, in Synapse's key file format: one line
// "ed25519 <version> <unpadded base64 seed>", so a key can move between servers.

import { createPrivateKey, createPublicKey, type KeyObject, randomBytes, sign } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createPrivateFile } from '../private-files.js';
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

/** PKCS#8 DER of an Ed25519 private key (RFC 8410) before its 32-byte seed. */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
/** node:crypto's key object of each SigningKey, made on first use. */
const privateKeys = new WeakMap<SigningKey, KeyObject>();

function privateKeyOf(key: SigningKey): KeyObject {
  let k = privateKeys.get(key);
  if (k === undefined) {
    k = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, key.seed]), format: 'der', type: 'pkcs8' });
    privateKeys.set(key, k);
  }
  return k;
}

// node:crypto (OpenSSL) rather than a JavaScript ed25519: deriving a key pair
// in cold JavaScript took ~18 ms of every start. Same keys, same (deterministic) signatures.
function fromSeed(version: string, seed: Uint8Array): SigningKey {
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const publicKey = new Uint8Array(Buffer.from(createPublicKey(privateKey).export({ format: 'jwk' }).x!, 'base64url'));
  // secretKey in NaCl's layout: the seed, then the public key.
  const key = { keyId: `ed25519:${version}`, seed, publicKey, secretKey: new Uint8Array([...seed, ...publicKey]) };
  privateKeys.set(key, privateKey);
  return key;
}

export function generateSigningKey(): SigningKey {
  // Synapse's versions look like "a_" plus four random letters.
  return fromSeed(`a_${randomString(4)}`, new Uint8Array(randomBytes(32)));
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

/** Reads the key file, creating it on first start (mode 0600, see createPrivateFile); an existing file's mode is left alone. */
export function loadOrCreateSigningKey(path: string): { key: SigningKey; created: boolean } {
  if (existsSync(path)) return { key: parseSigningKey(readFileSync(path, 'utf8'), path), created: false };
  const key = generateSigningKey();
  // Another process starting at the same moment may have written it first: then use that one.
  if (!createPrivateFile(path, formatSigningKey(key))) return { key: parseSigningKey(readFileSync(path, 'utf8'), path), created: false };
  return { key, created: true };
}

/** Adds `signatures[serverName][keyId]` over the canonical JSON of the object (sans signatures/unsigned). */
export function signJson<T extends Record<string, unknown>>(obj: T, serverName: string, key: SigningKey): T {
  const { signatures, unsigned, ...rest } = obj as Record<string, unknown>;
  const sig = sign(null, Buffer.from(canonicalJson(rest), 'utf8'), privateKeyOf(key));
  const existing = (signatures ?? {}) as Record<string, Record<string, string>>;
  return {
    ...obj,
    signatures: { ...existing, [serverName]: { ...(existing[serverName] ?? {}), [key.keyId]: unpaddedBase64(sig) } },
  };
}
