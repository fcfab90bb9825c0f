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
  const logger = pino({ level, base: { name: 'gatehouse' } }, stream);
  // A multistream wants each line's level passed along with it (pino's metadata): only pino itself does that.
  if (!(stream as unknown as Record<symbol, unknown>)[pino.symbols.needsMetadataGsym]) plainLoggers.add(logger);
  return logger;
}

/**
 * Loggers made by `createLogger`: plain pino (default level labels, time, formatters and hooks; no mixin, serializers,
 * redaction or nested key), whose `info` lines `logFlatInfo` may serialise itself.
 */
const plainLoggers = new WeakSet<Logger>();

/** The pino internals `logFlatInfo` reads; what pino's own `asJson` puts around an object's fields. */
interface PinoLineParts {
  [pino.symbols.lsCacheSym]: Record<number, string>;
  [pino.symbols.timeSym]: () => string;
  [pino.symbols.chindingsSym]: string;
  [pino.symbols.endSym]: string;
  [pino.symbols.streamSym]: pino.DestinationStream;
}

/** pino's number value for `info` (`pino.levels.values.info`). */
const INFO = 30;

/**
 * `logger.info(fields, msg)` for a flat object (string, number, boolean or null values; undefined ones are left
 * out, as pino does), at about half the cost (0.5 µs instead of 1.0 for a request line, measured in a loop) on a
 * logger made by `createLogger`: the line is built here, in
 * the order and with the framing pino uses (`{"level":30,"time":…` + the logger's bindings + the fields + `"msg":…}`)
 * and handed to the logger's own stream, so it is the same JSON line pino would write (test/unit/logger.test.ts holds
 * it to pino's). Why: the request log writes one line per request, and pino's general serialiser was the largest
 * single cost of a cached whoami after koa itself (issue 15, docs/benchmarks.md). Any other logger (a caller's own
 * pino, a child) gets `logger.info(fields, msg)`. Nothing is written below the logger's level.
 */
export function logFlatInfo(logger: Logger, fields: Readonly<Record<string, string | number | boolean | null | undefined>>, msg: string): void {
  if (!logger.isLevelEnabled('info')) return;
  if (!plainLoggers.has(logger)) {
    logger.info(fields, msg);
    return;
  }
  const parts = logger as unknown as PinoLineParts;
  let line = parts[pino.symbols.lsCacheSym][INFO]! + parts[pino.symbols.timeSym]() + parts[pino.symbols.chindingsSym];
  for (const key in fields) {
    const value = fields[key];
    if (value === undefined) continue;
    // As pino: a number that is not finite is written as null.
    line += keyJson(key) + (typeof value === 'string' ? stringJson(value) : typeof value === 'number' && !Number.isFinite(value) ? 'null' : String(value));
  }
  parts[pino.symbols.streamSym].write(`${line},"msg":${stringJson(msg)}${parts[pino.symbols.endSym]}`);
}

/** Printable ASCII other than `"` and `\`: text that JSON writes between quotes unchanged. */
const PLAIN_TEXT = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** A string as JSON; the common plain case without JSON.stringify's call (a measurable share of a short line). */
function stringJson(text: string): string {
  return PLAIN_TEXT.test(text) ? `"${text}"` : JSON.stringify(text);
}

/** `,"key":` for each field name seen (a few dozen in the code base; capped in case a caller's names vary). */
const keyPrefixes = new Map<string, string>();

function keyJson(key: string): string {
  let prefix = keyPrefixes.get(key);
  if (prefix === undefined) {
    prefix = `,${stringJson(key)}:`;
    if (keyPrefixes.size < 256) keyPrefixes.set(key, prefix);
  }
  return prefix;
}
