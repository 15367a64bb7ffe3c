// The app's Vite config, for the packaging matrix only: both pages as build inputs (Vite's
// multi-page setup), and every warning Vite or Rollup reports marked, so that the matrix can fail
// on it. Nothing here concerns edgebus: the package needs no Vite configuration.
import { createLogger } from 'vite';

const logger = createLogger();
const { warn, warnOnce } = logger;
logger.warn = (msg, options) => warn.call(logger, `[vite warning] ${msg}`, options);
logger.warnOnce = (msg, options) => warnOnce.call(logger, `[vite warning] ${msg}`, options);

export default {
  customLogger: logger,
  build: { rollupOptions: { input: ['bus.html', 'sharded.html'] } },
};
