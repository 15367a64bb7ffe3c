// What every end-to-end test shares: the built pages served on a free port, headless Chromium, a
// page that records console errors and page errors, and screenshots under test-results/e2e/.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildPages, pagesBuilt, root, servePages } from '../../../pkg-scripts/web.mjs';
import { launchChromium, watchPage } from '../../../pkg-scripts/chromium.mjs';

export const SHOTS = join(root, 'test-results', 'e2e');

/**
 * Starts the server and the browser; `open(path)` gives `{ page, problems }`. `edge` configures the
 * server's `/dev/edge.json` (`{ hubUrl, secret }`, see pkg-scripts/web.mjs).
 */
export async function startBrowser({ edge } = {}) {
  if (!pagesBuilt()) await buildPages({ quiet: true });
  const server = await servePages({ edge });
  const browser = await launchChromium();
  return {
    async open(path, viewport = { width: 1280, height: 900 }) {
      const page = await browser.newPage({ viewport });
      const problems = watchPage(page);
      page.setDefaultTimeout(60_000);
      await page.goto(new URL(path, server.url).href);
      await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
      return { page, problems };
    },
    async screenshot(page, name) {
      mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
    },
    async close() {
      await browser.close();
      await server.close();
    },
  };
}
