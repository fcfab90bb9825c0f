// One autocannon load generator in its own process (so that two loads at once
// do not share an event loop, and the orchestrator stays idle).
// Usage: node bench/load.mjs '<json options>' (or @<file holding them>); prints one JSON line of results.
//   url, path, method, headers, body, connections, duration, overallRate, delay (s)
//   mode: "static" (same request every time), "register" (unique usernames,
//   one-request m.login.dummy registration), "login" (m.login.password, round-robin over `users`),
//   "tokens" (GET `path` with a bearer token taken round-robin from `tokens`)

import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';

// `@file`: options too long for a command line (many tokens), written to a file by bench/run.mjs.
const arg = process.argv[2];
const o = JSON.parse(arg.startsWith('@') ? readFileSync(arg.slice(1), 'utf8') : arg);
if (o.delay) await new Promise((r) => setTimeout(r, o.delay * 1000));

let counter = 0;
const json = { 'content-type': 'application/json' };
let requests;
if (o.mode === 'register') {
  requests = [
    {
      method: 'POST',
      path: '/_matrix/client/v3/register',
      headers: json,
      setupRequest(req) {
        req.body = JSON.stringify({ username: `${o.prefix}${counter++}`, password: o.password, auth: { type: 'm.login.dummy' } });
        return req;
      },
    },
  ];
} else if (o.mode === 'login') {
  requests = [
    {
      method: 'POST',
      path: '/_matrix/client/v3/login',
      headers: json,
      setupRequest(req) {
        const user = o.users[counter++ % o.users.length];
        req.body = JSON.stringify({ type: 'm.login.password', identifier: { type: 'm.id.user', user }, password: o.password });
        return req;
      },
    },
  ];
} else if (o.mode === 'tokens') {
  requests = [
    {
      method: 'GET',
      path: o.path,
      setupRequest(req) {
        req.headers = { ...req.headers, authorization: `Bearer ${o.tokens[counter++ % o.tokens.length]}` };
        return req;
      },
    },
  ];
}

const result = await autocannon({
  // autocannon takes the path from the URL (or from `requests`), not from a `path` option.
  url: o.path ? o.url + o.path : o.url,
  method: o.method ?? 'GET',
  headers: o.headers,
  body: o.body,
  requests,
  connections: o.connections,
  duration: o.duration,
  overallRate: o.overallRate,
  timeout: 30,
});

const ok = result['2xx'];
const lat = result.latency;
process.stdout.write(
  `${JSON.stringify({
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodeStats: result.statusCodeStats,
    duration: o.duration,
    perSecond: ok / o.duration,
    latency: { average: lat.average, p50: lat.p50, p90: lat.p90, p99: lat.p99, p99_9: lat.p99_9, max: lat.max },
  })}\n`,
);
