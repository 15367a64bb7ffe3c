// Shared helpers for the JS API tests.
import assert from 'node:assert/strict';
import { EdgebusError } from 'edgebus';

/** Lets pending promise callbacks and microtasks run. */
export function settle(rounds = 3) {
  let p = Promise.resolve();
  for (let i = 0; i < rounds; i++) p = p.then(() => new Promise((r) => setImmediate(r)));
  return p;
}

/** A promise with its resolve and reject functions. */
export function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Asserts that `fn` throws an EdgebusError with `code` (and, optionally, a message matching `re`). */
export function throwsCode(fn, code, re) {
  let thrown = false;
  try {
    fn();
  } catch (e) {
    thrown = true;
    assert.ok(e instanceof EdgebusError, `expected an EdgebusError, got ${e && e.name}: ${e && e.message}`);
    assert.ok(e instanceof Error);
    assert.equal(e.code, code, `expected code ${code}, got ${e.code}: ${e.message}`);
    assert.equal(typeof e.message, 'string');
    assert.ok(e.message.length > 0);
    if (re) assert.match(e.message, re);
  }
  assert.ok(thrown, `expected ${code} to be thrown`);
}

/** Asserts that the promise rejects with an EdgebusError with `code`; returns that error. */
export async function rejectsCode(promise, code) {
  let error;
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof EdgebusError, `expected an EdgebusError, got ${e && e.message}`);
    assert.equal(e.code, code, `expected code ${code}, got ${e.code}: ${e.message}`);
    error = e;
    return true;
  });
  return error;
}

/** Asserts that a valid publish on a fresh topic still reaches a fresh subscriber. */
export function assertStillWorks(bus) {
  const topic = `still.works.${Math.random().toString(36).slice(2)}`;
  const got = [];
  const sub = bus.subscribe(topic, (p) => { got.push(p); });
  const payload = { ok: true };
  assert.equal(bus.publish(topic, payload), true);
  assert.equal(got.length, 1);
  assert.equal(got[0], payload);
  sub.unsubscribe();
}
