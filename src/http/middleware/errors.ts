// Turns every failure into a Matrix error body. Input never causes a 500:
// anything that is not a MatrixError is a bug, logged with its stack.

import type { Context } from 'koa';
import { MatrixError } from '../../errors.js';
import { reply } from '../reply.js';

/**
 * Answers `err` as a Matrix error (`{errcode, error}` with its status and
 * headers, e.g. Retry-After). Anything but a MatrixError or a library's HTTP
 * status error is a 500 M_UNKNOWN, and is kept in `ctx.state.error` for the
 * request log to record with its stack.
 */
export function replyError(ctx: Context, err: unknown): void {
  const e = toMatrixError(err);
  for (const [k, v] of Object.entries(e.headers)) ctx.set(k, v);
  reply(ctx, e.status, e.toJSON());
  if (e.status >= 500) ctx.state.error = err;
}

function toMatrixError(err: unknown): MatrixError {
  if (err instanceof MatrixError) return err;
  const status = (err as { status?: number; statusCode?: number }).status ?? (err as { statusCode?: number }).statusCode;
  // Errors carrying an HTTP status from a library (the body middleware throws MatrixErrors itself).
  if (status === 413) return new MatrixError(413, 'M_TOO_LARGE', 'Request body is too large');
  if (status === 400 || status === 415) return new MatrixError(400, 'M_NOT_JSON', 'Content not JSON.');
  if (status === 408) return new MatrixError(408, 'M_UNKNOWN', 'Request body timed out');
  return new MatrixError(500, 'M_UNKNOWN', 'Internal server error');
}
