// The workers of the worker-sharding demo: started by the ShardedBus (its `worker` option) and
// bundled by Vite with the handlers they serve.
import { serveShard } from 'edgebus';
import setup from './sharding-handlers.js';

serveShard(setup);
