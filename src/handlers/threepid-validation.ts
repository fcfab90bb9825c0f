// Proving control of an email address (spec: Client-Server API, the
// `requestToken` endpoints, and `submit_url` with the Identity Service API's
// submitToken semantics; error codes of MSC4178 and MSC4183). Gatehouse sends
// the mail itself (no identity server): a validation session per purpose,
// client secret and address, a random token per mail stored as its SHA-256,
// and a page the link in the mail opens.

import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import { constantTimeEqual, hashToken, randomString } from '../crypto/tokens.js';
import { canonicaliseEmail, CLIENT_SECRET_RE, threepidAllowed } from '../domain/threepids.js';
import { forbidden, invalidParam, MatrixError } from '../errors.js';
import { MailDeliveryError, type MailKind, type Mailer } from '../mail/mailer.js';
import type { RateLimiter } from '../ratelimit/limiter.js';
import * as Threepids from '../repositories/threepids.js';
import type { ValidationPurpose } from '../repositories/threepids.js';
import { type EmailIdentityState, findValidatedThreepid, SID_RE } from '../uia/stages/email-identity.js';

export interface RequestTokenRequest {
  clientSecret: string;
  email: string;
  sendAttempt: number;
  nextLink: string | null;
  ip: string;
}

export interface RequestTokenResponse {
  sid: string;
  submit_url: string;
}

/** Wrong tokens a session takes (per mail sent) before it stops accepting any. */
export const MAX_FAILED_SUBMISSIONS = 5;

/** Schemes `next_link` may not use: the browser would run or read something local instead of going somewhere. */
const FORBIDDEN_NEXT_LINK_SCHEMES = new Set(['javascript:', 'data:', 'vbscript:', 'file:', 'blob:', 'about:', 'filesystem:']);

const MAIL_KINDS: Record<ValidationPurpose, MailKind> = {
  registration: 'registration',
  add_threepid: 'add_threepid',
  password_reset: 'password_reset',
};

export const mediumNotSupported = (what = 'Email addresses') =>
  new MatrixError(400, 'M_THREEPID_MEDIUM_NOT_SUPPORTED', `${what} are not supported on this server`);
export const threepidInUse = () => new MatrixError(400, 'M_THREEPID_IN_USE', 'This email address is already in use');
export const threepidNotFound = () => new MatrixError(400, 'M_THREEPID_NOT_FOUND', 'This email address is not registered on this server');
export const threepidDenied = () => new MatrixError(403, 'M_THREEPID_DENIED', 'This email address may not be used on this server');
const tokenIncorrect = () => new MatrixError(400, 'M_TOKEN_INCORRECT', 'The validation token is incorrect');
const sessionExpired = (why = 'The validation session has expired; request a new email') => new MatrixError(400, 'M_SESSION_EXPIRED', why);

/**
 * Checks a `next_link` (spec: requestToken's `next_link`): an absolute URL of
 * http(s) or an app's own scheme (`element://…`). Schemes that run or read
 * something in the browser itself (javascript:, data:, file:…) are refused.
 * Returns the link, or throws 400 M_INVALID_PARAM.
 */
export function checkNextLink(link: string): string {
  let url: URL;
  try {
    url = new URL(link);
  } catch {
    throw invalidParam('next_link must be an absolute URL');
  }
  if (FORBIDDEN_NEXT_LINK_SCHEMES.has(url.protocol)) throw invalidParam(`next_link may not use the ${url.protocol} scheme`);
  if ((url.protocol === 'http:' || url.protocol === 'https:') && !url.host) throw invalidParam('next_link must name a host');
  return link;
}

export class ThreepidValidationHandler {
  /** Where links in mails and `submit_url` point: public_baseurl, or https://server_name/ as Synapse. */
  readonly baseUrl: string;

  constructor(
    private readonly db: Knex,
    private readonly config: Config,
    /** null when the config has no `email` section: then every requestToken is M_THREEPID_MEDIUM_NOT_SUPPORTED. */
    private readonly mailer: Mailer | null,
    /** rc_3pid_validation, keyed by client address and by email address. */
    private readonly limiter: RateLimiter,
    private readonly logger: Logger,
    private readonly clock: () => number = Date.now,
  ) {
    this.baseUrl = config.public_baseurl ?? `https://${config.server_name}/`;
  }

  /** Whether email validation is available (an `email` section is configured). */
  get enabled(): boolean {
    return this.mailer !== null;
  }

  /** The URL a client may POST `{sid, client_secret, token}` to (`submit_url`). */
  get submitUrl(): string {
    return `${this.baseUrl}_gatehouse/client/email/submit_token`;
  }

  /**
   * POST /register/email/requestToken, /account/3pid/email/requestToken and
   * /account/password/email/requestToken. Sends a mail with a link (and the
   * token) to the address, and answers `{sid, submit_url}`. A repeat with the
   * same client secret, address and a send_attempt not higher than the last
   * answers the same sid and sends nothing; a higher one sends again.
   *
   * Errors: 400 M_THREEPID_MEDIUM_NOT_SUPPORTED (no email configured), 403
   * M_FORBIDDEN (registration or 3PID changes disabled), 400 M_INVALID_PARAM
   * (client_secret, email, send_attempt or next_link malformed), 403
   * M_THREEPID_DENIED (the policy refuses the address; nothing is sent), 429
   * M_LIMIT_EXCEEDED (rc_3pid_validation, per client and per address), 400
   * M_THREEPID_IN_USE (registration, add: bound to an account), 400
   * M_THREEPID_NOT_FOUND (password reset: bound to none), 502 M_UNKNOWN (the
   * mail server could not be reached or refused the mail: nothing recorded).
   * With request_token_inhibit_3pid_errors the in-use and not-found answers
   * are a 200 like any other (a session that never sends or validates), and
   * the mail goes out after the answer, so neither the answer nor its time
   * tells whether the address has an account.
   */
  async requestToken(purpose: ValidationPurpose, req: RequestTokenRequest): Promise<RequestTokenResponse> {
    if (!this.mailer) throw mediumNotSupported();
    if (purpose === 'registration' && !this.config.enable_registration) throw forbidden('Registration has been disabled');
    if (purpose === 'add_threepid' && !this.config.enable_3pid_changes) throw forbidden('3PID changes are disabled on this server');
    if (purpose === 'password_reset' && !this.config.password_config.enabled) throw forbidden('Password resets are disabled on this server');
    if (!CLIENT_SECRET_RE.test(req.clientSecret)) throw invalidParam('client_secret must be 1 to 255 characters of 0-9, a-z, A-Z, ".", "=", "_" and "-"');
    if (!Number.isSafeInteger(req.sendAttempt) || req.sendAttempt < 0) throw invalidParam('send_attempt must be a non-negative integer');
    const address = canonicaliseEmail(req.email);
    if (address === null) throw invalidParam('email is not a valid email address');
    const nextLink = req.nextLink === null ? null : checkNextLink(req.nextLink);
    // As Synapse: only addresses the policy allows may be registered or added (a reset concerns one already bound).
    if (purpose !== 'password_reset' && !threepidAllowed(this.config.threepid_policy, 'email', address)) throw threepidDenied();

    await this.limiter.take(`ip:${req.ip}`);
    await this.limiter.take(`email:${address}`);

    const boundTo = await Threepids.findUserIdByThreepid(this.db, 'email', address);
    const refusal = purpose === 'password_reset' ? (boundTo === null ? threepidNotFound() : null) : boundTo !== null ? threepidInUse() : null;
    const inhibit = this.config.request_token_inhibit_3pid_errors;
    if (refusal && !inhibit) throw refusal;

    const now = this.clock();
    const tokenExpires = now + this.config.email!.validation_token_lifetime;
    const key = { purpose, medium: 'email', address, client_secret: req.clientSecret };
    let session = await Threepids.findSessionByRequest(this.db, key);
    let created = false;
    if (!session) {
      const row: Threepids.ValidationSessionRow = {
        session_id: randomString(24),
        ...key,
        // Claimed below, like an existing session's attempt.
        last_send_attempt: -1,
        next_link: nextLink,
        created_ts: now,
        expires_ts: tokenExpires,
        validated_ts: null,
        consumed_ts: null,
        failed_attempts: 0,
        decoy: refusal !== null,
      };
      created = await Threepids.insertSession(this.db, row);
      // A parallel request with the same key made the session first: continue with it.
      session = created ? row : await Threepids.findSessionByRequest(this.db, key);
      if (!session) throw new Error('validation session vanished while being created');
    }
    const response: RequestTokenResponse = { sid: session.session_id, submit_url: this.submitUrl };
    const previousAttempt = session.last_send_attempt;
    // Not a higher attempt (or a parallel request claimed it): the mail of that attempt was sent already.
    if (!(await Threepids.claimSendAttempt(this.db, session.session_id, req.sendAttempt, tokenExpires))) return response;
    // A refused request sends nothing (a decoy, or a live session whose address became bound, or unbound, since).
    if (refusal) return response;
    // A decoy whose address can be used now (freed since, or the option turned off) becomes a live session.
    const wasDecoy = session.decoy;

    const token = randomString(32);
    const undo = async () => {
      // Nothing half-recorded: the token goes, and the attempt is given back (a new session goes whole).
      await Threepids.deleteToken(this.db, hashToken(token));
      if (created) await Threepids.deleteSession(this.db, session.session_id);
      else await Threepids.releaseSendAttempt(this.db, session.session_id, req.sendAttempt, previousAttempt);
    };
    const send = async () => {
      if (wasDecoy) await Threepids.clearDecoy(this.db, session.session_id);
      await Threepids.insertToken(this.db, { token_hash: hashToken(token), session_id: session.session_id, expires_ts: tokenExpires });
      await this.sendMail(purpose, address, session.session_id, req.clientSecret, token);
    };
    if (inhibit) {
      // Answer first: a decoy stops here, so neither the token's row nor the mail server may make a real
      // session's answer slower than a decoy's (its time would tell who has an account).
      void send().catch(async (err: unknown) => {
        this.logger.warn({ err: mailErr(err), purpose }, 'validation mail could not be sent');
        await undo().catch((e: unknown) => this.logger.error({ err: mailErr(e) }, 'could not undo a validation session'));
      });
      return response;
    }
    try {
      await send();
    } catch (err) {
      this.logger.warn({ err: mailErr(err), purpose }, 'validation mail could not be sent');
      await undo();
      if (err instanceof MailDeliveryError) throw new MatrixError(502, 'M_UNKNOWN', 'The email could not be sent; try again later');
      throw err;
    }
    return response;
  }

  private sendMail(purpose: ValidationPurpose, address: string, sid: string, clientSecret: string, token: string): Promise<void> {
    const query = new URLSearchParams({ sid, client_secret: clientSecret, token });
    const link = `${this.baseUrl}_gatehouse/client/email/validate?${query.toString()}`;
    return this.mailer!.sendValidation(MAIL_KINDS[purpose], address, { link, token, address, server_name: this.config.server_name });
  }

  /**
   * `submit_url` (POST {sid, client_secret, token}; MSC4183's error codes) and
   * the validation page's form: marks the session validated. Submitting the
   * same right token again answers the same. Errors, all 400:
   * M_INVALID_PARAM (malformed parameters, or no such session for this client
   * secret), M_TOKEN_INCORRECT (not a token of this session; the session takes
   * MAX_FAILED_SUBMISSIONS per mail), M_SESSION_EXPIRED (the token or session
   * expired, or too many wrong tokens). Returns the session's next_link.
   */
  async submitToken(req: { sid: string; clientSecret: string; token: string }): Promise<{ nextLink: string | null; purpose: ValidationPurpose }> {
    if (!SID_RE.test(req.sid)) throw invalidParam('sid is not a validation session ID');
    if (!CLIENT_SECRET_RE.test(req.clientSecret)) throw invalidParam('client_secret is malformed');
    if (req.token.length === 0 || req.token.length > 255) throw invalidParam('token is malformed');
    const now = this.clock();
    const session = await Threepids.findSession(this.db, req.sid);
    // The client secret binds the token to the one session (and address) it was sent for.
    if (!session || !constantTimeEqual(session.client_secret, req.clientSecret)) throw invalidParam('Unknown validation session');
    if (session.expires_ts <= now) throw sessionExpired();
    if (session.failed_attempts >= MAX_FAILED_SUBMISSIONS) throw sessionExpired('Too many wrong tokens; request a new email');
    // A decoy looks its token up too (it has none): a wrong token must take as long on either kind of session.
    const found = await Threepids.findTokenExpiry(this.db, session.session_id, hashToken(req.token));
    const tokenExpires = session.decoy ? null : found;
    if (tokenExpires === null) {
      await Threepids.countFailedAttempt(this.db, session.session_id);
      throw tokenIncorrect();
    }
    if (tokenExpires <= now) throw sessionExpired('This validation token has expired; request a new email');
    // Validated once; the address may then be used for as long again as a token lives.
    await Threepids.markValidated(this.db, session.session_id, now, now + this.config.email!.validation_token_lifetime);
    return { nextLink: session.next_link, purpose: session.purpose };
  }

  /** What validation session `sid` is for (the page words itself after it), or null for none. */
  async purposeOf(sid: string): Promise<ValidationPurpose | null> {
    if (!SID_RE.test(sid)) return null;
    return (await Threepids.findSession(this.db, sid))?.purpose ?? null;
  }

  /**
   * The validated address of a session, for the operation it was made for
   * (`purpose`): what POST /account/3pid/add checks (m.login.email.identity
   * checks the same). null when the session is unknown, of another client
   * secret or purpose, not validated, used, or expired.
   */
  validatedThreepid(q: Knex, purpose: ValidationPurpose, sid: string, clientSecret: string): Promise<EmailIdentityState | null> {
    return findValidatedThreepid(q, purpose, sid, clientSecret, this.clock());
  }

  /**
   * Uses a validated session for its operation, inside the operation's
   * transaction: true once only, so one validation authorises one
   * registration, one added address or one password reset.
   */
  consume(trx: Knex, sid: string): Promise<boolean> {
    return Threepids.consumeSession(trx, sid, this.clock());
  }

  /** Deletes expired validation sessions and their tokens. Safe in several processes. */
  async sweepExpired(): Promise<number> {
    let n = 0;
    for (;;) {
      const deleted = await Threepids.deleteExpiredSessions(this.db, this.clock());
      n += deleted;
      if (deleted < 500) return n;
    }
  }
}

/** What to log of a failed send: the error's message and code, never a credential. */
function mailErr(err: unknown): Record<string, unknown> {
  if (err instanceof Error) return { message: err.message, name: err.name, code: (err as { code?: unknown }).code };
  return { message: String(err) };
}
