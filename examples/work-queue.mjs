import { Bus } from 'edgebus';

const bus = new Bus();

// Two workers share the `mailer` group: each job goes to exactly one of them.
for (const worker of ['w1', 'w2']) {
  bus.subscribe('jobs.email', async (job, msg) => {
    if (job.to === 'bounce@example.com') throw new Error('mailbox unavailable');
    console.log(`${worker} sent ${msg.id} (attempt ${msg.attempt})`);
  }, { group: 'mailer', maxAttempts: 3, backoff: { initialMs: 10, maxMs: 100 }, ackTimeoutMs: 5000 });
}

// After its last attempt a job goes to `$dead.mailer`, with the error and the attempt count.
bus.subscribe('$dead.mailer', (dead) => {
  console.log(`dead: ${dead.message.id} after ${dead.attempts} attempts (${dead.error.message})`);
});

bus.publish('jobs.email', { to: 'ada@example.com' }, { id: 'mail-1' });
bus.publish('jobs.email', { to: 'bounce@example.com' }, { id: 'mail-2' });
bus.publish('jobs.email', { to: 'bob@example.com' }, { id: 'mail-3' });
bus.publish('jobs.email', { to: 'vip@example.com' }, { id: 'mail-4', priority: 10 }); // overtakes mail-3
bus.publish('jobs.email', { to: 'later@example.com' }, { id: 'mail-5', notBefore: Date.now() + 100 });

console.log(bus.status('mail-5').state); // delayed
await new Promise((resolve) => setTimeout(resolve, 150));
await bus.drain();
console.log(bus.status('mail-2'));       // { state: 'dead', attempts: 3, group: 'mailer' }
const { done, retried, dead } = bus.stats().groups[0];
console.log({ done, retried, dead });    // { done: 4, retried: 2, dead: 1 }
const { remaining } = await bus.close(); // nothing is left behind silently
console.log(remaining.length);           // 0
