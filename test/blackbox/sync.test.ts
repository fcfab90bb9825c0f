// GET /sync: its shape, the long-poll (wakes on a change, times out empty),
// tokens that survive a restart, account data, to-device delivery (once, and
// idempotent per transaction), presence, and what deletion removes.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows, expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends, describeOnPostgres } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';
const SYNC_TABLES = ['account_data', 'to_device_messages', 'to_device_txns', 'presence', 'sync_filters'];

function expectFullShape(body: any): void {
  expect(typeof body.next_batch).toBe('string');
  expect(body.account_data).toEqual({ events: expect.any(Array) });
  expect(body.presence).toEqual({ events: expect.any(Array) });
  expect(body.to_device).toEqual({ events: expect.any(Array) });
  expect(body.device_lists).toEqual({ changed: expect.any(Array), left: expect.any(Array) });
  expect(body.device_one_time_keys_count).toEqual(expect.any(Object));
  expect(body.device_unused_fallback_key_types).toEqual(expect.any(Array));
  expect(body.rooms).toEqual({ join: {}, invite: {}, leave: {}, knock: {} });
}

describe.each(backends())('sync (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const sync = (token: string, query = '') => hs.request('GET', `${V3}/sync${query ? `?${query}` : ''}`, { token });
  const putData = (u: { user_id: string; access_token: string }, type: string, content: unknown) =>
    hs.request('PUT', `${V3}/user/${encodeURIComponent(u.user_id)}/account_data/${type}`, { token: u.access_token, body: content });

  it('an initial sync answers at once with every key, and marks the user online', async () => {
    const u = await hs.register('sync_shape');
    const started = Date.now();
    const res = await sync(u.access_token, 'timeout=10000');
    expect(res.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(5000);
    expectFullShape(res.body);
    expect(res.body.presence.events).toEqual([
      { type: 'm.presence', sender: u.user_id, content: expect.objectContaining({ presence: 'online', currently_active: true }) },
    ]);
    // r0 is served too.
    const r0 = await hs.request('GET', '/_matrix/client/r0/sync', { token: u.access_token });
    expect(r0.status).toBe(200);
    expectFullShape(r0.body);
  });

  it('refuses a since token it did not write, and bad parameters, with 400', async () => {
    const u = await hs.register('sync_bad');
    for (const q of ['since=nonsense', 'since=gh1_x_1', 'since=s72594_4483_1934', 'timeout=-1', 'timeout=abc', 'full_state=yes', 'set_presence=busy']) {
      expectMatrixError(await sync(u.access_token, q), 400, 'M_INVALID_PARAM');
    }
    expectMatrixError(await sync(u.access_token, 'filter=%7Bnot json'), 400, 'M_BAD_JSON');
    expectMatrixError(await sync(u.access_token, 'filter=%7B%22event_fields%22%3A3%7D'), 400, 'M_BAD_JSON');
    expectMatrixError(await sync(u.access_token, 'filter=12345'), 404, 'M_NOT_FOUND');
    expectMatrixError(await hs.request('GET', `${V3}/sync`), 401, 'M_MISSING_TOKEN');
  });

  it('a long-poll times out empty, and wakes at once on a change', async () => {
    const u = await hs.register('sync_poll');
    const first = await sync(u.access_token);
    const started = Date.now();
    const empty = await sync(u.access_token, `since=${first.body.next_batch}&timeout=700`);
    const waited = Date.now() - started;
    expect(empty.status).toBe(200);
    expect(waited).toBeGreaterThanOrEqual(600);
    expectFullShape(empty.body);
    expect(empty.body.account_data.events).toEqual([]);
    expect(empty.body.presence.events).toEqual([]);

    const t0 = Date.now();
    const pending = sync(u.access_token, `since=${empty.body.next_batch}&timeout=20000`);
    await new Promise((r) => setTimeout(r, 300));
    expect((await putData(u, 'org.example.poll', { n: 1 })).status).toBe(200);
    const woke = await pending;
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(woke.body.account_data.events).toEqual([{ type: 'org.example.poll', content: { n: 1 } }]);
    expect(woke.body.next_batch).not.toBe(empty.body.next_batch);
  });

  it('its since token survives a restart', async () => {
    const u = await hs.register('sync_restart');
    await putData(u, 'org.example.before', { a: 1 });
    const first = await sync(u.access_token);
    expect(first.body.account_data.events).toContainEqual({ type: 'org.example.before', content: { a: 1 } });
    await hs.restart();
    await putData(u, 'org.example.after', { b: 2 });
    const next = await sync(u.access_token, `since=${first.body.next_batch}&timeout=5000`);
    expect(next.status).toBe(200);
    expect(next.body.account_data.events).toEqual([{ type: 'org.example.after', content: { b: 2 } }]);
  });

  it('account data: round trip, errors, filter, full_state', async () => {
    const u = await hs.register('ad_user');
    const other = await hs.register('ad_other');
    const path = `${V3}/user/${encodeURIComponent(u.user_id)}/account_data`;
    expectMatrixError(await hs.request('GET', `${path}/org.example.none`, { token: u.access_token }), 404, 'M_NOT_FOUND');
    expect((await putData(u, 'org.example.a', { x: [1, 'two'] })).body).toEqual({});
    expect((await hs.request('GET', `${path}/org.example.a`, { token: u.access_token })).body).toEqual({ x: [1, 'two'] });
    await expectNoChange(
      hs,
      async () => {
        expectMatrixError(await hs.request('PUT', `${path}/org.example.a`, { token: other.access_token, body: { y: 1 } }), 403, 'M_FORBIDDEN');
        expectMatrixError(await hs.request('GET', `${path}/org.example.a`, { token: other.access_token }), 403, 'M_FORBIDDEN');
        expectMatrixError(await hs.request('PUT', `${path}/org.example.a`, { token: u.access_token, rawBody: '[1]' }), 400, 'M_BAD_JSON');
        expectMatrixError(await hs.request('PUT', `${path}/m.push_rules`, { token: u.access_token, body: {} }), 405, 'M_BAD_JSON');
        expectMatrixError(await hs.request('PUT', `${path}/${'t'.repeat(300)}`, { token: u.access_token, body: {} }), 400, 'M_INVALID_PARAM');
        const room = `${V3}/user/${encodeURIComponent(u.user_id)}/rooms`;
        expectMatrixError(await hs.request('PUT', `${room}/not-a-room/account_data/org.example.r`, { token: u.access_token, body: {} }), 400, 'M_INVALID_PARAM');
        expectMatrixError(await hs.request('PUT', `${room}/${encodeURIComponent('!r:test.local')}/account_data/m.fully_read`, { token: u.access_token, body: {} }), 405, 'M_BAD_JSON');
      },
      SYNC_TABLES,
    );
    const room = `${V3}/user/${encodeURIComponent(u.user_id)}/rooms/${encodeURIComponent('!r:test.local')}/account_data/org.example.r`;
    expect((await hs.request('PUT', room, { token: u.access_token, body: { r: 1 } })).status).toBe(200);
    expect((await hs.request('GET', room, { token: u.access_token })).body).toEqual({ r: 1 });

    await putData(u, 'org.example.b', { b: true });
    const filtered = await sync(u.access_token, `filter=${encodeURIComponent(JSON.stringify({ account_data: { not_types: ['org.example.a'] } }))}`);
    expect(filtered.body.account_data.events).toEqual([{ type: 'org.example.b', content: { b: true } }]);
    const all = await sync(u.access_token);
    const full = await sync(u.access_token, `since=${all.body.next_batch}&full_state=true&timeout=10000`);
    expect(full.body.account_data.events.map((e: any) => e.type).sort()).toEqual(['org.example.a', 'org.example.b']);
  });

  it('to-device: between own devices, delivered until acknowledged and never again, idempotent per transaction', async () => {
    const a = await hs.register('td_user');
    const b = await hs.login('td_user');
    const bStart = await sync(b.access_token);
    const send = (txn: string, body: unknown, token = a.access_token) => hs.request('PUT', `${V3}/sendToDevice/m.key.verification.request/${txn}`, { token, body });
    const pending = sync(b.access_token, `since=${bStart.body.next_batch}&timeout=20000`);
    await new Promise((r) => setTimeout(r, 200));
    expect((await send('t1', { messages: { [a.user_id]: { [b.device_id]: { n: 1 } } } })).body).toEqual({});
    const got = await pending;
    expect(got.body.to_device.events).toEqual([{ type: 'm.key.verification.request', sender: a.user_id, content: { n: 1 } }]);
    // The same transaction again sends nothing.
    expect((await send('t1', { messages: { [a.user_id]: { [b.device_id]: { n: 1 } } } })).status).toBe(200);
    // Retrying with the old token delivers it again (not acknowledged yet).
    const retry = await sync(b.access_token, `since=${bStart.body.next_batch}`);
    expect(retry.body.to_device.events).toHaveLength(1);
    // Syncing with the new token acknowledges: nothing again, and the row is gone.
    const after = await sync(b.access_token, `since=${got.body.next_batch}&timeout=300`);
    expect(after.body.to_device.events).toEqual([]);
    expect(await countRows(hs, 'to_device_messages', { user_id: a.user_id, device_id: b.device_id })).toBe(0);

    // `*` reaches every device; unknown devices and users, and remote users, are skipped.
    await send('t2', { messages: { [a.user_id]: { '*': { all: true } }, '@nobody:test.local': { X: {} }, '@x:elsewhere.example': { Y: {} } } });
    expect(await countRows(hs, 'to_device_messages', { user_id: a.user_id })).toBe(2);
    const star = await sync(b.access_token, `since=${after.body.next_batch}`);
    expect(star.body.to_device.events).toEqual([{ type: 'm.key.verification.request', sender: a.user_id, content: { all: true } }]);

    await expectNoChange(
      hs,
      async () => {
        expectMatrixError(await send('t3', {}), 400, 'M_MISSING_PARAM');
        expectMatrixError(await send('t3', { messages: [] }), 400, 'M_BAD_JSON');
        expectMatrixError(await send('t3', { messages: { [a.user_id]: 'x' } }), 400, 'M_BAD_JSON');
        expectMatrixError(await send('t3', { messages: { [a.user_id]: { [b.device_id]: 5 } } }), 400, 'M_BAD_JSON');
      },
      SYNC_TABLES,
    );

    // Deleting a device deletes its pending messages (the `*` one, not yet acknowledged, and this one).
    await send('t4', { messages: { [a.user_id]: { [b.device_id]: { late: 1 } } } });
    expect(await countRows(hs, 'to_device_messages', { user_id: a.user_id, device_id: b.device_id })).toBe(2);
    const del = await hs.request('POST', `${V3}/logout`, { token: b.access_token });
    expect(del.status).toBe(200);
    expect(await countRows(hs, 'to_device_messages', { user_id: a.user_id, device_id: b.device_id })).toBe(0);
  });

  it('filters: round trip, validation, another user', async () => {
    const u = await hs.register('filter_user');
    const other = await hs.register('filter_other');
    const base = `${V3}/user/${encodeURIComponent(u.user_id)}/filter`;
    const filter = { room: { timeline: { limit: 10, types: ['m.room.message'] } }, presence: { not_types: ['*'] }, event_format: 'client' };
    const made = await hs.request('POST', base, { token: u.access_token, body: filter });
    expect(made.status).toBe(200);
    expect(typeof made.body.filter_id).toBe('string');
    expect((await hs.request('GET', `${base}/${made.body.filter_id}`, { token: u.access_token })).body).toEqual(filter);
    expectMatrixError(await hs.request('GET', `${base}/${made.body.filter_id}`, { token: other.access_token }), 403, 'M_FORBIDDEN');
    expectMatrixError(await hs.request('GET', `${base}/999999`, { token: u.access_token }), 404, 'M_NOT_FOUND');
    expectMatrixError(await hs.request('GET', `${base}/nonsense`, { token: u.access_token }), 404, 'M_NOT_FOUND');
    await expectNoChange(
      hs,
      async () => {
        expectMatrixError(await hs.request('POST', base, { token: other.access_token, body: {} }), 403, 'M_FORBIDDEN');
        for (const bad of [{ event_fields: 'x' }, { event_format: 'xml' }, { room: [] }, { room: { timeline: { limit: -1 } } }, { room: { rooms: ['notaroom'] } }, { presence: { senders: [1] } }, { account_data: { limit: 1.5 } }])
          expectMatrixError(await hs.request('POST', base, { token: u.access_token, body: bad }), 400, 'M_BAD_JSON');
      },
      SYNC_TABLES,
    );
    // A stored filter applies to /sync: presence filtered out.
    const res = await sync(u.access_token, `filter=${made.body.filter_id}`);
    expect(res.status).toBe(200);
    expect(res.body.presence.events).toEqual([]);
  });

  it('presence: set, read, in sync; others refused', async () => {
    const u = await hs.register('pres_user');
    const other = await hs.register('pres_other');
    const path = `${V3}/presence/${encodeURIComponent(u.user_id)}/status`;
    expect((await hs.request('GET', path, { token: u.access_token })).body).toEqual({ presence: 'offline' });
    const first = await sync(u.access_token, 'set_presence=offline');
    expect(first.body.presence.events).toEqual([]);
    expect((await hs.request('PUT', path, { token: u.access_token, body: { presence: 'unavailable', status_msg: 'away' } })).body).toEqual({});
    const got = await hs.request('GET', path, { token: u.access_token });
    expect(got.body).toEqual(expect.objectContaining({ presence: 'unavailable', status_msg: 'away', currently_active: false }));
    const next = await sync(u.access_token, `since=${first.body.next_batch}&set_presence=offline`);
    expect(next.body.presence.events).toEqual([{ type: 'm.presence', sender: u.user_id, content: expect.objectContaining({ presence: 'unavailable', status_msg: 'away' }) }]);
    expectMatrixError(await hs.request('GET', path, { token: other.access_token }), 403, 'M_FORBIDDEN');
    await expectNoChange(
      hs,
      async () => {
        expectMatrixError(await hs.request('PUT', path, { token: other.access_token, body: { presence: 'online' } }), 403, 'M_FORBIDDEN');
        expectMatrixError(await hs.request('PUT', path, { token: u.access_token, body: { presence: 'busy' } }), 400, 'M_INVALID_PARAM');
        expectMatrixError(await hs.request('PUT', path, { token: u.access_token, body: {} }), 400, 'M_MISSING_PARAM');
        expectMatrixError(await hs.request('PUT', path, { token: u.access_token, body: { presence: 'online', status_msg: 3 } }), 400, 'M_BAD_JSON');
      },
      SYNC_TABLES,
    );
    expect((await hs.request('GET', path, { token: u.access_token })).body.presence).toBe('unavailable');
  });

  it('deactivation deletes the account data, filters, messages and presence', async () => {
    const u = await hs.register('sync_gone');
    await putData(u, 'org.example.x', { x: 1 });
    await hs.request('POST', `${V3}/user/${encodeURIComponent(u.user_id)}/filter`, { token: u.access_token, body: {} });
    await hs.request('PUT', `${V3}/sendToDevice/m.test/g1`, { token: u.access_token, body: { messages: { [u.user_id]: { [u.device_id]: { a: 1 } } } } });
    await sync(u.access_token);
    for (const t of SYNC_TABLES) expect(await countRows(hs, t, { user_id: u.user_id })).toBeGreaterThan(0);
    const first = await hs.request('POST', `${V3}/account/deactivate`, { token: u.access_token, body: {} });
    const res = await hs.request('POST', `${V3}/account/deactivate`, {
      token: u.access_token,
      body: { auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'sync_gone' }, password: DEFAULT_PASSWORD, session: first.body.session } },
    });
    expect(res.status).toBe(200);
    for (const t of SYNC_TABLES) expect(await countRows(hs, t, { user_id: u.user_id })).toBe(0);
  });
});

describeOnPostgres('sync across processes (postgres)', () => {
  let one: TestServer;
  let two: TestServer;
  beforeAll(async () => {
    one = await startServer('postgres');
    two = await startServer('postgres', {}, { shareDatabaseWith: one });
  });
  afterAll(async () => {
    await two?.stop();
    await one?.stop();
  });

  it('a to-device message sent through one process wakes a sync waiting on the other within a second', async () => {
    const a = await one.register('pg_wake');
    const b = await two.login('pg_wake');
    const start = await two.request('GET', `${V3}/sync`, { token: b.access_token });
    const pending = two.request('GET', `${V3}/sync?since=${start.body.next_batch}&timeout=20000`, { token: b.access_token });
    await new Promise((r) => setTimeout(r, 300));
    const sent = Date.now();
    const res = await one.request('PUT', `${V3}/sendToDevice/m.test/x1`, { token: a.access_token, body: { messages: { [a.user_id]: { [b.device_id]: { hi: 1 } } } } });
    expect(res.status).toBe(200);
    const woke = await pending;
    expect(Date.now() - sent).toBeLessThan(1000);
    expect(woke.body.to_device.events).toEqual([{ type: 'm.test', sender: a.user_id, content: { hi: 1 } }]);
  });
});
