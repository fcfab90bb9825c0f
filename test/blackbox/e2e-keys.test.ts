// End-to-end encryption keys: upload, query, claim between devices; cross-signing
// (MSC3967's three cases) and signatures; deletion of a device takes its keys.

import { createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/crypto/canonical-json.js';
import { expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';
const KEY_TABLES = ['e2e_device_keys', 'e2e_one_time_keys', 'e2e_fallback_keys', 'e2e_cross_signing_keys', 'e2e_signatures', 'device_list_changes'];

/** An ed25519 key pair with its unpadded base64 public key, and a signer of JSON objects. */
function edKey(): { pub: string; sign(obj: Record<string, unknown>): string; priv: KeyObject } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url').toString('base64').replace(/=+$/, '');
  return {
    pub,
    priv: createPrivateKey(privateKey.export({ format: 'pem', type: 'pkcs8' })),
    sign(obj) {
      const { signatures: _s, unsigned: _u, ...rest } = obj;
      return sign(null, Buffer.from(canonicalJson(rest)), privateKey).toString('base64').replace(/=+$/, '');
    },
  };
}

function deviceKeys(userId: string, deviceId: string, ed = edKey()) {
  const obj: Record<string, unknown> = {
    user_id: userId,
    device_id: deviceId,
    algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
    keys: { [`curve25519:${deviceId}`]: `curve-${deviceId}`, [`ed25519:${deviceId}`]: ed.pub },
  };
  obj.signatures = { [userId]: { [`ed25519:${deviceId}`]: ed.sign(obj) } };
  return { obj, ed };
}

const otk = (n: number) => ({ key: `otk-key-${n}`, signatures: {} });

function crossKey(userId: string, usage: string, key: ReturnType<typeof edKey>, signer?: ReturnType<typeof edKey>) {
  const obj: Record<string, unknown> = { user_id: userId, usage: [usage], keys: { [`ed25519:${key.pub}`]: key.pub } };
  if (signer) obj.signatures = { [userId]: { [`ed25519:${signer.pub}`]: signer.sign(obj) } };
  return obj;
}

describe.each(backends())('e2e keys (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const pwAuth = (user: string, session?: string) => ({
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user },
    password: DEFAULT_PASSWORD,
    ...(session === undefined ? {} : { session }),
  });

  it('uploads keys on one device, another user queries and claims them, fallback when none are left', async () => {
    const alice = await hs.register('keys_alice', undefined, { initial_device_display_name: 'Alice phone' });
    const bob = await hs.register('keys_bob');
    const dk = deviceKeys(alice.user_id, alice.device_id);
    const up = await hs.request('POST', `${V3}/keys/upload`, {
      token: alice.access_token,
      body: {
        device_keys: dk.obj,
        one_time_keys: { 'signed_curve25519:AAAA1': otk(1), 'signed_curve25519:AAAA2': otk(2) },
        fallback_keys: { 'signed_curve25519:FB1': { key: 'fallback', fallback: true } },
      },
    });
    expect(up.status).toBe(200);
    expect(up.body).toEqual({ one_time_key_counts: { signed_curve25519: 2 } });
    // The same upload again adds nothing.
    const again = await hs.request('POST', `${V3}/keys/upload`, { token: alice.access_token, body: { one_time_keys: { 'signed_curve25519:AAAA1': otk(1) } } });
    expect(again.body.one_time_key_counts.signed_curve25519).toBe(2);

    const q = await hs.request('POST', `${V3}/keys/query`, {
      token: bob.access_token,
      body: { device_keys: { [alice.user_id]: [], '@remote:elsewhere.example': [] } },
    });
    expect(q.status).toBe(200);
    expect(Object.keys(q.body).sort()).toEqual(['device_keys', 'failures', 'master_keys', 'self_signing_keys', 'user_signing_keys']);
    expect(q.body.failures).toHaveProperty(['elsewhere.example']);
    const got = q.body.device_keys[alice.user_id][alice.device_id];
    expect(got.keys).toEqual(dk.obj.keys);
    expect(got.signatures).toEqual(dk.obj.signatures);
    expect(got.unsigned).toEqual({ device_display_name: 'Alice phone' });
    // Naming a device that has no keys gives nothing for it.
    const none = await hs.request('POST', `${V3}/keys/query`, { token: bob.access_token, body: { device_keys: { [alice.user_id]: ['NOPE'] } } });
    expect(none.body.device_keys).toEqual({ [alice.user_id]: {} });

    // Two parallel claims get different keys; the third gets the fallback key, which stays.
    const claim = () =>
      hs.request('POST', `${V3}/keys/claim`, { token: bob.access_token, body: { one_time_keys: { [alice.user_id]: { [alice.device_id]: 'signed_curve25519' } } } });
    const [c1, c2] = await Promise.all([claim(), claim()]);
    const ids = [c1, c2].map((c) => Object.keys(c.body.one_time_keys[alice.user_id][alice.device_id])[0]);
    expect(ids.sort()).toEqual(['signed_curve25519:AAAA1', 'signed_curve25519:AAAA2']);
    expect(c1.body.failures).toEqual({});
    for (let i = 0; i < 2; i++) {
      const fb = await claim();
      expect(fb.body.one_time_keys[alice.user_id][alice.device_id]).toEqual({ 'signed_curve25519:FB1': { key: 'fallback', fallback: true } });
    }
    const counts = await hs.request('POST', `${V3}/keys/upload`, { token: alice.access_token, body: {} });
    expect(counts.body.one_time_key_counts).toEqual({ signed_curve25519: 0 });
    expect((await hs.db()('e2e_fallback_keys').where({ user_id: alice.user_id }).first()).used).toBeTruthy();

    // A remote user's keys cannot be claimed: their server is a failure.
    const remote = await hs.request('POST', `${V3}/keys/claim`, { token: bob.access_token, body: { one_time_keys: { '@x:far.example': { D: 'signed_curve25519' } } } });
    expect(remote.body).toEqual({ failures: { 'far.example': expect.any(Object) }, one_time_keys: {} });
  });

  it('refuses bad uploads and changes nothing', async () => {
    const carol = await hs.register('keys_carol');
    const other = await hs.register('keys_carol_other');
    await hs.request('POST', `${V3}/keys/upload`, { token: carol.access_token, body: { one_time_keys: { 'signed_curve25519:K1': otk(1) } } });
    const cases: [unknown, number, string][] = [
      [{ device_keys: deviceKeys(carol.user_id, 'OTHERDEVICE').obj }, 400, 'M_INVALID_PARAM'],
      [{ device_keys: deviceKeys(other.user_id, carol.device_id).obj }, 400, 'M_INVALID_PARAM'],
      [{ device_keys: 'nope' }, 400, 'M_BAD_JSON'],
      [{ one_time_keys: { nocolon: otk(1) } }, 400, 'M_INVALID_PARAM'],
      [{ one_time_keys: { 'signed_curve25519:K1': otk(99) } }, 400, 'M_INVALID_PARAM'],
      [{ one_time_keys: { 'a:b': 1.5 } }, 400, 'M_BAD_JSON'],
      [{ one_time_keys: { 'a:b': { big: 'x'.repeat(20_000) } } }, 400, 'M_TOO_LARGE'],
      [{ one_time_keys: Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`a:${i}`, 'k'])) }, 400, 'M_TOO_LARGE'],
      [{ one_time_keys: { 'signed_curve25519:new': otk(5) }, device_keys: deviceKeys(carol.user_id, 'X').obj }, 400, 'M_INVALID_PARAM'],
    ];
    for (const [body, status, errcode] of cases)
      await expectNoChange(
        hs,
        async () => expectMatrixError(await hs.request('POST', `${V3}/keys/upload`, { token: carol.access_token, body }), status, errcode),
        KEY_TABLES,
      );
    expectMatrixError(await hs.request('POST', `${V3}/keys/query`, { token: carol.access_token, body: { device_keys: { [carol.user_id]: 'x' } } }), 400, 'M_BAD_JSON');
    expectMatrixError(await hs.request('POST', `${V3}/keys/claim`, { token: carol.access_token, body: { one_time_keys: [] } }), 400, 'M_BAD_JSON');
    expectMatrixError(await hs.request('POST', `${V3}/keys/query`, { body: { device_keys: {} } }), 401, 'M_MISSING_TOKEN');
  });

  it('MSC3967: first upload and identical re-upload need no UIA; a change does', async () => {
    const dave = await hs.register('keys_dave');
    const master = edKey();
    const ssk = edKey();
    const usk = edKey();
    const first = {
      master_key: crossKey(dave.user_id, 'master', master),
      self_signing_key: crossKey(dave.user_id, 'self_signing', ssk, master),
      user_signing_key: crossKey(dave.user_id, 'user_signing', usk, master),
    };
    const up = (body: unknown) => hs.request('POST', `${V3}/keys/device_signing/upload`, { token: dave.access_token, body });
    // A self-signing key not signed by the master key is refused.
    await expectNoChange(hs, async () =>
      expectMatrixError(await up({ master_key: first.master_key, self_signing_key: crossKey(dave.user_id, 'self_signing', ssk, edKey()) }), 400, 'M_INVALID_SIGNATURE'),
    KEY_TABLES);
    expect((await up(first)).status).toBe(200);
    expect((await up(first)).status).toBe(200);
    expect(await hs.db()('e2e_cross_signing_keys').where({ user_id: dave.user_id }).count({ n: '*' }).first()).toMatchObject({ n: expect.anything() });

    const master2 = edKey();
    const replacement = { master_key: crossKey(dave.user_id, 'master', master2), self_signing_key: crossKey(dave.user_id, 'self_signing', edKey(), master2) };
    let challenge!: Awaited<ReturnType<typeof up>>;
    await expectNoChange(hs, async () => {
      challenge = await up(replacement);
      expect(challenge.status).toBe(401);
      expect(challenge.body.flows).toEqual([{ stages: ['m.login.password'] }]);
    }, KEY_TABLES);
    const done = await up({ ...replacement, auth: pwAuth('keys_dave', challenge.body.session) });
    expect(done.status).toBe(200);
    const q = await hs.request('POST', `${V3}/keys/query`, { token: dave.access_token, body: { device_keys: { [dave.user_id]: [] } } });
    expect(q.body.master_keys[dave.user_id].keys).toEqual({ [`ed25519:${master2.pub}`]: master2.pub });
    // The user-signing key was not replaced and is shown to its owner only.
    expect(q.body.user_signing_keys[dave.user_id].keys).toEqual({ [`ed25519:${usk.pub}`]: usk.pub });
    const stranger = await hs.register('keys_dave_friend');
    const q2 = await hs.request('POST', `${V3}/keys/query`, { token: stranger.access_token, body: { device_keys: { [dave.user_id]: [] } } });
    expect(q2.body.user_signing_keys).toEqual({});
    expect(q2.body.self_signing_keys[dave.user_id]).toBeDefined();
  });

  it('stores a self-signing signature of a device and shows it in queries; bad signatures are failures', async () => {
    const erin = await hs.register('keys_erin');
    const dk = deviceKeys(erin.user_id, erin.device_id);
    await hs.request('POST', `${V3}/keys/upload`, { token: erin.access_token, body: { device_keys: dk.obj } });
    const master = edKey();
    const ssk = edKey();
    await hs.request('POST', `${V3}/keys/device_signing/upload`, {
      token: erin.access_token,
      body: { master_key: crossKey(erin.user_id, 'master', master), self_signing_key: crossKey(erin.user_id, 'self_signing', ssk, master) },
    });
    const signed = { ...dk.obj, signatures: { [erin.user_id]: { [`ed25519:${ssk.pub}`]: ssk.sign(dk.obj) } } };
    const forged = { ...dk.obj, signatures: { [erin.user_id]: { [`ed25519:${ssk.pub}`]: edKey().sign(dk.obj) } } };
    const bad = await hs.request('POST', `${V3}/keys/signatures/upload`, { token: erin.access_token, body: { [erin.user_id]: { [erin.device_id]: forged, NOSUCH: forged } } });
    expect(bad.status).toBe(200);
    expect(bad.body.failures[erin.user_id][erin.device_id].errcode).toBe('M_INVALID_SIGNATURE');
    expect(bad.body.failures[erin.user_id].NOSUCH.errcode).toBe('M_NOT_FOUND');
    const ok = await hs.request('POST', `${V3}/keys/signatures/upload`, { token: erin.access_token, body: { [erin.user_id]: { [erin.device_id]: signed } } });
    expect(ok.body).toEqual({ failures: {} });
    const q = await hs.request('POST', `${V3}/keys/query`, { token: erin.access_token, body: { device_keys: { [erin.user_id]: [erin.device_id] } } });
    expect(q.body.device_keys[erin.user_id][erin.device_id].signatures[erin.user_id]).toEqual({
      [`ed25519:${erin.device_id}`]: (dk.obj.signatures as Record<string, Record<string, string>>)[erin.user_id]![`ed25519:${erin.device_id}`],
      [`ed25519:${ssk.pub}`]: ssk.sign(dk.obj),
    });
  });

  it('deleting a device deletes its keys and records a device-list change that /keys/changes reports', async () => {
    const frank = await hs.register('keys_frank');
    const phone = await hs.login('keys_frank');
    await hs.request('POST', `${V3}/keys/upload`, {
      token: phone.access_token,
      body: { device_keys: deviceKeys(frank.user_id, phone.device_id).obj, one_time_keys: { 'a:1': 'k' }, fallback_keys: { 'a:f': 'f' } },
    });
    const before = await hs.db()('device_list_changes').where({ user_id: frank.user_id }).max({ p: 'stream_position' }).first();
    const from = String(Number(before?.p ?? 0));
    // /keys/changes takes sync tokens (next_batch).
    const syncToken = async () => (await hs.request('GET', `${V3}/sync?timeout=0`, { token: frank.access_token })).body.next_batch as string;
    const tokenBefore = await syncToken();
    for (const table of ['e2e_device_keys', 'e2e_one_time_keys', 'e2e_fallback_keys'])
      expect(await hs.db()(table).where({ user_id: frank.user_id, device_id: phone.device_id })).toHaveLength(1);

    const first = await hs.request('POST', `${V3}/delete_devices`, { token: frank.access_token, body: { devices: [phone.device_id] } });
    const del = await hs.request('POST', `${V3}/delete_devices`, { token: frank.access_token, body: { devices: [phone.device_id], auth: pwAuth('keys_frank', first.body.session) } });
    expect(del.status).toBe(200);
    for (const table of ['e2e_device_keys', 'e2e_one_time_keys', 'e2e_fallback_keys'])
      expect(await hs.db()(table).where({ user_id: frank.user_id, device_id: phone.device_id })).toHaveLength(0);
    const after = await hs.db()('device_list_changes').where({ user_id: frank.user_id }).max({ p: 'stream_position' }).first();
    expect(Number(after?.p)).toBeGreaterThan(Number(from));

    const tokenAfter = await syncToken();
    const changes = await hs.request('GET', `${V3}/keys/changes?from=${tokenBefore}&to=${tokenAfter}`, { token: frank.access_token });
    expect(changes.body).toEqual({ changed: [frank.user_id], left: [] });
    const nothing = await hs.request('GET', `${V3}/keys/changes?from=${tokenAfter}&to=${tokenAfter}`, { token: frank.access_token });
    expect(nothing.body).toEqual({ changed: [], left: [] });
    expectMatrixError(await hs.request('GET', `${V3}/keys/changes?from=abc&to=1`, { token: frank.access_token }), 400, 'M_INVALID_PARAM');
    expectMatrixError(await hs.request('GET', `${V3}/keys/changes?from=${tokenAfter}`, { token: frank.access_token }), 400, 'M_MISSING_PARAM');
    // A bare position is not a sync token.
    expectMatrixError(await hs.request('GET', `${V3}/keys/changes?from=1&to=2`, { token: frank.access_token }), 400, 'M_INVALID_PARAM');
  });
});
