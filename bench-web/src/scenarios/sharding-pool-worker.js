// workerpool's worker for scenario 8: registers the sharding benchmark's work function, as
// benches/sharding/workerpool-worker.web.js does (bundled by Vite as a module worker).
import workerpool from 'workerpool';
import '../../../benches/sharding/work.js';

workerpool.worker({ work: globalThis.benchWork });
