// Helpers for tests that follow validation mails: take a link's path to the
// test server (links use public_baseurl or https://<server_name>/, the test
// server listens elsewhere), read the parameters a link carries, and click it
// as a person would (open the page, press its button).

import { expect } from 'vitest';
import type { TestServer } from './server.js';
import type { ReceivedMail, SmtpListener } from './smtp.js';

/** The path and query of a link in a mail (links use public_baseurl; the test server listens elsewhere). */
export const localPath = (link: string): string => {
  const u = new URL(link);
  return u.pathname + u.search;
};

/** The sid, client_secret and token a mail's link carries. */
export const linkParams = (smtp: SmtpListener, mail: ReceivedMail): { sid: string; client_secret: string; token: string } => {
  const u = new URL(smtp.linkIn(mail));
  return { sid: u.searchParams.get('sid')!, client_secret: u.searchParams.get('client_secret')!, token: u.searchParams.get('token')! };
};

/** Follows the mail's link and presses the button, as a person would. The answer of the button's POST (redirects not followed). */
export async function clickLink(hs: TestServer, smtp: SmtpListener, mail: ReceivedMail): Promise<Response> {
  const path = localPath(smtp.linkIn(mail));
  const page = await fetch(hs.url + path);
  expect(page.status).toBe(200);
  const p = linkParams(smtp, mail);
  return fetch(hs.url + '/_gatehouse/client/email/validate', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ sid: p.sid, client_secret: p.client_secret, token: p.token }).toString(),
    redirect: 'manual',
  });
}
