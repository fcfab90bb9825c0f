// Discovery documents: /.well-known/matrix/server (the server name, or
// well_known_server; never public_baseurl's host) and /.well-known/matrix/support
// (spec v1.10 / MSC1929, from well_known_support or Synapse's admin_contact).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectMatrixError } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { startInProcessServer as startServer, type TestServer } from '../support/server.js';

const SERVER = '/.well-known/matrix/server';
const SUPPORT = '/.well-known/matrix/support';

function expectJsonWithCors(res: { headers: Headers }) {
  expect(res.headers.get('content-type')).toBe('application/json');
  expect(res.headers.get('access-control-allow-origin')).toBe('*');
}

/** Starts a server with `overrides`, runs `check`, stops it. */
async function withServer(backend: Parameters<typeof startServer>[0], overrides: Record<string, unknown>, check: (hs: TestServer) => Promise<void>) {
  const hs = await startServer(backend, overrides);
  try {
    await check(hs);
  } finally {
    await hs.stop();
  }
}

describe.each(backends())('well-known documents (%s)', (backend) => {
  describe('nothing configured', () => {
    let hs: TestServer;
    beforeAll(async () => {
      hs = await startServer(backend, { public_baseurl: 'https://matrix.example.org' });
    });
    afterAll(async () => {
      await hs?.stop();
    });

    it('support and server are 404 M_NOT_FOUND, as JSON with CORS', async () => {
      for (const path of [SUPPORT, SERVER]) {
        const res = await hs.request('GET', path);
        expectMatrixError(res, 404, 'M_NOT_FOUND');
        expectJsonWithCors(res);
      }
    });

    it('OPTIONS is 204 with CORS, and other methods are 405', async () => {
      const pre = await hs.request('OPTIONS', SUPPORT, { headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'GET' } });
      expect(pre.status).toBe(204);
      expect(pre.headers.get('access-control-allow-origin')).toBe('*');
      expectMatrixError(await hs.request('POST', SUPPORT, { body: {} }), 405, 'M_UNRECOGNIZED');
    });
  });

  it('/.well-known/matrix/server names server_name on port 443, not public_baseurl\'s host', async () => {
    await withServer(backend, { serve_server_wellknown: true, public_baseurl: 'https://matrix.example.org:8443/' }, async (hs) => {
      const res = await hs.request('GET', SERVER);
      expect(res.status).toBe(200);
      expectJsonWithCors(res);
      expect(res.body).toEqual({ 'm.server': 'test.local:443' });
    });
  });

  it('a server name with a port keeps it; an IPv6 literal gets :443 after its brackets', async () => {
    await withServer(backend, { serve_server_wellknown: true, server_name: 'test.local:8448' }, async (hs) => {
      expect((await hs.request('GET', SERVER)).body).toEqual({ 'm.server': 'test.local:8448' });
    });
    await withServer(backend, { serve_server_wellknown: true, server_name: '[::1]' }, async (hs) => {
      expect((await hs.request('GET', SERVER)).body).toEqual({ 'm.server': '[::1]:443' });
    });
  });

  it('well_known_server is served as it is, and only with serve_server_wellknown', async () => {
    await withServer(backend, { serve_server_wellknown: true, well_known_server: 'federation.example.org:8448' }, async (hs) => {
      expect((await hs.request('GET', SERVER)).body).toEqual({ 'm.server': 'federation.example.org:8448' });
    });
    await withServer(backend, { well_known_server: 'federation.example.org' }, async (hs) => {
      expectMatrixError(await hs.request('GET', SERVER), 404, 'M_NOT_FOUND');
    });
  });

  it('well_known_support is served in the spec\'s shape, and wins over admin_contact', async () => {
    const overrides = {
      admin_contact: 'mailto:ignored@example.org',
      well_known_support: {
        contacts: [
          { role: 'm.role.admin', matrix_id: '@admin:example.org', email_address: 'admin@example.org' },
          { role: 'm.role.security', email_address: 'security@example.org' },
          { matrix_id: '@helper:elsewhere.example' },
        ],
        support_page: 'https://example.org/support.html',
      },
    };
    await withServer(backend, overrides, async (hs) => {
      const res = await hs.request('GET', SUPPORT);
      expect(res.status).toBe(200);
      expectJsonWithCors(res);
      // Absent fields are left out (never null); role defaults to m.role.admin.
      expect(res.body).toEqual({
        contacts: [
          { role: 'm.role.admin', matrix_id: '@admin:example.org', email_address: 'admin@example.org' },
          { role: 'm.role.security', email_address: 'security@example.org' },
          { role: 'm.role.admin', matrix_id: '@helper:elsewhere.example' },
        ],
        support_page: 'https://example.org/support.html',
      });
      // Needs no access token, and ignores one.
      expect((await hs.request('GET', SUPPORT, { token: 'gha_notatoken' })).status).toBe(200);
    });
  });

  it('a support page alone is served without contacts', async () => {
    await withServer(backend, { well_known_support: { support_page: 'https://help.example.org/' } }, async (hs) => {
      expect((await hs.request('GET', SUPPORT)).body).toEqual({ support_page: 'https://help.example.org/' });
    });
  });

  it('admin_contact alone is one m.role.admin contact: mailto and bare addresses are emails, @user:server a Matrix ID', async () => {
    const cases: [string, Record<string, string>][] = [
      ['mailto:admin@example.org', { email_address: 'admin@example.org' }],
      ['mailto:ad%2Bmin@example.org?subject=Help', { email_address: 'ad+min@example.org' }],
      ['admin@example.org', { email_address: 'admin@example.org' }],
      ['@admin:example.org', { matrix_id: '@admin:example.org' }],
    ];
    for (const [adminContact, expected] of cases) {
      await withServer(backend, { admin_contact: adminContact }, async (hs) => {
        const res = await hs.request('GET', SUPPORT);
        expect(res.status, adminContact).toBe(200);
        expectJsonWithCors(res);
        expect(res.body, adminContact).toEqual({ contacts: [{ role: 'm.role.admin', ...expected }] });
      });
    }
  });

  it('an admin_contact that is neither an address nor a user ID gives no support document', async () => {
    await withServer(backend, { admin_contact: 'ask Bob at the front desk' }, async (hs) => {
      expectMatrixError(await hs.request('GET', SUPPORT), 404, 'M_NOT_FOUND');
    });
  });
});
