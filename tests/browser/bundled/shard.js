// The app's shard worker script: started by the `worker` option, bundled by the app's bundler.
import { serveShard } from 'edgebus';
import setup from './handlers.js';

serveShard(setup);
