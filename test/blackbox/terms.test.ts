// Terms of service at registration (MSC1692): the m.login.terms stage ends
// every registration flow with the policies in its params; registering
// records the versions presented, with a timestamp, in the account's own
// transaction; Gatehouse serves the documents it is given (its folder's, and
// Synapse's /_matrix/consent); admins read what a user accepted.

import { createHmac } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import * as sdk from 'matrix-js-sdk';
import { type Logger, logger as sdkLogger } from 'matrix-js-sdk/lib/logger.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { ACCOUNT_TABLES, countRows, expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';
import { gatehouseDocument, synapseTemplate, writeTree } from '../support/terms.js';

const C = '/_matrix/client/v3';
const TERMS = 'm.login.terms';
const TOKEN = 'm.login.registration_token';
const BASE = 'https://matrix.example.test/';
const TABLES = [...ACCOUNT_TABLES, 'user_policy_acceptances'];

(sdkLogger as unknown as { setLevel(level: string): void }).setLevel('silent');
const silent: Logger = { trace: () => {}, debug: () => {}, info: () => {}, warn: () => {}, error: () => {}, getChild: () => silent };

const register = (hs: TestServer, body: Record<string, unknown>) => hs.request('POST', `${C}/register`, { body });

interface Acceptance {
  user_id: string;
  policy_id: string;
  version: string;
  accepted_ts: number;
}

async function acceptances(hs: TestServer, userId: string): Promise<Acceptance[]> {
  const rows = await hs.db()('user_policy_acceptances').where({ user_id: userId }).orderBy('policy_id');
  return rows.map((r: Record<string, unknown>) => ({
    user_id: r.user_id as string,
    policy_id: r.policy_id as string,
    version: r.version as string,
    accepted_ts: Number(r.accepted_ts),
  }));
}

/** An admin account, through shared-secret registration (which asks for no terms, as Synapse). */
async function makeAdmin(hs: TestServer, username: string): Promise<string> {
  const { nonce } = (await hs.request('GET', '/_synapse/admin/v1/register')).body;
  const mac = createHmac('sha1', 'test-shared-secret').update([nonce, username, DEFAULT_PASSWORD, 'admin'].join('\x00')).digest('hex');
  const res = await hs.request('POST', '/_synapse/admin/v1/register', { body: { nonce, username, password: DEFAULT_PASSWORD, admin: true, mac } });
  expect(res.status, res.text).toBe(200);
  return res.body.access_token;
}

/** A GET with the path sent exactly as written (fetch would resolve `..` segments first). */
function rawGet(hs: TestServer, path: string): Promise<{ status: number; body: any; contentType: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(hs.url + '/', { method: 'GET', path }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
        resolve({ status: res.statusCode!, body, contentType: String(res.headers['content-type']) });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

const documentsDir = writeTree({
  'tos/en/1.2.html': gatehouseDocument('TOS-EN'),
  'tos/fr/1.2.html': gatehouseDocument('TOS-FR'),
  'tos/en_GB/1.2.html': gatehouseDocument('TOS-EN-GB'),
  // An older version and a policy that is not configured: on disk, never served.
  'tos/en/1.1.html': gatehouseDocument('TOS-OLD'),
  'tos/en/1.3.html': gatehouseDocument('TOS-NEW'),
  'other/en/1.html': gatehouseDocument('OTHER'),
});
const templateDir = writeTree({
  'en/1.0.html': synapseTemplate('PRIVACY-EN'),
  'fr/1.0.html': synapseTemplate('PRIVACY-FR'),
  'de/1.0.html': synapseTemplate('PRIVACY-DE'),
  'en/0.9.html': synapseTemplate('PRIVACY-OLD'),
  'en/success.html': '<p>thanks</p>',
});
afterAll(() => {
  rmSync(documentsDir, { recursive: true, force: true });
  rmSync(templateDir, { recursive: true, force: true });
});

const TERMS_CONFIG = {
  public_baseurl: BASE,
  terms: {
    documents_dir: documentsDir,
    policies: {
      tos: {
        version: '1.2',
        en: { name: 'Terms of Service' },
        fr: { name: "Conditions d'utilisation" },
        en_GB: { name: 'Terms <of> Service' },
      },
      privacy: { version: '2', en: { name: 'Privacy Policy', url: 'https://example.org/privacy-2.html' } },
    },
  },
};

const EXPECTED_PARAMS = {
  policies: {
    tos: {
      version: '1.2',
      en: { name: 'Terms of Service', url: `${BASE}_gatehouse/terms/tos/1.2/en` },
      fr: { name: "Conditions d'utilisation", url: `${BASE}_gatehouse/terms/tos/1.2/fr` },
      en_GB: { name: 'Terms <of> Service', url: `${BASE}_gatehouse/terms/tos/1.2/en_GB` },
    },
    privacy: { version: '2', en: { name: 'Privacy Policy', url: 'https://example.org/privacy-2.html' } },
  },
};

describe.each(backends())('terms of service (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, TERMS_CONFIG);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  describe('the stage', () => {
    it('is the only flow, with MSC1692 params; m.login.dummy alone no longer registers', async () => {
      const res = await register(hs, {});
      expect(res.status).toBe(401);
      expect(res.body.flows).toEqual([{ stages: [TERMS] }]);
      expect(res.body.params).toEqual({ [TERMS]: EXPECTED_PARAMS });
      expect(res.body.completed).toEqual([]);
      await expectNoChange(
        hs,
        async () => {
          const dummy = await register(hs, { username: 't_dummy', password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' } });
          expectMatrixError(dummy, 400, 'M_UNRECOGNIZED');
        },
        TABLES,
      );
    });

    it('registers in one request with an auth dict holding only the type, recording the versions presented', async () => {
      const before = Date.now();
      const res = await register(hs, { username: 't_one', password: DEFAULT_PASSWORD, auth: { type: TERMS } });
      const after = Date.now();
      expect(res.status, res.text).toBe(200);
      expect(res.body.user_id).toBe('@t_one:test.local');
      const rows = await acceptances(hs, res.body.user_id);
      expect(rows.map(({ policy_id, version }) => ({ policy_id, version }))).toEqual([
        { policy_id: 'privacy', version: '2' },
        { policy_id: 'tos', version: '1.2' },
      ]);
      for (const r of rows) {
        expect(r.accepted_ts).toBeGreaterThanOrEqual(before);
        expect(r.accepted_ts).toBeLessThanOrEqual(after);
      }
      // One timestamp for the whole acceptance.
      expect(new Set(rows.map((r) => r.accepted_ts)).size).toBe(1);
    });

    it('registers through a two-step session (probe, then the stage), recording once', async () => {
      const probe = await register(hs, { username: 't_two', password: DEFAULT_PASSWORD });
      expect(probe.status).toBe(401);
      const session = probe.body.session as string;
      expect(await countRows(hs, 'user_policy_acceptances', { user_id: '@t_two:test.local' })).toBe(0);
      const res = await register(hs, { auth: { type: TERMS, session } });
      expect(res.status, res.text).toBe(200);
      expect((await acceptances(hs, '@t_two:test.local')).map((r) => `${r.policy_id}@${r.version}`)).toEqual(['privacy@2', 'tos@1.2']);
      // A repeat of the final request answers as the first did and records nothing more.
      const again = await register(hs, { auth: { type: TERMS, session } });
      expect(again.status, again.text).toBe(200);
      expect(again.body.user_id).toBe('@t_two:test.local');
      expect(await countRows(hs, 'user_policy_acceptances', { user_id: '@t_two:test.local' })).toBe(2);
    });

    it('ignores other fields of the auth dict (as Synapse)', async () => {
      const res = await register(hs, {
        username: 't_extra',
        password: DEFAULT_PASSWORD,
        auth: { type: TERMS, accepted: ['tos'], policies: { tos: false } },
      });
      expect(res.status, res.text).toBe(200);
      expect(await countRows(hs, 'user_policy_acceptances', { user_id: '@t_extra:test.local' })).toBe(2);
    });

    it('records nothing when the registration fails after the stage passed', async () => {
      await register(hs, { username: 't_taken', password: DEFAULT_PASSWORD, auth: { type: TERMS } });
      const takenSession = (await register(hs, {})).body.session as string;
      const laterSession = (await register(hs, { username: 't_later' })).body.session as string;
      await expectNoChange(
        hs,
        async () => {
          // The stage passes, then the name is found taken.
          const taken = await register(hs, { username: 't_taken', password: DEFAULT_PASSWORD, auth: { type: TERMS, session: takenSession } });
          expectMatrixError(taken, 400, 'M_USER_IN_USE');
          // The stage passes, then no request of the session gave a password.
          const noPassword = await register(hs, { auth: { type: TERMS, session: laterSession } });
          expectMatrixError(noPassword, 400, 'M_MISSING_PARAM');
        },
        TABLES,
      );
      // The session that passed the stage registers once a password comes, recording the acceptance once.
      const ok = await register(hs, { password: DEFAULT_PASSWORD, auth: { type: TERMS, session: laterSession } });
      expect(ok.status, ok.text).toBe(200);
      expect(ok.body.user_id).toBe('@t_later:test.local');
      expect(await countRows(hs, 'user_policy_acceptances', { user_id: '@t_later:test.local' })).toBe(2);
    });

    it('refuses a malformed auth dict before recording anything', async () => {
      await expectNoChange(
        hs,
        async () => {
          expectMatrixError(await register(hs, { username: 't_bad', password: DEFAULT_PASSWORD, auth: { type: 5 } }), 400, 'M_BAD_JSON');
          expectMatrixError(await register(hs, { username: 't_bad', password: DEFAULT_PASSWORD, auth: [TERMS] }), 400, 'M_BAD_JSON');
          expectMatrixError(
            await register(hs, { username: 't_bad', password: DEFAULT_PASSWORD, auth: { type: TERMS, session: 'nosuchsession' } }),
            400,
            'M_UNKNOWN',
          );
        },
        [...TABLES, 'uia_sessions'],
      );
    });
  });

  describe('documents', () => {
    it('serves each configured language as HTML, rendered with autoescaping', async () => {
      const en = await hs.request('GET', '/_gatehouse/terms/tos/1.2/en');
      expect(en.status).toBe(200);
      expect(en.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(en.headers.get('x-frame-options')).toBe('DENY');
      expect(en.text).toContain('TOS-EN tos v1.2 (en): Terms of Service');
      const fr = await hs.request('GET', '/_gatehouse/terms/tos/1.2/fr');
      expect(fr.status).toBe(200);
      expect(fr.text).toContain('TOS-FR tos v1.2 (fr): Conditions d&#39;utilisation');
      const gb = await hs.request('GET', '/_gatehouse/terms/tos/1.2/en_GB');
      expect(gb.text).toContain('TOS-EN-GB tos v1.2 (en_GB): Terms &lt;of&gt; Service');
      expect(gb.text).not.toContain('<of>');
      // HEAD answers as GET, without the body.
      const head = await fetch(`${hs.url}/_gatehouse/terms/tos/1.2/en`, { method: 'HEAD' });
      expect(head.status).toBe(200);
    });

    it.each([
      ['an unknown policy', '/_gatehouse/terms/nope/1.2/en'],
      ['a policy on disk but not configured', '/_gatehouse/terms/other/1/en'],
      ['an older version on disk', '/_gatehouse/terms/tos/1.1/en'],
      ['an unknown version', '/_gatehouse/terms/tos/9/en'],
      ['an unknown language', '/_gatehouse/terms/tos/1.2/de'],
      ['a language spelt otherwise', '/_gatehouse/terms/tos/1.2/en-GB'],
      ['a policy whose document is elsewhere (url)', '/_gatehouse/terms/privacy/2/en'],
      ['a file name', '/_gatehouse/terms/tos/1.2/en.html'],
      ['an encoded traversal in the language', '/_gatehouse/terms/tos/1.2/..%2F..%2F..%2F..%2Fetc%2Fpasswd'],
      ['an encoded traversal in the policy', '/_gatehouse/terms/..%2F..%2Fetc/1.2/en'],
      ['an encoded traversal back into the folder', '/_gatehouse/terms/tos%2Fen%2F1.1.html%23/1.2/en'],
    ])('is 404 M_NOT_FOUND for %s', async (_what, path) => {
      const res = await hs.request('GET', path);
      expectMatrixError(res, 404, 'M_NOT_FOUND');
      expect(res.headers.get('content-type')).toBe('application/json');
    });

    it('never resolves dot segments sent as such', async () => {
      const paths = [
        '/_gatehouse/terms/tos/1.2/../../../../etc/passwd',
        '/_gatehouse/terms/../../etc/passwd/en',
        '/_gatehouse/terms/tos/../tos/1.2/en',
        // Encoded dots (fetch would resolve these too).
        '/_gatehouse/terms/%2E%2E/%2E%2E/en',
        '/_gatehouse/terms/tos/1.2/%2e%2e',
      ];
      for (const path of paths) {
        const res = await rawGet(hs, path);
        expect(res.status, path).toBe(404);
        expect(res.contentType).toBe('application/json');
        expect(['M_NOT_FOUND', 'M_UNRECOGNIZED']).toContain(res.body.errcode);
      }
    });

    it('has no /_matrix/consent without user_consent', async () => {
      expectMatrixError(await hs.request('GET', '/_matrix/consent?v=1.2'), 404, 'M_NOT_FOUND');
    });
  });

  describe('admin read', () => {
    let adminToken: string;
    let userToken: string;
    beforeAll(async () => {
      adminToken = await makeAdmin(hs, 't_admin');
      userToken = (await register(hs, { username: 't_reader', password: DEFAULT_PASSWORD, auth: { type: TERMS } })).body.access_token;
    });
    const path = (userId: string) => `/_gatehouse/admin/v1/users/${encodeURIComponent(userId)}/terms`;

    it('lists what a user accepted, and when', async () => {
      const res = await hs.request('GET', path('@t_one:test.local'), { token: adminToken });
      expect(res.status, res.text).toBe(200);
      const rows = await acceptances(hs, '@t_one:test.local');
      expect(res.body).toEqual({
        accepted: rows.map(({ policy_id, version, accepted_ts }) => ({ policy_id, version, accepted_ts })),
      });
      expect(res.body.accepted).toHaveLength(2);
      expect(typeof res.body.accepted[0].accepted_ts).toBe('number');
    });

    it('lists nothing for a user who registered without terms (shared secret)', async () => {
      const res = await hs.request('GET', path('@t_admin:test.local'), { token: adminToken });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ accepted: [] });
    });

    it('is 401 without a token and 403 for a non-admin, whoever is asked about', async () => {
      for (const who of ['@t_one:test.local', '@nobody:test.local', '@x:elsewhere.org', 'garbage']) {
        expectMatrixError(await hs.request('GET', path(who)), 401, 'M_MISSING_TOKEN');
        expectMatrixError(await hs.request('GET', path(who), { token: 'not-a-token' }), 401, 'M_UNKNOWN_TOKEN');
        expectMatrixError(await hs.request('GET', path(who), { token: userToken }), 403, 'M_FORBIDDEN');
      }
    });

    it("keeps and lists a deactivated user's acceptances", async () => {
      const before = (await hs.request('GET', path('@t_reader:test.local'), { token: adminToken })).body;
      expect(before.accepted).toHaveLength(2);
      const auth = { type: 'm.login.password', identifier: { type: 'm.id.user', user: 't_reader' }, password: DEFAULT_PASSWORD };
      const deactivate = await hs.request('POST', `${C}/account/deactivate`, { token: userToken, body: { auth } });
      expect(deactivate.status, deactivate.text).toBe(200);
      const after = await hs.request('GET', path('@t_reader:test.local'), { token: adminToken });
      expect(after.status).toBe(200);
      expect(after.body).toEqual(before);
    });

    it('is 404 M_NOT_FOUND for an unknown local user', async () => {
      expectMatrixError(await hs.request('GET', path('@nobody:test.local'), { token: adminToken }), 404, 'M_NOT_FOUND');
    });

    it.each([['@x:elsewhere.org'], ['t_one'], ['@t_one'], ['@:test.local'], ['@t_one:'], [`@${'a'.repeat(300)}:test.local`], ['@t\u0000one:test.local']])(
      'is 400 M_INVALID_PARAM for %j',
      async (who) => {
        expectMatrixError(await hs.request('GET', path(who), { token: adminToken }), 400, 'M_INVALID_PARAM');
      },
    );
  });
});

describe.each(backends())('registration token and terms (%s)', (backend) => {
  let hs: TestServer;
  let n = 0;
  const seedToken = async (uses = 1) => {
    const token = `tt-${backend}-${++n}`;
    await hs.db()('registration_tokens').insert({ token, uses_allowed: uses, pending: 0, completed: 0, expiry_time: null, note: null, created_ts: Date.now() });
    return token;
  };
  beforeAll(async () => {
    hs = await startServer(backend, { ...TERMS_CONFIG, registration_requires_token: true, enable_registration_without_verification: false });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('puts the token first and the terms last, in one flow', async () => {
    const res = await register(hs, {});
    expect(res.status).toBe(401);
    expect(res.body.flows).toEqual([{ stages: [TOKEN, TERMS] }]);
    expect(res.body.params).toEqual({ [TERMS]: EXPECTED_PARAMS });
  });

  it('registers after both stages, counting the token use and recording the acceptance', async () => {
    const token = await seedToken();
    const first = await register(hs, { username: 'tt_both', password: DEFAULT_PASSWORD, auth: { type: TOKEN, token } });
    expect(first.status).toBe(401);
    expect(first.body.completed).toEqual([TOKEN]);
    const session = first.body.session as string;
    const done = await register(hs, { auth: { type: TERMS, session } });
    expect(done.status, done.text).toBe(200);
    expect(await countRows(hs, 'user_policy_acceptances', { user_id: '@tt_both:test.local' })).toBe(2);
    const row = await hs.db()('registration_tokens').where({ token }).first();
    expect({ pending: Number(row.pending), completed: Number(row.completed) }).toEqual({ pending: 0, completed: 1 });
  });

  it('does not register on the terms alone', async () => {
    await expectNoChange(
      hs,
      async () => {
        const res = await register(hs, { username: 'tt_terms_only', password: DEFAULT_PASSWORD, auth: { type: TERMS } });
        expect(res.status).toBe(401);
        expect(res.body.completed).toEqual([TERMS]);
      },
      TABLES,
    );
  });

  it('registers through matrix-js-sdk InteractiveAuth, answering the token stage and then the terms with an empty auth', async () => {
    const token = await seedToken();
    const anon = sdk.createClient({ baseUrl: hs.url, logger: silent });
    const sent: (sdk.AuthDict | null)[] = [];
    const stages: string[] = [];
    let termsParams: unknown;
    let ia: sdk.InteractiveAuth<sdk.RegisterResponse>;
    ia = new sdk.InteractiveAuth<sdk.RegisterResponse>({
      matrixClient: anon,
      doRequest: (auth) => {
        sent.push(auth);
        return anon.registerRequest({ username: 'tt_sdk', password: DEFAULT_PASSWORD, ...(auth ? { auth } : {}) });
      },
      stateUpdated: (stage) => {
        stages.push(stage);
        // Answer outside the callback, as a UI would.
        if (stage === TOKEN) setTimeout(() => void ia.submitAuthDict({ type: TOKEN, token }), 0);
        else if (stage === TERMS) {
          termsParams = ia.getStageParams(TERMS);
          setTimeout(() => void ia.submitAuthDict({ type: TERMS }), 0);
        } else throw new Error(`unexpected stage ${stage}`);
      },
      requestEmailToken: () => Promise.reject(new Error('no email stage expected')),
    });
    const result = await ia.attemptAuth();
    const session = ia.getSessionId();
    expect(result.user_id).toBe('@tt_sdk:test.local');
    expect(typeof result.access_token).toBe('string');
    expect(ia.getChosenFlow()).toEqual({ stages: [TOKEN, TERMS] });
    expect(stages).toEqual([TOKEN, TERMS]);
    expect(termsParams).toEqual(EXPECTED_PARAMS);
    expect(sent).toEqual([null, { type: TOKEN, token, session }, { type: TERMS, session }]);
    expect((await acceptances(hs, '@tt_sdk:test.local')).map((r) => `${r.policy_id}@${r.version}`)).toEqual(['privacy@2', 'tos@1.2']);
  });
});

describe.each(backends())("Synapse's user_consent (%s)", (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, {
      public_baseurl: BASE,
      user_consent: {
        version: '1.0',
        template_dir: templateDir,
        require_at_registration: true,
        policy_name: 'Our Privacy Policy',
        // Synapse keys about rooms: accepted, no effect.
        block_events_error: 'Accept the privacy policy first',
        send_server_notice_to_guests: true,
      },
      // Both given: the policies merge.
      terms: { policies: { tos: { version: '3', en: { name: 'Terms', url: 'https://example.org/tos-3' } } } },
    });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it("presents Synapse's privacy_policy, in English at /_matrix/consent, beside terms.policies", async () => {
    const res = await register(hs, {});
    expect(res.body.flows).toEqual([{ stages: [TERMS] }]);
    expect(res.body.params).toEqual({
      [TERMS]: {
        policies: {
          tos: { version: '3', en: { name: 'Terms', url: 'https://example.org/tos-3' } },
          privacy_policy: { version: '1.0', en: { name: 'Our Privacy Policy', url: `${BASE}_matrix/consent?v=1.0` } },
        },
      },
    });
    expect(hs.logs()).not.toContain('user_consent');
  });

  it('records privacy_policy and the other policies', async () => {
    const res = await register(hs, { username: 'uc_one', password: DEFAULT_PASSWORD, auth: { type: TERMS } });
    expect(res.status, res.text).toBe(200);
    expect((await acceptances(hs, '@uc_one:test.local')).map((r) => `${r.policy_id}@${r.version}`)).toEqual(['privacy_policy@1.0', 'tos@3']);
  });

  it("the user admin API shows the privacy_policy acceptance as Synapse's consent_version and consent_ts", async () => {
    const admin = await makeAdmin(hs, 'uc_admin');
    const path = (u: string) => `/_synapse/admin/v2/users/${encodeURIComponent(u)}`;
    const user = await hs.request('GET', path('@uc_one:test.local'), { token: admin });
    expect(user.status, user.text).toBe(200);
    expect(user.body.consent_version).toBe('1.0');
    expect(user.body.consent_ts).toBeGreaterThan(Date.now() - 60_000);
    // An account made by the admin accepted nothing.
    const self = await hs.request('GET', path('@uc_admin:test.local'), { token: admin });
    expect(self.body).toMatchObject({ consent_version: null, consent_ts: null });
  });

  it('serves the public version of the template (no consent form), in the language asked for', async () => {
    const en = await hs.request('GET', '/_matrix/consent?v=1.0');
    expect(en.status).toBe(200);
    expect(en.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(en.text).toContain('PRIVACY-EN version 1.0');
    expect(en.text).not.toContain('<form');
    // `v` defaults to the configured version (as Synapse).
    expect((await hs.request('GET', '/_matrix/consent')).text).toContain('PRIVACY-EN version 1.0');
    // Synapse's per-user parameters do not unlock anything.
    const withUser = await hs.request('GET', '/_matrix/consent?v=1.0&u=%40uc_one%3Atest.local&h=00');
    expect(withUser.status).toBe(200);
    expect(withUser.text).not.toContain('<form');

    const cases: [string, Record<string, string>, string][] = [
      ['?v=1.0&lang=fr', {}, 'PRIVACY-FR'],
      ['?lang=FR', {}, 'PRIVACY-FR'],
      ['?v=1.0', { 'Accept-Language': 'de-CH, fr;q=0.8' }, 'PRIVACY-DE'],
      ['?v=1.0', { 'Accept-Language': 'ja, fr;q=0.5, de;q=0.4' }, 'PRIVACY-FR'],
      ['?v=1.0', { 'Accept-Language': 'de;q=0, fr;q=0.1' }, 'PRIVACY-FR'],
      ['?v=1.0', { 'Accept-Language': 'ja, *;q=0.5' }, 'PRIVACY-EN'],
      ['?v=1.0', { 'Accept-Language': ';;;,,,q=2' }, 'PRIVACY-EN'],
      // The query wins over the header; a language without a document falls through to the header.
      ['?v=1.0&lang=fr', { 'Accept-Language': 'de' }, 'PRIVACY-FR'],
      ['?v=1.0&lang=xx', { 'Accept-Language': 'de' }, 'PRIVACY-DE'],
      ['?v=1.0&lang=..%2Fen', {}, 'PRIVACY-EN'],
    ];
    for (const [query, headers, marker] of cases) {
      const res = await hs.request('GET', `/_matrix/consent${query}`, { headers });
      expect(res.status, query).toBe(200);
      expect(res.text, `${query} ${JSON.stringify(headers)}`).toContain(`${marker} version 1.0`);
    }
  });

  it.each([
    ['an older version on disk', '/_matrix/consent?v=0.9'],
    ['an unknown version', '/_matrix/consent?v=2.0'],
    ['a page that is not a policy', '/_matrix/consent?v=success'],
    ['a traversal', '/_matrix/consent?v=..%2F..%2F..%2Fetc%2Fpasswd'],
    ['an empty version', '/_matrix/consent?v='],
  ])('is 404 M_NOT_FOUND for %s', async (_what, path) => {
    expectMatrixError(await hs.request('GET', path), 404, 'M_NOT_FOUND');
  });

  it('is 400 M_INVALID_PARAM for a parameter given twice', async () => {
    expectMatrixError(await hs.request('GET', '/_matrix/consent?v=1.0&v=0.9'), 400, 'M_INVALID_PARAM');
    expectMatrixError(await hs.request('GET', '/_matrix/consent?lang=en&lang=fr'), 400, 'M_INVALID_PARAM');
  });

  it('answers POST (Synapse records consent there) with 405 M_UNRECOGNIZED, changing nothing', async () => {
    await expectNoChange(
      hs,
      async () => {
        const res = await hs.request('POST', '/_matrix/consent', { body: { v: '1.0', u: 'uc_one', h: '00' } });
        expectMatrixError(res, 405, 'M_UNRECOGNIZED');
      },
      TABLES,
    );
  });
});

describe.each(backends())('a new version during a registration (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, TERMS_CONFIG);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  /** Rewrites the server's config with another version of `tos`, and restarts it. */
  async function publishVersion(version: string): Promise<void> {
    const file = `${hs.dataDir}/homeserver.yaml`;
    const config = parse(readFileSync(file, 'utf8'));
    config.terms.policies.tos.version = version;
    delete config.terms.policies.tos.fr;
    delete config.terms.policies.tos.en_GB;
    writeFileSync(file, stringify(config));
    await hs.restart();
  }

  it('records the version the user was shown; later registrations accept the new one', async () => {
    const first = await register(hs, { username: 'nv_early' });
    const session = first.body.session as string;
    expect(first.body.params[TERMS].policies.tos.version).toBe('1.2');
    // The stage passes (no password yet, so the registration waits)...
    const passed = await register(hs, { auth: { type: TERMS, session } });
    expectMatrixError(passed, 400, 'M_MISSING_PARAM');
    // ...then the admin publishes 1.3.
    await publishVersion('1.3');
    const probe = await register(hs, {});
    expect(probe.body.params[TERMS].policies.tos).toEqual({ version: '1.3', en: { name: 'Terms of Service', url: `${BASE}_gatehouse/terms/tos/1.3/en` } });
    expect((await hs.request('GET', '/_gatehouse/terms/tos/1.3/en')).text).toContain('TOS-NEW tos v1.3');
    expectMatrixError(await hs.request('GET', '/_gatehouse/terms/tos/1.2/en'), 404, 'M_NOT_FOUND');

    const early = await register(hs, { password: DEFAULT_PASSWORD, auth: { type: TERMS, session } });
    expect(early.status, early.text).toBe(200);
    expect((await acceptances(hs, '@nv_early:test.local')).map((r) => `${r.policy_id}@${r.version}`)).toEqual(['privacy@2', 'tos@1.2']);
    const late = await register(hs, { username: 'nv_late', password: DEFAULT_PASSWORD, auth: { type: TERMS } });
    expect(late.status, late.text).toBe(200);
    expect((await acceptances(hs, '@nv_late:test.local')).map((r) => `${r.policy_id}@${r.version}`)).toEqual(['privacy@2', 'tos@1.3']);
  });
});

describe('start', () => {
  it('refuses to start when a document Gatehouse would link to is missing, naming the key', async () => {
    const start = startServer('sqlite', { public_baseurl: BASE, terms: { documents_dir: documentsDir, policies: { tos: { version: '9', en: { name: 'T' } } } } });
    await expect(start).rejects.toThrow(/server exited with 1[\s\S]*terms\.policies\.tos\.en: no url is given, and .*\/tos\/en\/9\.html does not exist/);
  });
});
