// The server's ed25519 signing key, in Synapse's key file format: one line
// "ed25519 <version> <unpadded base64 seed>", so a key can move between servers.

import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type nacl from 'tweetnacl';
import { lazyModule } from '../lazy-module.js';
import { createPrivateFile } from '../private-files.js';
import { canonicalJson } from './canonical-json.js';
import { randomString } from './tokens.js';

export interface SigningKey {
  /** e.g. "ed25519:a_AbCd" */
  readonly keyId: string;
  /** The 32-byte seed: what the key file holds. */
  readonly seed: Uint8Array;
  /** 32 bytes. */
  readonly publicKey: Uint8Array;
  /** 64 bytes, NaCl's layout: the seed, then the public key. */
  readonly secretKey: Uint8Array;
}

export const unpaddedBase64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64').replace(/=+$/, '');

/** tweetnacl, loaded when a key is first used: a start needs neither the module nor the key pair. */
const naclLib = lazyModule<typeof nacl>('tweetnacl');

/**
 * A key whose pair is derived from the seed on first use: deriving it in cold
 * JavaScript took ~18 ms of every start (issue 15), and a start signs nothing.
 */
class Ed25519SigningKey implements SigningKey {
  private pair: nacl.SignKeyPair | undefined;

  constructor(
    readonly keyId: string,
    readonly seed: Uint8Array,
  ) {}

  private derived(): nacl.SignKeyPair {
    return (this.pair ??= naclLib().sign.keyPair.fromSeed(this.seed));
  }

  get publicKey(): Uint8Array {
    return this.derived().publicKey;
  }

  get secretKey(): Uint8Array {
    return this.derived().secretKey;
  }
}

function fromSeed(version: string, seed: Uint8Array): SigningKey {
  return new Ed25519SigningKey(`ed25519:${version}`, seed);
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
  const sig = naclLib().sign.detached(Buffer.from(canonicalJson(rest), 'utf8'), key.secretKey);
  const existing = (signatures ?? {}) as Record<string, Record<string, string>>;
  return {
    ...obj,
    signatures: { ...existing, [serverName]: { ...(existing[serverName] ?? {}), [key.keyId]: unpaddedBase64(sig) } },
  };
}
