// End-to-end encryption keys (spec: Client-Server API, "End-to-End Encryption":
// /keys/upload, /keys/query, /keys/claim, /keys/changes; "Cross-signing":
// /keys/device_signing/upload, /keys/signatures/upload).
//
// Gatehouse serves no federation: a query or claim naming a user of another
// server puts that server in `failures` (as a server it cannot reach), with
// `{status: 503, message}` as Synapse reports an unreachable server.

import { createPublicKey, verify } from 'node:crypto';
import type { Knex } from 'knex';
import type { Config } from '../config/types.js';
import { canonicalJson } from '../crypto/canonical-json.js';
import { parseUserId } from '../domain/user-ids.js';
import { badJson, forbidden, invalidParam, MatrixError } from '../errors.js';
import { boundedCanonicalJson } from './bounded-json.js';
import * as Keys from '../repositories/e2e-keys.js';
import { deviceListsChangedBetween, recordDeviceListChange } from '../repositories/streams.js';
import type { Notifier } from '../sync/notifier.js';
import type { UiaEngine } from '../uia/engine.js';
import { reauthFlows } from './account.js';
import type { Requester } from './sessions.js';

type Json = Record<string, unknown>;

/** Bounds, so that no request makes unbounded work or storage. */
export const E2E_LIMITS = {
  /** One-time keys in one upload. */
  oneTimeKeysPerUpload: 1000,
  /** Unclaimed one-time keys one device may hold (clients keep about 50). */
  oneTimeKeysPerDevice: 10_000,
  /** Fallback keys in one upload (one per algorithm). */
  fallbackKeysPerUpload: 16,
  /** Canonical JSON of one key object (device keys, a one-time key, a cross-signing key). */
  keyJsonBytes: 16 * 1024,
  /** Users in one query/claim/signatures upload, and devices/keys named per user. */
  usersPerRequest: 1000,
  devicesPerUser: 1000,
};

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A key ID is `algorithm:id`, both parts non-empty. */
function splitKeyId(keyId: string, what: string): { algorithm: string; id: string } {
  const colon = keyId.indexOf(':');
  if (colon <= 0 || colon === keyId.length - 1 || colon > 64 || keyId.length > 255 || keyId.includes('\u0000'))
    throw invalidParam(`${what}: key ID ${JSON.stringify(keyId.slice(0, 80))} is not algorithm:id`);
  return { algorithm: keyId.slice(0, colon), id: keyId.slice(colon + 1) };
}

/** Canonical JSON of a key object (or string), bounded: 400 M_BAD_JSON (floats, too deep) or M_TOO_LARGE. */
function keyJson(value: unknown, what: string): string {
  return boundedCanonicalJson(value, what, E2E_LIMITS.keyJsonBytes);
}

/** The object without `signatures` and `unsigned`: what a signature covers. */
function signedPart(obj: Json): Json {
  const { signatures: _s, unsigned: _u, ...rest } = obj;
  return rest;
}

/** Verifies an ed25519 signature (unpadded base64) of `obj` by `publicKey` (unpadded base64). */
export function verifyEd25519(obj: Json, publicKey: string, signature: string): boolean {
  try {
    const raw = Buffer.from(publicKey, 'base64');
    const sig = Buffer.from(signature, 'base64');
    if (raw.length !== 32 || sig.length !== 64) return false;
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
    return verify(null, Buffer.from(canonicalJson(signedPart(obj))), key, sig);
  } catch {
    return false;
  }
}

function signaturesOf(obj: Json): Record<string, Record<string, string>> {
  return isObject(obj.signatures) ? (obj.signatures as Record<string, Record<string, string>>) : {};
}

/** Adds stored signatures the requester may see to a key object (in place). */
function mergeSignatures(obj: Json, rows: Keys.SignatureRow[], requesterId: string): void {
  for (const r of rows) {
    // As Synapse: a signature of another user's key (a user-signing signature) is shown only to its signer.
    if (r.signer_user_id !== r.target_user_id && r.signer_user_id !== requesterId) continue;
    const sigs = { ...signaturesOf(obj) };
    sigs[r.signer_user_id] = { ...(sigs[r.signer_user_id] ?? {}), [r.signer_key_id]: r.signature };
    obj.signatures = sigs;
  }
}

const CROSS_SIGNING_TYPES: readonly Keys.CrossSigningKeyType[] = ['master', 'self_signing', 'user_signing'];

/**
 * A cross-signing key as uploaded: `{user_id, usage: [type], keys: {"ed25519:<pub>": <pub>}, signatures?}`.
 * Returns its public key and canonical JSON. 400 M_INVALID_PARAM otherwise.
 */
function checkCrossSigningKey(value: unknown, type: Keys.CrossSigningKeyType, userId: string): { publicKey: string; json: string; obj: Json } {
  const what = `${type}_key`;
  if (!isObject(value)) throw badJson(`${what} must be an object`);
  if (value.user_id !== userId) throw invalidParam(`${what}: user_id must be ${userId}`);
  if (!Array.isArray(value.usage) || !value.usage.includes(type)) throw invalidParam(`${what}: usage must include ${type}`);
  if (!isObject(value.keys)) throw invalidParam(`${what}: keys must be an object`);
  const entries = Object.entries(value.keys);
  if (entries.length !== 1) throw invalidParam(`${what}: keys must hold exactly one key`);
  const [keyId, pub] = entries[0]!;
  if (typeof pub !== 'string' || keyId !== `ed25519:${pub}` || Buffer.from(pub, 'base64').length !== 32)
    throw invalidParam(`${what}: the key must be ed25519:<public key> with a 32-byte public key`);
  if (value.signatures !== undefined && !isObject(value.signatures)) throw badJson(`${what}: signatures must be an object`);
  const obj = { ...value };
  delete obj.unsigned;
  return { publicKey: pub, json: keyJson(obj, what), obj };
}

/** `{userId: [...]}` maps of query and claim requests, local users only; others go to `failures`. */
function splitByServer<T>(map: Record<string, T>, serverName: string, failures: Record<string, unknown>): [string, T][] {
  const local: [string, T][] = [];
  for (const [userId, value] of Object.entries(map)) {
    const parsed = parseUserId(userId);
    if (!parsed) continue; // Not a user ID: nothing to report, as Synapse.
    if (parsed.serverName === serverName) local.push([userId, value]);
    else failures[parsed.serverName] = { status: 503, message: 'This server does not federate' };
  }
  return local;
}

export class E2eKeysHandler {
  constructor(
    private readonly db: Knex,
    private readonly config: Pick<Config, 'server_name' | 'password_config'>,
    private readonly uia: UiaEngine,
    private readonly notifier: Notifier,
    /**
     * The device_lists position a sync token (`next_batch`) stands for, or null if it is not
     * one. The sync module owns the token format; app.ts passes its parser. The default reads
     * a bare integer (a device_lists position), enough until sync tokens exist.
     */
    private readonly deviceListPositionOf: (token: string) => number | null = (t) => (/^\d{1,15}$/.test(t) ? Number(t) : null),
  ) {}

  /**
   * POST /keys/upload: `{device_keys?, one_time_keys?, fallback_keys?}` →
   * `{one_time_key_counts: {algorithm: n}}` (signed_curve25519 always present, as Synapse).
   * Device keys must name the requester's user and device (400 M_INVALID_PARAM);
   * new or changed device keys record a device-list change. A one-time key ID
   * already stored with other content is 400 M_INVALID_PARAM (as Synapse refuses it);
   * the same content again is ignored. Everything is checked before anything is written.
   */
  async upload(requester: Requester, body: Json): Promise<{ one_time_key_counts: Record<string, number> }> {
    const { userId, deviceId } = requester;
    let deviceKeys: string | null = null;
    if (body.device_keys !== undefined && body.device_keys !== null) {
      const dk = body.device_keys;
      if (!isObject(dk)) throw badJson('device_keys must be an object');
      if (dk.user_id !== userId || dk.device_id !== deviceId) throw invalidParam('device_keys must name the requesting user and device');
      if (!Array.isArray(dk.algorithms) || !dk.algorithms.every((a) => typeof a === 'string')) throw badJson('device_keys.algorithms must be an array of strings');
      if (!isObject(dk.keys) || !Object.values(dk.keys).every((k) => typeof k === 'string')) throw badJson('device_keys.keys must map key IDs to strings');
      for (const keyId of Object.keys(dk.keys)) splitKeyId(keyId, 'device_keys.keys');
      if (dk.signatures !== undefined && !isObject(dk.signatures)) throw badJson('device_keys.signatures must be an object');
      const { unsigned: _unsigned, ...stored } = dk;
      deviceKeys = keyJson(stored, 'device_keys');
    }
    const otks = this.keyMap(body.one_time_keys, 'one_time_keys', E2E_LIMITS.oneTimeKeysPerUpload);
    const fallbacks = this.keyMap(body.fallback_keys ?? body['org.matrix.msc2732.fallback_keys'], 'fallback_keys', E2E_LIMITS.fallbackKeysPerUpload);
    if (new Set(fallbacks.map((k) => k.algorithm)).size !== fallbacks.length) throw invalidParam('fallback_keys: one key per algorithm');

    const counts = await this.db.transaction(async (trx) => {
      if (deviceKeys !== null && (await Keys.findDeviceKeysJson(trx, userId, deviceId)) !== deviceKeys) {
        await Keys.putDeviceKeys(trx, userId, deviceId, deviceKeys);
        // Signatures made of the old keys do not hold for the new ones.
        await Keys.deleteSignaturesOf(trx, userId, deviceId);
        await recordDeviceListChange(trx, userId);
      }
      const fresh: typeof otks = [];
      for (const k of otks) {
        const old = await Keys.findOneTimeKeyJson(trx, userId, deviceId, k.algorithm, k.key_id);
        if (old === null) fresh.push(k);
        else if (old !== k.key_json) throw invalidParam(`One time key ${k.algorithm}:${k.key_id} already exists with other content`);
      }
      await Keys.insertOneTimeKeys(trx, userId, deviceId, fresh);
      for (const k of fallbacks) await Keys.putFallbackKey(trx, userId, deviceId, k.algorithm, k.key_id, k.key_json);
      const counts = await Keys.countOneTimeKeys(trx, userId, deviceId);
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      if (fresh.length && total > E2E_LIMITS.oneTimeKeysPerDevice)
        throw new MatrixError(400, 'M_TOO_LARGE', `A device may hold at most ${E2E_LIMITS.oneTimeKeysPerDevice} one-time keys`);
      return counts;
    });
    // The counts reach the device's own sync; a device-list change reaches the user's other devices.
    this.notifier.notify([userId]);
    return { one_time_key_counts: { signed_curve25519: 0, ...counts } };
  }

  /** `{"alg:id": key}` of one_time_keys / fallback_keys, checked. */
  private keyMap(value: unknown, what: string, max: number): { algorithm: string; key_id: string; key_json: string }[] {
    if (value === undefined || value === null) return [];
    if (!isObject(value)) throw badJson(`${what} must be an object`);
    const entries = Object.entries(value);
    if (entries.length > max) throw new MatrixError(400, 'M_TOO_LARGE', `${what} may hold at most ${max} keys`);
    return entries.map(([keyId, key]) => {
      const { algorithm, id } = splitKeyId(keyId, what);
      if (typeof key !== 'string' && !isObject(key)) throw badJson(`${what}: each key must be a string or an object`);
      return { algorithm, key_id: id, key_json: keyJson(key, `${what}.${keyId.slice(0, 80)}`) };
    });
  }

  /**
   * POST /keys/query: `{device_keys: {userId: [deviceId, ...]}}` (an empty list: every device) →
   * `{failures, device_keys, master_keys, self_signing_keys, user_signing_keys}`. Device keys carry
   * `unsigned.device_display_name`; stored signatures are merged in. `user_signing_keys` holds the
   * requester's own only (spec). A local user without keys is `{}` in device_keys (as Synapse).
   */
  async query(requester: Requester, body: Json) {
    if (!isObject(body.device_keys)) throw badJson('device_keys must be an object');
    const entries = Object.entries(body.device_keys);
    if (entries.length > E2E_LIMITS.usersPerRequest) throw new MatrixError(400, 'M_TOO_LARGE', 'Too many users');
    for (const [, devices] of entries) {
      if (!Array.isArray(devices) || !devices.every((d) => typeof d === 'string')) throw badJson('device_keys: each value must be an array of device IDs');
      if (devices.length > E2E_LIMITS.devicesPerUser) throw new MatrixError(400, 'M_TOO_LARGE', 'Too many devices');
    }
    const failures: Record<string, unknown> = {};
    const out = {
      failures,
      device_keys: {} as Record<string, Record<string, Json>>,
      master_keys: {} as Record<string, Json>,
      self_signing_keys: {} as Record<string, Json>,
      user_signing_keys: {} as Record<string, Json>,
    };
    for (const [userId, devices] of splitByServer(body.device_keys as Record<string, string[]>, this.config.server_name, failures)) {
      const rows = await Keys.listDeviceKeys(this.db, userId, devices);
      const cross = await Keys.crossSigningKeys(this.db, userId);
      const targets = [...rows.map((r) => r.device_id), ...Object.values(cross).map((c) => c.public_key)];
      const sigs = await Keys.signaturesFor(this.db, userId, targets);
      const byTarget = (t: string) => sigs.filter((s) => s.target_key_id === t);
      const mine: Record<string, Json> = {};
      for (const r of rows) {
        const obj = JSON.parse(r.key_json) as Json;
        mergeSignatures(obj, byTarget(r.device_id), requester.userId);
        if (r.display_name !== null) obj.unsigned = { device_display_name: r.display_name };
        mine[r.device_id] = obj;
      }
      out.device_keys[userId] = mine;
      for (const type of CROSS_SIGNING_TYPES) {
        const row = cross[type];
        if (!row || (type === 'user_signing' && userId !== requester.userId)) continue;
        const obj = JSON.parse(row.key_json) as Json;
        mergeSignatures(obj, byTarget(row.public_key), requester.userId);
        out[type === 'master' ? 'master_keys' : type === 'self_signing' ? 'self_signing_keys' : 'user_signing_keys'][userId] = obj;
      }
    }
    return out;
  }

  /**
   * POST /keys/claim: `{one_time_keys: {userId: {deviceId: algorithm}}}` →
   * `{failures, one_time_keys: {userId: {deviceId: {"alg:id": key}}}}`. Each claimed
   * one-time key is removed; when a device has none left, its fallback key is given
   * (and kept, marked used). A device with neither is left out.
   */
  async claim(_requester: Requester, body: Json) {
    if (!isObject(body.one_time_keys)) throw badJson('one_time_keys must be an object');
    const entries = Object.entries(body.one_time_keys);
    if (entries.length > E2E_LIMITS.usersPerRequest) throw new MatrixError(400, 'M_TOO_LARGE', 'Too many users');
    let total = 0;
    for (const [, devices] of entries) {
      if (!isObject(devices) || !Object.values(devices).every((a) => typeof a === 'string' && a.length > 0 && a.length <= 64))
        throw badJson('one_time_keys: each value must map device IDs to algorithms');
      total += Object.keys(devices).length;
    }
    if (total > E2E_LIMITS.usersPerRequest * 10) throw new MatrixError(400, 'M_TOO_LARGE', 'Too many devices');
    const failures: Record<string, unknown> = {};
    const claimed: Record<string, Record<string, Record<string, unknown>>> = {};
    const wake: string[] = [];
    for (const [userId, devices] of splitByServer(body.one_time_keys as Record<string, Record<string, string>>, this.config.server_name, failures)) {
      for (const [deviceId, algorithm] of Object.entries(devices)) {
        const key = await this.db.transaction(async (trx) => {
          return (await Keys.claimOneTimeKey(trx, userId, deviceId, algorithm)) ?? (await Keys.claimFallbackKey(trx, userId, deviceId, algorithm));
        });
        if (!key) continue;
        (claimed[userId] ??= {})[deviceId] = { [`${algorithm}:${key.key_id}`]: JSON.parse(key.key_json) as unknown };
        wake.push(userId);
      }
    }
    // The claimed devices' key counts (or unused fallback types) changed: their syncs say so.
    if (wake.length) this.notifier.notify(wake);
    return { failures, one_time_keys: claimed };
  }

  /**
   * GET /keys/changes?from=&to=: users whose device lists changed between two sync tokens →
   * `{changed, left}`. With no rooms yet, the only user one shares anything with is oneself.
   * Errors: 400 M_INVALID_PARAM for a token that is not a sync token.
   */
  async changes(requester: Requester, from: string, to: string): Promise<{ changed: string[]; left: string[] }> {
    const since = this.deviceListPositionOf(from);
    const upTo = this.deviceListPositionOf(to);
    if (since === null || upTo === null) throw invalidParam('from and to must be sync tokens');
    return { changed: await deviceListsChangedBetween(this.db, [requester.userId], since, upTo), left: [] };
  }

  /**
   * POST /keys/device_signing/upload: `{master_key?, self_signing_key?, user_signing_key?, auth?}` → {}.
   * MSC3967: the first upload (no master key yet) and a re-upload of exactly the stored keys
   * need no UIA; any other change needs the password (UIA, the keys remembered by the session).
   * Self- and user-signing keys must be signed by the master key (given or stored):
   * 400 M_INVALID_SIGNATURE otherwise; 400 M_INVALID_PARAM for a malformed key or none at all.
   * A change records a device-list change. Guests: 403 (the route refuses them).
   */
  async uploadCrossSigning(requester: Requester, body: Json, ip: string): Promise<Record<string, never>> {
    const userId = requester.userId;
    const given: Partial<Record<Keys.CrossSigningKeyType, ReturnType<typeof checkCrossSigningKey>>> = {};
    for (const type of CROSS_SIGNING_TYPES) {
      const v = body[`${type}_key`];
      if (v !== undefined && v !== null) given[type] = checkCrossSigningKey(v, type, userId);
    }
    const stored = await Keys.crossSigningKeys(this.db, userId);
    const types = Object.keys(given) as Keys.CrossSigningKeyType[];
    // Nothing to store: nothing to authorise either.
    if (types.length === 0) return {};
    const master = given.master ?? stored.master;
    for (const type of ['self_signing', 'user_signing'] as const) {
      const k = given[type];
      if (!k) continue;
      if (!master) throw invalidParam(`${type}_key needs a master key`);
      const masterPub = 'publicKey' in master ? master.publicKey : master.public_key;
      const sig = signaturesOf(k.obj)[userId]?.[`ed25519:${masterPub}`];
      if (typeof sig !== 'string' || !verifyEd25519(k.obj, masterPub, sig))
        throw new MatrixError(400, 'M_INVALID_SIGNATURE', `${type}_key is not signed by the master key`);
    }

    const identical = types.length > 0 && types.every((t) => stored[t]?.key_json === given[t]!.json);
    if (identical) return {};
    const firstUpload = !stored.master;
    let auth = null;
    if (!firstUpload) {
      if (requester.isGuest) throw forbidden('Guests cannot replace cross-signing keys');
      const params = Object.fromEntries(types.map((t) => [`${t}_key`, JSON.parse(given[t]!.json) as unknown]));
      auth = await this.uia.authenticate({ name: 'POST /keys/device_signing/upload', userId, params, clientIp: ip }, reauthFlows(this.config), body.auth);
      if (auth.previous) return {};
    }
    const completed = auth;
    await this.db.transaction(async (trx) => {
      if (completed) await this.uia.complete(completed, trx);
      // Re-read inside the transaction: a parallel first upload must not slip past UIA.
      const now = await Keys.crossSigningKeys(trx, userId);
      if (firstUpload && now.master) throw forbidden('Cross-signing keys were uploaded meanwhile; try again');
      for (const t of types) {
        const k = given[t]!;
        const old = now[t];
        if (old && old.public_key !== k.publicKey) await Keys.deleteSignaturesOf(trx, userId, old.public_key);
        await Keys.putCrossSigningKey(trx, userId, t, k.publicKey, k.json);
      }
      await recordDeviceListChange(trx, userId);
    });
    this.notifier.notify([userId]);
    return {};
  }

  /**
   * POST /keys/signatures/upload: `{userId: {keyId: signedObject}}` → `{failures: {userId: {keyId: {errcode, error}}}}`.
   * Accepted: the requester's device signed by their self-signing key, their master key signed
   * by one of their devices, and another user's master key signed by the requester's
   * user-signing key. The object must be the stored key (signatures aside) and each new
   * signature must verify; anything else is a failure for that key (M_NOT_FOUND,
   * M_INVALID_SIGNATURE, M_INVALID_PARAM), and the rest are stored.
   */
  async uploadSignatures(requester: Requester, body: Json): Promise<{ failures: Record<string, Record<string, { errcode: string; error: string }>> }> {
    const entries = Object.entries(body);
    if (entries.length > E2E_LIMITS.usersPerRequest) throw new MatrixError(400, 'M_TOO_LARGE', 'Too many users');
    for (const [, keys] of entries) {
      if (!isObject(keys) || !Object.values(keys).every(isObject)) throw badJson('Each user must map key IDs to signed objects');
      if (Object.keys(keys).length > E2E_LIMITS.devicesPerUser) throw new MatrixError(400, 'M_TOO_LARGE', 'Too many keys');
    }
    const me = requester.userId;
    const failures: Record<string, Record<string, { errcode: string; error: string }>> = {};
    const fail = (u: string, k: string, errcode: string, error: string) => ((failures[u] ??= {})[k] = { errcode, error });
    const myCross = await Keys.crossSigningKeys(this.db, me);
    const accepted: Keys.SignatureRow[] = [];
    const changedUsers = new Set<string>();

    for (const [targetUser, keys] of entries as [string, Record<string, Json>][]) {
      const theirCross = targetUser === me ? myCross : await Keys.crossSigningKeys(this.db, targetUser);
      for (const [keyId, obj] of Object.entries(keys)) {
        // What is signed, with the stored form to compare with, and which signer keys may sign it.
        let storedJson: string | null = null;
        let targetKeyId = keyId;
        let signers: { keyId: string; publicKey: string }[] = [];
        if (targetUser === me && theirCross.master && keyId === theirCross.master.public_key) {
          storedJson = theirCross.master.key_json;
          const devices = await Keys.listDeviceKeys(this.db, me, []);
          signers = devices.flatMap((d) => {
            const pub = (JSON.parse(d.key_json) as { keys?: Record<string, string> }).keys?.[`ed25519:${d.device_id}`];
            return typeof pub === 'string' ? [{ keyId: `ed25519:${d.device_id}`, publicKey: pub }] : [];
          });
        } else if (targetUser === me) {
          storedJson = await Keys.findDeviceKeysJson(this.db, me, keyId);
          if (myCross.self_signing) signers = [{ keyId: `ed25519:${myCross.self_signing.public_key}`, publicKey: myCross.self_signing.public_key }];
        } else if (theirCross.master && keyId === theirCross.master.public_key) {
          storedJson = theirCross.master.key_json;
          if (myCross.user_signing) signers = [{ keyId: `ed25519:${myCross.user_signing.public_key}`, publicKey: myCross.user_signing.public_key }];
        }
        if (storedJson === null) {
          fail(targetUser, keyId, 'M_NOT_FOUND', 'No such key');
          continue;
        }
        let same = false;
        try {
          same = canonicalJson(signedPart(obj)) === canonicalJson(signedPart(JSON.parse(storedJson) as Json));
        } catch {
          same = false;
        }
        if (!same) {
          fail(targetUser, keyId, 'M_INVALID_PARAM', 'The signed object is not the stored key');
          continue;
        }
        const mine = signaturesOf(obj)[me];
        const good: Keys.SignatureRow[] = [];
        let bad = false;
        for (const s of signers) {
          const sig = isObject(mine) ? mine[s.keyId] : undefined;
          if (sig === undefined) continue;
          if (typeof sig !== 'string' || sig.length > 255 || !verifyEd25519(obj, s.publicKey, sig)) bad = true;
          else good.push({ signer_user_id: me, signer_key_id: s.keyId, target_user_id: targetUser, target_key_id: targetKeyId, signature: sig });
        }
        if (bad || good.length === 0) {
          fail(targetUser, keyId, 'M_INVALID_SIGNATURE', bad ? 'Invalid signature' : 'No signature by a key that may sign this');
          continue;
        }
        targetKeyId = keyId;
        accepted.push(...good);
        changedUsers.add(targetUser);
      }
    }
    if (accepted.length) {
      await this.db.transaction(async (trx) => {
        await Keys.putSignatures(trx, accepted);
        // Spec: a new signature changes what /keys/query shows, which clients learn from device_lists.
        for (const u of changedUsers) await recordDeviceListChange(trx, u);
      });
      this.notifier.notify([...changedUsers]);
    }
    return { failures };
  }
}
