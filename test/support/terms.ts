// Policy document folders for the terms-of-service suites: Gatehouse's layout
// (`<policy_id>/<lang>/<version>.html`) and Synapse's consent templates
// (`<lang>/<version>.html`, Jinja2 with a form for signed-in users only).

import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** Writes `files` (relative path → content) under a new temp folder; returns the folder. */
export function writeTree(files: Record<string, string>, prefix = 'gatehouse-terms-'): string {
  const root = mkdtempSync(join(tmpdir(), prefix));
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), text);
  }
  return root;
}

/** A Gatehouse document: shows the variables it is rendered with. */
export const gatehouseDocument = (marker: string) =>
  `<!doctype html><title>{{ name }}</title><p id="doc">${marker} {{ policy_id }} v{{ version }} ({{ lang }}): {{ name }}</p>\n`;

/** A Synapse consent template, as docs/privacy_policy_templates/en/1.0.html is shaped. */
export const synapseTemplate = (marker: string) => `<!doctype html>
<html><head><title>Privacy policy</title></head><body>
{% if has_consented %}<p>Already accepted.</p>{% else %}<p>${marker} version {{ version }}</p>
{% if not public_version %}<form method="post" action="consent"><input type="hidden" name="v" value="{{version}}"/>
<input type="hidden" name="u" value="{{user}}"/><input type="hidden" name="h" value="{{userhmac}}"/></form>{% endif %}
{% endif %}</body></html>
`;
