// The sections of the demo page, in page order. Each is `{ id, title, summary, mount(element) }`;
// the page builds the navigation from this list, so a new demo is one module added here.
import { explorer } from './explorer.js';
import { dedupeBatching } from './dedupe-batching.js';
import { sharding } from './sharding.js';
import { edgeHub } from './edge.js';

export const sections = [explorer, dedupeBatching, sharding, edgeHub];
