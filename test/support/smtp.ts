// A real SMTP server on loopback (the `smtp-server` package) that keeps what
// it receives, for tests that follow the link in a validation mail. No TLS:
// STARTTLS is not offered, so a client that requires it fails. Messages are
// parsed here (nodemailer's output is plain MIME: multipart/alternative with
// quoted-printable or base64 parts), as no mail parser is installed.

import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  /** The From header, decoded. */
  from: string;
  /** The envelope's recipients (RCPT TO), as given. */
  to: string[];
  /** The Subject header, decoded. */
  subject: string;
  /** The text/plain part, decoded, with LF line ends. */
  text: string;
  /** The text/html part, decoded, with LF line ends. */
  html: string;
  /** The message as received (after the SMTP dot-unstuffing). */
  raw: string;
}

export interface SmtpListener {
  port: number;
  host: '127.0.0.1';
  messages: ReceivedMail[];
  /** Resolves with the next message sent to `to` (already received ones count), rejects after timeoutMs (default 5000). */
  waitFor(to: string, timeoutMs?: number): Promise<ReceivedMail>;
  /** The first http(s) URL in the text body. */
  linkIn(mail: ReceivedMail): string;
  /** Make the listener refuse messages (respond 5xx) or accept again. */
  setRejecting(on: boolean): void;
  close(): Promise<void>;
}

/** The credentials each listener asks for (for emailSection). */
const credentials = new WeakMap<SmtpListener, { user: string; pass: string }>();

/**
 * Starts a listener on 127.0.0.1 and a free port. With `auth`, a client must
 * sign in (PLAIN or LOGIN) with exactly these credentials; without, signing in
 * is optional and any credentials pass. While rejecting, every recipient is
 * refused with 550.
 */
export async function startSmtpListener(opts: { auth?: { user: string; pass: string } } = {}): Promise<SmtpListener> {
  const messages: ReceivedMail[] = [];
  const claimed = new Set<ReceivedMail>();
  const waiters: { to: string; resolve: (m: ReceivedMail) => void }[] = [];
  let rejecting = false;

  const matches = (m: ReceivedMail, to: string) => m.to.some((r) => r.toLowerCase() === to.toLowerCase());
  const deliver = (m: ReceivedMail) => {
    messages.push(m);
    const i = waiters.findIndex((w) => matches(m, w.to));
    if (i >= 0) {
      claimed.add(m);
      waiters.splice(i, 1)[0]!.resolve(m);
    }
  };

  const server = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS'],
    authOptional: !opts.auth,
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    closeTimeout: 1000,
    onAuth(auth, _session, callback) {
      if (opts.auth && (auth.username !== opts.auth.user || auth.password !== opts.auth.pass))
        return callback(new Error('Invalid username or password'));
      callback(null, { user: auth.username });
    },
    onRcptTo(_address, _session, callback) {
      if (rejecting) return callback(Object.assign(new Error('Mailbox unavailable'), { responseCode: 550 }));
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        deliver({ ...parseMessage(raw), to: session.envelope.rcptTo.map((r) => r.address), raw });
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;

  const listener: SmtpListener = {
    port,
    host: '127.0.0.1',
    messages,
    waitFor(to, timeoutMs = 5000) {
      const already = messages.find((m) => !claimed.has(m) && matches(m, to));
      if (already) {
        claimed.add(already);
        return Promise.resolve(already);
      }
      return new Promise((resolve, reject) => {
        const waiter = {
          to,
          resolve: (m: ReceivedMail) => {
            clearTimeout(timer);
            resolve(m);
          },
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`no mail to ${to} within ${timeoutMs} ms (${messages.length} received in all)`));
        }, timeoutMs);
        waiters.push(waiter);
      });
    },
    linkIn(mail) {
      const m = /https?:\/\/[^\s<>"']+/.exec(mail.text);
      if (!m) throw new Error(`no link in the mail's text: ${JSON.stringify(mail.text)}`);
      return m[0];
    },
    setRejecting(on) {
      rejecting = on;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  if (opts.auth) credentials.set(listener, opts.auth);
  return listener;
}

/** A config `email` section pointing at the listener (no TLS on loopback: enable_tls false), with its credentials if it asks for some. */
export function emailSection(smtp: SmtpListener, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const auth = credentials.get(smtp);
  return {
    smtp_host: smtp.host,
    smtp_port: smtp.port,
    enable_tls: false,
    notif_from: 'Gatehouse <noreply@gatehouse.test>',
    ...(auth ? { smtp_user: auth.user, smtp_pass: auth.pass } : {}),
    ...extra,
  };
}

// ---------------------------------------------------------------------------
// A small MIME reader: enough for what nodemailer writes.
// ---------------------------------------------------------------------------

interface Part {
  headers: Map<string, string>;
  body: string;
}

function splitPart(s: string): Part {
  const end = s.search(/\r?\n\r?\n/);
  const head = end < 0 ? s : s.slice(0, end);
  const body = end < 0 ? '' : s.slice(end).replace(/^\r?\n\r?\n/, '');
  const headers = new Map<string, string>();
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  return { headers, body };
}

/** RFC 2047 encoded words (`=?UTF-8?Q?...?=`, `=?UTF-8?B?...?=`); whitespace between two of them is dropped. */
function decodeWords(v: string): string {
  return v
    .replace(/(\?=)\s+(=\?)/g, '$1$2')
    .replace(/=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g, (_, _charset: string, enc: string, text: string) =>
      enc.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64').toString('utf8')
        : bytesToUtf8(text.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_h, h: string) => String.fromCharCode(parseInt(h, 16)))),
    );
}

const bytesToUtf8 = (latin1: string) => Buffer.from(latin1, 'latin1').toString('utf8');

function decodeBody(body: string, encoding: string): string {
  switch (encoding.toLowerCase()) {
    case 'base64':
      return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
    case 'quoted-printable':
      return bytesToUtf8(body.replace(/=\r?\n/g, '').replace(/=([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))));
    default:
      return body;
  }
}

/** A header's parameter (`boundary="..."`). */
function param(header: string, name: string): string | null {
  const m = new RegExp(`;\\s*${name}="?([^";]+)"?`, 'i').exec(header);
  return m ? m[1]! : null;
}

/** The text/plain and text/html leaves of a part, depth first. */
function leaves(part: Part, out: { text?: string; html?: string }): void {
  const type = part.headers.get('content-type') ?? 'text/plain';
  const boundary = param(type, 'boundary');
  if (/^multipart\//i.test(type) && boundary) {
    const sections = part.body.split(`--${boundary}`);
    // Before the first delimiter is the preamble; from `--boundary--` on, the epilogue.
    for (const section of sections.slice(1)) {
      if (section.startsWith('--')) break;
      // The line break before a delimiter belongs to the delimiter (RFC 2046 §5.1.1).
      leaves(splitPart(section.replace(/^\r?\n/, '').replace(/\r?\n$/, '')), out);
    }
    return;
  }
  const decoded = decodeBody(part.body, part.headers.get('content-transfer-encoding') ?? '7bit').replace(/\r\n/g, '\n');
  if (/^text\/html/i.test(type)) out.html ??= decoded;
  else if (/^text\/plain/i.test(type)) out.text ??= decoded;
}

function parseMessage(raw: string): Omit<ReceivedMail, 'to' | 'raw'> {
  const top = splitPart(raw);
  const out: { text?: string; html?: string } = {};
  leaves(top, out);
  return {
    from: decodeWords(top.headers.get('from') ?? ''),
    subject: decodeWords(top.headers.get('subject') ?? ''),
    text: out.text ?? '',
    html: out.html ?? '',
  };
}
