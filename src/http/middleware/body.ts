// JSON request bodies. As Synapse, a body is read as JSON whatever its
// Content-Type, and it must be UTF-8: the bytes are decoded strictly, so two
// different byte strings can never read as the same text (a lenient decoder
// turns every invalid byte into U+FFFD, and then `pw\x81\x81` and `pw\xfe\xff`
// are the same password). Routes that read a body need a JSON object
// (`jsonObject`); routes whose request has no body ignore any valid JSON.

import type { IncomingMessage } from 'node:http';
import type { Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { Context, Next } from 'koa';
import { badJson, MatrixError } from '../../errors.js';

declare module 'koa' {
  interface Request {
    /** The parsed JSON body ({} when none was sent); set for POST, PUT, PATCH and DELETE. */
    body?: unknown;
  }
}

/** Methods whose body is read; other methods' bodies are ignored (and discarded, see drain.ts). */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const tooLarge = () => new MatrixError(413, 'M_TOO_LARGE', 'Request body is too large');
const notJson = (why: string) => new MatrixError(400, 'M_NOT_JSON', `Content not JSON: ${why}`);

/**
 * Reads and parses the body of POST/PUT/PATCH/DELETE requests into
 * `ctx.request.body`, before any route runs.
 *
 * - over `limitBytes` (declared by Content-Length, received, or once
 *   decompressed): 413 M_TOO_LARGE;
 * - an unknown or broken Content-Encoding (gzip, deflate and br are read):
 *   400 M_NOT_JSON;
 * - bytes that are not UTF-8, a leading byte order mark (as Synapse, whose
 *   decoder refuses one; RFC 8259 §8.1 forbids sending it), or text that is not
 *   JSON: 400 M_NOT_JSON;
 * - JSON holding a string or key with a lone surrogate escape ("\ud800": not
 *   Unicode text, so it could not be stored or hashed as it was sent), or a key
 *   named `__proto__`: 400 M_BAD_JSON.
 *
 * An empty body reads as {}.
 */
export function jsonBody(limitBytes: number) {
  return async (ctx: Context, next: Next) => {
    const declared = Number(ctx.get('content-length') || 0);
    if (declared > limitBytes) throw tooLarge();
    if (BODY_METHODS.has(ctx.method)) ctx.request.body = parseJson(await readBody(ctx.req, limitBytes));
    await next();
  };
}

/** The decoder for a Content-Encoding, null for none; unknown codings are M_NOT_JSON. */
function decoderFor(header: string | undefined): Transform | null {
  const coding = (header ?? 'identity').trim().toLowerCase();
  switch (coding) {
    case '':
    case 'identity':
      return null;
    case 'gzip':
    case 'x-gzip':
      return createGunzip();
    case 'deflate':
      return createInflate();
    case 'br':
      return createBrotliDecompress();
    default:
      throw notJson(`unsupported Content-Encoding "${coding.slice(0, 40)}"`);
  }
}

/**
 * The body's bytes, decompressed, at most `limit` of them both as received
 * and once decompressed (so a small gzip "bomb" is M_TOO_LARGE too). On
 * failure the request is left paused with the rest of its body unread, for
 * the drain to skip it within its bounds.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const decoder = decoderFor(req.headers['content-encoding']);
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let decodedBytes = 0;
    let receivedBytes = 0;
    let settled = false;
    const source = decoder ?? req;

    const cleanup = () => {
      settled = true;
      source.off('data', onDecoded);
      source.off('end', onEnd);
      decoder?.off('error', onDecoderError);
      req.off('data', onReceived);
      req.off('error', onAborted);
      req.off('close', onClose);
      if (decoder) {
        req.unpipe(decoder);
        // A late zlib error must find a listener, or it would end the process.
        decoder.on('error', () => {});
        decoder.destroy();
      }
    };
    const fail = (err: MatrixError) => {
      if (settled) return;
      cleanup();
      req.pause();
      reject(err);
    };
    const onDecoded = (chunk: Buffer) => {
      decodedBytes += chunk.length;
      if (decodedBytes > limit) fail(tooLarge());
      else chunks.push(chunk);
    };
    const onReceived = (chunk: Buffer) => {
      receivedBytes += chunk.length;
      if (receivedBytes > limit) fail(tooLarge());
    };
    const onEnd = () => {
      if (settled) return;
      cleanup();
      resolve(Buffer.concat(chunks, decodedBytes));
    };
    const onDecoderError = () => fail(notJson(`the body is not valid ${req.headers['content-encoding']} data`));
    // The client went away mid-body; nobody will read this answer.
    const onAborted = () => fail(notJson('the body ended early'));
    const onClose = () => {
      if (!req.complete) onAborted();
    };

    if (decoder) {
      req.on('data', onReceived);
      req.pipe(decoder);
    }
    source.on('data', onDecoded);
    source.once('end', onEnd);
    if (decoder) decoder.on('error', onDecoderError);
    req.on('error', onAborted);
    req.once('close', onClose);
  });
}

/** Strict: invalid UTF-8 throws instead of becoming U+FFFD; a BOM is kept, so JSON.parse refuses it. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function parseJson(bytes: Buffer): unknown {
  if (bytes.length === 0) return {};
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw notJson('the body is not UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw notJson('the body is not valid JSON');
  }
  checkText(value);
  return value;
}

/** Matches a surrogate that is not half of a pair (with the u flag, pairs read as one code point). */
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * Refuses strings and keys that are not Unicode text (a lone surrogate
 * escape), and `__proto__` keys (code that copies an object with Object.assign
 * would set its prototype). Walks with its own stack: nesting depth is bounded
 * only by the body size.
 */
function checkText(root: unknown): void {
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === 'string') {
      if (LONE_SURROGATE.test(value)) throw badJson('Strings must be Unicode text (a lone surrogate escape was sent)');
    } else if (Array.isArray(value)) {
      for (const item of value) pending.push(item);
    } else if (value !== null && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) {
        if (key === '__proto__') throw badJson('The key "__proto__" is not allowed');
        if (LONE_SURROGATE.test(key)) throw badJson('Keys must be Unicode text (a lone surrogate escape was sent)');
        pending.push(item);
      }
    }
  }
}
