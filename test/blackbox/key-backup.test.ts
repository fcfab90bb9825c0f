// Server-side key backup: versions and keys, the better-key rule, wrong versions.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { startServer, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';
const R0 = '/_matrix/client/r0';
const TABLES = ['room_key_backup_versions', 'room_key_backup_keys'];
const ALG = 'm.megolm_backup.v1.curve25519-aes-sha2';

const key = (fmi: number, fc: number, verified: boolean, tag: string) => ({
  first_message_index: fmi,
  forwarded_count: fc,
  is_verified: verified,
  session_data: { ciphertext: tag, ephemeral: 'e', mac: 'm' },
});

describe.each(backends())('key backup (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('no backup is 404 M_NOT_FOUND; versions are created, read, updated and deleted', async () => {
    const u = await hs.register('backup_versions');
    const other = await hs.register('backup_versions_other');
    const t = { token: u.access_token };
    expectMatrixError(await hs.request('GET', `${V3}/room_keys/version`, t), 404, 'M_NOT_FOUND');
    expectMatrixError(await hs.request('GET', `${R0}/room_keys/version`, t), 404, 'M_NOT_FOUND');

    const created = await hs.request('POST', `${V3}/room_keys/version`, { ...t, body: { algorithm: ALG, auth_data: { public_key: 'pk1' } } });
    expect(created.status).toBe(200);
    const v1 = created.body.version as string;
    expect(typeof v1).toBe('string');
    const got = await hs.request('GET', `${V3}/room_keys/version`, t);
    expect(got.body).toEqual({ algorithm: ALG, auth_data: { public_key: 'pk1' }, count: 0, etag: '0', version: v1 });
    // Another user's version is not theirs to see.
    expectMatrixError(await hs.request('GET', `${V3}/room_keys/version/${v1}`, { token: other.access_token }), 404, 'M_NOT_FOUND');
    expectMatrixError(await hs.request('GET', `${V3}/room_keys/version`, { token: other.access_token }), 404, 'M_NOT_FOUND');

    expect((await hs.request('PUT', `${V3}/room_keys/version/${v1}`, { ...t, body: { algorithm: ALG, auth_data: { public_key: 'pk1', x: 1 }, version: v1 } })).status).toBe(200);
    expect((await hs.request('GET', `${V3}/room_keys/version/${v1}`, t)).body.auth_data).toEqual({ public_key: 'pk1', x: 1 });
    for (const [body, status, errcode] of [
      [{ algorithm: 'other', auth_data: {} }, 400, 'M_INVALID_PARAM'],
      [{ algorithm: ALG, auth_data: {}, version: '999' }, 400, 'M_INVALID_PARAM'],
      [{ algorithm: ALG }, 400, 'M_MISSING_PARAM'],
      [{ algorithm: ALG, auth_data: 'x' }, 400, 'M_BAD_JSON'],
      [{ algorithm: ALG, auth_data: { big: 'x'.repeat(70_000) } }, 400, 'M_TOO_LARGE'],
    ] as const)
      await expectNoChange(hs, async () => expectMatrixError(await hs.request('PUT', `${V3}/room_keys/version/${v1}`, { ...t, body }), status, errcode), TABLES);
    expectMatrixError(await hs.request('PUT', `${V3}/room_keys/version/abc`, { ...t, body: { algorithm: ALG, auth_data: {} } }), 404, 'M_NOT_FOUND');

    const v2 = (await hs.request('POST', `${V3}/room_keys/version`, { ...t, body: { algorithm: ALG, auth_data: { public_key: 'pk2' } } })).body.version;
    expect((await hs.request('GET', `${V3}/room_keys/version`, t)).body.version).toBe(v2);
    expect((await hs.request('DELETE', `${V3}/room_keys/version/${v2}`, t)).status).toBe(200);
    expectMatrixError(await hs.request('DELETE', `${V3}/room_keys/version/${v2}`, t), 404, 'M_NOT_FOUND');
    expect((await hs.request('GET', `${V3}/room_keys/version`, t)).body.version).toBe(v1);
  });

  it('stores keys at three levels, keeps the better key, and refuses an old version', async () => {
    const u = await hs.register('backup_keys');
    const t = { token: u.access_token };
    const v = (await hs.request('POST', `${V3}/room_keys/version`, { ...t, body: { algorithm: ALG, auth_data: {} } })).body.version;
    const room = '!room:test.local';
    const put1 = await hs.request('PUT', `${V3}/room_keys/keys?version=${v}`, { ...t, body: { rooms: { [room]: { sessions: { s1: key(5, 1, false, 'a') } } } } });
    expect(put1.body).toEqual({ etag: '1', count: 1 });
    // Worse (higher index, unverified): kept the old one; the etag stays.
    const worse = await hs.request('PUT', `${V3}/room_keys/keys/${encodeURIComponent(room)}/s1?version=${v}`, { ...t, body: key(9, 0, false, 'worse') });
    expect(worse.body).toEqual({ etag: '1', count: 1 });
    // Lower first_message_index wins.
    await hs.request('PUT', `${V3}/room_keys/keys/${encodeURIComponent(room)}?version=${v}`, { ...t, body: { sessions: { s1: key(2, 3, false, 'lower'), s2: key(0, 0, true, 's2') } } });
    let s1 = await hs.request('GET', `${V3}/room_keys/keys/${encodeURIComponent(room)}/s1?version=${v}`, t);
    expect(s1.body).toEqual(key(2, 3, false, 'lower'));
    // Verified beats a lower index.
    await hs.request('PUT', `${V3}/room_keys/keys/${encodeURIComponent(room)}/s1?version=${v}`, { ...t, body: key(7, 0, true, 'verified') });
    s1 = await hs.request('GET', `${V3}/room_keys/keys/${encodeURIComponent(room)}/s1?version=${v}`, t);
    expect(s1.body.session_data.ciphertext).toBe('verified');

    const all = await hs.request('GET', `${V3}/room_keys/keys?version=${v}`, t);
    expect(Object.keys(all.body.rooms[room].sessions).sort()).toEqual(['s1', 's2']);
    expect((await hs.request('GET', `${V3}/room_keys/keys/${encodeURIComponent('!empty:x')}?version=${v}`, t)).body).toEqual({ sessions: {} });
    expectMatrixError(await hs.request('GET', `${V3}/room_keys/keys/${encodeURIComponent(room)}/nope?version=${v}`, t), 404, 'M_NOT_FOUND');
    expectMatrixError(await hs.request('GET', `${V3}/room_keys/keys`, t), 400, 'M_MISSING_PARAM');
    expectMatrixError(await hs.request('GET', `${V3}/room_keys/keys?version=99999`, t), 404, 'M_NOT_FOUND');
    expect((await hs.request('GET', `${V3}/room_keys/version`, t)).body).toMatchObject({ count: 2, version: v });

    // Bad keys change nothing.
    for (const [body, status, errcode] of [
      [{ rooms: { [room]: { sessions: { s3: { ...key(0, 0, false, 'x'), first_message_index: -1 } } } } }, 400, 'M_BAD_JSON'],
      [{ rooms: { [room]: { sessions: { s3: { first_message_index: 0 } } } } }, 400, 'M_MISSING_PARAM'],
      [{ rooms: { [room]: { sessions: { s3: { ...key(0, 0, 'yes' as unknown as boolean, 'x') } } } } }, 400, 'M_BAD_JSON'],
      [{ rooms: 'x' }, 400, 'M_BAD_JSON'],
    ] as const)
      await expectNoChange(hs, async () => expectMatrixError(await hs.request('PUT', `${V3}/room_keys/keys?version=${v}`, { ...t, body }), status, errcode), TABLES);

    // A newer version makes this one read-only.
    const v2 = (await hs.request('POST', `${V3}/room_keys/version`, { ...t, body: { algorithm: ALG, auth_data: {} } })).body.version;
    const old = await hs.request('PUT', `${V3}/room_keys/keys?version=${v}`, { ...t, body: { rooms: {} } });
    expectMatrixError(old, 403, 'M_WRONG_ROOM_KEYS_VERSION');
    expect(old.body.current_version).toBe(v2);
    expect((await hs.request('GET', `${V3}/room_keys/keys?version=${v}`, t)).status).toBe(200);

    const del = await hs.request('DELETE', `${V3}/room_keys/keys/${encodeURIComponent(room)}/s2?version=${v}`, t);
    expect(del.body.count).toBe(1);
    expect((await hs.request('DELETE', `${V3}/room_keys/keys?version=${v}`, t)).body.count).toBe(0);
    // Deleting a version deletes its keys.
    await hs.request('PUT', `${V3}/room_keys/keys/r/s?version=${v2}`, { ...t, body: key(0, 0, false, 'x') });
    await hs.request('DELETE', `${V3}/room_keys/version/${v2}`, t);
    expect(await hs.db()('room_key_backup_keys').where({ version_id: Number(v2) })).toHaveLength(0);
    expectMatrixError(await hs.request('GET', `${V3}/room_keys/keys`, {}), 401, 'M_MISSING_TOKEN');
  });
});

describe.each(backends())('deactivation removes key backups and cross-signing keys (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('as Synapse: after deactivation the user has no backup versions, backup keys, cross-signing keys or signatures', async () => {
    const u = await hs.register('kb_gone');
    const created = await hs.request('POST', `${V3}/room_keys/version`, {
      token: u.access_token,
      body: { algorithm: 'm.megolm_backup.v1.curve25519-aes-sha2', auth_data: { public_key: 'abc', signatures: {} } },
    });
    expect(created.status, created.text).toBe(200);
    const put = await hs.request('PUT', `${V3}/room_keys/keys/${encodeURIComponent('!r:test.local')}/sess?version=${created.body.version}`, {
      token: u.access_token,
      body: { first_message_index: 0, forwarded_count: 0, is_verified: true, session_data: { ciphertext: 'x' } },
    });
    expect(put.status, put.text).toBe(200);
    // Cross-signing rows seeded directly (their upload has suites of its own).
    await hs.db()('e2e_cross_signing_keys').insert({ user_id: u.user_id, key_type: 'master', public_key: 'pk', key_json: '{}' });
    await hs.db()('e2e_signatures').insert({ signer_user_id: u.user_id, signer_key_id: 'ed25519:pk', target_user_id: u.user_id, target_key_id: 'DEV', signature: 'sig' });

    const open = await hs.request('POST', `${V3}/account/deactivate`, { token: u.access_token, body: {} });
    const done = await hs.request('POST', `${V3}/account/deactivate`, {
      token: u.access_token,
      body: { auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'kb_gone' }, password: 'correct horse battery staple', session: open.body.session } },
    });
    expect(done.status, done.text).toBe(200);
    expect(await hs.db()('room_key_backup_versions').where({ user_id: u.user_id })).toHaveLength(0);
    expect(await hs.db()('room_key_backup_keys')).toHaveLength(0);
    expect(await hs.db()('e2e_cross_signing_keys').where({ user_id: u.user_id })).toHaveLength(0);
    expect(await hs.db()('e2e_signatures').where({ signer_user_id: u.user_id })).toHaveLength(0);
  });
});
