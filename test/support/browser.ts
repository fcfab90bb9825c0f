// A real browser for the HTML pages: Debian's Chromium, driven by
// playwright-core (which downloads no browser of its own). Where Chromium is
// missing, the browser suites show as skipped with the reason (.ci/run
// installs it), like the PostgreSQL-only suites.

import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';
import { describe } from 'vitest';

/** The Chromium binary: $GATEHOUSE_TEST_CHROMIUM, or Debian's package's. */
export const CHROMIUM = process.env.GATEHOUSE_TEST_CHROMIUM || '/usr/bin/chromium';

export const hasChromium = existsSync(CHROMIUM);

/** A suite that needs the browser: skipped, saying why, when there is none. */
export const describeWithBrowser = (name: string, fn: () => void) =>
  describe.skipIf(!hasChromium)(hasChromium ? name : `${name} (skipped: no Chromium at ${CHROMIUM}; apt-get install chromium, as .ci/run does)`, fn);

/** Headless Chromium (no sandbox: CI runs as root, where Chromium's sandbox refuses to start). */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true });
}
