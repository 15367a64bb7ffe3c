// ESLint over all of the project's JavaScript: the recommended rules, with the globals of the
// runtime each folder runs in. Run by pkg-scripts/lint.sh (`npx eslint .`).
import js from '@eslint/js';
import globals from 'globals';

export default [
  {
    ignores: [
      '**/node_modules/', 'target/', 'pkg/', '**/dist/', '**/.wrangler/', 'bench-results/', 'test-results/',
    ],
  },
  js.configs.recommended,
  // Node: build and test scripts, tests, benchmark drivers, examples; everything but the code that
  // runs only in browsers, Web Workers or Cloudflare Workers (below).
  {
    files: ['**/*.{js,mjs,cjs}'],
    ignores: [
      'src/js/**', 'www/src/**', 'bench-web/src/**', 'tests/browser/*.page.mjs', 'tests/edge/browser/**',
      'benches/sharding/page.mjs', 'benches/sharding/workerpool-worker.web.js',
      'edge/src/**', 'edge/bench/worker.js', 'edge/test-fixtures/**', 'tests/pack/apps/browser/**', 'tests/pack/apps/worker/**',
    ],
    languageOptions: { globals: { ...globals.node } },
  },
  // The package's JavaScript (src/js/): ES modules, bundled per entry point by pkg-scripts/build.mjs.
  // What runs everywhere (Node, browsers, bundlers, workerd) sees only the globals those share;
  // the platform code sees its own: Node's (platforms/node.js, the Node entries), browsers' (the
  // web platform and entry), a Web Worker's (the browser shard worker).
  {
    files: ['src/js/**/*.{js,mjs}'],
    languageOptions: { sourceType: 'module', globals: { ...globals['shared-node-browser'] } },
  },
  {
    files: ['src/js/platforms/node.js', 'src/js/entries/node.js', 'src/js/entries/shard-worker.node.js'],
    languageOptions: { globals: { ...globals.node } },
  },
  {
    files: ['src/js/platforms/web.js', 'src/js/entries/web.js'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    files: ['src/js/entries/shard-worker.web.js'],
    languageOptions: { globals: { ...globals.worker } },
  },
  // Browser pages: the demo site, the benchmark page, the pages the browser tests load, the
  // packaging matrix's app (its shard worker and handlers run in module Web Workers).
  {
    files: [
      'www/src/**', 'bench-web/src/**', 'tests/browser/*.page.mjs', 'tests/edge/browser/**', 'benches/sharding/page.mjs',
      'tests/pack/apps/browser/**',
    ],
    languageOptions: { globals: { ...globals.browser } },
  },
  // Node scripts that drive headless Chromium: the functions they hand to page.evaluate() and
  // page.waitForFunction() run in the page, so these names are the page's.
  {
    files: [
      'tests/e2e/**', 'tests/browser/*.test.mjs', 'tests/edge/browser.test.mjs', 'tests/edge/outbox-browser.test.mjs', 'bench-web/run.mjs', 'benches/sharding/browser.mjs',
      'tests/pack/support.mjs',
    ],
    languageOptions: { globals: { window: 'readonly', document: 'readonly', crossOriginIsolated: 'readonly' } },
  },
  // Web Workers. workerpool's web worker gets `workerpool` from the script it loads with importScripts().
  {
    files: ['bench-web/src/scenarios/sharding-pool-worker.js', 'benches/sharding/workerpool-worker.web.js'],
    languageOptions: { globals: { ...globals.worker } },
  },
  {
    files: ['benches/sharding/workerpool-worker.web.js'],
    languageOptions: { globals: { workerpool: 'readonly' } },
  },
  // Handler modules the ShardedBus tests load into shard workers: Node worker_threads or Web Workers.
  {
    files: ['tests/js/fixtures/**'],
    languageOptions: { globals: { ...globals.worker } },
  },
  // Cloudflare Workers (the edge hub, the edge benchmark's worker, the client-worker fixture):
  // service-worker globals plus the Workers runtime's own.
  {
    files: ['edge/src/**', 'edge/bench/worker.js', 'edge/test-fixtures/**', 'tests/pack/apps/worker/**'],
    languageOptions: {
      globals: { ...globals.serviceworker, WebSocketPair: 'readonly', WebSocketRequestResponsePair: 'readonly' },
    },
  },
];
