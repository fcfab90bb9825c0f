// The real client library (matrix-js-sdk) against the real server: what the
// SDK sends, Gatehouse must accept, and what Gatehouse answers, the SDK must
// understand (UIA 401 bodies, errcodes, soft token failures). No sync: only
// the account surface is driven, so startClient() is never called.

import * as sdk from 'matrix-js-sdk';
import { type Logger, logger as sdkLogger } from 'matrix-js-sdk/lib/logger.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

// The SDK logs every request and UIA step; keep the test output readable.
(sdkLogger as unknown as { setLevel(level: string): void }).setLevel('silent');
const silent: Logger = {
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  getChild: () => silent,
};

type AuthDict = sdk.AuthDict;

/** The MatrixError a promise rejects with (failing the test if it resolves or rejects otherwise). */
async function matrixError(p: Promise<unknown>): Promise<sdk.MatrixError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(sdk.MatrixError);
    return e as sdk.MatrixError;
  }
  throw new Error('expected the request to fail');
}

describe.each(backends())('matrix-js-sdk v43 (%s)', (backend) => {
  let hs: TestServer;
  /** Every response the SDK received in the current test: none may be a 5xx. */
  let seen: { method: string; url: string; status: number }[] = [];

  const recordingFetch: typeof globalThis.fetch = async (input, init) => {
    const res = await fetch(input, init);
    seen.push({ method: init?.method ?? 'GET', url: String(input), status: res.status });
    return res;
  };

  const client = (creds: { accessToken?: string; userId?: string; deviceId?: string; refreshToken?: string } = {}, extra: Partial<sdk.ICreateClientOpts> = {}) =>
    sdk.createClient({ baseUrl: hs.url, fetchFn: recordingFetch, logger: silent, ...creds, ...extra });

  const signedIn = (res: { access_token?: string; user_id: string; device_id?: string }) =>
    client({ accessToken: res.access_token!, userId: res.user_id, deviceId: res.device_id! });

  const userId = (localpart: string) => `@${localpart}:${hs.serverName}`;
  const passwordAuth = (user: string, password: string, session?: string): AuthDict => ({
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user },
    password,
    ...(session === undefined ? {} : { session }),
  });
  const count = async (table: string, where: Record<string, unknown> = {}) => {
    const [row] = await hs.db()(table).where(where).count<{ n: number | string }[]>({ n: '*' });
    return Number(row!.n);
  };

  /**
   * Runs one UIA-protected request the way Element does: InteractiveAuth asks
   * first without auth, reads the 401 flows, and answers each password stage
   * with `passwords` in turn (a wrong one first shows how the SDK sees failures).
   */
  async function withPasswordUia<T>(user: string, passwords: string[], makeRequest: (auth: AuthDict | null) => Promise<T>) {
    const sent: (AuthDict | null)[] = [];
    const stages: { stage: string; status: sdk.IStageStatus }[] = [];
    const queue = [...passwords];
    let ia: sdk.InteractiveAuth<T>;
    ia = new sdk.InteractiveAuth<T>({
      matrixClient: client(),
      doRequest: (auth) => {
        sent.push(auth);
        return makeRequest(auth);
      },
      stateUpdated: (stage, status) => {
        stages.push({ stage, status });
        const password = queue.shift();
        if (stage !== 'm.login.password' || password === undefined) return;
        // Answer outside the callback, as a UI would after the user typed.
        setTimeout(() => void ia.submitAuthDict(passwordAuth(user, password)), 0);
      },
      requestEmailToken: () => Promise.reject(new Error('no email stage expected')),
    });
    const result = await ia.attemptAuth();
    return { result, sent, stages, session: ia.getSessionId(), flow: ia.getChosenFlow() };
  }

  /** Registers through InteractiveAuth (dummy stage), as Element's registration does. */
  async function sdkRegister(username: string, extra: Partial<sdk.RegisterRequest> = {}) {
    const anon = client();
    const sent: (AuthDict | null)[] = [];
    const ia = new sdk.InteractiveAuth<sdk.RegisterResponse>({
      matrixClient: anon,
      doRequest: (auth) => {
        sent.push(auth);
        return anon.registerRequest({ username, password: DEFAULT_PASSWORD, ...extra, ...(auth ? { auth } : {}) });
      },
      stateUpdated: (stage) => {
        throw new Error(`unexpected UIA stage ${stage}`);
      },
      requestEmailToken: () => Promise.reject(new Error('no email stage expected')),
    });
    const result = await ia.attemptAuth();
    return { result, sent, session: ia.getSessionId(), flow: ia.getChosenFlow() };
  }

  beforeAll(async () => {
    hs = await startServer(backend);
  });
  afterAll(async () => {
    await hs?.stop();
  });
  afterEach(() => {
    const errors = seen.filter((s) => s.status >= 500);
    seen = [];
    expect(errors).toEqual([]);
  });

  it('reads the versions and login flows the SDK needs to start', async () => {
    const anon = client();
    const versions = await anon.getVersions();
    expect(versions.versions).toContain('v1.1');
    expect(versions.versions).toContain('v1.5');
    expect(await anon.isVersionSupported('v1.5')).toBe(true);
    expect(await anon.isVersionSupported('v1.99')).toBe(false);
    const flows = await anon.loginFlows();
    expect(flows.flows).toContainEqual({ type: 'm.login.password' });
  });

  it('registers through InteractiveAuth with the dummy stage', async () => {
    const name = 'sdk-reg';
    const anon = client();
    expect(await anon.isUsernameAvailable(name)).toBe(true);

    const { result, sent, session, flow } = await sdkRegister(name, { initial_device_display_name: 'SDK laptop', refresh_token: true });
    // First without auth (to learn the flows), then the dummy stage on the server's session.
    expect(sent).toEqual([null, { type: 'm.login.dummy', session }]);
    expect(typeof session).toBe('string');
    expect(flow).toEqual({ stages: ['m.login.dummy'] });
    expect(result.user_id).toBe(userId(name));
    expect(typeof result.access_token).toBe('string');
    expect(typeof result.device_id).toBe('string');
    expect(typeof result.refresh_token).toBe('string');
    expect(result.expires_in_ms).toBeGreaterThan(0);

    // The SDK turns M_USER_IN_USE into `false`.
    expect(await anon.isUsernameAvailable(name)).toBe(false);
    // Upper case is the same name (down-cased, as Synapse), so it is taken too.
    expect(await anon.isUsernameAvailable(name.toUpperCase())).toBe(false);

    const device = await hs.db()('devices').where({ user_id: userId(name) }).first();
    expect(device.device_id).toBe(result.device_id);
    expect(device.display_name).toBe('SDK laptop');
    // The session is spent: it records the user it registered.
    const row = await hs.db()('uia_sessions').where({ session_id: session }).first();
    expect(JSON.parse(row.result)).toEqual({ value: { user_id: userId(name) } });

    const who = await signedIn(result).whoami();
    expect(who).toEqual({ user_id: userId(name), device_id: result.device_id, is_guest: false });
  });

  it('exposes the 401 challenge as a MatrixError the SDK can continue', async () => {
    const name = 'sdk-twostep';
    const anon = client();
    const sessionsBefore = await count('uia_sessions');
    const challenge = await matrixError(anon.registerRequest({ username: name, password: DEFAULT_PASSWORD }));
    expect(challenge.httpStatus).toBe(401);
    // A plain challenge carries no errcode; the SDK reads flows, params and session from `data`.
    expect(challenge.errcode).toBeUndefined();
    expect(challenge.data.flows).toEqual([{ stages: ['m.login.dummy'] }]);
    expect(challenge.data.params).toEqual({});
    expect(typeof challenge.data.session).toBe('string');
    expect(await count('uia_sessions')).toBe(sessionsBefore + 1);
    expect(await count('users', { localpart: name })).toBe(0);

    // The legacy helper puts the session into the auth dict and asks for a refresh token.
    const res = await anon.register(name, DEFAULT_PASSWORD, challenge.data.session, { type: 'm.login.dummy' });
    expect(res.user_id).toBe(userId(name));
    expect(typeof res.refresh_token).toBe('string');
    expect(await count('users', { localpart: name })).toBe(1);
  });

  it('rejects taken, invalid and guest registrations with the errcodes the SDK expects', async () => {
    const name = 'sdk-taken';
    await sdkRegister(name);
    const anon = client();
    const users = await count('users');
    const sessions = await count('uia_sessions');

    const taken = await matrixError(anon.registerRequest({ username: name, password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' } }));
    expect(taken.httpStatus).toBe(400);
    expect(taken.errcode).toBe('M_USER_IN_USE');

    // InteractiveAuth passes a non-UIA failure straight through.
    const viaIa = await matrixError(sdkRegister(name));
    expect(viaIa.errcode).toBe('M_USER_IN_USE');

    // isUsernameAvailable rethrows everything but M_USER_IN_USE.
    const invalid = await matrixError(anon.isUsernameAvailable('not valid!'));
    expect(invalid.httpStatus).toBe(400);
    expect(invalid.errcode).toBe('M_INVALID_USERNAME');

    const guest = await matrixError(anon.registerGuest());
    expect(guest.httpStatus).toBe(403);
    expect(guest.errcode).toBe('M_GUEST_ACCESS_FORBIDDEN');

    expect(await count('users')).toBe(users);
    expect(await count('uia_sessions')).toBe(sessions);
  });

  it('logs in with loginRequest and the legacy loginWithPassword', async () => {
    const name = 'sdk-login';
    const { result: reg } = await sdkRegister(name);
    const anon = client();

    const byIdentifier = await anon.loginRequest({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: name },
      password: DEFAULT_PASSWORD,
      initial_device_display_name: 'Second device',
    });
    expect(byIdentifier.user_id).toBe(userId(name));
    expect(byIdentifier.device_id).not.toBe(reg.device_id);
    expect(byIdentifier.well_known).toBeUndefined();
    expect((await hs.db()('devices').where({ user_id: userId(name), device_id: byIdentifier.device_id }).first()).display_name).toBe(
      'Second device',
    );

    const byFullId = await anon.loginRequest({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: userId(name) },
      password: DEFAULT_PASSWORD,
    });
    expect(byFullId.user_id).toBe(userId(name));

    // loginWithPassword sends the deprecated top-level `user` and stores the token on the client.
    const legacy = client();
    const res = await legacy.loginWithPassword(name, DEFAULT_PASSWORD);
    expect(legacy.getAccessToken()).toBe(res.access_token);
    expect(legacy.getUserId()).toBe(userId(name));
    expect((await legacy.whoami()).device_id).toBe(res.device_id);

    const devices = await count('devices', { user_id: userId(name) });
    const wrong = await matrixError(anon.loginRequest({ type: 'm.login.password', identifier: { type: 'm.id.user', user: name }, password: 'nope' }));
    expect(wrong.httpStatus).toBe(403);
    expect(wrong.errcode).toBe('M_FORBIDDEN');
    const unknownType = await matrixError(anon.loginRequest({ type: 'm.login.token', token: 'abc' }));
    expect(unknownType.httpStatus).toBe(400);
    expect(unknownType.errcode).toBe('M_UNKNOWN');
    expect(await count('devices', { user_id: userId(name) })).toBe(devices);
  });

  it('answers whoami over the header and the query-string token, and reports unknown tokens', async () => {
    const { result } = await sdkRegister('sdk-whoami');
    expect(await signedIn(result).whoami()).toEqual({ user_id: result.user_id, device_id: result.device_id, is_guest: false });
    const viaQuery = client({ accessToken: result.access_token, userId: result.user_id }, { useAuthorizationHeader: false });
    expect((await viaQuery.whoami()).user_id).toBe(result.user_id);

    const bogus = client({ accessToken: 'syt_not_a_token', userId: result.user_id });
    let loggedOut: sdk.MatrixError | null = null;
    bogus.on(sdk.HttpApiEvent.SessionLoggedOut, (e) => (loggedOut = e));
    const err = await matrixError(bogus.whoami());
    expect(err.httpStatus).toBe(401);
    expect(err.errcode).toBe('M_UNKNOWN_TOKEN');
    expect(err.data.soft_logout).toBe(false);
    // The SDK treats M_UNKNOWN_TOKEN as the end of the session.
    expect(loggedOut).toBe(err);
  });

  it('lists, reads and renames devices', async () => {
    const name = 'sdk-devices';
    const { result } = await sdkRegister(name, { initial_device_display_name: 'First' });
    const me = signedIn(result);
    const second = await client().loginRequest({ type: 'm.login.password', identifier: { type: 'm.id.user', user: name }, password: DEFAULT_PASSWORD });

    const { devices } = await me.getDevices();
    expect(devices.map((d) => d.device_id).sort()).toEqual([result.device_id, second.device_id].sort());
    const first = devices.find((d) => d.device_id === result.device_id)!;
    expect(first.display_name).toBe('First');
    expect(typeof first.last_seen_ts).toBe('number');

    expect(await me.setDeviceDetails(second.device_id, { display_name: 'Renamed by SDK' })).toEqual({});
    const renamed = await me.getDevice(second.device_id);
    expect(renamed).toMatchObject({ device_id: second.device_id, display_name: 'Renamed by SDK' });
    expect((await hs.db()('devices').where({ user_id: userId(name), device_id: second.device_id }).first()).display_name).toBe('Renamed by SDK');

    const missing = await matrixError(me.getDevice('NOSUCHDEVICE'));
    expect(missing.httpStatus).toBe(404);
    expect(missing.errcode).toBe('M_NOT_FOUND');
    const renameMissing = await matrixError(me.setDeviceDetails('NOSUCHDEVICE', { display_name: 'x' }));
    expect(renameMissing.httpStatus).toBe(404);
    expect(renameMissing.errcode).toBe('M_NOT_FOUND');
    expect(await count('devices', { user_id: userId(name) })).toBe(2);
  });

  it('deletes devices through password UIA, reporting a wrong password as the SDK expects', async () => {
    const name = 'sdk-deldev';
    const { result } = await sdkRegister(name);
    const me = signedIn(result);
    const login = () => client().loginRequest({ type: 'm.login.password', identifier: { type: 'm.id.user', user: name }, password: DEFAULT_PASSWORD });
    const [a, b, c] = [await login(), await login(), await login()];

    // Without auth: the 401 the SDK parses, and nothing deleted.
    const challenge = await matrixError(me.deleteDevice(a.device_id));
    expect(challenge.httpStatus).toBe(401);
    expect(challenge.data.flows).toEqual([{ stages: ['m.login.password'] }]);
    expect(typeof challenge.data.session).toBe('string');
    expect(await count('devices', { user_id: userId(name) })).toBe(4);

    // InteractiveAuth: a wrong password, then the right one.
    const run = await withPasswordUia(name, ['wrong password', DEFAULT_PASSWORD], (auth) => me.deleteDevice(a.device_id, auth ?? undefined));
    expect(run.result).toEqual({});
    expect(run.stages).toHaveLength(2);
    expect(run.stages[0]).toEqual({ stage: 'm.login.password', status: {} });
    expect(run.stages[1]!.stage).toBe('m.login.password');
    expect(run.stages[1]!.status.errcode).toBe('M_FORBIDDEN');
    expect(run.sent).toHaveLength(3);
    expect(run.sent[0]).toBeNull();
    expect(run.sent[2]).toEqual({ ...passwordAuth(name, DEFAULT_PASSWORD), session: run.session });
    expect(await hs.db()('devices').where({ user_id: userId(name), device_id: a.device_id }).first()).toBeUndefined();
    expect(await count('access_tokens', { user_id: userId(name), device_id: a.device_id })).toBe(0);
    expect((await matrixError(signedIn(a).whoami())).errcode).toBe('M_UNKNOWN_TOKEN');

    // The two-step flow by hand for deleteMultipleDevices.
    const first = await matrixError(me.deleteMultipleDevices([b.device_id, c.device_id]));
    expect(first.httpStatus).toBe(401);
    const session = first.data.session as string;
    // A session opened for one list of devices cannot delete another.
    const swapped = await matrixError(me.deleteMultipleDevices([result.device_id!], passwordAuth(name, DEFAULT_PASSWORD, session)));
    expect(swapped.httpStatus).toBe(403);
    expect(swapped.errcode).toBe('M_FORBIDDEN');
    expect(await count('devices', { user_id: userId(name) })).toBe(3);
    expect(await me.deleteMultipleDevices([b.device_id, c.device_id], passwordAuth(name, DEFAULT_PASSWORD, session))).toEqual({});
    expect((await me.getDevices()).devices.map((d) => d.device_id)).toEqual([result.device_id]);
    expect((await matrixError(signedIn(c).whoami())).errcode).toBe('M_UNKNOWN_TOKEN');
  });

  it('reads capabilities', async () => {
    const { result } = await sdkRegister('sdk-caps');
    const me = signedIn(result);
    const caps = await me.getCapabilities();
    expect(caps['m.change_password']).toEqual({ enabled: true });
    expect(caps['m.room_versions']?.default).toBe('10');
    expect(caps['m.room_versions']?.available['10']).toBe('stable');
    // Now cached by the SDK.
    expect(me.getCachedCapabilities()).toEqual(caps);
  });

  it('changes the password through UIA and signs the other devices out', async () => {
    const name = 'sdk-passwd';
    const newPassword = 'a brand new passphrase';
    const { result } = await sdkRegister(name);
    const me = signedIn(result);
    const other = await client().loginRequest({ type: 'm.login.password', identifier: { type: 'm.id.user', user: name }, password: DEFAULT_PASSWORD });
    const hashBefore = (await hs.db()('users').where({ user_id: userId(name) }).first()).password_hash;

    // A wrong password in the auth dict: a 401 that still carries the flows, with M_FORBIDDEN.
    const start = await matrixError(me.setPassword({}, newPassword));
    expect(start.httpStatus).toBe(401);
    expect(start.data.flows).toEqual([{ stages: ['m.login.password'] }]);
    const wrong = await matrixError(me.setPassword(passwordAuth(name, 'not it', start.data.session), newPassword));
    expect(wrong.httpStatus).toBe(401);
    expect(wrong.errcode).toBe('M_FORBIDDEN');
    expect(wrong.data.flows).toEqual([{ stages: ['m.login.password'] }]);
    expect(wrong.data.session).toBe(start.data.session);
    expect((await hs.db()('users').where({ user_id: userId(name) }).first()).password_hash).toBe(hashBefore);

    const run = await withPasswordUia(name, [DEFAULT_PASSWORD], (auth) => me.setPassword(auth ?? {}, newPassword));
    expect(run.result).toEqual({});
    expect((await hs.db()('users').where({ user_id: userId(name) }).first()).password_hash).not.toBe(hashBefore);

    // logout_devices defaults to true: the other device is gone, this one stays.
    expect((await matrixError(signedIn(other).whoami())).errcode).toBe('M_UNKNOWN_TOKEN');
    expect((await me.whoami()).device_id).toBe(result.device_id);
    expect(await count('devices', { user_id: userId(name) })).toBe(1);

    const old = await matrixError(client().loginWithPassword(name, DEFAULT_PASSWORD));
    expect(old.errcode).toBe('M_FORBIDDEN');
    expect((await client().loginWithPassword(name, newPassword)).user_id).toBe(userId(name));

    // logout_devices: false keeps the other sessions.
    const kept = await client().loginRequest({ type: 'm.login.password', identifier: { type: 'm.id.user', user: name }, password: newPassword });
    await withPasswordUia(name, [newPassword], (auth) => me.setPassword(auth ?? {}, DEFAULT_PASSWORD, false));
    expect((await signedIn(kept).whoami()).device_id).toBe(kept.device_id);
  });

  it('refreshes tokens with refreshToken()', async () => {
    const name = 'sdk-refresh';
    const anon = client();
    const login = await anon.loginRequest({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: (await sdkRegister(name)).result.user_id },
      password: DEFAULT_PASSWORD,
      refresh_token: true,
    });
    expect(typeof login.refresh_token).toBe('string');
    expect(login.expires_in_ms).toBeGreaterThan(0);

    const me = client({ accessToken: login.access_token, userId: login.user_id, deviceId: login.device_id, refreshToken: login.refresh_token });
    seen = [];
    const next = await me.refreshToken(login.refresh_token!);
    // The SDK only falls back to /v1/refresh on M_UNRECOGNIZED: one request to /v3 is enough.
    expect(seen.map((s) => new URL(s.url).pathname)).toEqual(['/_matrix/client/v3/refresh']);
    expect(typeof next.access_token).toBe('string');
    expect(typeof next.refresh_token).toBe('string');
    expect(next.expires_in_ms).toBeGreaterThan(0);
    expect(next.access_token).not.toBe(login.access_token);

    const fresh = client({ accessToken: next.access_token, userId: login.user_id });
    expect(await fresh.whoami()).toEqual({ user_id: login.user_id, device_id: login.device_id, is_guest: false });

    // The new access token has been used: the old refresh token is spent.
    const spent = await matrixError(anon.refreshToken(login.refresh_token!));
    expect(spent.httpStatus).toBe(401);
    expect(spent.errcode).toBe('M_UNKNOWN_TOKEN');
    const garbage = await matrixError(anon.refreshToken('syr_garbage'));
    expect(garbage.httpStatus).toBe(401);
    expect(garbage.errcode).toBe('M_UNKNOWN_TOKEN');
    expect(await count('refresh_tokens', { user_id: login.user_id, device_id: login.device_id })).toBe(1);
  });

  it('logs out', async () => {
    const name = 'sdk-logout';
    const { result } = await sdkRegister(name);
    const me = signedIn(result);
    const stays = await client().loginRequest({ type: 'm.login.password', identifier: { type: 'm.id.user', user: name }, password: DEFAULT_PASSWORD });
    expect(await me.logout()).toEqual({});
    expect(await hs.db()('devices').where({ user_id: userId(name), device_id: result.device_id }).first()).toBeUndefined();
    expect(await count('access_tokens', { user_id: userId(name), device_id: result.device_id })).toBe(0);
    const after = await matrixError(me.whoami());
    expect(after.httpStatus).toBe(401);
    expect(after.errcode).toBe('M_UNKNOWN_TOKEN');
    expect((await signedIn(stays).whoami()).device_id).toBe(stays.device_id);
  });

  it('deactivates the account through UIA', async () => {
    const name = 'sdk-deact';
    const { result } = await sdkRegister(name);
    const me = signedIn(result);
    await client().loginRequest({ type: 'm.login.password', identifier: { type: 'm.id.user', user: name }, password: DEFAULT_PASSWORD });

    // Without auth: a challenge, and nothing changes.
    const challenge = await matrixError(me.deactivateAccount(undefined, false));
    expect(challenge.httpStatus).toBe(401);
    expect(challenge.data.flows).toEqual([{ stages: ['m.login.password'] }]);
    // A session opened with erase: false cannot be finished with erase: true (the session remembers it).
    const changed = await matrixError(me.deactivateAccount(passwordAuth(name, DEFAULT_PASSWORD, challenge.data.session), true));
    expect(changed.httpStatus).toBe(403);
    expect(changed.errcode).toBe('M_FORBIDDEN');
    expect((await hs.db()('users').where({ user_id: userId(name) }).first()).deactivated).toBeFalsy();
    expect(await count('devices', { user_id: userId(name) })).toBe(2);

    const run = await withPasswordUia(name, [DEFAULT_PASSWORD], (auth) => me.deactivateAccount(auth ?? undefined, true));
    expect(run.result).toEqual({ id_server_unbind_result: 'success' });

    const user = await hs.db()('users').where({ user_id: userId(name) }).first();
    expect(user.deactivated).toBeTruthy();
    expect(user.password_hash).toBeNull();
    expect(await count('devices', { user_id: userId(name) })).toBe(0);
    expect(await count('access_tokens', { user_id: userId(name) })).toBe(0);

    expect((await matrixError(me.whoami())).errcode).toBe('M_UNKNOWN_TOKEN');
    // Deactivation removed the password: the login answers as a wrong password would.
    const login = await matrixError(client().loginWithPassword(name, DEFAULT_PASSWORD));
    expect(login.httpStatus).toBe(403);
    expect(login.errcode).toBe('M_FORBIDDEN');
    // The name is never handed out again.
    expect(await client().isUsernameAvailable(name)).toBe(false);
  });
});
