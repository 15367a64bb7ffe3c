// init() of the web entry when the .wasm cannot be loaded: an EdgebusError WASM_LOAD naming the URL,
// the HTTP status and the content type of what answered (a dev server's HTML page, a 404, a refused
// connection), instead of WebAssembly's bare "expected magic word".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { EdgebusError, init, initSync, Bus } from 'edgebus/web';

const require = createRequire(import.meta.url);
const wasm = readFileSync(require.resolve('edgebus/edgebus.wasm'));
let server;
let base;

before(async () => {
  server = createServer((req, res) => {
    const reply = (status, type, body) => {
      res.writeHead(status, type === null ? {} : { 'Content-Type': type });
      res.end(body);
    };
    if (req.url === '/missing.wasm') reply(404, 'text/plain', 'Not Found');
    else if (req.url === '/spa/edgebus_bg.wasm') reply(200, 'text/html', '<!doctype html><html><body>app</body></html>');
    else if (req.url === '/garbage.wasm') reply(200, 'application/wasm', 'not wasm at all');
    else if (req.url === '/untyped.wasm') reply(200, null, wasm);
    else if (req.url === '/edgebus.wasm') reply(200, 'application/wasm', wasm);
    else reply(500, 'text/plain', 'unexpected');
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => new Promise((r) => server.close(r)));

async function loadError(input) {
  try {
    await init(input);
  } catch (e) {
    assert.ok(e instanceof EdgebusError, `an EdgebusError, got ${e && e.name}: ${e && e.message}`);
    assert.equal(e.code, 'WASM_LOAD');
    return e.message;
  }
  assert.fail('init() resolved');
}

test('a 404: the URL, the status and the content type', async () => {
  const message = await loadError(`${base}/missing.wasm`);
  assert.ok(message.includes(`${base}/missing.wasm`), message);
  assert.match(message, /HTTP 404 Not Found, content type text\/plain/);
});

test('an HTML page where the .wasm should be (a dev server\'s fallback): said so, with the first bytes WebAssembly saw', async () => {
  const message = await loadError(new URL(`${base}/spa/edgebus_bg.wasm`));
  assert.ok(message.includes(`${base}/spa/edgebus_bg.wasm`), message);
  assert.match(message, /HTTP 200 OK, content type text\/html/);
  assert.match(message, /expected magic word/);
  assert.match(message, /An HTML page answered/);
});

test('a refused connection, a Response with bytes that are not WebAssembly, bytes that are not WebAssembly', async () => {
  const closed = createServer();
  await new Promise((r) => closed.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${closed.address().port}/edgebus.wasm`;
  await new Promise((r) => closed.close(r));
  const refused = await loadError(url);
  assert.ok(refused.includes(url), refused);
  assert.match(refused, /the request failed/);

  const garbage = await loadError(await fetch(`${base}/garbage.wasm`));
  assert.ok(garbage.includes(`${base}/garbage.wasm`), garbage);
  assert.match(garbage, /HTTP 200 OK, content type application\/wasm, not a valid WebAssembly module/);

  assert.match(await loadError(new Uint8Array([1, 2, 3, 4])), /the bytes given to init\(\): not a WebAssembly module/);
  assert.throws(() => initSync(new Uint8Array([0, 0x61, 0x73])), (e) => e instanceof EdgebusError && e.code === 'WASM_LOAD'
    && /the bytes given to initSync\(\)/.test(e.message));
});

test('after failures, a .wasm served without a content type still loads, and the bus works', async () => {
  await init(`${base}/untyped.wasm`);
  const bus = new Bus();
  const got = [];
  bus.subscribe('a.*', (p) => got.push(p));
  bus.publish('a.b', 1);
  assert.deepEqual(got, [1]);
});
