// Minimal reproducers of what the IdempotenceFilter and Batcher property suite
// (filter-batcher-props.test.mjs) found, each asserting the documented behaviour.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Batcher, ManualClock } from 'edgebus';
import { throwsCode } from './support/helpers.mjs';

test('a fractional size counts as the next whole byte: a batch never holds more than maxBytes', async () => {
  const got = [];
  const b = new Batcher((items) => { got.push(items.map((x) => x.size)); },
    { maxBytes: 1, sizeOf: (x) => x.size, clock: new ManualClock(0) });
  b.add({ size: 0.5 });
  b.add({ size: 0.75 }); // 0.5 + 0.75 > 1: its own batch
  throwsCode(() => b.add({ size: 1.01 }), 'MESSAGE_TOO_LARGE');
  await b.close();
  assert.deepEqual(got, [[0.5], [0.75]]);
});

test('maxBytes above 4 GiB holds as given (sizes are not capped at 32 bits)', async () => {
  const got = [];
  const b = new Batcher((items) => { got.push(items.map((x) => x.size)); },
    { maxBytes: 6e9, sizeOf: (x) => x.size, clock: new ManualClock(0) });
  throwsCode(() => b.add({ size: 6e9 + 1 }), 'MESSAGE_TOO_LARGE');
  b.add({ size: 3e9 });
  b.add({ size: 3e9 + 1 }); // 6,000,000,001 bytes together: over the limit
  b.add({ size: 2e9 });
  await b.close();
  assert.deepEqual(got, [[3e9], [3e9 + 1, 2e9]]);
  const huge = new Batcher(() => {}, { maxBytes: Number.MAX_SAFE_INTEGER, sizeOf: (x) => x, clock: new ManualClock(0) });
  throwsCode(() => huge.add(2 ** 53), 'MESSAGE_TOO_LARGE');
  await huge.close();
});
