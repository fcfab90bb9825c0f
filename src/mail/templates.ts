// The bodies of the validation mails: nunjucks templates with Synapse's file
// names, from the admin's folders first (their files replace Gatehouse's of
// the same name), then Gatehouse's own `templates/`. The HTML bodies are
// autoescaped; the text bodies are not (an `&` in a link must stay an `&`).

import type { Environment } from 'nunjucks';
import { builtinTemplateDir } from '../http/pages.js';
import { nunjucks } from '../templates/nunjucks.js';

/** What a validation mail is for; each has a `<kind>.html` and a `<kind>.txt` template (Synapse's names). */
export type MailKind = 'registration' | 'add_threepid' | 'password_reset';
export const MAIL_KINDS: readonly MailKind[] = ['registration', 'add_threepid', 'password_reset'];

/** Every mail template, as `verify()` checks them. */
export const MAIL_TEMPLATE_NAMES: readonly string[] = MAIL_KINDS.flatMap((k) => [`${k}.html`, `${k}.txt`]);

/** The variables every mail template sees. */
export interface MailTemplateVars {
  link: string;
  token: string;
  address: string;
  server_name: string;
  app_name: string;
}

/**
 * Python's `%(name)s` placeholders (Synapse's `notif_from` and `subjects`):
 * each known name is replaced by its value, `%%` by `%`; anything else is
 * left as written.
 */
export function formatPlaceholders(template: string, vars: Record<string, string>): string {
  return template.replace(/%%|%\((\w+)\)s/g, (whole, name: string | undefined) => {
    if (name === undefined) return '%';
    return Object.hasOwn(vars, name) ? vars[name]! : whole;
  });
}

/** The `%(name)s` placeholders of `template` that are not in `known` (a config problem: Synapse would fail on them). */
export function unknownPlaceholders(template: string, known: readonly string[]): string[] {
  return [...template.matchAll(/%\((\w+)\)s/g)].map((m) => m[1]!).filter((n) => !known.includes(n));
}

export class MailTemplates {
  private readonly dirs: string[];
  private envs: { html: Environment; text: Environment } | null = null;

  /**
   * `customDirs`: the admin's folders, searched in this order before the
   * built-in one. Nothing is loaded or compiled here: templates compile on
   * first render (or in verify()).
   */
  constructor(customDirs: readonly string[]) {
    this.dirs = [...customDirs, builtinTemplateDir()];
  }

  /**
   * Compiles every template and renders it once with sample values, so that
   * a broken or missing one stops the server at start. Throws an Error whose
   * message starts with `template <name>:`.
   */
  verify(): void {
    const sample: MailTemplateVars = {
      link: 'https://matrix.example.org/_gatehouse/validate?sid=s&token=t',
      token: 't',
      address: 'someone@example.org',
      server_name: 'example.org',
      app_name: 'Matrix',
    };
    for (const name of MAIL_TEMPLATE_NAMES) {
      try {
        this.envFor(name).render(name, sample);
      } catch (err) {
        throw new Error(`template ${name}: ${(err as Error).message}`);
      }
    }
  }

  /**
   * verify() when the admin configured a template folder, so that a broken
   * custom mail template stops the server at start. Gatehouse's own
   * templates alone compile on first render (the tests check them).
   */
  verifyCustom(): void {
    // More than the built-in folder: the admin configured one.
    if (this.dirs.length > 1) this.verify();
  }

  /** The text and HTML bodies of a `kind` mail. Throws (naming the template) when one cannot be rendered. */
  render(kind: MailKind, vars: MailTemplateVars): { text: string; html: string } {
    return { text: this.renderOne(`${kind}.txt`, vars), html: this.renderOne(`${kind}.html`, vars) };
  }

  private renderOne(name: string, vars: MailTemplateVars): string {
    try {
      return this.envFor(name).render(name, vars);
    } catch (err) {
      throw new Error(`template ${name}: ${(err as Error).message}`);
    }
  }

  private envFor(name: string): Environment {
    if (this.envs === null) {
      const { Environment, FileSystemLoader } = nunjucks();
      const options = { trimBlocks: true, lstripBlocks: true, throwOnUndefined: false };
      this.envs = {
        html: new Environment(new FileSystemLoader(this.dirs), { ...options, autoescape: true }),
        text: new Environment(new FileSystemLoader(this.dirs), { ...options, autoescape: false }),
      };
    }
    return name.endsWith('.html') ? this.envs.html : this.envs.text;
  }
}
