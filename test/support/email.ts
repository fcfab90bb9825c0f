// Helpers for tests that follow validation mails: take a link's path to the
// test server (links use public_baseurl or https://<server_name>/, the test
// server listens elsewhere), read the parameters a link carries, and click it
// as a person would (open the page, press its button).

import net, { type AddressInfo } from 'node:net';
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

/** clickLink, expecting the page to say the address is confirmed (200: no next_link to go to). */
export async function confirmLink(hs: TestServer, smtp: SmtpListener, mail: ReceivedMail): Promise<void> {
  expect((await clickLink(hs, smtp, mail)).status).toBe(200);
}

/** A TCP relay in front of an SMTP listener that holds every answer of the server back by `delayMs`. */
export interface SlowSmtp {
  /** The listener behind the relay, with the relay's port: give it to emailSection (a listener that asks for credentials is not supported). */
  smtp: SmtpListener;
  close(): Promise<void>;
}

/**
 * A slow mail server for timing tests: a relay on loopback that passes the
 * client's bytes to `smtp` at once and the server's answers after `delayMs`
 * each (greeting, EHLO, MAIL, RCPT, DATA...), in order. A request that waits
 * for its mail is then slower by several times `delayMs`.
 */
export async function slowSmtp(smtp: SmtpListener, delayMs: number): Promise<SlowSmtp> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(smtp.port, smtp.host);
    sockets.add(client).add(upstream);
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => {
      setTimeout(() => {
        if (!client.destroyed) client.write(chunk);
      }, delayMs);
    });
    const end = () => {
      setTimeout(() => {
        client.destroy();
        upstream.destroy();
      }, delayMs);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    // The relay answers on its own port; the rest (messages, waitFor...) is the listener behind it.
    smtp: Object.assign(Object.create(smtp) as SmtpListener, { port }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
