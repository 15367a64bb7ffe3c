import { Bus } from 'edgebus';

// Retained values for every topic; a history of the last 2 messages of each chat topic.
const bus = new Bus({ history: { topics: ['chat.>'], maxMessages: 2 } });

// A late subscriber gets the last retained value of each topic its pattern matches, then live ones.
bus.publish('sensors.kitchen.temp', 21.5, { retain: true });
bus.publish('sensors.hall.temp', 19.0, { retain: true });
bus.publish('sensors.kitchen.temp', 22.0, { retain: true });
bus.subscribe('sensors.*.temp', (t, m) => console.log(`${m.topic} = ${t}`), { replay: 'retained' });
await bus.drain(); // replayed messages are handed over once subscribe has returned

// History: every message of a chat topic is numbered (message.seq); a subscriber that saw up to
// seq 1 resumes after it, and hears of what the history no longer holds.
for (const text of ['hi', 'hello', 'how are you?', 'fine', 'bye']) bus.publish('chat.room1', text);
bus.subscribe('chat.room1', (text, m) => console.log(`#${m.seq} ${text}`), {
  replay: { sinceSeq: 1 },
  onGap: (gap) => console.log(`missed ${gap.topic} #${gap.fromSeq}-#${gap.toSeq}`),
});
bus.publish('chat.room1', 'see you'); // after the replayed ones, never before
await bus.drain();

// Publishing undefined with retain clears a retained value.
bus.publish('sensors.hall.temp', undefined, { retain: true });
console.log(bus.retained('sensors.>').map((m) => m.topic), bus.stats().logs.evicted);
