// m.login.terms (MSC1692): registration asks the user to accept the server's
// policies. The 401 body's params list them; the client completes the stage
// with an auth dict holding nothing but `type` (and `session`), accepting all
// of them. The session remembers the versions it presented, and the account's
// creation records them as accepted, in the same transaction.

import type { TermsPolicy } from '../../config/types.js';
import * as Acceptances from '../../repositories/policy-acceptances.js';
import type { CompletionContext, StageContext, StageOutcome, UiaStage } from '../types.js';

/** MSC1692's params: `{policies: {<policy_id>: {version, <lang>: {name, url}}}}`. */
export interface TermsParams {
  policies: Record<string, { version: string } & Record<string, { name: string; url: string } | string>>;
}

/** What the stage keeps in the UIA session: the versions it presented, by policy ID. */
interface TermsState {
  accepted: Record<string, string>;
}

/** The stage's params for `policies` (config's shape, by policy ID). */
export function termsParams(policies: Record<string, TermsPolicy>): TermsParams {
  const out: TermsParams['policies'] = {};
  for (const [id, p] of Object.entries(policies)) {
    const entry: TermsParams['policies'][string] = { version: p.version };
    for (const [lang, doc] of Object.entries(p.languages)) entry[lang] = { name: doc.name, url: doc.url };
    out[id] = entry;
  }
  return { policies: out };
}

export class TermsStage implements UiaStage {
  readonly type = 'm.login.terms';
  private readonly policyParams: TermsParams;
  private readonly presented: Record<string, string>;

  constructor(policies: Record<string, TermsPolicy>) {
    this.policyParams = termsParams(policies);
    this.presented = Object.fromEntries(Object.entries(policies).map(([id, p]) => [id, p.version]));
  }

  params(): TermsParams {
    return this.policyParams;
  }

  /**
   * Always passes: submitting the stage accepts every listed policy (MSC1692).
   * As Synapse, fields besides `type` and `session` are ignored. The session
   * keeps the versions presented when the stage first passed: those are what
   * the user accepted, even if a new version is published before the account
   * is created (passing the stage again in the session changes nothing).
   */
  async check(_auth: Record<string, unknown>, ctx: StageContext): Promise<StageOutcome> {
    const earlier = ctx.state as TermsState | undefined;
    if (earlier?.accepted) return { ok: true, state: earlier };
    return { ok: true, state: { accepted: { ...this.presented } } satisfies TermsState };
  }

  /** Records the acceptances for the registered account (`result.user_id`), timestamped with the completion. */
  async onComplete(state: unknown, trx: Parameters<NonNullable<UiaStage['onComplete']>>[1], done: CompletionContext): Promise<void> {
    const userId = (done.result as { user_id?: unknown } | null)?.user_id;
    if (typeof userId !== 'string') throw new Error('terms stage completed an operation without a user_id');
    const accepted = (state as TermsState | undefined)?.accepted;
    if (!accepted) throw new Error('terms stage completed without the versions it presented');
    await Acceptances.insertAcceptances(trx, userId, accepted, done.now);
  }
}
