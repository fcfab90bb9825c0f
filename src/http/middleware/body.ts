// JSON request bodies. As Synapse, a body is read as JSON whatever its
// Content-Type, and it must be UTF-8: the bytes are decoded strictly, so two
// different byte strings can never read as the same text (a lenient decoder
// turns every invalid byte into U+FFFD, and then `pw\x81\x81` and `pw\xfe\xff`
// are the same password). Routes that read a body need a JSON object
// (`jsonObject`); routes whose request has no body ignore any valid JSON.
// The HTML pages' forms are the one exception: their paths are declared as
// form paths, which the JSON reader leaves alone; their routes read the form
// with `formBody`, under the same limits and the same strict UTF-8.

import type { IncomingMessage } from 'node:http';
import { type Readable, Transform } from 'node:stream';
import inflate from 'inflation';
import type { Context } from 'koa';
import getRawBody from 'raw-body';
import { badJson, MatrixError } from '../../errors.js';

declare module 'koa' {
  interface Request {
    /** The parsed JSON body ({} when none was sent); set for POST, PUT, PATCH and DELETE. */
    body?: unknown;
    /** On form paths: reads the body as an HTML form (see `formBody`). */
    readForm?: () => Promise<URLSearchParams>;
  }
}

/** Methods whose body is read; other methods' bodies are ignored (and discarded, see drain.ts). */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const tooLarge = () => new MatrixError(413, 'M_TOO_LARGE', 'Request body is too large');
const notJson = (why: string) => new MatrixError(400, 'M_NOT_JSON', `Content not JSON: ${why}`);
const badForm = (why: string) => new MatrixError(400, 'M_INVALID_PARAM', `The form data cannot be read: ${why}`);

/**
 * Reads and parses the body of POST/PUT/PATCH/DELETE requests into
 * `ctx.request.body`, before any route runs. Paths matching `formPaths` (HTML
 * pages whose forms post `application/x-www-form-urlencoded`) are not read
 * here: their routes call `formBody`, so that they can answer its errors as a
 * page. Other methods' bodies are not read (a declared length over the limit is
 * still refused); then nothing is awaited and no promise is made.
 *
 * Throws (or rejects with) a MatrixError:
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
export function readRequestBody(ctx: Context, limitBytes: number, formPaths: readonly RegExp[] = []): Promise<void> | undefined {
  const readsBody = BODY_METHODS.has(ctx.method);
  if (readsBody && formPaths.some((re) => re.test(ctx.path))) {
    ctx.request.readForm = () => readForm(ctx, limitBytes);
    return undefined;
  }
  const declared = ctx.req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limitBytes) throw tooLarge();
  if (!readsBody) return undefined;
  return readBody(ctx.req, limitBytes, notJson).then((bytes) => {
    ctx.request.body = parseJson(bytes);
  });
}

/**
 * The body of a POST to a form path (declared to `jsonBody`) as its fields, in
 * order (a repeated name keeps every value). Errors (MatrixErrors, for the
 * page to show): 413 M_TOO_LARGE (over the body limit, as for JSON), 415
 * M_UNKNOWN (not `application/x-www-form-urlencoded`, or a charset other
 * than UTF-8), 400 M_INVALID_PARAM (bytes or percent escapes that are not
 * UTF-8, a broken encoding, a NUL character). Read once; a second call rejects.
 */
export function formBody(ctx: Context): Promise<URLSearchParams> {
  if (!ctx.request.readForm) throw new Error(`formBody: ${ctx.path} is not declared as a form path`);
  const read = ctx.request.readForm;
  ctx.request.readForm = () => Promise.reject(new Error('formBody: the form was read already'));
  return read();
}

const FORM_TYPE = /^application\/x-www-form-urlencoded\s*(;|$)/i;

async function readForm(ctx: Context, limitBytes: number): Promise<URLSearchParams> {
  const type = ctx.get('content-type');
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(type)?.[1];
  if (!FORM_TYPE.test(type) || (charset !== undefined && charset.toLowerCase() !== 'utf-8'))
    throw new MatrixError(415, 'M_UNKNOWN', 'The form must be sent as application/x-www-form-urlencoded in UTF-8');
  if (Number(ctx.get('content-length') || 0) > limitBytes) throw tooLarge();
  const bytes = await readBody(ctx.req, limitBytes, badForm);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw badForm('the body is not UTF-8');
  }
  // URLSearchParams would turn an escape that is not UTF-8 (`%81`) into U+FFFD: refuse it instead.
  for (const part of text.split('&')) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(part.replaceAll('+', ' '));
    } catch {
      throw badForm('a field is not percent-encoded UTF-8');
    }
    if (decoded.includes('\u0000')) throw badForm('a field holds a NUL character');
  }
  return new URLSearchParams(text);
}

/**
 * The body's bytes, decompressed (gzip, deflate, br), at most `limit` of them
 * once decompressed (so a small gzip "bomb" is M_TOO_LARGE too). Read with
 * raw-body and inflation, the libraries koa-body reads with: koa-body itself
 * hands over only text it has already decoded leniently, which is what this
 * reader exists to avoid. On failure the request is left with the rest of its
 * body unread, for the drain (drain.ts) to skip within its bounds.
 */
async function readBody(req: IncomingMessage, limit: number, unreadable: (why: string) => MatrixError): Promise<Buffer> {
  let stream: Readable;
  try {
    stream = inflate(req);
  } catch {
    throw unreadable(`unsupported Content-Encoding "${String(req.headers['content-encoding']).slice(0, 40)}"`);
  }
  const decompressing = stream !== req;
  try {
    // Without compression raw-body also checks that the body is as long as Content-Length says.
    return await getRawBody(stream, { limit, length: decompressing ? null : req.headers['content-length'] });
  } catch (err) {
    if (stream instanceof Transform) {
      // Detach the decompressor, so that the drain reads the request itself.
      req.unpipe(stream);
      stream.on('error', () => {});
      stream.destroy();
    }
    if ((err as { status?: number }).status === 413) throw tooLarge();
    // An aborted or short body, or compressed data that does not decompress.
    throw unreadable(decompressing ? `the body is not valid ${req.headers['content-encoding']} data` : 'the body ended early');
  }
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
