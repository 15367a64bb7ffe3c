// The shard worker: the app's own module, so the toolchain bundles the handlers and what they import.
import { serveShard } from 'edgebus';
import setup from './handlers.js';

serveShard(setup);
