// The demo site: built into dist/www, served at / (see pkg-scripts/web.mjs).
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  build: {
    outDir: fileURLToPath(new URL('../dist/www', import.meta.url)),
    emptyOutDir: true,
  },
});
