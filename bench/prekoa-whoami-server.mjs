// What answering the whoami path before koa would cost: a node:http handler
// that does, for a token in an in-process cache, the work Gatehouse does on a
// cached whoami (the Bearer header parsed, the token's SHA-256, the cache
// lookup, the constant-time comparison of hashes, the account-state checks,
// the JSON body, the CORS headers, the request line through Gatehouse's own
// logger) and nothing of koa or @koa/router. Not Gatehouse's code path: a
// prototype whose figure informs the design question in docs/benchmarks.md
// (issue 15: whoami ≥ 0.5 of bare node:http while keeping koa).
// Usage: node bench/prekoa-whoami-server.mjs '<json {body, headers, path, token, logFile}>'; prints {"port":N}.

import { hash, timingSafeEqual } from 'node:crypto';
import { openSync } from 'node:fs';
import { createServer } from 'node:http';
import { createLogger, logFlatInfo } from '../dist/src/logger.js';

const { body, headers, path, token, logFile } = JSON.parse(process.argv[2]);
const logger = createLogger('info', openSync(logFile, 'a'));
const answer = JSON.parse(body);
const tokenHash = hash('sha256', token, 'hex');
// The row as the token cache holds it (the fields the checks read).
const cache = new Map([
  [tokenHash, { token_hash: tokenHash, user_id: answer.user_id, device_id: answer.device_id, is_guest: answer.is_guest, expires_ts: null, lock: null, approved: true, deactivated: false }],
]);
const fixed = Object.entries(headers).filter(([name]) => name.toLowerCase() !== 'content-type');

const server = createServer((req, res) => {
  const startedAt = performance.now();
  for (const [name, value] of fixed) res.setHeader(name, value);
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  const presented = m ? hash('sha256', m[1], 'hex') : '';
  const row = cache.get(presented);
  const now = Date.now();
  if (!row || !timingSafeEqual(Buffer.from(row.token_hash), Buffer.from(presented)) || row.deactivated || !row.approved || (row.expires_ts !== null && row.expires_ts <= now) || (row.lock !== null && row.lock > now)) {
    res.statusCode = 401;
    res.end('{"errcode":"M_UNKNOWN_TOKEN","error":"Unknown access token"}');
    return;
  }
  const json = JSON.stringify({ user_id: row.user_id, device_id: row.device_id, is_guest: row.is_guest });
  res.statusCode = 200;
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Content-Length', Buffer.byteLength(json));
  res.end(json);
  logFlatInfo(logger, { method: req.method, path, status: 200, ms: Math.round((performance.now() - startedAt) * 100) / 100, ip: req.socket.remoteAddress, user: row.user_id }, 'request');
});
server.keepAliveTimeout = 65_000; // as Gatehouse
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)) && server.closeAllConnections());
