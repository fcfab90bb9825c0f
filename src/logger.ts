// Structured logs (pino). Nothing that holds a secret is ever passed to the
// logger: request lines carry method, path (no query string), status, time, IP
// and user. (pino's path redaction cost more than the rest of the line; see
// docs/benchmarks.md.)

import pino, { type Logger } from 'pino';

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { name: 'gatehouse' },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
