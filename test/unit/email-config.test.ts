// Synapse's `email` section (src/config/email.ts): defaults, every key, the
// problems reported with their key's path, %(app)s in notif_from, template_dir
// and the keys accepted quietly; and that docs/configuration.md describes
// every key.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { emailConfig, type EmailConfig } from '../../src/config/email.js';
import { Section } from '../../src/config/load.js';

const base = mkdtempSync(join(tmpdir(), 'gatehouse-email-config-'));
mkdirSync(join(base, 'mail-templates'));
writeFileSync(join(base, 'not-a-dir'), '');
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** Reads `raw` as the whole config: the email config (or null), the problems and the unknown-key warnings. */
function read(raw: Record<string, unknown>) {
  const errors: string[] = [];
  const sections: Section[] = [];
  const track = (s: Section) => (sections.push(s), s);
  const config = emailConfig(track(new Section(raw, '', errors)), track, errors, base);
  // The root's other keys are not the email section's business.
  const warnings = sections.slice(1).flatMap((s) => s.unknownKeys());
  return { config, errors, warnings };
}

function ok(section: unknown): EmailConfig {
  const { config, errors, warnings } = read({ email: section });
  expect(errors).toEqual([]);
  expect(warnings).toEqual([]);
  expect(config).not.toBeNull();
  return config!;
}

function problemsOf(section: unknown): string[] {
  const { errors } = read({ email: section });
  expect(errors.length).toBeGreaterThan(0);
  return errors;
}

describe('email', () => {
  it('is null without a section, with a null one, or an empty one (as Synapse: email is not set up)', () => {
    for (const raw of [{}, { email: null }, { email: {} }]) {
      const { config, errors, warnings } = read(raw);
      expect(config).toBeNull();
      expect(errors).toEqual([]);
      expect(warnings).toEqual([]);
    }
  });

  it("has Synapse's defaults", () => {
    expect(ok({ notif_from: 'noreply@example.org' })).toEqual({
      smtp_host: 'localhost',
      smtp_port: 25,
      smtp_user: null,
      smtp_pass: null,
      require_transport_security: false,
      enable_tls: true,
      force_tls: false,
      notif_from: 'noreply@example.org',
      app_name: 'Matrix',
      validation_token_lifetime: 3_600_000,
      template_dir: null,
      subjects: { email_validation: '[%(server_name)s] Validate your email', password_reset: '[%(server_name)s] Password reset' },
    });
  });

  it('defaults smtp_port to 465 with force_tls (as Synapse)', () => {
    expect(ok({ notif_from: 'noreply@example.org', force_tls: true }).smtp_port).toBe(465);
    expect(ok({ notif_from: 'noreply@example.org', force_tls: true, smtp_port: 2465 }).smtp_port).toBe(2465);
  });

  it('reads every key', () => {
    expect(
      ok({
        smtp_host: 'mail.example.org',
        smtp_port: 587,
        smtp_user: 'matrix',
        smtp_pass: 's3cret',
        require_transport_security: true,
        enable_tls: true,
        force_tls: false,
        notif_from: 'Your %(app)s homeserver <noreply@example.org>',
        app_name: 'Example Chat',
        validation_token_lifetime: '15m',
        template_dir: 'mail-templates',
        subjects: { email_validation: '[%(app)s] Confirm', password_reset: '%(server_name)s: reset' },
      }),
    ).toEqual({
      smtp_host: 'mail.example.org',
      smtp_port: 587,
      smtp_user: 'matrix',
      smtp_pass: 's3cret',
      require_transport_security: true,
      enable_tls: true,
      force_tls: false,
      notif_from: 'Your Example Chat homeserver <noreply@example.org>',
      app_name: 'Example Chat',
      validation_token_lifetime: 900_000,
      template_dir: join(base, 'mail-templates'),
      subjects: { email_validation: '[%(app)s] Confirm', password_reset: '%(server_name)s: reset' },
    });
  });

  it('replaces %(app)s in notif_from with the default app_name, and %% with %', () => {
    expect(ok({ notif_from: '%(app)s 100%% <noreply@example.org>' }).notif_from).toBe('Matrix 100% <noreply@example.org>');
  });

  it('takes template_dir as given when absolute, relative to the config file otherwise', () => {
    const abs = join(base, 'mail-templates');
    expect(ok({ notif_from: 'a@example.org', template_dir: abs }).template_dir).toBe(abs);
    expect(ok({ notif_from: 'a@example.org', template_dir: './mail-templates/' }).template_dir).toBe(abs);
  });

  it('accepts Synapse\'s notification keys and subjects quietly', () => {
    ok({
      notif_from: 'a@example.org',
      enable_notifs: true,
      notif_for_new_users: false,
      notif_delay_before_mail: '10m',
      client_base_url: 'https://app.example.org',
      riot_base_url: 'https://app.example.org',
      invite_client_location: 'https://app.example.org',
      notif_template_html: 'notif_mail.html',
      notif_template_text: 'notif_mail.txt',
      expiry_template_html: 'notice_expiry.html',
      expiry_template_text: 'notice_expiry.txt',
      subjects: { message_from_person_in_room: 'x', invite_from_person_to_space: 'y' },
    });
  });

  it('warns about unknown keys, in the section and in subjects', () => {
    const { errors, warnings } = read({ email: { notif_from: 'a@example.org', smtp_hots: 'x', subjects: { pasword_reset: 'y' } } });
    expect(errors).toEqual([]);
    expect(warnings.sort()).toEqual(['email.smtp_hots', 'email.subjects.pasword_reset']);
  });

  it('requires notif_from', () => {
    expect(problemsOf({ smtp_host: 'mail.example.org' })).toEqual([expect.stringMatching(/^email\.notif_from: required/)]);
  });

  it.each([
    ['no address', 'Matrix'],
    ['an empty string', ''],
    ['two addresses', 'a@example.org, b@example.org'],
    ['a line break', 'Matrix <a@example.org>\r\nBcc: b@example.org'],
    ['a name without address', 'Matrix <>'],
  ])('refuses a notif_from with %s', (_what, from) => {
    expect(problemsOf({ notif_from: from })).toEqual([expect.stringMatching(/^email\.notif_from: .* is not one email address/)]);
  });

  it('refuses placeholders Synapse would not fill', () => {
    expect(problemsOf({ notif_from: '%(server_name)s <a@example.org>' })).toEqual([
      expect.stringMatching(/^email\.notif_from: unknown placeholder %\(server_name\)s/),
    ]);
    expect(problemsOf({ notif_from: 'a@example.org', subjects: { email_validation: '%(person)s wants you' } })).toEqual([
      'email.subjects.email_validation: unknown placeholder %(person)s (only %(app)s and %(server_name)s can be used)',
    ]);
    expect(problemsOf({ notif_from: 'a@example.org', subjects: { password_reset: 'a\nb' } })).toEqual(['email.subjects.password_reset: must be one line']);
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['smtp_host', { smtp_host: 25 }, /^email\.smtp_host: expected a string/],
    ['smtp_host', { smtp_host: '' }, /^email\.smtp_host: "" is not a host name/],
    ['smtp_host', { smtp_host: 'mail example' }, /^email\.smtp_host: /],
    ['smtp_port', { smtp_port: '587' }, /^email\.smtp_port: expected an integer/],
    ['smtp_port', { smtp_port: 0 }, /^email\.smtp_port: 0 is out of range \[1, 65535\]/],
    ['smtp_port', { smtp_port: 65536 }, /^email\.smtp_port: 65536 is out of range/],
    ['smtp_port', { smtp_port: 25.5 }, /^email\.smtp_port: expected an integer/],
    ['smtp_user', { smtp_user: 5, smtp_pass: 'x' }, /^email\.smtp_user: expected a string/],
    ['smtp_pass', { smtp_user: 'x', smtp_pass: ['x'] }, /^email\.smtp_pass: expected a string/],
    ['require_transport_security', { require_transport_security: 'yes' }, /^email\.require_transport_security: expected true or false/],
    ['enable_tls', { enable_tls: 1 }, /^email\.enable_tls: expected true or false/],
    ['force_tls', { force_tls: 'true' }, /^email\.force_tls: expected true or false/],
    ['app_name', { app_name: 7 }, /^email\.app_name: expected a string/],
    ['validation_token_lifetime', { validation_token_lifetime: 'soon' }, /^email\.validation_token_lifetime: expected a duration/],
    ['validation_token_lifetime', { validation_token_lifetime: 0 }, /^email\.validation_token_lifetime: must be more than 0/],
    ['validation_token_lifetime', { validation_token_lifetime: -5 }, /^email\.validation_token_lifetime: /],
    ['template_dir', { template_dir: 3 }, /^email\.template_dir: expected a string/],
    ['template_dir', { template_dir: 'no-such-folder' }, /^email\.template_dir: .*no-such-folder is not a directory/],
    ['template_dir', { template_dir: 'not-a-dir' }, /^email\.template_dir: .*not-a-dir is not a directory/],
    ['subjects', { subjects: 'Hello' }, /^email\.subjects: expected a mapping/],
    ['subjects', { subjects: { email_validation: 1 } }, /^email\.subjects\.email_validation: expected a string/],
  ])('refuses a bad %s, naming the key (%j)', (_key, section, problem) => {
    expect(problemsOf({ notif_from: 'a@example.org', ...section })).toEqual([expect.stringMatching(problem)]);
  });

  it('refuses smtp_user without smtp_pass and the reverse', () => {
    expect(problemsOf({ notif_from: 'a@example.org', smtp_user: 'matrix' })).toEqual([expect.stringMatching(/^email\.smtp_user, email\.smtp_pass: give both/)]);
    expect(problemsOf({ notif_from: 'a@example.org', smtp_pass: 'x' })).toEqual([expect.stringMatching(/^email\.smtp_user, email\.smtp_pass: give both/)]);
  });

  it('refuses TLS settings that contradict enable_tls: false (as Synapse); force_tls with require_transport_security is fine', () => {
    expect(problemsOf({ notif_from: 'a@example.org', enable_tls: false, force_tls: true })).toEqual([
      'email.force_tls: requires email.enable_tls to be true',
    ]);
    expect(problemsOf({ notif_from: 'a@example.org', enable_tls: false, require_transport_security: true })).toEqual([
      'email.require_transport_security: requires email.enable_tls to be true',
    ]);
    expect(ok({ notif_from: 'a@example.org', force_tls: true, require_transport_security: true })).toMatchObject({ force_tls: true, require_transport_security: true });
  });

  it('refuses a section that is not a mapping', () => {
    for (const bad of ['smtp.example.org', ['smtp_host'], 5]) {
      const { config, errors } = read({ email: bad });
      expect(config).toBeNull();
      expect(errors).toEqual(['email: expected a mapping']);
    }
  });

  it('reports every problem at once', () => {
    const errors = problemsOf({ smtp_port: 0, enable_tls: 'no', validation_token_lifetime: 'x' });
    expect(errors.map((e) => e.split(':')[0]).sort()).toEqual(['email.enable_tls', 'email.notif_from', 'email.smtp_port', 'email.validation_token_lifetime']);
  });

  it('is documented key by key in docs/configuration.md', () => {
    const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('## Email'));
    const cfg = ok({ notif_from: 'a@example.org' });
    const keys = Object.entries(cfg).flatMap(([k, v]) =>
      typeof v === 'object' && v !== null ? Object.keys(v).map((sub) => `email.${k}.${sub}`) : [`email.${k}`],
    );
    expect(keys.length).toBeGreaterThan(12);
    expect(keys.filter((k) => !section.includes(`\`${k}\``))).toEqual([]);
  });
});
