// The web UI's build: `npm run build` writes it to dist/ui, where the server serves it at `/`.
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: '/',
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('../dist/ui', import.meta.url)),
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
  },
  // `npx vite --config ui/vite.config.ts` during development: the API of a `gantry up` on :7070
  server: { proxy: { '/api': 'http://127.0.0.1:7070', '/metrics': 'http://127.0.0.1:7070' } },
});
