import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RequestTracker, ManualClock } from 'edgebus';
import { throwsCode } from './support/helpers.mjs';

test('RequestTracker: responders learnt from reports; the request ends when every report came and all answered', () => {
  const t = new RequestTracker({ clock: new ManualClock() });
  const id = t.open({ max: 5 });
  assert.equal(t.reached(id, 2, 0), 'pending', 'forwarded to two places');
  assert.equal(t.reached(id, 0, 2), 'pending');
  assert.equal(t.answer(id, 1, 'reply'), 'reply');
  assert.equal(t.answer(id, 1, 'reply'), 'late', 'one answer per responder');
  assert.equal(t.answer(id, 2, 'failure'), 'failed', 'a report is still to come');
  assert.equal(t.reached(id, 0, 1), 'pending');
  assert.equal(t.answer(id, 3, 'decline'), 'completeLast', 'the last answer ends it complete: it had a reply');
  assert.equal(t.reached(id, 0, 1), 'gone');
  const none = t.open();
  assert.equal(t.reached(none, 0, 0), 'noResponders');
  const failing = t.open();
  t.reached(failing, 0, 1);
  assert.equal(t.answer(failing, 9, 'failure'), 'failedLast');
  assert.equal(t.pending, 0);
  const st = t.stats();
  assert.deepEqual([st.sent, st.replies, st.failed, st.declined, st.noResponders, st.late], [3, 1, 2, 1, 1, 1]);
});

test('RequestTracker: the last answer says how the request ended, as its core decided', () => {
  const t = new RequestTracker({ clock: new ManualClock() });
  const open = (responders) => {
    const id = t.open({ max: 10 });
    t.reached(id, 0, responders);
    return id;
  };
  const a = open(2); // a reply, then a failure last: complete
  assert.equal(t.answer(a, 1, 'reply'), 'reply');
  assert.equal(t.answer(a, 2, 'failure'), 'completeLast');
  const b = open(2); // a failure, then a decline last: it fails with the failure
  assert.equal(t.answer(b, 1, 'failure'), 'failed');
  assert.equal(t.answer(b, 2, 'decline'), 'declinedFailedLast');
  const c = open(2); // two declines: no responder answered
  assert.equal(t.answer(c, 1, 'decline'), 'declined');
  assert.equal(t.answer(c, 2, 'decline'), 'declinedLast');
  const d = open(1); // a lone failure: it fails with it
  assert.equal(t.answer(d, 1, 'failure'), 'failedLast');
  assert.equal(t.pending, 0);
  assert.equal(t.stats().noResponders, 1, 'only the request nobody answered counts as without responders');
});

test('RequestTracker: deadlines on its clock, cancel, and bad input refused with a code', () => {
  const clock = new ManualClock(100);
  const t = new RequestTracker({ clock });
  const a = t.open({ timeoutMs: 50 });
  const b = t.open({ timeoutMs: 20 });
  const c = t.open({ timeoutMs: Infinity });
  assert.equal(t.nextDeadline(), 120);
  clock.advance(20);
  assert.deepEqual(t.due(), [b]);
  assert.equal(t.cancel(a), true);
  assert.equal(t.cancel(a), false);
  assert.equal(t.nextDeadline(), undefined, 'a cancelled request has no deadline');
  clock.advance(100);
  assert.deepEqual(t.due(), []);
  assert.equal(t.pending, 1);
  assert.equal(t.cancel(c), true);
  throwsCode(() => t.open({ max: 0 }), 'INVALID_OPTION');
  throwsCode(() => t.open({ timeoutMs: -1 }), 'INVALID_OPTION');
  throwsCode(() => t.open({ bogus: 1 }), 'INVALID_OPTION');
  for (const id of [-1, 1.5, '1', NaN, 2 ** 60]) throwsCode(() => t.cancel(id), 'INVALID_ARGUMENT');
  const d = t.open();
  throwsCode(() => t.answer(d, -1, 'reply'), 'INVALID_ARGUMENT');
  throwsCode(() => t.answer(d, 1, 'yes'), 'INVALID_ARGUMENT');
  throwsCode(() => t.answer(d, 1, '__proto__'), 'INVALID_ARGUMENT');
  throwsCode(() => t.reached(d, -1, 0), 'INVALID_ARGUMENT');
  throwsCode(() => t.reached(d, 0, 2 ** 32), 'INVALID_ARGUMENT');
  assert.equal(t.answer(12345678, 1, 'reply'), 'late', 'an id never opened');
  throwsCode(() => new RequestTracker({ clock: { now: () => NaN } }), 'INVALID_OPTION');
});
