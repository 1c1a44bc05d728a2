/**
 * Headless Chromium for the status page tests: Debian's /usr/bin/chromium driven by
 * playwright-core (which never downloads a browser), a fresh profile per run, and screenshots
 * saved under reports/ui/ (ignored by git) as test artifacts.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '@tufa/testing/server';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const SCREENSHOTS = join(REPO, 'reports', 'ui');

/**
 * Without the background-networking flags Chromium keeps reaching for its own services, which a
 * closed network turns into stalls; --no-sandbox because the tests run as root.
 */
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  readonly context: BrowserContext;
  /** A new tab; whatever it logs as an error (a CSP violation, a failed script) is collected. */
  page(): Promise<{ page: Page; errors: string[] }>;
  screenshot(page: Page, name: string): Promise<void>;
  close(): Promise<void>;
}

export async function launch(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'tufa-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1100, height: 800 },
  });
  mkdirSync(SCREENSHOTS, { recursive: true });
  return {
    context,
    async page() {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      return { page, errors };
    },
    async screenshot(page, name) {
      // The body's box: the whole page, without the empty viewport below it.
      await page.locator('body').screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Opens a view of the page and waits until its script has drawn it. */
export async function open(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]');
}
