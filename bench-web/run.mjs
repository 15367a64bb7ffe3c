// Headless runner of the benchmark page: builds and serves the pages, opens the benchmark page in
// headless Chromium, presses "Run", waits for the results, prints the tables, and writes the results
// as JSON and a screenshot of the page. Exits non-zero if the page fails or logs an error.
//
//   node bench-web/run.mjs [--size full|small] [--only id,id] [--json FILE] [--screenshot FILE]
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { buildPages, root, servePages } from '../pkg-scripts/web.mjs';
import { launchChromium, watchPage } from '../pkg-scripts/chromium.mjs';
import { formatRatio, formatValue } from './src/format.js';

const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const size = arg('--size', 'full');
if (size !== 'full' && size !== 'small') {
  console.error('--size must be full or small');
  process.exit(2);
}
const only = arg('--only', undefined);
const jsonPath = arg('--json', join(root, 'bench-results', `browser${size === 'small' ? '-small' : ''}.json`));
const pngPath = arg('--screenshot', join(root, 'bench-results', `browser${size === 'small' ? '-small' : ''}.png`));
const TIMEOUT_MS = Number(arg('--timeout-min', 30)) * 60_000;

/** The results as Markdown tables, one per scenario metric. */
export function resultsText(results) {
  const env = results.environment;
  const lines = [`# edgebus browser benchmarks (${env.size})`, `browser: ${env.browser}; ${env.cores} logical cores; ${env.date}`, ''];
  for (const sc of results.scenarios) {
    if (sc.skipped) {
      lines.push(`## ${sc.number} ${sc.title}`, `not measured: ${sc.skipped}`, '');
      continue;
    }
    for (const t of sc.tables) {
      const suffix = sc.tables.length > 1 ? `, ${t.label}` : '';
      lines.push(`## ${sc.number} ${sc.title.replaceAll('`', '')}${suffix} (${t.unit}; ${t.better} is better)`);
      lines.push(`| contender | median | min | max | ${t.ratioLabel} |`, '| --- | ---: | ---: | ---: | ---: |');
      for (const r of t.rows) {
        const details = (r.details ?? []).map((d) => ` (${d.label}: ${formatValue(d.median, t.unit)})`).join('');
        lines.push(`| ${r.contender}${details} | ${formatValue(r.median, t.unit)} | ${formatValue(r.min, t.unit)} | ` +
          `${formatValue(r.max, t.unit)} | ${formatRatio(r.ratio)} |`);
      }
      lines.push('');
    }
  }
  return lines.join('\n');
}

async function main() {
  await buildPages({ quiet: true });
  const server = await servePages();
  const browser = await launchChromium();
  let failed = false;
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const problems = watchPage(page);
    const query = new URLSearchParams({ size });
    if (only) query.set('only', only);
    await page.goto(`${server.url}bench/?${query}`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
    await page.click('#run');
    const started = Date.now();
    const ticker = setInterval(async () => {
      const status = await page.textContent('#status').catch(() => '');
      process.stderr.write(`[${Math.round((Date.now() - started) / 1000)} s] ${status}\n`);
    }, 15_000);
    try {
      await page.waitForFunction(() => ['done', 'failed'].includes(document.body.dataset.state), null,
        { timeout: TIMEOUT_MS, polling: 500 });
    } finally {
      clearInterval(ticker);
    }
    const { state, results, error } = await page.evaluate(() => window.edgebusBench);
    mkdirSync(dirname(pngPath), { recursive: true });
    await page.screenshot({ path: pngPath, fullPage: true });
    if (state !== 'done') {
      console.error(`the benchmark page failed: ${error}`);
      failed = true;
    } else {
      console.log(resultsText(results));
      mkdirSync(dirname(jsonPath), { recursive: true });
      writeFileSync(jsonPath, JSON.stringify(results, null, 2) + '\n');
      console.log(`results: ${relative(process.cwd(), jsonPath)}; screenshot: ${relative(process.cwd(), pngPath)}`);
    }
    if (problems.length) {
      console.error(`the page reported errors:\n  ${problems.join('\n  ')}`);
      failed = true;
    }
  } finally {
    await browser.close();
    await server.close();
  }
  process.exit(failed ? 1 : 0);
}

await main();
