// The edge hub demo, used as people would: with no hub running, the page says so and how to start
// it; with the local hub running (wrangler dev, started by the edge tests' harness), two pages
// connect with the development token the serve script mints, subscribe, and talk through the hub.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBrowser } from './support/browser.mjs';
import { EdgeServer, freePort } from '../edge/support/server.mjs';

const waitHubState = (page, state) => page.waitForFunction((s) => document.getElementById('edge-hub-state').dataset.state === s, state);
const shown = (page) => page.$$eval('#edge-messages .edge-message', (els) => els.map((e) => ({
  topic: e.dataset.topic, from: e.dataset.from, text: e.dataset.text,
})));

describe('no hub running', () => {
  let b, page, problems, hubUrl;
  before(async () => {
    hubUrl = `http://127.0.0.1:${await freePort()}`; // nothing listens there
    b = await startBrowser({ edge: { hubUrl, secret: 'not-used' } });
    ({ page, problems } = await b.open('/#edge-hub'));
  });
  after(async () => { await b?.close(); });

  test('the page says the hub is not running, where, and how to start it', async () => {
    await waitHubState(page, 'not-running');
    const text = await page.textContent('#edge-hub-state');
    assert.match(text, /Hub not running/);
    assert.ok(text.includes(hubUrl), text);
    assert.match(text, /npx wrangler dev --port 8787/);
    assert.match(text, /EDGEBUS_DEV_SECRET=dev-secret node pkg-scripts\/web\.mjs serve/);
    assert.equal(await page.inputValue('#edge-url'), hubUrl);
    assert.equal(await page.inputValue('#edge-token'), '', 'no token without a running hub');
    assert.equal(await page.textContent('#edge-connection'), 'Not connected.');
    assert.equal(await page.isDisabled('#edge-publish'), true);
    assert.equal(await page.isDisabled('#edge-subscribe'), true);
    await b.screenshot(page, 'www-edge-not-running');
  });

  test('no console errors', () => {
    assert.deepEqual(problems, []);
  });
});

describe('the local hub running', () => {
  let server, b, one, two;
  before(async () => {
    server = await new EdgeServer().start();
    b = await startBrowser({ edge: { hubUrl: server.url, secret: server.secret } });
    one = await b.open('/#edge-hub');
    two = await b.open('/#edge-hub');
  });
  after(async () => {
    await b?.close();
    await server?.dispose();
  });

  async function join(page, name) {
    await waitHubState(page, 'running');
    assert.ok((await page.inputValue('#edge-token')).length > 20, 'a development token was filled in');
    await page.click('#edge-connect');
    await page.waitForFunction(() => document.getElementById('edge-connection').dataset.state === 'connected');
    await page.fill('#edge-name', name);
    await page.fill('#edge-pattern', 'chat.>');
    await page.click('#edge-subscribe');
    await page.waitForSelector('#edge-subs li[data-pattern="chat.>"] [data-state="active"]');
  }

  async function say(page, topic, text) {
    await page.fill('#edge-topic', topic);
    await page.fill('#edge-text', text);
    await page.click('#edge-publish');
    await page.waitForFunction(() => document.getElementById('edge-publish-state').dataset.state === 'acknowledged');
  }

  test('both pages connect with the minted token and subscribe to chat.>', async () => {
    await waitHubState(one.page, 'running');
    assert.match(await one.page.textContent('#edge-hub-state'), /Hub running.*development token \(publish and subscribe chat\.>/);
    await join(one.page, 'alice');
    await join(two.page, 'bob');
    assert.deepEqual(await shown(one.page), []);
    assert.deepEqual(await shown(two.page), []);
  });

  test('a message published in one page appears in the other, and back', async () => {
    await say(one.page, 'chat.lobby', 'hello from the first page');
    await two.page.waitForSelector('#edge-messages .edge-message[data-from="alice"]');
    assert.deepEqual(await shown(two.page), [{ topic: 'chat.lobby', from: 'alice', text: 'hello from the first page' }]);

    await say(two.page, 'chat.room-2', 'and back from the second');
    await one.page.waitForSelector('#edge-messages .edge-message[data-from="bob"]');
    // Newest first; the first page also received its own message (it subscribes to chat.> too).
    assert.deepEqual(await shown(one.page), [
      { topic: 'chat.room-2', from: 'bob', text: 'and back from the second' },
      { topic: 'chat.lobby', from: 'alice', text: 'hello from the first page' },
    ]);
    await two.page.waitForSelector('#edge-messages .edge-message[data-from="bob"]');
    assert.equal((await shown(two.page)).length, 2);
    assert.match(await one.page.textContent('#edge-stats'), /published 1 · acknowledged 1 · delivered 2/);
    await b.screenshot(one.page, 'www-edge-first-page');
    await b.screenshot(two.page, 'www-edge-second-page');
  });

  test('a subscription the token does not allow is refused by the hub, and said so', async () => {
    await one.page.fill('#edge-pattern', 'orders.>');
    await one.page.click('#edge-subscribe');
    const state = await one.page.waitForSelector('#edge-subs li[data-pattern="orders.>"] [data-state="refused"]');
    assert.equal(await state.textContent(), 'refused: FORBIDDEN');
    assert.match(await one.page.textContent('#edge-error'), /^FORBIDDEN: /);
  });

  test('a page that disconnects receives nothing more, while the other still talks through the hub', async () => {
    await one.page.click('#edge-disconnect');
    await one.page.waitForFunction(() => document.getElementById('edge-connection').dataset.state === 'disconnected');
    assert.equal(await one.page.isDisabled('#edge-publish'), true);
    await say(two.page, 'chat.lobby', 'anyone there?');
    await two.page.waitForSelector('#edge-messages .edge-message[data-text="anyone there?"]');
    assert.equal((await shown(one.page)).length, 2, 'the disconnected page received nothing new');
  });

  test('no console errors', () => {
    assert.deepEqual(one.problems, []);
    assert.deepEqual(two.problems, []);
  });
});
