// A Cloudflare Worker that imports edgebus from npm: the `workerd` export condition gives it an
// entry that initializes itself, so the handler uses a Bus at once.
import { Bus } from 'edgebus';

export default {
  async fetch(request) {
    const to = new URL(request.url).searchParams.get('to') ?? 'world';
    const bus = new Bus({ dedupe: true });
    const got = [];
    bus.subscribe('greetings.*', (text, msg) => got.push(`${msg.topic}: ${text}`));
    bus.subscribe('greetings.>', async (text) => {
      await Promise.resolve();
      got.push(`async: ${text}`);
    });
    bus.publish(`greetings.${to}`, 'hello', { id: 'g-1' });
    bus.publish(`greetings.${to}`, 'hello', { id: 'g-1' });
    await bus.drain();
    const { delivered, duplicates } = bus.stats();
    return Response.json({ got, delivered, duplicates });
  },
};
