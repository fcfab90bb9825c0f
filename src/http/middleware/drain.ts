// Answers arrive even when the request body was not read. Refusing a body
// (413 from its Content-Length, or past the limit while reading it) leaves the
// rest of it unread; if the connection then closes (the client sent
// `Connection: close`), the kernel answers the unread bytes with a TCP reset,
// and a client still sending its body sees EPIPE/ECONNRESET and loses the
// answer already on its way. So before answering, the rest of the body is read
// and thrown away, within bounds so that a client cannot hold the connection:
// past them the answer goes out at once and the connection closes.

import type { IncomingMessage } from 'node:http';
import type { Context } from 'koa';

export interface DrainBounds {
  /** Most bytes read and discarded per request. */
  maxBytes: number;
  /** Longest wait for the rest of a body, in milliseconds. */
  maxMs: number;
}

export const DEFAULT_DRAIN_BOUNDS: DrainBounds = { maxBytes: 8 * 1024 * 1024, maxMs: 5_000 };

/**
 * After the answer is decided and before it is sent: reads and discards what
 * is left of the request body, within `bounds`; past them (or when the body
 * cannot be skipped) the response says `Connection: close`. Nothing to do, and
 * no promise, when the body was read or there was none.
 */
export function drainUnreadBody(ctx: Context, bounds: DrainBounds = DEFAULT_DRAIN_BOUNDS): Promise<void> | undefined {
  const req = ctx.req;
  if (req.complete || req.readableEnded || req.destroyed) return undefined;
  // Neither Content-Length nor Transfer-Encoding: the request has no body (RFC 9112 §6.3). A route that
  // answers at once does so before node's parser has marked such a request complete.
  const length = req.headers['content-length'];
  if (req.headers['transfer-encoding'] === undefined && (length === undefined || length === '0')) return undefined;
  // Whatever is left unread makes the connection unusable for another request: close it.
  return discardRest(req, bounds).then((whole) => {
    if (!whole) ctx.set('Connection', 'close');
  });
}

/** Reads the rest of the body and discards it; true when it all arrived within the bounds. */
function discardRest(req: IncomingMessage, { maxBytes, maxMs }: DrainBounds): Promise<boolean> {
  // A declared length past the bound cannot be skipped in time: do not try.
  if (Number(req.headers['content-length'] ?? 0) > maxBytes) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    let seen = 0;
    const finish = (whole: boolean) => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      if (!whole) req.pause();
      resolve(whole);
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > maxBytes) finish(false);
    };
    const onEnd = () => finish(true);
    const onClose = () => finish(req.complete);
    const timer = setTimeout(() => finish(false), maxMs);
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('close', onClose);
    // A reset connection errors the request: nothing to do but stop.
    req.on('error', () => {});
    req.resume();
  });
}
