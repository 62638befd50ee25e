import { defineConfig } from 'vite';

// JSX goes to Preact's automatic runtime (tsconfig's jsxImportSource, read by Vite's transformer).
// Dev server: `npm run dev` proxies the API and DDP to a local apogee on :3000.
export default defineConfig({
  build: {
    target: 'es2022',
    sourcemap: false,
    assetsInlineLimit: 0,
    // Not Vite's default `assets/`: `/assets/<name>` is Rocket.Chat's workspace-assets route.
    assetsDir: 'static',
  },
  server: {
    proxy: {
      '/api': 'http://127.0.0.1:3000',
      '/avatar': 'http://127.0.0.1:3000',
      '/file-upload': 'http://127.0.0.1:3000',
      '/websocket': { target: 'ws://127.0.0.1:3000', ws: true },
    },
  },
});
