// Policy documents (terms of service, privacy policy) that Gatehouse serves
// itself: files an admin writes, read as Jinja2-style templates (nunjucks,
// autoescaping on) as Synapse reads its consent templates, so a Synapse
// `user_consent.template_dir` carries over unchanged.

import { nunjucks } from './nunjucks.js';

/** What a document's template may use, besides Synapse's own variables. */
export interface PolicyDocumentVars {
  policy_id: string;
  version: string;
  /** The document's language code (its folder's name). */
  lang: string;
  /** The policy's name in that language (Synapse: `user_consent.policy_name`). */
  name: string;
}

/**
 * Renders `name` (a path relative to `root`, e.g. `en/1.0.html`) to HTML.
 * Besides `vars`, the template gets the variables Synapse gives the public
 * version of its consent page (`public_version: true`, `has_consented:
 * false`, `user: ""`, `userhmac: null`), so Synapse templates render the
 * document without their consent form. Includes resolve under `root` only.
 * Throws an Error (with nunjucks' message) when the file cannot be read or
 * rendered.
 */
export function renderPolicyDocument(root: string, name: string, vars: PolicyDocumentVars): string {
  const { Environment, FileSystemLoader } = nunjucks();
  const env = new Environment(new FileSystemLoader(root, { noCache: true }), { autoescape: true });
  return env.render(name, { public_version: true, has_consented: false, user: '', userhmac: null, ...vars });
}
