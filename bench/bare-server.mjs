// The physical limit for a small authenticated JSON GET: a bare node:http
// server answering every request with the same body and headers as
// Gatehouse's whoami, without routing, auth, database or logging.
// Usage: node bench/bare-server.mjs '<json {body, headers}>'; prints {"port":N} when listening.

import { createServer } from 'node:http';

const { body, headers } = JSON.parse(process.argv[2]);
const payload = Buffer.from(body);
const head = { ...headers, 'Content-Length': String(payload.length) };

const server = createServer((req, res) => {
  // Drain any request body, as a real server would, then answer.
  req.resume();
  res.writeHead(200, head);
  res.end(payload);
});
server.keepAliveTimeout = 65_000; // as Gatehouse
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)) && server.closeAllConnections());
