// Structured logs (pino). Anything that might hold a secret is redacted by path.

import pino, { type Logger } from 'pino';

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { name: 'gatehouse' },
      redact: {
        paths: ['password', 'new_password', 'access_token', 'refresh_token', '*.password', '*.access_token', '*.refresh_token', 'headers.authorization'],
        censor: '[redacted]',
      },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
