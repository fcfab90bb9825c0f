// Docker HEALTHCHECK: healthy (exit 0) when GET /_matrix/client/versions
// answers 200, which is what Complement polls for after the healthcheck.
// No curl or wget in the slim image, so Node's fetch does it.
const port = process.env.GATEHOUSE_PORT ?? '8008';
const url = process.env.GATEHOUSE_HEALTHCHECK_URL ?? `http://127.0.0.1:${port}/_matrix/client/versions`;

try {
  const res = await fetch(url, { signal: AbortSignal.timeout(900) });
  process.exit(res.status === 200 ? 0 : 1);
} catch {
  process.exit(1);
}
