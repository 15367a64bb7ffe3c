// The benchmark page: runs the registered scenarios on "Run", shows progress, then a table and a
// chart per scenario. The results are also exposed as `window.edgebusBench` for the headless runner.
import { init } from 'edgebus';
import { scenarios } from './scenarios/index.js';
import { runScenario, SIZES } from './engine.js';
import { renderChart, renderTable, withCode } from './render.js';
import { initWatchingMemory } from './wasm-memory.js';

const $ = (id) => document.getElementById(id);
const state = { state: 'idle', results: undefined, error: undefined };
window.edgebusBench = state;

function setState(s) {
  state.state = s;
  document.body.dataset.state = s;
}

function browserName() {
  const brands = navigator.userAgentData?.brands?.filter((b) => !/Not.?A.?Brand/i.test(b.brand));
  const m = /(Chrome|Chromium|Firefox|Version)\/([\d.]+)/.exec(navigator.userAgent);
  const headless = /HeadlessChrome/.test(navigator.userAgent) ? ' (headless)' : '';
  if (m) return `${m[1] === 'Version' ? 'Safari' : m[1]} ${m[2]}${headless}`;
  return brands?.map((b) => `${b.brand} ${b.version}`).join(', ') ?? navigator.userAgent;
}

/** The browser's full version where it tells (Chromium: User-Agent Client Hints). */
async function fullBrowserName() {
  try {
    const { fullVersionList } = await navigator.userAgentData.getHighEntropyValues(['fullVersionList']);
    const main = fullVersionList.find((b) => /Chrom/.test(b.brand));
    if (main) return `${main.brand} ${main.version}${/HeadlessChrome/.test(navigator.userAgent) ? ' (headless)' : ''}`;
  } catch {
    // Not Chromium, or the hints are not available: the user agent string will do.
  }
  return browserName();
}

async function environment(size, shared) {
  return {
    browser: await fullBrowserName(),
    userAgent: navigator.userAgent,
    cores: navigator.hardwareConcurrency,
    date: new Date().toISOString(),
    size,
    mode: shared ? 'shared' : 'isolated',
  };
}

function showEnvironment(env) {
  $('env').textContent = `${env.browser} · ${env.cores} logical cores (navigator.hardwareConcurrency) · ` +
    `${env.date.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')} · size: ${env.size} · emit mode: ${env.mode}`;
}

/** One section per scenario, filled in as results arrive. */
function scaffold(list) {
  const root = $('scenarios');
  root.replaceChildren();
  const sections = new Map();
  for (const sc of list) {
    const section = document.createElement('section');
    section.className = 'scenario';
    section.dataset.scenario = sc.id;
    section.dataset.state = 'pending';
    const h2 = document.createElement('h2');
    h2.append(`${sc.number} · `, withCode(sc.title));
    const status = document.createElement('p');
    status.className = 'scenario-status';
    status.textContent = 'waiting';
    section.append(h2, status);
    if (sc.note) {
      const note = document.createElement('p');
      note.className = 'note';
      note.append(withCode(sc.note));
      section.append(note);
    }
    root.append(section);
    sections.set(sc.id, { section, status });
  }
  return sections;
}

function fill({ section, status }, result) {
  if (result.skipped) {
    section.dataset.state = 'skipped';
    status.textContent = `Not measured in this browser: ${result.skipped}.`;
    return;
  }
  section.dataset.state = 'done';
  status.textContent = `${result.rounds} measured rounds after ${result.warmup} warm-up`;
  for (const t of result.tables) {
    const id = result.tables.length > 1 ? `${result.id}:${t.metric}` : result.id;
    section.append(renderTable(t, id), renderChart(t));
  }
}

async function run(size) {
  const query = new URLSearchParams(location.search);
  const only = query.get('only')?.split(',');
  // ?mode=shared: the emit and churn scenarios in their shared mode (reload the page to measure the
  // other).
  const shared = query.get('mode') === 'shared';
  const list = scenarios.filter((s) => !only || only.includes(s.id));
  const order = [...list.filter((s) => s.runFirst), ...list.filter((s) => !s.runFirst)];
  const sections = scaffold(list);
  const env = await environment(size, shared);
  showEnvironment(env);
  setState('running');
  $('run').disabled = true;
  $('error').hidden = true;
  const results = new Map();
  try {
    for (const [n, sc] of order.entries()) {
      const slot = sections.get(sc.id);
      slot.section.dataset.state = 'running';
      const result = await runScenario(sc, size, ({ contender, round, rounds, warmup }) => {
        const done = (n + round / rounds) / order.length;
        $('progress-bar').style.width = `${(done * 100).toFixed(1)}%`;
        $('progress-bar').setAttribute('aria-valuenow', (done * 100).toFixed(0));
        $('status').textContent = `Scenario ${n + 1} of ${order.length} (${sc.number}): ${contender}, ` +
          (round < warmup ? `warm-up ${round + 1} of ${warmup}` : `round ${round - warmup + 1} of ${rounds - warmup}`);
        slot.status.textContent = `running: ${contender}`;
      }, { shared });
      results.set(sc.id, result);
      fill(slot, result);
    }
    state.results = { environment: env, scenarios: list.map((s) => results.get(s.id)) };
    $('progress-bar').style.width = '100%';
    $('progress-bar').setAttribute('aria-valuenow', '100');
    $('status').textContent = `Done: ${list.length} scenarios.`;
    setState('done');
  } catch (err) {
    state.error = String(err?.stack ?? err);
    $('error').textContent = `The benchmark failed: ${err?.message ?? err}`;
    $('error').hidden = false;
    $('status').textContent = 'Stopped.';
    setState('failed');
  } finally {
    $('run').disabled = false;
  }
}

const params = new URLSearchParams(location.search);
if (params.get('size') in SIZES) $('size').value = params.get('size');
$('controls').addEventListener('submit', (event) => {
  event.preventDefault();
  run($('size').value);
});
await initWatchingMemory(init);
scaffold(scenarios);
document.body.dataset.ready = 'true';
if (params.has('autorun')) run($('size').value);
