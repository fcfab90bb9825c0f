// What the server says about itself: /versions, .well-known, capabilities
// (reflecting the config) and the signed server key (verified here with
// tweetnacl, stable across a restart, in Synapse's key file format).

import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';
const KEY_PATH = '/_matrix/key/v2/server';

/** Matrix canonical JSON, written independently of the server's: sorted keys, no whitespace, integers only. */
function canonical(value: unknown): string {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new Error(`not a canonical JSON number: ${value}`);
    return String(value);
  }
  if (Array.isArray(value)) return '[' + value.map(canonical).join(',') + ']';
  if (typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    return '{' + Object.keys(obj).sort().map((k) => JSON.stringify(k) + ':' + canonical(obj[k])).join(',') + '}';
  }
  throw new Error(`cannot encode ${typeof value}`);
}

const fromUnpaddedBase64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

/** Checks the self-signature of a key response; returns whether it verifies. */
function verifySelfSigned(body: Record<string, any>, serverName: string, keyId: string): boolean {
  const { signatures, unsigned: _unsigned, ...signed } = body;
  const sig = signatures?.[serverName]?.[keyId];
  if (typeof sig !== 'string') return false;
  const publicKey = fromUnpaddedBase64(body.verify_keys[keyId].key);
  return nacl.sign.detached.verify(Buffer.from(canonical(signed), 'utf8'), fromUnpaddedBase64(sig), publicKey);
}

function expectJsonWithCors(res: { headers: Headers }) {
  expect(res.headers.get('content-type')).toBe('application/json');
  expect(res.headers.get('access-control-allow-origin')).toBe('*');
}

describe.each(backends())('server info (%s)', (backend) => {
  describe('default configuration', () => {
    let hs: TestServer;
    beforeAll(async () => {
      hs = await startServer(backend);
    });
    afterAll(async () => {
      await hs?.stop();
    });

    it('GET /versions lists v1.1 to v1.12 and r0.6.1, and an unstable_features object', async () => {
      const res = await hs.request('GET', '/_matrix/client/versions');
      expect(res.status).toBe(200);
      expectJsonWithCors(res);
      const versions: string[] = res.body.versions;
      expect(Array.isArray(versions)).toBe(true);
      for (let minor = 1; minor <= 12; minor++) expect(versions).toContain(`v1.${minor}`);
      expect(versions).toContain('r0.6.1');
      expect(new Set(versions).size).toBe(versions.length);
      for (const v of versions) expect(v).toMatch(/^(r\d+\.\d+\.\d+|v\d+\.\d+)$/);
      const unstable = res.body.unstable_features;
      expect(typeof unstable).toBe('object');
      expect(unstable).not.toBeNull();
      expect(Array.isArray(unstable)).toBe(false);
      for (const v of Object.values(unstable)) expect(typeof v).toBe('boolean');
    });

    it('GET /versions needs no access token', async () => {
      const res = await hs.request('GET', '/_matrix/client/versions', { headers: {} });
      expect(res.status).toBe(200);
    });

    it('/.well-known/matrix/client is 404 M_NOT_FOUND without public_baseurl', async () => {
      const res = await hs.request('GET', '/.well-known/matrix/client');
      expect(res.status).toBe(404);
      expect(res.body.errcode).toBe('M_NOT_FOUND');
      expectJsonWithCors(res);
    });

    it('/.well-known/matrix/server is 404 M_NOT_FOUND unless serve_server_wellknown', async () => {
      const res = await hs.request('GET', '/.well-known/matrix/server');
      expect(res.status).toBe(404);
      expect(res.body.errcode).toBe('M_NOT_FOUND');
      expectJsonWithCors(res);
    });

    it('GET /capabilities needs an access token', async () => {
      const none = await hs.request('GET', `${V3}/capabilities`);
      expect(none.status).toBe(401);
      expect(none.body.errcode).toBe('M_MISSING_TOKEN');
      expectJsonWithCors(none);
      const unknown = await hs.request('GET', `${V3}/capabilities`, { token: 'gha_notatoken' });
      expect(unknown.status).toBe(401);
      expect(unknown.body.errcode).toBe('M_UNKNOWN_TOKEN');
    });

    it('GET /capabilities allows password and profile changes, and no 3PID change without an email section', async () => {
      const s = await hs.register('si_caps');
      for (const path of [`${V3}/capabilities`, '/_matrix/client/r0/capabilities']) {
        const res = await hs.request('GET', path, { token: s.access_token });
        expect(res.status, path).toBe(200);
        expectJsonWithCors(res);
        const caps = res.body.capabilities;
        expect(caps['m.change_password']).toEqual({ enabled: true });
        expect(caps['m.set_displayname']).toEqual({ enabled: true });
        expect(caps['m.set_avatar_url']).toEqual({ enabled: true });
        expect(caps['m.profile_fields']).toEqual({ enabled: true });
        expect(caps['m.3pid_changes']).toEqual({ enabled: false });
        const rooms = caps['m.room_versions'];
        expect(typeof rooms.default).toBe('string');
        expect(rooms.available[rooms.default]).toBe('stable');
      }
    });

    it('GET /_matrix/key/v2/server returns one ed25519 key, self-signed, valid in the future', async () => {
      const before = Date.now();
      const res = await hs.request('GET', KEY_PATH);
      expect(res.status).toBe(200);
      expectJsonWithCors(res);
      const body = res.body;
      expect(body.server_name).toBe(hs.serverName);
      expect(Number.isInteger(body.valid_until_ts)).toBe(true);
      expect(body.valid_until_ts).toBeGreaterThan(before);
      // Not absurdly far either (Synapse: a day to a week).
      expect(body.valid_until_ts).toBeLessThan(before + 31 * 24 * 3_600_000);
      expect(body.old_verify_keys ?? {}).toEqual({});

      const keyIds = Object.keys(body.verify_keys);
      expect(keyIds).toHaveLength(1);
      const keyId = keyIds[0]!;
      expect(keyId).toMatch(/^ed25519:[A-Za-z0-9_]+$/);
      const key: string = body.verify_keys[keyId].key;
      expect(key).not.toContain('=');
      expect(fromUnpaddedBase64(key)).toHaveLength(32);

      expect(Object.keys(body.signatures)).toEqual([hs.serverName]);
      expect(Object.keys(body.signatures[hs.serverName])).toEqual([keyId]);
      const sig: string = body.signatures[hs.serverName][keyId];
      expect(sig).not.toContain('=');
      expect(fromUnpaddedBase64(sig)).toHaveLength(64);
      expect(verifySelfSigned(body, hs.serverName, keyId)).toBe(true);

      // The check is real: any change to the signed content breaks it.
      expect(verifySelfSigned({ ...body, valid_until_ts: body.valid_until_ts + 1 }, hs.serverName, keyId)).toBe(false);
      expect(verifySelfSigned({ ...body, server_name: 'evil.example' }, hs.serverName, keyId)).toBe(false);
    });

    it('stores the signing key in Synapse format, and keeps it across a restart', async () => {
      const keyFile = join(hs.dataDir, 'signing.key');
      expect(existsSync(keyFile)).toBe(true);
      // Private: readable by the owner only.
      expect(statSync(keyFile).mode & 0o077).toBe(0);
      const text = readFileSync(keyFile, 'utf8');
      const m = /^ed25519 (a_[A-Za-z0-9_]+) ([A-Za-z0-9+/]+)\n?$/.exec(text);
      expect(m, text).not.toBeNull();
      const version = m![1]!;
      const seed = fromUnpaddedBase64(m![2]!);
      expect(seed).toHaveLength(32);

      const first = (await hs.request('GET', KEY_PATH)).body;
      const keyId = `ed25519:${version}`;
      expect(Object.keys(first.verify_keys)).toEqual([keyId]);
      // The public key served is the one derived from the file's seed.
      const derived = Buffer.from(nacl.sign.keyPair.fromSeed(seed).publicKey).toString('base64').replace(/=+$/, '');
      expect(first.verify_keys[keyId].key).toBe(derived);

      // Data written before the restart must survive too (same data directory and database).
      const s = await hs.register('si_restart');
      await hs.restart();
      // Two processes have run.
      expect(hs.logs().split('Gatehouse is ready').length - 1).toBe(2);
      expect(readFileSync(keyFile, 'utf8')).toBe(text);
      const second = await hs.request('GET', KEY_PATH);
      expect(second.status).toBe(200);
      expect(second.body.verify_keys).toEqual(first.verify_keys);
      expect(second.body.valid_until_ts).toBeGreaterThanOrEqual(first.valid_until_ts);
      expect(verifySelfSigned(second.body, hs.serverName, keyId)).toBe(true);
      // The restarted server is a new process on the same database.
      const who = await hs.request('GET', `${V3}/account/whoami`, { token: s.access_token });
      expect(who.status).toBe(200);
      expect(who.body.user_id).toBe(s.user_id);
    });
  });

  describe('with every change disabled, public_baseurl and serve_server_wellknown', () => {
    let hs: TestServer;
    beforeAll(async () => {
      hs = await startServer(backend, {
        public_baseurl: 'https://matrix.example.org',
        serve_server_wellknown: true,
        password_config: { enabled: false },
        enable_set_displayname: false,
        enable_set_avatar_url: false,
        enable_3pid_changes: false,
        allow_guest_access: true,
      });
    });
    afterAll(async () => {
      await hs?.stop();
    });

    it('/.well-known/matrix/client names public_baseurl', async () => {
      const res = await hs.request('GET', '/.well-known/matrix/client');
      expect(res.status).toBe(200);
      expectJsonWithCors(res);
      expect(res.body).toEqual({ 'm.homeserver': { base_url: 'https://matrix.example.org/' } });
    });

    it('/.well-known/matrix/server names the server name on port 443, not public_baseurl\'s host', async () => {
      const res = await hs.request('GET', '/.well-known/matrix/server');
      expect(res.status).toBe(200);
      expectJsonWithCors(res);
      expect(res.body).toEqual({ 'm.server': `${hs.serverName}:443` });
    });

    it('GET /capabilities reflects the config, for users and guests', async () => {
      const user = await hs.register('si_nocaps');
      const guest = await hs.request('POST', `${V3}/register?kind=guest`, { body: {} });
      expect(guest.status).toBe(200);
      for (const token of [user.access_token, guest.body.access_token]) {
        const res = await hs.request('GET', `${V3}/capabilities`, { token });
        expect(res.status).toBe(200);
        const caps = res.body.capabilities;
        expect(caps['m.change_password']).toEqual({ enabled: false });
        expect(caps['m.set_displayname']).toEqual({ enabled: false });
        expect(caps['m.set_avatar_url']).toEqual({ enabled: false });
        expect(caps['m.profile_fields']).toEqual({ enabled: true, disallowed: ['displayname', 'avatar_url'] });
        expect(caps['m.3pid_changes']).toEqual({ enabled: false });
      }
    });

    it('a password change is refused, as m.change_password says, and changes nothing', async () => {
      const user = await hs.register('si_nopw');
      const before = await hs.db()('users').where({ user_id: user.user_id }).first();
      const res = await hs.request('POST', `${V3}/account/password`, {
        token: user.access_token,
        body: {
          new_password: 'a different password 42',
          auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'si_nopw' }, password: DEFAULT_PASSWORD },
        },
      });
      expect(res.status).toBe(403);
      expect(res.body.errcode).toBe('M_FORBIDDEN');
      const after = await hs.db()('users').where({ user_id: user.user_id }).first();
      expect(after.password_hash).toBe(before.password_hash);
    });
  });

  describe('a key file written beforehand, and serve_server_wellknown without public_baseurl', () => {
    let hs: TestServer;
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-key-'));
    const keyFile = join(dir, 'example.signing.key');
    const seed = nacl.randomBytes(32);
    beforeAll(async () => {
      // As Synapse's generate_signing_key writes it.
      writeFileSync(keyFile, `ed25519 a_Test ${Buffer.from(seed).toString('base64').replace(/=+$/, '')}\n`);
      hs = await startServer(backend, { signing_key_path: keyFile, serve_server_wellknown: true });
    });
    afterAll(async () => {
      await hs?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('serves and signs with the key from the file', async () => {
      const res = await hs.request('GET', KEY_PATH);
      expect(res.status).toBe(200);
      const expected = Buffer.from(nacl.sign.keyPair.fromSeed(seed).publicKey).toString('base64').replace(/=+$/, '');
      expect(res.body.verify_keys).toEqual({ 'ed25519:a_Test': { key: expected } });
      expect(verifySelfSigned(res.body, hs.serverName, 'ed25519:a_Test')).toBe(true);
      // The file is left as it was.
      expect(readFileSync(keyFile, 'utf8')).toBe(`ed25519 a_Test ${Buffer.from(seed).toString('base64').replace(/=+$/, '')}\n`);
    });

    it('/.well-known/matrix/server falls back to the server name', async () => {
      const res = await hs.request('GET', '/.well-known/matrix/server');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ 'm.server': `${hs.serverName}:443` });
      // And the client well-known stays 404 without public_baseurl.
      expect((await hs.request('GET', '/.well-known/matrix/client')).status).toBe(404);
    });
  });
});
