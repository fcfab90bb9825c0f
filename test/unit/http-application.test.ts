// GatehouseKoa (src/http/application.ts) answers exactly as koa does: the same
// middleware on a plain Koa app and on GatehouseKoa give the same status,
// headers and body for every kind of body koa knows. And composeRoute
// (src/http/server.ts) runs a route's links as koa-compose does.

import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import Koa from 'koa';
import compose from 'koa-compose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatehouseKoa } from '../../src/http/application.js';
import { composeRoute } from '../../src/http/server.js';

type Case = { name: string; method?: string; handler: (ctx: Koa.Context) => unknown };

const cases: Case[] = [
  {
    name: 'a JSON string with an explicit type',
    handler: (ctx) => {
      ctx.status = 200;
      ctx.set('Content-Type', 'application/json');
      ctx.body = JSON.stringify({ user_id: '@a:b' });
    },
  },
  { name: 'plain text', handler: (ctx) => (ctx.body = 'hello') },
  { name: 'HTML', handler: (ctx) => (ctx.body = '<p>hi</p>') },
  { name: 'a Buffer', handler: (ctx) => (ctx.body = Buffer.from([1, 2, 3])) },
  { name: 'an object (JSON)', handler: (ctx) => (ctx.body = { a: [1, 'é'] }) },
  { name: 'a stream', handler: (ctx) => (ctx.body = Readable.from(['a', 'b', 'c'])) },
  { name: 'a Blob', handler: (ctx) => (ctx.body = new Blob(['blob body'], { type: 'text/plain' })) },
  {
    name: '204 with a body set before',
    handler: (ctx) => {
      ctx.set('Content-Type', 'application/json');
      ctx.body = '{}';
      ctx.status = 204;
    },
  },
  {
    name: 'a body set after 204',
    handler: (ctx) => {
      ctx.status = 204;
      ctx.body = '{"late":true}';
    },
  },
  {
    name: '304 with a body',
    handler: (ctx) => {
      ctx.body = 'cached';
      ctx.status = 304;
    },
  },
  { name: 'HEAD with a body', method: 'HEAD', handler: (ctx) => (ctx.body = 'twelve bytes') },
  {
    name: 'HEAD with a body and no Content-Length',
    method: 'HEAD',
    handler: (ctx) => {
      ctx.body = 'twelve bytes';
      ctx.remove('Content-Length');
    },
  },
  { name: 'HEAD without a body', method: 'HEAD', handler: (ctx) => (ctx.status = 200) },
  { name: 'nothing set (404)', handler: () => undefined },
  { name: 'a status and no body', handler: (ctx) => (ctx.status = 418) },
  {
    name: 'an explicit null body',
    handler: (ctx) => {
      ctx.status = 200;
      ctx.body = null;
    },
  },
  { name: 'a body JSON cannot serialise', handler: (ctx) => (ctx.body = { n: 1n }) },
  {
    name: 'an exposed error',
    handler: (ctx) => {
      ctx.set('X-Gone', 'yes');
      throw Object.assign(new Error('teapot here'), { status: 418, expose: true, headers: { 'X-Kept': '1' } });
    },
  },
  {
    name: 'an unexpected error',
    handler: async () => {
      await Promise.resolve();
      throw new Error('secret detail');
    },
  },
  {
    name: 'koa bypassed (ctx.respond = false)',
    handler: (ctx) => {
      ctx.respond = false;
      ctx.res.writeHead(201, { 'content-type': 'text/plain' });
      ctx.res.end('raw');
    },
  },
];

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

async function listen<S, C>(app: Koa<S, C>): Promise<Server> {
  app.silent = true;
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return server;
}

function ask(server: Server, path: string, method: string): Promise<Answer> {
  const { port } = server.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const headers = { ...res.headers };
        delete headers.date;
        resolve({ status: res.statusCode!, headers, body: Buffer.concat(chunks).toString('latin1') });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('GatehouseKoa answers as Koa does', () => {
  const servers: Server[] = [];
  let koa: Server;
  let gatehouse: Server;
  let handled = 0;
  beforeAll(async () => {
    const route = async (ctx: Koa.Context) => {
      const c = cases[Number(ctx.path.slice(1))]!;
      await c.handler(ctx);
    };
    koa = await listen(new Koa().use(route));
    class Counting extends GatehouseKoa {
      override handleRequest(ctx: Koa.Context, fn: (ctx: Koa.Context) => Promise<unknown>) {
        handled++;
        return super.handleRequest(ctx, fn);
      }
    }
    gatehouse = await listen(new Counting().use(route));
    servers.push(koa, gatehouse);
  });
  afterAll(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));

  it.each(cases.map((c, i) => [c.name, i] as const))('%s', async (_name, i) => {
    const method = cases[i]!.method ?? 'GET';
    const expected = await ask(koa, `/${i}`, method);
    const before = handled;
    const actual = await ask(gatehouse, `/${i}`, method);
    expect(actual).toEqual(expected);
    // koa's callback() still calls handleRequest, so the override is what answered.
    expect(handled).toBe(before + 1);
  });

  it('the unexpected error does not show its message', async () => {
    const i = cases.findIndex((c) => c.name === 'an unexpected error');
    const answer = await ask(gatehouse, `/${i}`, 'GET');
    expect(answer.status).toBe(500);
    expect(answer.body).toBe('Internal Server Error');
  });
});

describe('composeRoute runs links as koa-compose does', () => {
  type Link = (ctx: { log: string[] }, next: () => Promise<unknown>) => unknown;
  const both = (links: Link[]) => [compose(links as never), composeRoute(links as never)] as const;
  const run = async (fn: unknown, next: () => Promise<unknown> = () => Promise.resolve()) => {
    const ctx = { log: [] as string[] };
    try {
      await (fn as (c: typeof ctx, n: typeof next) => unknown)(ctx, next);
      return { log: ctx.log, error: null };
    } catch (err) {
      return { log: ctx.log, error: (err as Error).message };
    }
  };

  it('in order, around next, then the outer next', async () => {
    const links: Link[] = [
      async (ctx, next) => {
        ctx.log.push('a>');
        await next();
        ctx.log.push('<a');
      },
      (ctx, next) => {
        ctx.log.push('b');
        return next();
      },
      async (ctx) => {
        await Promise.resolve();
        ctx.log.push('c');
      },
    ];
    for (const fn of both(links)) expect(await run(fn)).toEqual({ log: ['a>', 'b', 'c', '<a'], error: null });
    const withOuter = both(links.slice(0, 2));
    for (const fn of withOuter)
      expect(await run(fn, async () => void 0)).toEqual({ log: ['a>', 'b', '<a'], error: null });
  });

  it('a synchronous chain returns no promise', () => {
    const links: Link[] = [(ctx, next) => (ctx.log.push('auth'), next()), (ctx) => void ctx.log.push('reply')];
    const ctx = { log: [] as string[] };
    const result = composeRoute(links as never)(ctx as never, () => Promise.resolve());
    expect(result).toBeUndefined();
    expect(ctx.log).toEqual(['auth', 'reply']);
  });

  it('next() twice is an error; errors reach the caller', async () => {
    const twice: Link[] = [
      async (_ctx, next) => {
        await next();
        await next();
      },
    ];
    for (const fn of both(twice)) expect((await run(fn)).error).toBe('next() called multiple times');
    const throwing: Link[] = [(ctx, next) => (ctx.log.push('a'), next()), () => {
      throw new Error('boom');
    }];
    for (const fn of both(throwing)) expect(await run(fn)).toEqual({ log: ['a'], error: 'boom' });
    const caught: Link[] = [
      async (ctx, next) => {
        try {
          await next();
        } catch (err) {
          ctx.log.push(`caught ${(err as Error).message}`);
        }
      },
      () => {
        throw new Error('inner');
      },
    ];
    for (const fn of both(caught)) expect(await run(fn)).toEqual({ log: ['caught inner'], error: null });
  });
});
