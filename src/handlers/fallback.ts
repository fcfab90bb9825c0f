// UIA fallback pages (spec: Client-Server API, "Fallback"): a client that
// cannot do a stage opens /auth/{stage}/fallback/web?session=... in a browser;
// the page runs the stage for the session, and the client then finishes its
// request with only {"auth": {"session": ...}}.

import { MatrixError, unrecognized } from '../errors.js';
import type { Flow, UiaEngine } from '../uia/engine.js';
import type { StageOutcome } from '../uia/types.js';

/**
 * The stages that have a fallback page, under each name a client may open it
 * by (MSC3231's unstable name too), with the stage's own type.
 */
export const FALLBACK_STAGES: Readonly<Record<string, string>> = {
  'm.login.registration_token': 'm.login.registration_token',
  'org.matrix.msc3231.login.registration_token': 'm.login.registration_token',
  'm.login.terms': 'm.login.terms',
};

const unknownSession = () => new MatrixError(400, 'M_UNKNOWN', 'Unknown or expired UIA session');

export interface FallbackView {
  /** The stage's own type (an unstable name resolved). */
  type: string;
  /** The session passed this stage already. */
  done: boolean;
  /** The stage's `params` for the session's operation (the terms' documents), or undefined. */
  params: unknown;
}

export class FallbackHandler {
  constructor(
    private readonly uia: UiaEngine,
    /** The flows each operation offers (as the operation itself computes them). */
    private readonly flowsFor: (operation: string) => Flow[],
  ) {}

  /**
   * GET: what the page of `stage` shows for the session. Errors: 404
   * M_UNRECOGNIZED (no page for that stage, as Synapse), 400 M_UNKNOWN
   * (unknown, expired or completed session), 400 M_UNRECOGNIZED (the
   * session's flows do not have this stage).
   */
  async show(stage: string, sessionId: string, ip: string): Promise<FallbackView> {
    const type = this.typeOf(stage);
    const session = await this.uia.describeSession(sessionId);
    if (!session) throw unknownSession();
    if (!this.flowsFor(session.operation).some((flow) => flow.includes(type)))
      throw new MatrixError(400, 'M_UNRECOGNIZED', `This session has no ${type} stage`);
    return { type, done: session.completed.includes(type), params: await this.uia.sessionStageParams(sessionId, type, ip) };
  }

  /**
   * POST: runs the stage for the session with the page's fields (e.g.
   * `{token}`). A failed stage is a returned outcome with the stage's error,
   * for the page to show; the errors of `show` are thrown.
   */
  async submit(stage: string, sessionId: string, fields: Record<string, unknown>, ip: string): Promise<StageOutcome> {
    this.typeOf(stage);
    return this.uia.runStageForSession(sessionId, this.flowsFor, { ...fields, type: stage }, ip);
  }

  private typeOf(stage: string): string {
    if (!Object.hasOwn(FALLBACK_STAGES, stage)) throw unrecognized(`No fallback page for the stage ${stage}`);
    return FALLBACK_STAGES[stage]!;
  }
}
