// Device management: list, get, rename, and delete (one, or several, behind UIA).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';
const PASSWORD_FLOWS = [{ stages: ['m.login.password'] }];

describe.each(backends())('devices (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, { allow_guest_access: true });
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
  const deviceRow = (userId: string, deviceId: string) => hs.db()('devices').where({ user_id: userId, device_id: deviceId }).first();
  const devicesOf = async (userId: string) =>
    (await hs.db()('devices').where({ user_id: userId })).map((d: { device_id: string }) => d.device_id).sort();
  const accessTokenDevices = async (userId: string) =>
    (await hs.db()('access_tokens').where({ user_id: userId })).map((t: { device_id: string }) => t.device_id).sort();
  const sessionCount = async () => Number((await hs.db()('uia_sessions').count<{ n: number }[]>({ n: '*' }).first())?.n);
  const path = (deviceId: string) => `${V3}/devices/${encodeURIComponent(deviceId)}`;

  async function expectDead(token: string) {
    const res = await hs.request('GET', `${V3}/account/whoami`, { token });
    expect(res.status).toBe(401);
    expect(res.body.errcode).toBe('M_UNKNOWN_TOKEN');
  }

  describe('GET /devices and /devices/{deviceId}', () => {
    it('lists the user\'s own devices with name and last-seen facts', async () => {
      const start = Date.now();
      const reg = await hs.register('dev_list', undefined, { initial_device_display_name: 'Laptop' });
      const phone = await hs.login('dev_list', undefined, { initial_device_display_name: 'Phone' });
      const unnamed = await hs.login('dev_list');
      const stranger = await hs.register('dev_list_other');

      const res = await hs.request('GET', `${V3}/devices`, { token: reg.access_token });
      expect(res.status).toBe(200);
      const devices = res.body.devices as Record<string, unknown>[];
      expect(devices.map((d) => d.device_id).sort()).toEqual([reg.device_id, phone.device_id, unnamed.device_id].sort());
      expect(devices.map((d) => d.device_id)).not.toContain(stranger.device_id);
      const byId = new Map(devices.map((d) => [d.device_id, d]));
      expect(byId.get(reg.device_id)!.display_name).toBe('Laptop');
      expect(byId.get(phone.device_id)!.display_name).toBe('Phone');
      // Present and null when unknown, as Synapse sends it (matrix-nio needs the key).
      expect(byId.get(unnamed.device_id)!.display_name).toBeNull();
      for (const d of devices) {
        expect(typeof d.last_seen_ts).toBe('number');
        expect(d.last_seen_ts as number).toBeGreaterThanOrEqual(start - 1000);
        expect(d.last_seen_ts as number).toBeLessThanOrEqual(Date.now() + 1000);
        expect(d.last_seen_ip).toMatch(/127\.0\.0\.1|::1/);
        expect(Object.keys(d).sort()).toEqual(['device_id', 'display_name', 'last_seen_ip', 'last_seen_ts']);
      }
    });

    it('gets one device, and 404 M_NOT_FOUND for an unknown one or another user\'s', async () => {
      const reg = await hs.register('dev_get', undefined, { initial_device_display_name: 'Desk' });
      const other = await hs.register('dev_get_other');
      const res = await hs.request('GET', path(reg.device_id), { token: reg.access_token });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ device_id: reg.device_id, display_name: 'Desk' });
      expect(typeof res.body.last_seen_ts).toBe('number');
      expect(typeof res.body.last_seen_ip).toBe('string');

      for (const id of ['NOSUCHDEVICE', other.device_id]) {
        const miss = await hs.request('GET', path(id), { token: reg.access_token });
        expect(miss.status, id).toBe(404);
        expect(miss.body.errcode, id).toBe('M_NOT_FOUND');
      }
    });

    it('handles device IDs with characters that need escaping in the path', async () => {
      await hs.register('dev_odd');
      const odd = 'odd/dev ice%é';
      const login = await hs.login('dev_odd', undefined, { device_id: odd });
      expect(login.device_id).toBe(odd);
      const res = await hs.request('GET', path(odd), { token: login.access_token });
      expect(res.status).toBe(200);
      expect(res.body.device_id).toBe(odd);
      const rename = await hs.request('PUT', path(odd), { token: login.access_token, body: { display_name: 'Odd' } });
      expect(rename.status).toBe(200);
      expect((await deviceRow(login.user_id, odd)).display_name).toBe('Odd');
    });

    it('requires an access token', async () => {
      for (const [method, p] of [['GET', `${V3}/devices`], ['GET', path('X')], ['PUT', path('X')], ['DELETE', path('X')], ['POST', `${V3}/delete_devices`]] as const) {
        const res = await hs.request(method, p, method === 'GET' ? {} : { body: {} });
        expect(res.status, `${method} ${p}`).toBe(401);
        expect(res.body.errcode).toBe('M_MISSING_TOKEN');
      }
    });
  });

  describe('PUT /devices/{deviceId}', () => {
    it('renames, leaves the name alone when display_name is absent, and clears it with null', async () => {
      const reg = await hs.register('dev_rename', undefined, { initial_device_display_name: 'Old name' });
      const put = (body: unknown) => hs.request('PUT', path(reg.device_id), { token: reg.access_token, body });
      const get = async () => (await hs.request('GET', path(reg.device_id), { token: reg.access_token })).body;

      expect((await put({ display_name: 'New name ✓' })).status).toBe(200);
      expect((await get()).display_name).toBe('New name ✓');
      expect((await deviceRow(reg.user_id, reg.device_id)).display_name).toBe('New name ✓');

      const absent = await put({});
      expect(absent.status).toBe(200);
      expect(absent.body).toEqual({});
      expect((await deviceRow(reg.user_id, reg.device_id)).display_name).toBe('New name ✓');

      expect((await put({ display_name: null })).status).toBe(200);
      expect((await deviceRow(reg.user_id, reg.device_id)).display_name).toBeNull();
      expect((await get()).display_name).toBeNull();

      // An empty string is a name like any other.
      expect((await put({ display_name: '' })).status).toBe(200);
      expect((await deviceRow(reg.user_id, reg.device_id)).display_name).toBe('');
    });

    it('refuses an unknown device and another user\'s device with 404, changing nothing', async () => {
      const reg = await hs.register('dev_rename404');
      const other = await hs.register('dev_rename404_other', undefined, { initial_device_display_name: 'Theirs' });
      for (const id of ['NOSUCHDEVICE', other.device_id]) {
        const res = await hs.request('PUT', path(id), { token: reg.access_token, body: { display_name: 'Mine now' } });
        expect(res.status, id).toBe(404);
        expect(res.body.errcode).toBe('M_NOT_FOUND');
      }
      expect((await deviceRow(other.user_id, other.device_id)).display_name).toBe('Theirs');
      // Renaming does not create a device.
      expect(await deviceRow(reg.user_id, 'NOSUCHDEVICE')).toBeUndefined();
      expect(await devicesOf(reg.user_id)).toEqual([reg.device_id]);
    });

    it('refuses a display_name of the wrong type with M_BAD_JSON, changing nothing', async () => {
      const reg = await hs.register('dev_renamebad', undefined, { initial_device_display_name: 'Keep' });
      for (const display_name of [42, true, ['a'], { name: 'a' }]) {
        const res = await hs.request('PUT', path(reg.device_id), { token: reg.access_token, body: { display_name } });
        expect(res.status, JSON.stringify(display_name).slice(0, 40)).toBe(400);
        expect(res.body.errcode).toBe('M_BAD_JSON');
      }
      const notObject = await hs.request('PUT', path(reg.device_id), { token: reg.access_token, rawBody: '["x"]' });
      expect(notObject.status).toBe(400);
      expect(notObject.body.errcode).toBe('M_BAD_JSON');
      expect((await deviceRow(reg.user_id, reg.device_id)).display_name).toBe('Keep');
      // (Over-long names are auth-faults.test.ts's: 400 M_TOO_LARGE.)
    });
  });

  describe('DELETE /devices/{deviceId}', () => {
    it('asks for UIA first (even with no body), then deletes the device and kills its token', async () => {
      const reg = await hs.register('dev_del');
      const other = await hs.login('dev_del');
      const sessions = await sessionCount();

      const noBody = await hs.request('DELETE', path(other.device_id), { token: reg.access_token });
      expect(noBody.status).toBe(401);
      expect(noBody.body.flows).toEqual(PASSWORD_FLOWS);
      expect(noBody.body.completed).toEqual([]);
      expect(typeof noBody.body.session).toBe('string');
      expect(await sessionCount()).toBe(sessions + 1);
      expect(await devicesOf(reg.user_id)).toEqual([reg.device_id, other.device_id].sort());
      expect((await hs.request('GET', `${V3}/account/whoami`, { token: other.access_token })).status).toBe(200);

      const res = await hs.request('DELETE', path(other.device_id), {
        token: reg.access_token,
        body: { auth: pwAuth('dev_del', noBody.body.session) },
      });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({});
      await expectDead(other.access_token);
      expect(await devicesOf(reg.user_id)).toEqual([reg.device_id]);
      expect(await accessTokenDevices(reg.user_id)).toEqual([reg.device_id]);
      const gone = await hs.request('GET', path(other.device_id), { token: reg.access_token });
      expect(gone.status).toBe(404);

      // Deleting it again still goes through UIA, and then succeeds.
      const again = await hs.request('DELETE', path(other.device_id), { token: reg.access_token, body: {} });
      expect(again.status).toBe(401);
      const done = await hs.request('DELETE', path(other.device_id), { token: reg.access_token, body: { auth: pwAuth('dev_del', again.body.session) } });
      expect(done.status).toBe(200);
      expect(await devicesOf(reg.user_id)).toEqual([reg.device_id]);
      expect((await hs.request('GET', `${V3}/account/whoami`, { token: reg.access_token })).status).toBe(200);
    });

    it('deletes the requesting device itself', async () => {
      const reg = await hs.register('dev_delself');
      const res = await hs.request('DELETE', path(reg.device_id), { token: reg.access_token, body: { auth: pwAuth('dev_delself') } });
      expect(res.status).toBe(200);
      await expectDead(reg.access_token);
      expect(await devicesOf(reg.user_id)).toEqual([]);
      expect(await accessTokenDevices(reg.user_id)).toEqual([]);
    });

    it('cannot touch another user\'s device with the same ID', async () => {
      const mine = await hs.register('dev_delmine');
      const theirs = await hs.register('dev_deltheirs');
      const res = await hs.request('DELETE', path(theirs.device_id), { token: mine.access_token, body: { auth: pwAuth('dev_delmine') } });
      expect(res.status).toBe(200);
      expect(await devicesOf(theirs.user_id)).toEqual([theirs.device_id]);
      expect((await hs.request('GET', `${V3}/account/whoami`, { token: theirs.access_token })).status).toBe(200);
      expect(await devicesOf(mine.user_id)).toEqual([mine.device_id]);
    });

    it('refuses a wrong password (401 M_FORBIDDEN) and keeps the device', async () => {
      const reg = await hs.register('dev_delwrong');
      const other = await hs.login('dev_delwrong');
      const res = await hs.request('DELETE', path(other.device_id), {
        token: reg.access_token,
        body: { auth: { ...pwAuth('dev_delwrong'), password: 'wrong' } },
      });
      expect(res.status).toBe(401);
      expect(res.body.errcode).toBe('M_FORBIDDEN');
      expect(res.body.flows).toEqual(PASSWORD_FLOWS);
      expect(await devicesOf(reg.user_id)).toEqual([reg.device_id, other.device_id].sort());
      expect((await hs.request('GET', `${V3}/account/whoami`, { token: other.access_token })).status).toBe(200);
    });
  });

  describe('POST /delete_devices', () => {
    it('deletes several devices after UIA, keeping the rest', async () => {
      const reg = await hs.register('dev_bulk');
      const b = await hs.login('dev_bulk');
      const c = await hs.login('dev_bulk');
      const d = await hs.login('dev_bulk');
      const targets = [b.device_id, c.device_id, 'NEVER_EXISTED'];

      const first = await hs.request('POST', `${V3}/delete_devices`, { token: reg.access_token, body: { devices: targets } });
      expect(first.status).toBe(401);
      expect(first.body.flows).toEqual(PASSWORD_FLOWS);
      expect(await devicesOf(reg.user_id)).toHaveLength(4);

      const res = await hs.request('POST', `${V3}/delete_devices`, {
        token: reg.access_token,
        body: { devices: targets, auth: pwAuth('dev_bulk', first.body.session) },
      });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({});
      await expectDead(b.access_token);
      await expectDead(c.access_token);
      expect(await devicesOf(reg.user_id)).toEqual([reg.device_id, d.device_id].sort());
      expect(await accessTokenDevices(reg.user_id)).toEqual([reg.device_id, d.device_id].sort());
      expect((await hs.request('GET', `${V3}/account/whoami`, { token: d.access_token })).status).toBe(200);
    });

    it('accepts an empty list (after UIA) and deletes nothing', async () => {
      const reg = await hs.register('dev_bulkempty');
      const b = await hs.login('dev_bulkempty');
      const first = await hs.request('POST', `${V3}/delete_devices`, { token: reg.access_token, body: { devices: [] } });
      expect(first.status).toBe(401);
      const res = await hs.request('POST', `${V3}/delete_devices`, { token: reg.access_token, body: { devices: [], auth: pwAuth('dev_bulkempty', first.body.session) } });
      expect(res.status).toBe(200);
      expect(await devicesOf(reg.user_id)).toEqual([reg.device_id, b.device_id].sort());
    });

    it('refuses a missing or malformed devices list before UIA, changing nothing', async () => {
      const reg = await hs.register('dev_bulkbad');
      const b = await hs.login('dev_bulkbad');
      const sessions = await sessionCount();
      const cases: [Record<string, unknown>, string][] = [
        [{}, 'M_MISSING_PARAM'],
        [{ auth: pwAuth('dev_bulkbad') }, 'M_MISSING_PARAM'],
        [{ devices: null, auth: pwAuth('dev_bulkbad') }, 'M_MISSING_PARAM'],
        [{ devices: b.device_id, auth: pwAuth('dev_bulkbad') }, 'M_BAD_JSON'],
        [{ devices: { [b.device_id]: true }, auth: pwAuth('dev_bulkbad') }, 'M_BAD_JSON'],
        [{ devices: [b.device_id, 7], auth: pwAuth('dev_bulkbad') }, 'M_BAD_JSON'],
        [{ devices: [b.device_id, null], auth: pwAuth('dev_bulkbad') }, 'M_BAD_JSON'],
        [{ devices: ['x'.repeat(256)], auth: pwAuth('dev_bulkbad') }, 'M_BAD_JSON'],
        [{ devices: Array.from({ length: 1001 }, (_, i) => `D${i}`), auth: pwAuth('dev_bulkbad') }, 'M_BAD_JSON'],
      ];
      for (const [body, errcode] of cases) {
        const res = await hs.request('POST', `${V3}/delete_devices`, { token: reg.access_token, body });
        expect(res.status, JSON.stringify(body).slice(0, 60)).toBe(400);
        expect(res.body.errcode, JSON.stringify(body).slice(0, 60)).toBe(errcode);
      }
      expect(await sessionCount()).toBe(sessions);
      expect(await devicesOf(reg.user_id)).toEqual([reg.device_id, b.device_id].sort());
      expect((await hs.request('GET', `${V3}/account/whoami`, { token: b.access_token })).status).toBe(200);
    });
  });

  describe('guests', () => {
    it('lets guests list and rename their devices (as Synapse) but refuses deletion with 403 M_GUEST_ACCESS_FORBIDDEN', async () => {
      const guest = await hs.request('POST', `${V3}/register?kind=guest`, { body: {} });
      expect(guest.status).toBe(200);
      const token = guest.body.access_token as string;
      const own = guest.body.device_id as string;
      const sessions = await sessionCount();

      const list = await hs.request('GET', `${V3}/devices`, { token });
      expect(list.status).toBe(200);
      expect(list.body.devices.map((d: { device_id: string }) => d.device_id)).toEqual([own]);
      const one = await hs.request('GET', path(own), { token });
      expect(one.status).toBe(200);
      expect(one.body.device_id).toBe(own);
      const rename = await hs.request('PUT', path(own), { token, body: { display_name: 'guest device' } });
      expect(rename.status).toBe(200);
      expect((await deviceRow(guest.body.user_id, own)).display_name).toBe('guest device');

      const refused: [string, string, unknown][] = [
        ['DELETE', path(own), {}],
        ['POST', `${V3}/delete_devices`, { devices: [own] }],
      ];
      for (const [method, p, body] of refused) {
        const res = await hs.request(method, p, { token, body });
        expect(res.status, `${method} ${p}`).toBe(403);
        expect(res.body.errcode, `${method} ${p}`).toBe('M_GUEST_ACCESS_FORBIDDEN');
      }
      expect(await deviceRow(guest.body.user_id, own)).toBeDefined();
      expect(await sessionCount()).toBe(sessions);
      expect((await hs.request('GET', `${V3}/account/whoami`, { token })).body.is_guest).toBe(true);
    });
  });
});
