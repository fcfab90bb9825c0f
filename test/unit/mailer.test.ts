// The Mailer against a real SMTP server on loopback (test/support/smtp.ts):
// what arrives (envelope, headers, both bodies, escaping), the admin's
// templates, and every way delivery can fail (nothing reachable, a refused
// recipient, a wrong password, no STARTTLS where it is required), each a
// MailDeliveryError that names what failed and holds no secret.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { emailConfig, type EmailConfig } from '../../src/config/email.js';
import { Section } from '../../src/config/load.js';
import { createLogger } from '../../src/logger.js';
import { MailDeliveryError, Mailer, type MailKind, type ValidationMailVars } from '../../src/mail/mailer.js';
import { emailSection, startSmtpListener, type SmtpListener } from '../support/smtp.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'gatehouse-mail-'));
  dirs.push(d);
  return d;
};

/** The `email` section through the real parser (no problems expected). */
function config(section: Record<string, unknown>): EmailConfig {
  const errors: string[] = [];
  const cfg = emailConfig(new Section({ email: section }, '', errors), (s) => s, errors, tmpdir());
  expect(errors).toEqual([]);
  return cfg!;
}

/** A logger whose JSON lines are kept, to check what reaches the logs. */
function capturingLogger(level = 'debug') {
  const lines: string[] = [];
  const logger = createLogger(level, { write: (s: string) => void lines.push(s) });
  return { logger, lines };
}

const mailers: Mailer[] = [];
function mailer(cfg: EmailConfig, options: ConstructorParameters<typeof Mailer>[2] = {}, level = 'debug') {
  const { logger, lines } = capturingLogger(level);
  const m = new Mailer(cfg, logger, options);
  mailers.push(m);
  return { m, lines };
}

const vars = (address: string, extra: Partial<ValidationMailVars> = {}): ValidationMailVars => ({
  link: 'https://matrix.example.org/_gatehouse/validate?sid=abc&token=xyz',
  token: 'xyz',
  address,
  server_name: 'example.org',
  ...extra,
});

/** A port nothing listens on (taken, then freed). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Runs `p`, expecting a MailDeliveryError, and returns it. */
async function deliveryError(p: Promise<unknown>): Promise<MailDeliveryError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(MailDeliveryError);
  return err as MailDeliveryError;
}

let smtp: SmtpListener;
beforeAll(async () => {
  smtp = await startSmtpListener();
});
afterEach(() => {
  smtp.setRejecting(false);
  for (const m of mailers.splice(0)) m.close();
});
afterAll(async () => {
  await smtp.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('a validation mail', () => {
  it('arrives with the envelope, From, Subject and the link in both bodies', async () => {
    const { m } = mailer(config(emailSection(smtp)));
    m.verify();
    await m.sendValidation('registration', 'alice@example.org', vars('alice@example.org'));
    const mail = await smtp.waitFor('alice@example.org');
    expect(mail.to).toEqual(['alice@example.org']);
    expect(mail.from).toBe('Gatehouse <noreply@gatehouse.test>');
    expect(mail.subject).toBe('[example.org] Validate your email');
    expect(mail.raw).toMatch(/^To: alice@example\.org\r?$/m);
    expect(mail.raw).toMatch(/^Auto-Submitted: auto-generated\r?$/m);
    // The link as it is in the text, &-escaped in the HTML.
    expect(smtp.linkIn(mail)).toBe('https://matrix.example.org/_gatehouse/validate?sid=abc&token=xyz');
    expect(mail.html).toContain('href="https://matrix.example.org/_gatehouse/validate?sid=abc&amp;token=xyz"');
    expect(mail.text).toContain('example.org');
    expect(mail.text).toMatch(/ignore this mail/);
    expect(mail.html).toMatch(/ignore this mail/);
  });

  it.each<[MailKind, string, RegExp]>([
    ['registration', '[example.org] Validate your email', /creating an account/],
    ['add_threepid', '[example.org] Validate your email', /add the email address/],
    ['password_reset', '[example.org] Password reset', /reset the password/],
  ])('%s: Synapse\'s subject, its own text', async (kind, subject, text) => {
    const { m } = mailer(config(emailSection(smtp)));
    const to = `${kind}@example.org`;
    await m.sendValidation(kind, to, vars(to));
    const mail = await smtp.waitFor(to);
    expect(mail.subject).toBe(subject);
    expect(mail.text).toMatch(text);
    expect(mail.html).toMatch(text);
  });

  it('sends to a Unicode domain in its ASCII (punycode) form, and names it in Unicode in the text', async () => {
    const { m } = mailer(config(emailSection(smtp)));
    await m.sendValidation('registration', 'bob@bücher.example', vars('bob@bücher.example'));
    // smtp-server shows RCPT TO's punycode domain decoded; the header is as sent.
    const mail = await smtp.waitFor('bob@bücher.example');
    expect(mail.raw).toMatch(/^To: bob@xn--bcher-kva\.example\r?$/m);
    expect(mail.text).toContain('bob@bücher.example');
  });

  it('escapes the variables in the HTML body, not in the text body', async () => {
    const { m } = mailer(config(emailSection(smtp)));
    const to = "o'neil&co@example.org";
    await m.sendValidation('add_threepid', to, vars(to, { server_name: 'ex<b>ample.org' }));
    const mail = await smtp.waitFor(to);
    expect(mail.text).toContain("o'neil&co@example.org");
    expect(mail.text).toContain('ex<b>ample.org');
    expect(mail.html).toContain('o&#39;neil&amp;co@example.org');
    expect(mail.html).toContain('ex&lt;b&gt;ample.org');
    expect(mail.html).not.toContain('<b>ample');
  });

  it('uses app_name in notif_from, the subjects and the bodies; custom subjects take %(server_name)s and %(app)s', async () => {
    const cfg = config(
      emailSection(smtp, {
        app_name: 'Example Chat',
        notif_from: '%(app)s <noreply@example.org>',
        subjects: { password_reset: '%(app)s on %(server_name)s: 100%% new password' },
      }),
    );
    const { m } = mailer(cfg);
    await m.sendValidation('password_reset', 'bob@example.org', vars('bob@example.org'));
    const mail = await smtp.waitFor('bob@example.org');
    expect(mail.from).toBe('Example Chat <noreply@example.org>');
    expect(mail.subject).toBe('Example Chat on example.org: 100% new password');
    expect(mail.text).toContain('Example Chat account');
  });

  it('keeps CR/LF in the subject\'s variables out of the headers', async () => {
    const { m } = mailer(config(emailSection(smtp)));
    await m.sendValidation('registration', 'carol@example.org', vars('carol@example.org', { server_name: 'example.org\r\nBcc: mallory@evil.test' }));
    const mail = await smtp.waitFor('carol@example.org');
    expect(mail.to).toEqual(['carol@example.org']);
    const head = mail.raw.slice(0, mail.raw.search(/\r?\n\r?\n/));
    expect(head).not.toMatch(/^Bcc:/im);
    expect(mail.subject).toBe('[example.org Bcc: mallory@evil.test] Validate your email');
  });

  it.each([
    ['a line break', 'dave@example.org\r\nBcc: mallory@evil.test'],
    ['two addresses', 'dave@example.org, mallory@evil.test'],
    ['a name with the address', 'Dave <dave@example.org>'],
    ['no address', 'dave'],
    ['nothing', ''],
  ])('refuses a recipient with %s, sending nothing', async (_what, to) => {
    const { m } = mailer(config(emailSection(smtp)));
    const before = smtp.messages.length;
    const err = await deliveryError(m.sendValidation('registration', to, vars('dave@example.org')));
    expect(err.message).toMatch(/recipient is not one email address/);
    expect(smtp.messages.length).toBe(before);
  });

  it('logs no address below debug', async () => {
    const { m, lines } = mailer(config(emailSection(smtp)), {}, 'info');
    await m.sendValidation('registration', 'erin@example.org', vars('erin@example.org'));
    await smtp.waitFor('erin@example.org');
    expect(lines.some((l) => l.includes('validation mail sent'))).toBe(true);
    expect(lines.join('\n')).not.toContain('erin@example.org');
  });
});

describe('templates', () => {
  it('an admin folder replaces one file; the others stay built-in', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'registration.txt'), 'Custom {{ app_name }}: {{ link }} & {{ address }}\n');
    const { m } = mailer(config(emailSection(smtp)), { customTemplateDirectory: dir });
    m.verify();
    await m.sendValidation('registration', 'frank@example.org', vars('frank@example.org'));
    const mail = await smtp.waitFor('frank@example.org');
    expect(mail.text).toBe('Custom Matrix: https://matrix.example.org/_gatehouse/validate?sid=abc&token=xyz & frank@example.org\n');
    expect(mail.html).toMatch(/creating an account/);
  });

  it('templates.custom_template_directory comes before email.template_dir (as Synapse)', async () => {
    const custom = tempDir();
    const legacy = tempDir();
    writeFileSync(join(custom, 'add_threepid.txt'), 'from custom_template_directory');
    writeFileSync(join(legacy, 'add_threepid.txt'), 'from email.template_dir');
    writeFileSync(join(legacy, 'add_threepid.html'), '<p>legacy html {{ address }}</p>');
    const { m } = mailer(config(emailSection(smtp, { template_dir: legacy })), { customTemplateDirectory: custom });
    await m.sendValidation('add_threepid', 'grace@example.org', vars('grace@example.org'));
    const mail = await smtp.waitFor('grace@example.org');
    expect(mail.text).toBe('from custom_template_directory');
    expect(mail.html).toBe('<p>legacy html grace@example.org</p>');
  });

  it.each([
    ['password_reset.html', '{% if link %}never closed'],
    ['add_threepid.txt', '{{ link | no_such_filter }}'],
  ])('verify() throws naming a broken %s', (name, body) => {
    const dir = tempDir();
    writeFileSync(join(dir, name), body);
    const { m } = mailer(config(emailSection(smtp)), { customTemplateDirectory: dir });
    expect(() => m.verify()).toThrow(new RegExp(`^template ${name.replace('.', '\\.')}:`));
  });

  it('the built-in templates pass verify()', () => {
    const { m } = mailer(config(emailSection(smtp)));
    expect(() => m.verify()).not.toThrow();
  });

  it('a template that fails when sending is a MailDeliveryError naming it, and nothing is sent', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'registration.txt'), '{{ link.no.such.thing() }}');
    const { m } = mailer(config(emailSection(smtp)), { customTemplateDirectory: dir });
    const before = smtp.messages.length;
    const err = await deliveryError(m.sendValidation('registration', 'heidi@example.org', vars('heidi@example.org')));
    expect(err.message).toMatch(/template registration\.txt/);
    expect(smtp.messages.length).toBe(before);
  });
});

describe('delivery failures', () => {
  it('nothing listening: MailDeliveryError at once, naming the server and "connection refused"', async () => {
    const port = await closedPort();
    const { m, lines } = mailer(config({ smtp_host: '127.0.0.1', smtp_port: port, enable_tls: false, notif_from: 'noreply@example.org' }));
    const started = Date.now();
    const err = await deliveryError(m.sendValidation('registration', 'ivan@example.org', vars('ivan@example.org')));
    expect(Date.now() - started).toBeLessThan(3000);
    expect(err.message).toContain(`127.0.0.1:${port}`);
    expect(err.message).toMatch(/connection refused/);
    expect(err.code).toBe('ESOCKET');
    expect(err.message).not.toContain('ivan@example.org');
    const warn = lines.map((l) => JSON.parse(l)).find((l) => l.level === 40);
    expect(warn?.err).toMatchObject({ code: 'ESOCKET', originalCode: 'ECONNREFUSED' });
    expect(warn?.msg).toBe(err.message);
  });

  it('a refused recipient: MailDeliveryError without the address; nothing delivered', async () => {
    const { m, lines } = mailer(config(emailSection(smtp)), {}, 'info');
    smtp.setRejecting(true);
    const before = smtp.messages.length;
    const err = await deliveryError(m.sendValidation('registration', 'judy@example.org', vars('judy@example.org')));
    expect(err.message).toMatch(/rejected the recipient/);
    expect(err.message).toContain('SMTP 550');
    expect(err.code).toBe('EENVELOPE');
    expect(err.message).not.toContain('judy@example.org');
    expect(lines.join('\n')).not.toContain('judy@example.org');
    expect(smtp.messages.length).toBe(before);
    // And it recovers once the server accepts again.
    smtp.setRejecting(false);
    await m.sendValidation('registration', 'judy@example.org', vars('judy@example.org'));
    expect((await smtp.waitFor('judy@example.org')).to).toEqual(['judy@example.org']);
  });

  describe('with a server that asks for a login', () => {
    let authed: SmtpListener;
    beforeAll(async () => {
      authed = await startSmtpListener({ auth: { user: 'gatehouse', pass: 'correct-horse-battery' } });
    });
    afterAll(async () => {
      await authed.close();
    });

    it('signs in with smtp_user and smtp_pass', async () => {
      const { m } = mailer(config(emailSection(authed)));
      await m.sendValidation('registration', 'ken@example.org', vars('ken@example.org'));
      expect((await authed.waitFor('ken@example.org')).subject).toBe('[example.org] Validate your email');
    });

    it('a wrong password: MailDeliveryError saying the login was refused, with no password in it or the logs', async () => {
      const secret = 'wrong-secret-Zq8vX3';
      const { m, lines } = mailer(config(emailSection(authed, { smtp_pass: secret })));
      const err = await deliveryError(m.sendValidation('registration', 'leo@example.org', vars('leo@example.org')));
      expect(err.message).toMatch(/refused the login/);
      expect(err.code).toBe('EAUTH');
      for (const text of [err.message, err.stack ?? '', lines.join('\n')]) {
        expect(text).not.toContain(secret);
        expect(text).not.toContain(Buffer.from(`\0gatehouse\0${secret}`).toString('base64'));
        expect(text).not.toContain(Buffer.from(secret).toString('base64'));
      }
      expect(authed.messages.length).toBe(1);
    });

    it('no credentials: MailDeliveryError', async () => {
      const { m } = mailer(config({ ...emailSection(authed), smtp_user: null, smtp_pass: null }));
      const err = await deliveryError(m.sendValidation('registration', 'mia@example.org', vars('mia@example.org')));
      expect(err.code).not.toBeNull();
      expect(authed.messages.length).toBe(1);
    });
  });

  it('a server that accepts the connection but never greets: MailDeliveryError after the 10 s bound', async () => {
    const sockets: import('node:net').Socket[] = [];
    const mute = createServer((sock) => void sockets.push(sock));
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', () => r()));
    const { port } = mute.address() as AddressInfo;
    try {
      const { m } = mailer(config({ smtp_host: '127.0.0.1', smtp_port: port, enable_tls: false, notif_from: 'noreply@example.org' }));
      const started = Date.now();
      const err = await deliveryError(m.sendValidation('registration', 'pat@example.org', vars('pat@example.org')));
      const took = Date.now() - started;
      expect(took).toBeGreaterThanOrEqual(9_000);
      expect(took).toBeLessThan(15_000);
      expect(err.message).toMatch(/did not answer in time/);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => mute.close(() => r()));
    }
  }, 20_000);

  it('require_transport_security against a server without STARTTLS: MailDeliveryError, nothing sent', async () => {
    const { m } = mailer(config(emailSection(smtp, { enable_tls: true, require_transport_security: true })));
    const before = smtp.messages.length;
    const err = await deliveryError(m.sendValidation('registration', 'nina@example.org', vars('nina@example.org')));
    expect(err.message).toMatch(/STARTTLS/);
    expect(smtp.messages.length).toBe(before);
  });

  it('force_tls against a plain server: MailDeliveryError, nothing sent', async () => {
    const { m } = mailer(config(emailSection(smtp, { enable_tls: true, force_tls: true })));
    const before = smtp.messages.length;
    const err = await deliveryError(m.sendValidation('registration', 'oscar@example.org', vars('oscar@example.org')));
    expect(err.message).toMatch(/TLS handshake .* failed/);
    expect(smtp.messages.length).toBe(before);
  });
});
