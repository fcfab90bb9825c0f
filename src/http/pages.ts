// Server-rendered HTML pages (the UIA fallback pages, the invite page):
// nunjucks templates with autoescaping, from the admin's
// `templates.custom_template_directory` first (Synapse's key; same file
// names), then Gatehouse's own `templates/` folder. Every page is sent with a
// Content-Security-Policy that allows nothing but the page's own inline
// <style> and <script> elements carrying this response's nonce: no external
// assets, no injected scripts, no framing, forms posting only to this origin.

import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context } from 'koa';
import type { Environment } from 'nunjucks';
import { nunjucks } from '../templates/nunjucks.js';

/** Every template Gatehouse renders (Synapse's names where Synapse has the page). */
export const TEMPLATE_NAMES = [
  'registration_token.html',
  'terms.html',
  'auth_success.html',
  'error.html',
  'invite.html',
  'invite_success.html',
  'email_validation.html',
  'email_validation_success.html',
  'email_identity.html',
] as const;
export type TemplateName = (typeof TEMPLATE_NAMES)[number];

/**
 * Gatehouse's own templates: `templates/` beside package.json, found from this
 * module whether it runs from src/ (tests) or dist/src/ (`npm start`, the
 * Docker image, which copies the folder to /app/templates).
 */
export function builtinTemplateDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the templates folder: no package.json above the server code');
    dir = parent;
  }
  return join(dir, 'templates');
}

export class Pages {
  private readonly dirs: string[];
  private readonly globals: Record<string, unknown>;
  private envCache: Environment | null = null;

  /**
   * `customDir`: the admin's template folder (its files replace the built-in
   * ones of the same name), or null. `globals`: variables every template
   * sees (`server_name`, `public_baseurl`). Nothing is loaded or compiled
   * here: templates compile on first render (or in verify()).
   */
  constructor(customDir: string | null, globals: Record<string, unknown>) {
    this.dirs = customDir === null ? [builtinTemplateDir()] : [customDir, builtinTemplateDir()];
    this.globals = { ...globals };
  }

  /** True when the admin configured a template folder (whose templates verifyCustom() checks). */
  get hasCustomTemplates(): boolean {
    return this.dirs.length > 1;
  }

  /** Compiles every template, so that a broken or missing one throws (`template <name>: ...`). */
  verify(): void {
    for (const name of TEMPLATE_NAMES) {
      try {
        this.env.getTemplate(name, true);
      } catch (err) {
        throw new Error(`template ${name}: ${(err as Error).message}`);
      }
    }
  }

  /**
   * verify() when a custom template folder is configured, so that a broken
   * custom template stops the server at start rather than failing a request.
   * All templates are compiled then (a custom one may include or extend a
   * built-in one). Gatehouse's own templates alone are left to compile on
   * first render: the tests check them, and a start does not pay for them.
   */
  verifyCustom(): void {
    if (this.hasCustomTemplates) this.verify();
  }

  private get env(): Environment {
    if (this.envCache === null) {
      const { Environment, FileSystemLoader } = nunjucks();
      const env = new Environment(new FileSystemLoader(this.dirs), { autoescape: true, trimBlocks: true, lstripBlocks: true });
      for (const [k, v] of Object.entries(this.globals)) env.addGlobal(k, v);
      this.envCache = env;
    }
    return this.envCache;
  }

  /**
   * Answers with the rendered page. Templates also get `csp_nonce`: inline
   * <script> and <style> elements need `nonce="{{ csp_nonce }}"` to run.
   */
  send(ctx: Context, status: number, name: TemplateName, vars: Record<string, unknown>, headers: Record<string, string> = {}): void {
    const nonce = randomBytes(18).toString('base64');
    const html = this.env.render(name, { ...vars, csp_nonce: nonce });
    ctx.status = status;
    for (const [k, v] of Object.entries(headers)) ctx.set(k, v);
    ctx.set('Content-Type', 'text/html; charset=utf-8');
    ctx.set(
      'Content-Security-Policy',
      `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`,
    );
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('X-Content-Type-Options', 'nosniff');
    // The invite token is in the path, a UIA session in the query: never hand them to the policy links' sites.
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('Cache-Control', 'no-store');
    ctx.body = html;
  }
}
