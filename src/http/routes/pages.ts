// HTML pages: the UIA fallback pages (spec: Client-Server API, "Fallback") and
// the invite page. They answer in HTML, errors included, and their POSTs are
// HTML forms (application/x-www-form-urlencoded), read with `formBody`.
//
// CSRF: the forms carry no credentials (no cookies, no signed-in user): a
// cross-site POST could only do what its sender can do directly with the
// session ID or invite token it would need to know. As defence in depth, a
// POST that the browser marks as coming from another site (Sec-Fetch-Site) is
// refused, the pages cannot be framed, and forms may post only to this origin
// (see the CSP in ../pages.ts).

import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Config } from '../../config/types.js';
import { randomString } from '../../crypto/tokens.js';
import { CLIENT_SECRET_RE } from '../../domain/threepids.js';
import { forbidden, MatrixError, missingParam } from '../../errors.js';
import { EMAIL_STAGE, type FallbackHandler, type FallbackView } from '../../handlers/fallback.js';
import type { InviteForm, InviteHandler, InviteState } from '../../handlers/invite.js';
import type { ThreepidValidationHandler } from '../../handlers/threepid-validation.js';
import { formBody } from '../middleware/body.js';
import type { Pages } from '../pages.js';

/** The paths whose POSTs are HTML forms (the body middleware leaves them to `formBody`). */
export const PAGE_FORM_PATHS: readonly RegExp[] = [
  /^\/_matrix\/client\/(?:v3|r0)\/auth\/[^/]+\/fallback\/web\/?$/,
  /^\/_gatehouse\/invite\/[^/]+\/?$/,
  /^\/_gatehouse\/client\/email\/validate\/?$/,
];

const TOKEN_STAGE = 'm.login.registration_token';

export function pageRoutes(
  router: Router,
  pages: Pages,
  fallback: FallbackHandler,
  invite: InviteHandler,
  validation: ThreepidValidationHandler,
  config: Config,
): void {
  /** Runs a page route; a MatrixError becomes an HTML error page with its status (and headers, e.g. Retry-After). */
  const page = (handler: (ctx: Context) => Promise<void>) => async (ctx: Context) => {
    try {
      await handler(ctx);
    } catch (err) {
      if (!(err instanceof MatrixError)) throw err;
      pages.send(ctx, err.status, 'error.html', { title: titleFor(err.status), message: err.message, errcode: err.errcode }, err.headers);
    }
  };

  // GET /_matrix/client/v3/auth/{stage}/fallback/web
  router.get('/_matrix/client/v3/auth/:stage/fallback/web', page(async (ctx) => {
    const stage = ctx.params.stage!;
    const session = sessionOf(ctx, null);
    const view = await fallback.show(stage, session, ctx.ip);
    if (view.done) return pages.send(ctx, 200, 'auth_success.html', {});
    // A fresh client secret per page: the page's validation session is its own.
    if (view.type === EMAIL_STAGE) return emailForm(ctx, 200, session, view, { step: 'email', clientSecret: randomString(32), sendAttempt: 1 });
    stageForm(ctx, 200, stage, session, view, {});
  }));

  // POST /_matrix/client/v3/auth/{stage}/fallback/web
  router.post('/_matrix/client/v3/auth/:stage/fallback/web', page(async (ctx) => {
    sameOrigin(ctx);
    const stage = ctx.params.stage!;
    const form = await formBody(ctx);
    const session = sessionOf(ctx, form);
    const view = await fallback.show(stage, session, ctx.ip);
    if (view.done) return pages.send(ctx, 200, 'auth_success.html', {});
    if (view.type === EMAIL_STAGE) return emailStep(ctx, stage, session, view, form);
    let fields: Record<string, unknown> = {};
    let error: string | null = null;
    const token = (form.get('token') ?? '').trim();
    if (view.type === TOKEN_STAGE) {
      if (token === '') error = 'Enter the registration token you were given.';
      fields = { token };
    } else if (form.get('accept_terms') === null) {
      error = 'Tick the box to accept the documents, then continue.';
    }
    if (error === null) {
      const outcome = await fallback.submit(stage, session, fields, ctx.ip);
      if (outcome.ok) return pages.send(ctx, 200, 'auth_success.html', {});
      error = stageMessage(outcome.error);
    }
    stageForm(ctx, 400, stage, session, view, { error, token });
  }));

  // GET /_gatehouse/invite/{token}
  router.get('/_gatehouse/invite/:token', page(async (ctx) => {
    const token = ctx.params.token!;
    const { state, form } = await invite.check(token, ctx.ip);
    invitePage(ctx, state, form, {});
  }));

  // POST /_gatehouse/invite/{token}
  router.post('/_gatehouse/invite/:token', page(async (ctx) => {
    sameOrigin(ctx);
    const token = ctx.params.token!;
    const form = await formBody(ctx);
    const username = (form.get('username') ?? '').trim();
    try {
      const { user_id: userId, awaiting_approval: awaitingApproval } = await invite.register({
        token,
        username,
        password: form.get('password') ?? '',
        passwordAgain: form.get('password_again') ?? '',
        acceptedTerms: form.get('accept_terms') !== null,
        ip: ctx.ip,
        userAgent: ctx.get('user-agent') || null,
      });
      pages.send(ctx, 200, 'invite_success.html', {
        user_id: userId,
        awaiting_approval: awaitingApproval,
        localpart: userId.slice(1, userId.indexOf(':')),
        address: config.public_baseurl,
      });
    } catch (err) {
      if (!(err instanceof MatrixError)) throw err;
      // The token stage refused the token: show what the link is worth now, without the form.
      if (err.errcode === 'M_UNAUTHORIZED') {
        const state = await invite.state(token);
        if (state !== 'valid') return invitePage(ctx, state, await invite.form(ctx.ip), {});
      }
      if (err.status === 403) return invitePage(ctx, await invite.state(token), await invite.form(ctx.ip), {});
      // Everything else re-renders the form with the message, the username kept (never the password).
      invitePage(ctx, 'valid', await invite.form(ctx.ip), { error: err.message, username }, err.status === 429 ? 429 : 400, err.headers);
    }
  }));

  // GET /_gatehouse/client/email/validate (?sid=&client_secret=&token=, the link in a validation mail):
  // a page with a button. Opening it validates nothing, since mail scanners open links.
  router.get('/_gatehouse/client/email/validate', page(async (ctx) => {
    const params = validationParams(new URLSearchParams(ctx.querystring));
    const purpose = await validation.purposeOf(params.sid);
    pages.send(ctx, 200, 'email_validation.html', { sid: params.sid, client_secret: params.clientSecret, token: params.token, purpose });
  }));

  // POST /_gatehouse/client/email/validate (the page's form): validates, then goes to next_link if the request gave one.
  router.post('/_gatehouse/client/email/validate', page(async (ctx) => {
    sameOrigin(ctx);
    const params = validationParams(await formBody(ctx));
    const { nextLink, purpose } = await validation.submitToken(params);
    if (nextLink !== null) {
      ctx.status = 302;
      ctx.set('Location', nextLink);
      ctx.body = '';
      return;
    }
    pages.send(ctx, 200, 'email_validation_success.html', { purpose });
  }));

  /**
   * A POST of the email page: step "send" asks for the validation mail (its
   * refusals, e.g. M_THREEPID_IN_USE, shown with the address field and their
   * status), step "continue" runs the stage with the page's validation
   * session (not validated yet: the "check your email" step again, 400).
   */
  async function emailStep(ctx: Context, stage: string, session: string, view: FallbackView, form: URLSearchParams) {
    const email = (form.get('email') ?? '').trim();
    const clientSecret = form.get('client_secret') ?? '';
    const attempt = Number(form.get('send_attempt') ?? '1');
    const sendAttempt = Number.isSafeInteger(attempt) && attempt >= 0 ? attempt : 1;
    const state: EmailFormState = { step: 'email', email, clientSecret, sendAttempt };
    if (form.get('step') === 'continue') {
      const sid = form.get('sid') ?? '';
      const outcome = await fallback.submit(stage, session, { threepid_creds: { sid, client_secret: clientSecret } }, ctx.ip);
      if (outcome.ok) return pages.send(ctx, 200, 'auth_success.html', {});
      const error =
        outcome.error.errcode === 'M_UNAUTHORIZED'
          ? 'Your address is not confirmed yet. Open the link in the mail, press Confirm on its page, then Continue here. If the link has expired, send the mail again.'
          : outcome.error.message;
      return emailForm(ctx, 400, session, view, { ...state, step: 'sent', sid, error });
    }
    if (email === '') return emailForm(ctx, 400, session, view, { ...state, error: 'Enter your email address.' });
    try {
      const { sid } = await fallback.requestEmail(stage, session, { email, clientSecret, sendAttempt, ip: ctx.ip });
      emailForm(ctx, 200, session, view, { ...state, step: 'sent', sid });
    } catch (err) {
      if (!(err instanceof MatrixError)) throw err;
      // A malformed client secret (the page's hidden field tampered with) gets a fresh one.
      const fresh = err.errcode === 'M_INVALID_PARAM' && !CLIENT_SECRET_RE.test(clientSecret);
      emailForm(ctx, err.status, session, view, { ...state, clientSecret: fresh ? randomString(32) : clientSecret, error: err.message }, err.headers);
    }
  }

  /** The email page at one of its steps. */
  function emailForm(ctx: Context, status: number, session: string, view: FallbackView, state: EmailFormState, headers: Record<string, string> = {}) {
    const vars: Record<string, unknown> = {
      session,
      myurl: ctx.path,
      step: state.step,
      purpose: view.emailPurpose ?? 'registration',
      email: state.email ?? '',
      client_secret: state.clientSecret,
      send_attempt: state.sendAttempt,
      sid: state.sid ?? '',
    };
    if (state.error) vars.error = state.error;
    pages.send(ctx, status, 'email_identity.html', vars, headers);
  }

  /** The form of a fallback stage: the token field, or the terms' documents and their box. */
  function stageForm(ctx: Context, status: number, stage: string, session: string, view: FallbackView, extra: { error?: string; token?: string }) {
    // `myurl` and `error` (only when there is one) as Synapse passes them, so Synapse's templates work too.
    const vars: Record<string, unknown> = { session, myurl: ctx.path, stage };
    if (extra.error) vars.error = extra.error;
    if (view.type === TOKEN_STAGE) {
      vars.token = extra.token ?? '';
      return pages.send(ctx, status, 'registration_token.html', vars);
    }
    const policies = policyList(view.params, ctx.get('accept-language'));
    pages.send(ctx, status, 'terms.html', { ...vars, policies, terms_url: policies.find((p) => p.url)?.url ?? '' });
  }

  function invitePage(
    ctx: Context,
    state: InviteState,
    form: InviteForm,
    extra: { error?: string; username?: string },
    errorStatus = 400,
    headers: Record<string, string> = {},
  ) {
    const status = extra.error ? errorStatus : INVITE_STATUS[state];
    pages.send(
      ctx,
      status,
      'invite.html',
      {
        state,
        username: extra.username ?? '',
        error: extra.error,
        policies: form.terms === null ? null : policyList(form.terms, ctx.get('accept-language')),
        password_rules: form.passwordRules,
        minimum_length: form.minimumLength,
      },
      headers,
    );
  }
}

/** What the email page carries from one step to the next. */
interface EmailFormState {
  step: 'email' | 'sent';
  email?: string;
  clientSecret: string;
  sendAttempt: number;
  sid?: string;
  error?: string;
}

/** The invite page's status for each state of its token. */
const INVITE_STATUS: Record<InviteState, number> = { valid: 200, unknown: 404, expired: 410, used_up: 410, closed: 403, unsupported: 403 };

/**
 * The UIA session the page is for: `?session=` (what the client opens), or
 * the form's hidden `session` field (what Synapse's templates post). Once
 * each; both must agree. 400 M_MISSING_PARAM without one.
 */
function sessionOf(ctx: Context, form: URLSearchParams | null): string {
  const q = ctx.query.session;
  const values = [...(q === undefined ? [] : Array.isArray(q) ? q : [q]), ...(form?.getAll('session') ?? [])];
  if (values.length === 0 || values[0] === '') throw missingParam('No session supplied');
  if (values.some((v) => v !== values[0])) throw new MatrixError(400, 'M_INVALID_PARAM', 'The session is given more than once');
  return values[0]!;
}

/** sid, client_secret and token of a validation link or its form, each once (400 M_MISSING_PARAM / M_INVALID_PARAM). */
function validationParams(p: URLSearchParams): { sid: string; clientSecret: string; token: string } {
  const one = (name: string) => {
    const values = p.getAll(name);
    if (values.length === 0 || values[0] === '') throw missingParam(`Missing parameter: ${name}`);
    if (values.length > 1) throw new MatrixError(400, 'M_INVALID_PARAM', `${name} is given more than once`);
    return values[0]!;
  };
  return { sid: one('sid'), clientSecret: one('client_secret'), token: one('token') };
}

/** Refuses a form that the browser says was sent from another site's page (Sec-Fetch-Site; absent in old browsers). */
function sameOrigin(ctx: Context): void {
  const site = ctx.get('sec-fetch-site');
  if (site !== '' && site !== 'same-origin' && site !== 'none') throw forbidden('This form can only be sent from its own page');
}

/** What the page says about a failed stage. */
function stageMessage(error: MatrixError): string {
  if (error.errcode === 'M_UNAUTHORIZED') return 'That token is not valid. Check that you typed it as you were given it; it may also have expired or been used up.';
  return error.message;
}

function titleFor(status: number): string {
  if (status === 404) return 'Not found';
  if (status === 429) return 'Too many requests';
  if (status === 403) return 'Not allowed';
  if (status >= 500) return 'Something went wrong';
  return 'This cannot be done';
}

/** One document of the terms, in the reader's language where the server has it. */
export interface PolicyView {
  id: string;
  version: string;
  name: string;
  /** An http(s) URL, or null when the server's value is not one (it is then not made a link). */
  url: string | null;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The documents of `m.login.terms` params (MSC1692: `{policies: {<id>:
 * {version, <lang>: {name, url}}}}`), each in the first language of
 * Accept-Language the server has (`en-GB` or `en_GB` exactly, else another
 * `en`), else English, else the first given.
 */
export function policyList(params: unknown, acceptLanguage: string): PolicyView[] {
  const policies = isObject(params) && isObject(params.policies) ? params.policies : {};
  const wanted = acceptLanguage
    .split(',')
    .map((part) => {
      const [tag = '', ...rest] = part.trim().split(';');
      const q = Number(/^\s*q=([\d.]+)/.exec(rest.join(';'))?.[1] ?? 1);
      return { tag: tag.trim().toLowerCase().replace('_', '-'), q: Number.isFinite(q) ? q : 0 };
    })
    .filter((l) => l.tag !== '' && l.tag !== '*' && l.q > 0)
    .sort((a, b) => b.q - a.q)
    .map((l) => l.tag);
  const views: PolicyView[] = [];
  for (const [id, policy] of Object.entries(policies)) {
    if (!isObject(policy)) continue;
    const langs = Object.entries(policy).filter(
      (e): e is [string, { name: string; url: string }] => e[0] !== 'version' && isObject(e[1]) && typeof e[1].name === 'string' && typeof e[1].url === 'string',
    );
    if (langs.length === 0) continue;
    const norm = (l: string) => l.toLowerCase().replace('_', '-');
    const primary = (l: string) => norm(l).split('-')[0];
    // The exact language first, then one of the same primary language (`fr` for `fr-CH`, `en_GB` for `en`).
    const find = (w: string) => langs.find(([l]) => norm(l) === w) ?? langs.find(([l]) => primary(l) === primary(w));
    const pick = wanted.map(find).find((l) => l !== undefined) ?? find('en') ?? langs[0]!;
    views.push({ id, version: typeof policy.version === 'string' ? policy.version : '', name: pick[1].name, url: httpUrl(pick[1].url) });
  }
  return views;
}

/** `url` when it is an http(s) URL (never `javascript:` or `data:` in a link), else null. */
function httpUrl(url: string): string | null {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.toString() : null;
  } catch {
    return null;
  }
}
