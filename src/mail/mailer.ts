// Sends the validation mails over SMTP (nodemailer), with the `email`
// section's TLS settings. Every failure becomes a MailDeliveryError whose
// message says what failed in words an admin can act on, built from
// nodemailer's error codes only: never the server's reply text (it may echo
// the recipient's address) and never the SMTP password.

import { domainToASCII } from 'node:url';
import type nodemailer from 'nodemailer';
import type { Mail } from 'nodemailer';
import type { SMTPSentMessageInfo, SMTPTransportOptions } from 'nodemailer/lib/smtp-transport';
import addressparser from 'nodemailer/lib/addressparser';
import type { Logger } from 'pino';
import type { EmailConfig } from '../config/email.js';
import { lazyModule } from '../lazy-module.js';
import { formatPlaceholders, MailTemplates, type MailKind } from './templates.js';

/** nodemailer (~60 ms to load), loaded with the first mail's transport. */
const loadNodemailer = lazyModule<typeof nodemailer>('nodemailer');

export type { MailKind } from './templates.js';

export interface ValidationMailVars {
  /** The link the person follows (an https URL to Gatehouse's validation page). */
  link: string;
  /** The token itself, for people who type it in. */
  token: string;
  address: string;
  server_name: string;
}

/** Thrown when the SMTP server cannot be reached or refuses the message; `message` is safe to log (no secrets, no address). */
export class MailDeliveryError extends Error {
  override readonly name = 'MailDeliveryError';
  /** nodemailer's error code (ECONNECTION, EAUTH, EENVELOPE, ETLS...), or null when the mail could not be built. */
  readonly code: string | null;
  constructor(message: string, code: string | null = null) {
    super(message);
    this.code = code;
  }
}

export interface MailerOptions {
  /**
   * The admin's `templates.custom_template_directory`, searched before
   * `email.template_dir` (as Synapse), then Gatehouse's own templates.
   */
  customTemplateDirectory?: string | null;
}

/** What nodemailer puts on its errors (all optional). */
interface SmtpError {
  code?: string;
  originalCode?: string;
  responseCode?: number;
  command?: string;
}

/** Bounds (ms) so that an SMTP server that hangs cannot hold a request for long. */
const CONNECTION_TIMEOUT = 10_000;
const GREETING_TIMEOUT = 10_000;
const SOCKET_TIMEOUT = 30_000;

export class Mailer {
  private transportCache: Mail<SMTPSentMessageInfo, SMTPTransportOptions> | null = null;
  private readonly templates: MailTemplates;

  constructor(
    private readonly config: EmailConfig,
    private readonly logger: Logger,
    options: MailerOptions = {},
  ) {
    const dirs = [options.customTemplateDirectory ?? null, config.template_dir].filter((d): d is string => d !== null);
    this.templates = new MailTemplates(dirs);
  }

  /**
   * The SMTP transport, made on the first mail: nodemailer (~60 ms to load)
   * is loaded then, so a server with `email` configured starts without it,
   * as one without `email` (and `start --ephemeral`) does.
   */
  private get transport(): Mail<SMTPSentMessageInfo, SMTPTransportOptions> {
    if (this.transportCache === null) {
      const { createTransport } = loadNodemailer();
      const config = this.config;
      this.transportCache = createTransport({
        host: config.smtp_host,
        port: config.smtp_port,
        secure: config.force_tls,
        requireTLS: config.require_transport_security,
        ignoreTLS: !config.enable_tls,
        auth: config.smtp_user !== null ? { user: config.smtp_user, pass: config.smtp_pass ?? '' } : undefined,
        // Certificates are always checked, against smtp_host (as Synapse).
        tls: { rejectUnauthorized: true },
        connectionTimeout: CONNECTION_TIMEOUT,
        greetingTimeout: GREETING_TIMEOUT,
        socketTimeout: SOCKET_TIMEOUT,
        // Mails carry no attachments: nothing may read a file or fetch a URL.
        disableFileAccess: true,
        disableUrlAccess: true,
      });
    }
    return this.transportCache;
  }

  /** Compiles and renders every mail template once; throws an Error naming the broken one (`template registration.html: ...`). */
  verify(): void {
    this.templates.verify();
  }

  /**
   * verify() when a custom template folder is configured (`templates.custom_template_directory`,
   * `email.template_dir`): called at start, so that a broken custom template stops the server.
   * Gatehouse's own templates alone compile on the first mail.
   */
  verifyCustom(): void {
    this.templates.verifyCustom();
  }

  /**
   * Renders the `kind` mail (subject, text and HTML) and sends it to `to`.
   * Resolves when the SMTP server accepted it. Throws MailDeliveryError when
   * `to` is not one address, a template fails, or the server cannot be
   * reached or refuses the sender, the recipient or the message.
   */
  async sendValidation(kind: MailKind, to: string, vars: ValidationMailVars): Promise<void> {
    const recipient = singleAddress(to);
    if (recipient === null) throw new MailDeliveryError('mail not sent: the recipient is not one email address');
    // The mail names the address it is sent to, whatever `vars.address` says.
    const templateVars = { ...vars, address: recipient, app_name: this.config.app_name };
    let text: string;
    let html: string;
    try {
      ({ text, html } = this.templates.render(kind, templateVars));
    } catch (err) {
      this.logger.error({ err: { message: (err as Error).message }, kind }, 'cannot render a validation mail');
      throw new MailDeliveryError(`mail not sent: ${(err as Error).message}`);
    }
    const subjectTemplate = kind === 'password_reset' ? this.config.subjects.password_reset : this.config.subjects.email_validation;
    // No line break may reach a header, whatever server_name or app_name hold.
    const subject = formatPlaceholders(subjectTemplate, { server_name: vars.server_name, app: this.config.app_name }).replace(/[\r\n]+/g, ' ');

    // RFC 5321 domains are ASCII: a Unicode domain travels as punycode (the mail's text shows it in Unicode).
    const at = recipient.lastIndexOf('@');
    const asciiRecipient = `${recipient.slice(0, at)}@${domainToASCII(recipient.slice(at + 1)) || recipient.slice(at + 1)}`;
    try {
      const info = await this.transport.sendMail({
        from: this.config.notif_from,
        to: { name: '', address: asciiRecipient },
        // The envelope names the one recipient, whatever the headers say.
        envelope: { from: envelopeSender(this.config.notif_from), to: [asciiRecipient] },
        subject,
        text,
        html,
        // RFC 3834: an automatic message (no out-of-office replies to it).
        headers: { 'Auto-Submitted': 'auto-generated' },
      });
      if (info.rejected.length > 0) throw Object.assign(new Error('recipient rejected'), { code: 'EENVELOPE', command: 'RCPT TO' });
      this.logger.info({ kind, messageId: info.messageId }, 'validation mail sent');
      this.logger.debug({ kind, address: recipient }, 'validation mail sent to this address');
    } catch (err) {
      const e = err as SmtpError;
      const failure = new MailDeliveryError(`mail not sent: ${this.describe(e)}`, e.code ?? null);
      this.logger.warn(
        { err: { code: e.code, originalCode: e.originalCode, responseCode: e.responseCode, command: e.command }, kind },
        failure.message,
      );
      this.logger.debug({ kind, address: recipient }, 'the failed validation mail was for this address');
      throw failure;
    }
  }

  /** Closes the transport's connections. */
  close(): void {
    this.transportCache?.close();
  }

  /** What failed, for the admin: from the error's codes only (the server's reply text may hold the address). */
  private describe(e: SmtpError): string {
    const server = `the SMTP server ${this.config.smtp_host}:${this.config.smtp_port}`;
    const what = (() => {
      switch (e.code) {
        case 'ECONNECTION':
        case 'ESOCKET':
          if (e.originalCode === 'ECONNREFUSED') return `cannot connect to ${server} (connection refused)`;
          if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(e.originalCode ?? ''))
            return `${server}'s TLS certificate is not valid for ${this.config.smtp_host}`;
          if (/^ERR_(SSL|TLS)_/.test(e.originalCode ?? ''))
            return this.config.force_tls
              ? `the TLS handshake with ${server} failed (email.force_tls: does the server speak TLS from the start on this port?)`
              : `the TLS handshake with ${server} failed`;
          return `the connection to ${server} failed`;
        case 'ECONNREFUSED':
          return `cannot connect to ${server} (connection refused)`;
        case 'ETIMEDOUT':
          return `${server} did not answer in time`;
        case 'EDNS':
          return `cannot find ${server} (DNS)`;
        case 'ETLS':
          return this.config.require_transport_security
            ? `${server} does not offer STARTTLS, which email.require_transport_security requires, or the TLS handshake failed`
            : `the TLS handshake with ${server} failed`;
        case 'EAUTH':
          return `${server} refused the login of email.smtp_user`;
        case 'ENOAUTH':
          return `${server} asks for a login: set email.smtp_user and email.smtp_pass`;
        case 'EENVELOPE':
          // 530: "Authentication required".
          if (e.responseCode === 530) return `${server} asks for a login: set email.smtp_user and email.smtp_pass`;
          if (e.command === 'MAIL FROM') return `${server} refused the sender (email.notif_from)`;
          if (e.command === 'RCPT TO') return `${server} rejected the recipient`;
          return `${server} refused the message envelope`;
        case 'EMESSAGE':
          return `${server} refused the message`;
        case 'EPROTOCOL':
          return `${server} gave an answer that is not SMTP`;
        default:
          return `sending through ${server} failed`;
      }
    })();
    const codes = [e.code, e.originalCode].filter((c): c is string => typeof c === 'string' && /^[A-Z0-9_]{1,40}$/.test(c));
    const details = [...new Set(codes)].join('/') + (e.responseCode ? `, SMTP ${e.responseCode}` : '');
    return details ? `${what} [${details}]` : what;
  }
}

/** The one mailbox of `to`, or null when it holds no address, several, or a line break. */
function singleAddress(to: string): string | null {
  if (/[\r\n]/.test(to)) return null;
  const boxes = addressparser(to, { flatten: true });
  if (boxes.length !== 1) return null;
  const address = boxes[0]!.address;
  return address === to.trim() && /^[^@\s]+@[^@\s]+$/.test(address) ? address : null;
}

/** The address of `notif_from` (validated by the config) for the envelope's MAIL FROM. */
function envelopeSender(from: string): string {
  return addressparser(from, { flatten: true })[0]?.address ?? from;
}
