// The handlers each shard worker runs; they import another module of the app.
import { describe } from './describe.js';

export default function setup(bus, { shard, data }) {
  const channel = new BroadcastChannel(data.channel);
  bus.subscribe('jobs.*', (job, msg) => channel.postMessage(describe(job, msg, shard)));
}
