import { Bus } from 'edgebus';

const bus = new Bus();

// A responder: its return value (or its promise's value) is the reply.
bus.subscribe('math.double', (n) => n * 2);
console.log(await bus.request('math.double', 21));

// A queue group answers as a load-balanced service: one member per request.
for (const name of ['a', 'b']) bus.subscribe('svc.whoami', () => name, { group: 'svc' });
const who = await bus.request('svc.whoami', null);
console.log(who === 'a' || who === 'b');

// Replies from every matching subscription, as they come.
bus.subscribe('quote.eur', () => 1.08);
bus.subscribe('quote.eur', async () => 1.09);
const quotes = [];
for await (const q of bus.requestMany('quote.eur', null, { timeoutMs: 100 })) quotes.push(q);
console.log(quotes);

// A handler that answers from a callback: message.reply, while its delivery lasts.
bus.subscribe('jobs.slow', (job, message) => new Promise((done) => {
  setTimeout(() => { message.reply(`${job} done`); done(); }, 10);
}));

// A handler that returns nothing declines: a request only such handlers reach fails at once.
bus.subscribe('audit.>', (payload) => { void payload; });
console.log(await bus.request('jobs.slow', 'resize', { timeoutMs: 1000 }));

// Nobody subscribed: rejected at once, nothing published.
await bus.request('nobody.here', 1).catch((e) => console.log(e.code));
await bus.request('audit.login', 'ann').catch((e) => console.log(e.code));

// Give up on a request with an AbortSignal.
bus.subscribe('jobs.never', () => new Promise(() => {}));
await bus.request('jobs.never', 1, { signal: AbortSignal.timeout(20) }).catch((e) => console.log(e.code));

const { sent, replies, noResponders, cancelled } = bus.stats().requests;
console.log({ sent, replies, noResponders, cancelled });
