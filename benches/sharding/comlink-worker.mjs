// Comlink's worker for the request benchmark (Node worker_threads), as its README shows: expose an
// object; the main thread calls its method through a proxy.
import { parentPort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import './work.js';

Comlink.expose({ work: (iters) => globalThis.benchWork(iters) }, nodeEndpoint(parentPort));
