// Structured logs (pino). Nothing that holds a secret is ever passed to the
// logger: request lines carry method, path (no query string), status, time, IP
// and user. (pino's path redaction cost more than the rest of the line; see
// docs/benchmarks.md.)

import pino, { type Logger } from 'pino';

/** pino's asynchronous file/stdio writer (sonic-boom). */
type SonicBoom = ReturnType<typeof pino.destination>;

/** Batchers holding lines not yet handed to sonic-boom: flushed at process exit, so that no line is lost. */
const holding = new Set<LineBatcher>();
let exitHookAdded = false;

/** How long a line may wait for others to share its write (ms). */
const HOLD_MS = 10;

/**
 * Hands sonic-boom the lines logged within `HOLD_MS` as one write. Why: under
 * load (a line per request) each write costs the logging process a system
 * call and a libuv round trip, and sonic-boom in text mode also measures the
 * UTF-8 length of all the text it already holds on every write
 * (`Buffer.byteLength` of a growing string), so that each line costs more than
 * the one before; one write per batch pays both once (issue 15,
 * docs/benchmarks.md). Lines keep their order, wait at most `HOLD_MS`, and are
 * flushed at exit. The timer is unref'd and exists only while lines wait.
 */
class LineBatcher implements pino.DestinationStream {
  private pending: string[] = [];

  constructor(private readonly target: SonicBoom) {}

  write(line: string): void {
    if (this.pending.length === 0) {
      holding.add(this);
      setTimeout(this.release, HOLD_MS).unref();
    }
    this.pending.push(line);
  }

  /** Passes the held lines to sonic-boom (which writes them asynchronously). */
  private readonly release = (): void => {
    if (this.pending.length === 0) return;
    const text = this.pending.length === 1 ? this.pending[0]! : this.pending.join('');
    this.pending = [];
    holding.delete(this);
    this.target.write(text);
  };

  /** pino's `logger.flush(cb)`: every line written so far is out when `cb` runs. */
  flush(cb?: (err?: Error) => void): void {
    this.release();
    this.target.flush(cb);
  }

  /** Writes everything held, synchronously (at exit). */
  flushSync(): void {
    this.release();
    this.target.flushSync();
  }
}

function batched(target: SonicBoom): LineBatcher {
  if (!exitHookAdded) {
    exitHookAdded = true;
    process.on('exit', () => {
      for (const batcher of holding) {
        try {
          batcher.flushSync();
        } catch {
          // A closed or broken stdout: nothing more can be written.
        }
      }
    });
  }
  return new LineBatcher(target);
}

/**
 * The server's logger: JSON lines at `level` (homeserver.yaml's `log_level`)
 * to `destination`, a stream or an open file descriptor (1 = stdout, the
 * default; 2 = stderr). To a file descriptor, lines are written
 * asynchronously, a batch at a time (a line waits at most 10 ms); every line
 * logged is written by `logger.flush(cb)`'s callback, or at process exit.
 */
export function createLogger(level: string, destination: pino.DestinationStream | number = 1): Logger {
  // minLength 1 writes as 0 does, but makes sonic-boom's flush(cb) wait for the writes in flight (with 0 it calls back at once).
  const stream = typeof destination === 'number' ? batched(pino.destination({ dest: destination, sync: false, minLength: 1 })) : destination;
  return pino({ level, base: { name: 'gatehouse' } }, stream);
}
