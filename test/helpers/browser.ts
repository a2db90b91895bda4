/**
 * Headless Chromium for the page tests: Debian's `chromium` driven by playwright-core.
 * `.ci/run` installs the package when it is missing; a test that needs it fails (never
 * skips) when it is not there. Flags as the machine's notes ask: no sandbox (root), no
 * background networking (the closed network refuses it), a fresh profile per launch.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type ConsoleMessage, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.ZENCONN_CHROMIUM ?? '/usr/bin/chromium';

/** Launches headless Chromium; throws a clear error when the binary is missing. */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`no Chromium at ${CHROMIUM_PATH}: apt-get install -y chromium (or set ZENCONN_CHROMIUM)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync'
    ]
  });
}

/**
 * Collects a page's console errors and uncaught exceptions, so a test can assert there
 * were none. Returns the live list.
 */
export function collectPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (msg: ConsoleMessage) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err: Error) => errors.push(`pageerror: ${err.message}`));
  return errors;
}
