// The benchmark page: built into dist/bench-web, served at /bench/ (see pkg-scripts/web.mjs).
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

const shardingDir = fileURLToPath(new URL('../benches/sharding/', import.meta.url));
const workFile = `${shardingDir}work.js`;

/**
 * benches/sharding/work.js is a script that is also a CommonJS module (for workerpool's Node
 * worker). Bundled into the page and into workerpool's worker it is only the script: without its
 * `module.exports` line, the bundles that import it stay plain ES modules.
 */
const workAsScript = {
  name: 'bench-work-as-script',
  transform(code, id) {
    if (id !== workFile) return undefined;
    const out = code.replace(/^if \(typeof module === 'object'.*$/m, '');
    if (out === code) throw new Error(`${workFile}: the CommonJS export line was not found`);
    return { code: out, map: null };
  },
};

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/bench/',
  plugins: [workAsScript],
  // qlobber (a wildcard peer) is written for Node: it derives two optional stream classes from
  // `stream` with `util.inherits` when it loads. The page gives it those two names (src/shims);
  // its matcher, the code measured, is bundled unchanged.
  // workerpool's browser build requires Node modules only under Node (src/shims/node-only.js).
  resolve: {
    alias: {
      util: fileURLToPath(new URL('./src/shims/node-util.js', import.meta.url)),
      stream: fileURLToPath(new URL('./src/shims/node-stream.js', import.meta.url)),
      ...Object.fromEntries(['worker_threads', 'os', 'child_process'].map((name) => [
        name, fileURLToPath(new URL('./src/shims/node-only.js', import.meta.url)),
      ])),
    },
  },
  build: {
    outDir: fileURLToPath(new URL('../dist/bench-web', import.meta.url)),
    emptyOutDir: true,
    // Readable output: the code the page times is the code in these sources and in node_modules.
    minify: false,
    rollupOptions: {
      // tseep (a peer) compiles its emitters with eval on purpose: that is the code measured.
      onwarn(warning, warn) {
        if (warning.code === 'EVAL' && /[\\/]node_modules[\\/]tseep[\\/]/.test(warning.id ?? '')) return;
        warn(warning);
      },
    },
  },
  // The workers (workerpool's, and ShardedBus's sharding-shard.js) are bundled as ES modules and
  // started with `type: 'module'`.
  worker: { format: 'es', plugins: () => [workAsScript] },
});
