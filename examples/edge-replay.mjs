import { connect } from 'edgebus';

// A retained value (the room's current topic) and a subscriber that starts with it.
const bus = connect(process.env.EDGEBUS_URL, { token: process.env.EDGEBUS_TOKEN });
await bus.publishAsync('rooms.lobby.topic', 'Welcome!', { retain: true });
await bus.publishAsync('rooms.lobby.topic', 'Be nice', { retain: true });

const sub = bus.subscribe('rooms.*.topic', (text, m) => console.log(m.topic, text, m.seq), {
  replay: 'retained',
  onGap: (gap) => console.log('missed', gap.topic, gap.toSeq),
});
await sub.ready; // the retained values were delivered first; live messages follow
await bus.close();
