// The ShardedBus workers of scenario 8: started by the scenario (the `worker` option), bundled by
// Vite with the handlers and the work function they import.
import { serveShard } from 'edgebus';
import setup from './sharding-handlers.mjs';

serveShard(setup);
