// Synapse's `email` section: how Gatehouse sends mail (the SMTP server, TLS,
// the sender) and the validation mails' lifetime, templates and subjects.
// Keys Synapse uses for features Gatehouse lacks (notifications, invites by
// email) are accepted quietly: none of them restricts who may do what.

import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import addressparser from 'nodemailer/lib/addressparser';
import { formatPlaceholders, unknownPlaceholders } from '../mail/templates.js';
import type { Section } from './load.js';

export interface EmailConfig {
  /** The SMTP server's host name or IP address. Default "localhost". */
  smtp_host: string;
  /** Default 25, or 465 with `force_tls` (as Synapse). */
  smtp_port: number;
  smtp_user: string | null;
  smtp_pass: string | null;
  /** STARTTLS is required: no mail goes out over a plain connection. Default false. */
  require_transport_security: boolean;
  /** Use STARTTLS when the server offers it. false: never use TLS. Default true. */
  enable_tls: boolean;
  /** TLS from the first byte (implicit TLS, "SMTPS"). Default false. */
  force_tls: boolean;
  /** The From header, `%(app)s` already replaced by `app_name`. Required when the section is given. */
  notif_from: string;
  /** Default "Matrix". */
  app_name: string;
  /** How long a validation token can be used, in milliseconds. Default 1 h. */
  validation_token_lifetime: number;
  /** Synapse's (deprecated) `email.template_dir`, absolute; null: none. */
  template_dir: string | null;
  /** Synapse's `email.subjects` keys; `%(server_name)s` and `%(app)s` are replaced when a mail is sent. */
  subjects: { email_validation: string; password_reset: string };
}

/** Synapse's subjects for the validation mails. */
export const DEFAULT_SUBJECTS = {
  email_validation: '[%(server_name)s] Validate your email',
  password_reset: '[%(server_name)s] Password reset',
} as const;

/** Synapse's subjects of notification mails, which Gatehouse does not send: accepted, unused. */
const NOTIFICATION_SUBJECTS = [
  'message_from_person_in_room', 'message_from_person', 'messages_from_person', 'messages_in_room',
  'messages_in_room_and_others', 'messages_from_person_and_others', 'invite_from_person',
  'invite_from_person_to_room', 'invite_from_person_to_space',
];

/** Synapse's `email` keys for notifications, account expiry and invites: features Gatehouse lacks. */
const NOTIFICATION_KEYS = [
  'enable_notifs', 'notif_for_new_users', 'notif_delay_before_mail', 'client_base_url', 'riot_base_url',
  'invite_client_location', 'notif_template_html', 'notif_template_text', 'expiry_template_html', 'expiry_template_text',
];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Reads the `email` section. Null when the config has none, or an empty or
 * null one (as Synapse, which takes `email: {}` as "email is not set up").
 * Problems go to `errors` with the key's path; `track` registers the
 * sections for unknown-key warnings; `baseDir` anchors `template_dir`.
 */
export function emailConfig(root: Section, track: (s: Section) => Section, errors: string[], baseDir: string): EmailConfig | null {
  const raw = root.peek('email');
  const s = track(root.section('email'));
  if (!isObject(raw) || Object.keys(raw).length === 0) return null;

  const forceTls = s.boolean('force_tls', false);
  const enableTls = s.boolean('enable_tls', true);
  const requireTls = s.boolean('require_transport_security', false);
  // As Synapse: both ask for TLS, which enable_tls: false forbids.
  if (forceTls && !enableTls) errors.push('email.force_tls: requires email.enable_tls to be true');
  if (requireTls && !enableTls) errors.push('email.require_transport_security: requires email.enable_tls to be true');

  const host = s.string('smtp_host', 'localhost');
  if (host.trim() === '' || /[\s/]/.test(host)) errors.push(`email.smtp_host: ${JSON.stringify(host)} is not a host name or IP address`);

  const user = s.optionalString('smtp_user');
  const pass = s.optionalString('smtp_pass');
  if (s.has('smtp_user') !== s.has('smtp_pass'))
    errors.push('email.smtp_user, email.smtp_pass: give both (to sign in to the SMTP server) or neither');

  const appName = s.string('app_name', 'Matrix');
  const notifFrom = fromAddress(s, appName, errors);

  s.accept(...NOTIFICATION_KEYS);
  let lifetime = s.duration('validation_token_lifetime', 3_600_000) ?? 3_600_000;
  if (lifetime <= 0) {
    errors.push('email.validation_token_lifetime: must be more than 0');
    lifetime = 3_600_000;
  }

  return {
    smtp_host: host,
    // As Synapse: implicit TLS listens on 465 (RFC 8314), STARTTLS on 25.
    smtp_port: s.number('smtp_port', forceTls ? 465 : 25, { integer: true, min: 1, max: 65535 }),
    smtp_user: user,
    smtp_pass: pass,
    require_transport_security: requireTls,
    enable_tls: enableTls,
    force_tls: forceTls,
    notif_from: notifFrom,
    app_name: appName,
    validation_token_lifetime: lifetime,
    template_dir: templateDir(s, baseDir, errors),
    subjects: subjects(track(s.section('subjects')), errors),
  };
}

/** `notif_from` with `%(app)s` replaced: required, one mailbox with an address (nodemailer's parser), no line breaks. */
function fromAddress(s: Section, appName: string, errors: string[]): string {
  const given = s.optionalString('notif_from');
  if (given === null) {
    if (!s.has('notif_from')) errors.push('email.notif_from: required (the From address of the mails, such as "Matrix <noreply@example.org>")');
    return '';
  }
  for (const name of unknownPlaceholders(given, ['app']))
    errors.push(`email.notif_from: unknown placeholder %(${name})s (only %(app)s can be used)`);
  const from = formatPlaceholders(given, { app: appName });
  const mailboxes = addressparser(from, { flatten: true });
  if (/[\r\n]/.test(from) || mailboxes.length !== 1 || !/^[^@\s]+@[^@\s]+$/.test(mailboxes[0]!.address))
    errors.push(`email.notif_from: ${JSON.stringify(given)} is not one email address (such as "Matrix <noreply@example.org>")`);
  return from;
}

/** Synapse's `email.template_dir` (deprecated there for `templates.custom_template_directory`): a directory, made absolute. */
function templateDir(s: Section, baseDir: string, errors: string[]): string | null {
  const given = s.optionalString('template_dir');
  if (given === null) return null;
  const dir = resolve(baseDir, given);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    /* reported below */
  }
  if (!isDir) errors.push(`email.template_dir: ${dir} is not a directory`);
  return dir;
}

function subjects(s: Section, errors: string[]): EmailConfig['subjects'] {
  s.accept(...NOTIFICATION_SUBJECTS);
  const subject = (k: keyof typeof DEFAULT_SUBJECTS): string => {
    const v = s.string(k, DEFAULT_SUBJECTS[k]);
    for (const name of unknownPlaceholders(v, ['app', 'server_name']))
      errors.push(`email.subjects.${k}: unknown placeholder %(${name})s (only %(app)s and %(server_name)s can be used)`);
    if (/[\r\n]/.test(v)) errors.push(`email.subjects.${k}: must be one line`);
    return v;
  };
  return { email_validation: subject('email_validation'), password_reset: subject('password_reset') };
}
