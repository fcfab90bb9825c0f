// UIA fallback pages (spec: Client-Server API, "Fallback"): a client that
// cannot do a stage opens /auth/{stage}/fallback/web?session=... in a browser;
// the page runs the stage for the session, and the client then finishes its
// request with only {"auth": {"session": ...}}.

import { MatrixError, unrecognized } from '../errors.js';
import type { ValidationPurpose } from '../repositories/threepids.js';
import type { Flow, UiaEngine } from '../uia/engine.js';
import type { StageOutcome } from '../uia/types.js';
import type { RequestTokenResponse, ThreepidValidationHandler } from './threepid-validation.js';

/**
 * The stages that have a fallback page, under each name a client may open it
 * by (MSC3231's unstable name too), with the stage's own type.
 */
export const FALLBACK_STAGES: Readonly<Record<string, string>> = {
  'm.login.registration_token': 'm.login.registration_token',
  'org.matrix.msc3231.login.registration_token': 'm.login.registration_token',
  'm.login.terms': 'm.login.terms',
  'm.login.email.identity': 'm.login.email.identity',
};

export const EMAIL_STAGE = 'm.login.email.identity';

/** The validation mail an email page asks for, by the UIA session's operation (the sessions m.login.email.identity accepts for it). */
const EMAIL_PURPOSE: Record<string, ValidationPurpose> = {
  'POST /register': 'registration',
  'POST /account/password': 'password_reset',
};

const unknownSession = () => new MatrixError(400, 'M_UNKNOWN', 'Unknown or expired UIA session');

export interface FallbackView {
  /** The stage's own type (an unstable name resolved). */
  type: string;
  /** The session passed this stage already. */
  done: boolean;
  /** The stage's `params` for the session's operation (the terms' documents), or undefined. */
  params: unknown;
  /** For the email stage: what the validation mail is for (the session's operation's purpose); undefined for other stages. */
  emailPurpose?: ValidationPurpose;
}

export class FallbackHandler {
  constructor(
    private readonly uia: UiaEngine,
    /** The flows each operation offers (as the operation itself computes them) to a session of this user (null: nobody signed in). */
    private readonly flowsFor: (operation: string, userId: string | null) => Flow[],
    /** Sends the email page's validation mails; null: no email page. */
    private readonly validation: ThreepidValidationHandler | null = null,
  ) {}

  /**
   * GET: what the page of `stage` shows for the session. Errors: 404
   * M_UNRECOGNIZED (no page for that stage, as Synapse), 400 M_UNKNOWN
   * (unknown, expired or completed session), 400 M_UNRECOGNIZED (the
   * session's flows do not have this stage).
   */
  async show(stage: string, sessionId: string, ip: string): Promise<FallbackView> {
    const { type, session } = await this.sessionFor(stage, sessionId);
    const view: FallbackView = { type, done: session.completed.includes(type), params: await this.uia.sessionStageParams(sessionId, type, ip) };
    if (type === EMAIL_STAGE) view.emailPurpose = EMAIL_PURPOSE[session.operation];
    return view;
  }

  /**
   * POST: runs the stage for the session with the page's fields (e.g.
   * `{token}`). A failed stage is a returned outcome with the stage's error,
   * for the page to show; the errors of `show` are thrown.
   */
  async submit(stage: string, sessionId: string, fields: Record<string, unknown>, ip: string): Promise<StageOutcome> {
    const { session } = await this.sessionFor(stage, sessionId);
    // The flows of this session's user: a signed-in user's password change has no email stage.
    const flows = this.flowsFor(session.operation, session.userId);
    return this.uia.runStageForSession(sessionId, () => flows, { ...fields, type: stage }, ip);
  }

  /**
   * The email page's first step: sends the validation mail for the UIA
   * session (`ThreepidValidationHandler.requestToken`, for the purpose of the
   * session's operation: registration or password reset). The page keeps the
   * client secret and passes `{sid, client_secret}` to `submit` once the link
   * is followed. Errors: `show`'s, then requestToken's (M_THREEPID_IN_USE,
   * M_THREEPID_NOT_FOUND, M_THREEPID_DENIED, M_INVALID_PARAM, 429, 502...).
   */
  async requestEmail(
    stage: string,
    sessionId: string,
    req: { email: string; clientSecret: string; sendAttempt: number; ip: string },
  ): Promise<RequestTokenResponse> {
    const { type, session } = await this.sessionFor(stage, sessionId);
    const purpose = EMAIL_PURPOSE[session.operation];
    if (type !== EMAIL_STAGE || !purpose || !this.validation) throw new MatrixError(400, 'M_UNRECOGNIZED', 'This session sends no validation mail');
    return this.validation.requestToken(purpose, { email: req.email, clientSecret: req.clientSecret, sendAttempt: req.sendAttempt, nextLink: null, ip: req.ip });
  }

  /** The stage's type and the session, when the session's flows have that stage (errors as `show`). */
  private async sessionFor(stage: string, sessionId: string) {
    const type = this.typeOf(stage);
    const session = await this.uia.describeSession(sessionId);
    if (!session) throw unknownSession();
    if (!this.flowsFor(session.operation, session.userId).some((flow) => flow.includes(type)))
      throw new MatrixError(400, 'M_UNRECOGNIZED', `This session has no ${type} stage`);
    return { type, session };
  }

  private typeOf(stage: string): string {
    if (!Object.hasOwn(FALLBACK_STAGES, stage)) throw unrecognized(`No fallback page for the stage ${stage}`);
    return FALLBACK_STAGES[stage]!;
  }
}
