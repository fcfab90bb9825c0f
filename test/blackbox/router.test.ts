// The router dispatches through a tree of literal path prefixes
// (`prefixDispatch`, src/http/server.ts) instead of testing every route's
// regexp. These tests hold it to the flat @koa/router it replaces:
// - on the real route table, for every route and many near-miss paths (other
//   case, trailing slash, one segment more or less, unknown neighbours), the
//   layers matched (what 405's Allow is built from), the layer that runs and
//   its params are exactly the flat router's;
// - through the real server, the answers that depend on it: 405 with Allow,
//   404 under a known prefix, HEAD for GET, r0, trailing slash, case.

import Router from '@koa/router';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RouteInfo } from '../../src/app.js';
import { prefixDispatch } from '../../src/http/server.js';
import { expectMatrixError } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { serverRoutes } from '../support/routes.js';
import { startServer, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';

interface Outcome {
  matched: string[];
  ran: string | null;
  params: Record<string, string> | null;
}

describe('prefixDispatch matches exactly as the flat router does', () => {
  let routes: RouteInfo[];
  let router: Router;

  beforeAll(async () => {
    routes = await serverRoutes();
    router = new Router();
    routes.forEach((r, i) => {
      router[r.method.toLowerCase() as 'get'](r.path, (ctx) => {
        ctx.body = `${i} ${r.method} ${r.path}`;
      });
    });
  });

  async function outcome(mw: (ctx: any, next: () => Promise<void>) => unknown, method: string, path: string): Promise<Outcome> {
    const ctx: any = { method, path, host: 'test.local', request: {}, body: undefined };
    await mw(ctx, async () => {});
    return {
      matched: (ctx.matched ?? []).map((l: { path: string; methods: string[] }) => `${l.methods.join(',')} ${l.path}`),
      ran: ctx.body ?? null,
      params: ctx.params ?? null,
    };
  }

  /** Concrete paths for a pattern, and near misses around them. */
  function probes(pattern: string): string[] {
    const concrete = pattern.replace(/:(\w+)/g, (_m, name: string) => `x_${name}`);
    const out = [concrete, concrete.toUpperCase(), `${concrete}/`, `${concrete}//`, `${concrete}/extra`, concrete.replace(/\/[^/]*$/, ''), `${concrete}x`];
    out.push(concrete.replace(/x_(\w+)/g, '%40me%3Aexample.org'), concrete.replace(/\/[^/]+$/, '/unknown'), concrete.replace('/v3/', '/v4/'));
    return out;
  }

  it('for every route and its near misses, with every method', async () => {
    const flat = router.routes() as any;
    const indexed = prefixDispatch(router) as any;
    const paths = new Set<string>(['/', '', '*', '/_matrix', '/_matrix/', '/_MATRIX/CLIENT/V3/ACCOUNT/WHOAMI', '/_matrix/client/v3/account/who%61mi']);
    for (const r of routes) for (const p of probes(r.path)) paths.add(p);
    expect(paths.size).toBeGreaterThan(routes.length * 5);
    let ran = 0;
    for (const path of paths) {
      for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
        const a = await outcome(flat, method, path);
        const b = await outcome(indexed, method, path);
        expect(b, `${method} ${path}`).toEqual(a);
        if (a.ran) ran++;
      }
    }
    // The probes reached real routes (not only misses), so the comparison covered dispatch too.
    expect(ran).toBeGreaterThan(routes.length);
  });
});

describe.each(backends())('routing through the server (%s)', (backend) => {
  let hs: TestServer;
  let token: string;

  beforeAll(async () => {
    hs = await startServer(backend);
    token = (await hs.register('router_user')).access_token;
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('serves a route found through its literal prefix, on v3 and r0, in any case, with a trailing slash', async () => {
    for (const path of [`${V3}/account/whoami`, '/_matrix/client/r0/account/whoami', '/_MATRIX/Client/V3/Account/WhoAmI', `${V3}/account/whoami/`]) {
      const res = await hs.request('GET', path, { token });
      expect(res.status, path).toBe(200);
      expect(res.body.user_id).toBe('@router_user:test.local');
    }
  });

  it('HEAD is answered for a GET route, without a body', async () => {
    const res = await fetch(`${hs.url}/_matrix/client/versions`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
  });

  it('a known path with another method is 405 M_UNRECOGNIZED with Allow; a route param path too', async () => {
    const res = await hs.request('POST', `${V3}/account/whoami`, { token, body: {} });
    expectMatrixError(res, 405, 'M_UNRECOGNIZED');
    expect(res.headers.get('allow')).toBe('HEAD, GET');
    const dev = await hs.request('POST', `${V3}/devices/SOMEDEVICE`, { token, body: {} });
    expectMatrixError(dev, 405, 'M_UNRECOGNIZED');
    expect(dev.headers.get('allow')?.split(', ').sort()).toEqual(['DELETE', 'GET', 'HEAD', 'PUT']);
  });

  it('an unknown path under a known prefix, a path one segment too long and one that only looks like a route are 404 M_UNRECOGNIZED', async () => {
    for (const path of [`${V3}/account/whoamix`, `${V3}/account/whoami/extra`, `${V3}/account`, `${V3}/account/who%61mi`, '/_matrix/client/v4/account/whoami', '/nothing']) {
      const res = await hs.request('GET', path, { token });
      expectMatrixError(res, 404, 'M_UNRECOGNIZED');
    }
  });

  it('a route whose pattern ends in a slash (GET /pushrules/) is served with it, and 404 without it, as the flat router did', async () => {
    const res = await hs.request('GET', `${V3}/pushrules/`, { token });
    expect(res.status).toBe(200);
    expect(res.body.global).toBeTypeOf('object');
    expectMatrixError(await hs.request('GET', `${V3}/pushrules`, { token }), 404, 'M_UNRECOGNIZED');
  });
});
