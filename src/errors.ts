// Matrix errors: every failure the client sees is {errcode, error} with a status.

export class MatrixError extends Error {
  constructor(
    public readonly status: number,
    public readonly errcode: string,
    message: string,
    /** Extra top-level fields for the error body (e.g. soft_logout, retry_after_ms). */
    public readonly extra: Record<string, unknown> = {},
    /** Extra response headers (e.g. Retry-After). */
    public readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toJSON(): Record<string, unknown> {
    return { errcode: this.errcode, error: this.message, ...this.extra };
  }
}

export const badJson = (msg: string) => new MatrixError(400, 'M_BAD_JSON', msg);
export const missingParam = (msg: string) => new MatrixError(400, 'M_MISSING_PARAM', msg);
export const invalidParam = (msg: string) => new MatrixError(400, 'M_INVALID_PARAM', msg);
export const forbidden = (msg: string) => new MatrixError(403, 'M_FORBIDDEN', msg);
export const notFound = (msg: string) => new MatrixError(404, 'M_NOT_FOUND', msg);
export const unrecognized = (msg = 'Unrecognized request') => new MatrixError(404, 'M_UNRECOGNIZED', msg);
export const unknownToken = (msg: string, softLogout = false) =>
  new MatrixError(401, 'M_UNKNOWN_TOKEN', msg, { soft_logout: softLogout });
/**
 * MSC3866: the account exists but waits for an admin's approval. As Synapse,
 * `approval_notice_medium` says how the user will hear of it (here: not at all).
 */
export const awaitingApproval = () =>
  new MatrixError(403, 'M_USER_AWAITING_APPROVAL', 'This account needs to be approved by an administrator before it can be used.', {
    approval_notice_medium: 'org.matrix.msc3866.none',
  });
export const missingToken = () => new MatrixError(401, 'M_MISSING_TOKEN', 'Missing access token');

export function limitExceeded(retryAfterMs: number): MatrixError {
  const ms = Math.max(0, Math.ceil(retryAfterMs));
  // MSC4041: the Retry-After header (seconds) as well as the deprecated body field.
  return new MatrixError(429, 'M_LIMIT_EXCEEDED', 'Too many requests', { retry_after_ms: ms }, {
    'Retry-After': String(Math.ceil(ms / 1000)),
  });
}
