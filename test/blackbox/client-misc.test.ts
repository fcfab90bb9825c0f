// Start-up endpoints, black-box: TURN credentials (Synapse's turn_* keys),
// and the empty answers for third-party protocols, media config, joined
// rooms, notifications and the public room directory.

import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectMatrixError } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { startInProcessServer as startServer, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';
const TURN = `${V3}/voip/turnServer`;

describe.each(backends())('client start-up endpoints (%s)', (backend) => {
  describe('without TURN', () => {
    let hs: TestServer;
    let token: string;
    beforeAll(async () => {
      hs = await startServer(backend, { allow_guest_access: true });
      token = (await hs.register('cm_user')).access_token;
    });
    afterAll(async () => {
      await hs?.stop();
    });

    it('answers empty lists and objects', async () => {
      const cases: [string, string, unknown, unknown][] = [
        ['GET', TURN, undefined, {}],
        ['GET', `${V3}/thirdparty/protocols`, undefined, {}],
        ['GET', '/_matrix/client/v1/media/config', undefined, {}],
        ['GET', `${V3}/joined_rooms`, undefined, { joined_rooms: [] }],
        ['GET', '/_matrix/client/r0/joined_rooms', undefined, { joined_rooms: [] }],
        ['GET', `${V3}/notifications?limit=5`, undefined, { notifications: [] }],
        ['GET', `${V3}/publicRooms?limit=10`, undefined, { chunk: [], total_room_count_estimate: 0 }],
        ['POST', `${V3}/publicRooms`, { limit: 10, filter: { generic_search_term: 'x' } }, { chunk: [], total_room_count_estimate: 0 }],
      ];
      for (const [method, path, body, expected] of cases) {
        const res = await hs.request(method, path, { token, body });
        expect({ path, status: res.status, body: res.body }).toEqual({ path, status: 200, body: expected });
        expectMatrixError(await hs.request(method, path, { body }), 401, 'M_MISSING_TOKEN');
      }
    });

    it('refuses bad parameters', async () => {
      expectMatrixError(await hs.request('GET', `${V3}/publicRooms?limit=x`, { token }), 400, 'M_INVALID_PARAM');
      expectMatrixError(await hs.request('GET', `${V3}/notifications?limit=-1`, { token }), 400, 'M_INVALID_PARAM');
      expectMatrixError(await hs.request('POST', `${V3}/publicRooms`, { token, body: { limit: 'ten' } }), 400, 'M_INVALID_PARAM');
      expectMatrixError(await hs.request('POST', `${V3}/publicRooms`, { token, body: { filter: [] } }), 400, 'M_INVALID_PARAM');
      expectMatrixError(await hs.request('POST', `${V3}/publicRooms`, { token, body: { since: 5 } }), 400, 'M_BAD_JSON');
      expectMatrixError(await hs.request('POST', `${V3}/publicRooms`, { token, body: [] }), 400, 'M_BAD_JSON');
    });

    it('endpoints not served are 404 M_UNRECOGNIZED', async () => {
      for (const path of [`${V3}/createRoom`, '/_matrix/media/v3/config', `${V3}/thirdparty/protocol/irc`, `${V3}/rooms/!r:test.local/messages`]) {
        expectMatrixError(await hs.request('GET', path, { token }), 404, 'M_UNRECOGNIZED');
      }
    });
  });

  describe('with TURN', () => {
    it('gives TURN REST API credentials from turn_shared_secret', async () => {
      const hs = await startServer(backend, {
        allow_guest_access: true,
        turn_uris: ['turn:turn.example.org?transport=udp', 'turns:turn.example.org'],
        turn_shared_secret: 's3cret',
        turn_user_lifetime: '2h',
        turn_allow_guests: false,
      });
      try {
        const u = await hs.register('cm_turn');
        const before = Math.floor(Date.now() / 1000);
        const res = await hs.request('GET', TURN, { token: u.access_token });
        expect(res.status).toBe(200);
        expect(res.body.uris).toEqual(['turn:turn.example.org?transport=udp', 'turns:turn.example.org']);
        expect(res.body.ttl).toBe(7200);
        const [expiry, user] = [res.body.username.split(':')[0], res.body.username.slice(res.body.username.indexOf(':') + 1)];
        expect(user).toBe(u.user_id);
        expect(Number(expiry)).toBeGreaterThanOrEqual(before + 7200);
        expect(Number(expiry)).toBeLessThanOrEqual(before + 7200 + 60);
        expect(res.body.password).toBe(createHmac('sha1', 's3cret').update(res.body.username).digest('base64'));
        // turn_allow_guests: false.
        const guest = await hs.request('POST', `${V3}/register?kind=guest`, { body: {} });
        expectMatrixError(await hs.request('GET', TURN, { token: guest.body.access_token }), 403, 'M_GUEST_ACCESS_FORBIDDEN');
      } finally {
        await hs.stop();
      }
    });

    it('gives static credentials from turn_username and turn_password; guests allowed by default', async () => {
      const hs = await startServer(backend, {
        allow_guest_access: true,
        turn_uris: ['turn:turn.example.org'],
        turn_username: 'static',
        turn_password: 'pw',
      });
      try {
        const guest = await hs.request('POST', `${V3}/register?kind=guest`, { body: {} });
        const res = await hs.request('GET', TURN, { token: guest.body.access_token });
        expect(res.body).toEqual({ username: 'static', password: 'pw', uris: ['turn:turn.example.org'], ttl: 3600 });
      } finally {
        await hs.stop();
      }
    });

    it('refuses a bad TURN config', async () => {
      await expect(startServer(backend, { turn_uris: 'turn:x' })).rejects.toThrow();
    });
  });
});
