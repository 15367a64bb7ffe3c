// The benchmark page: built into dist/bench-web, served at /bench/ (see pkg-scripts/web.mjs).
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/bench/',
  build: {
    outDir: fileURLToPath(new URL('../dist/bench-web', import.meta.url)),
    emptyOutDir: true,
    // Readable output: the code the page times is the code in these sources and in node_modules.
    minify: false,
  },
});
