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
    // The emoji picker's data (Emojibase, ~570 KB raw, ~80 KB gzipped) is one chunk loaded only
    // when the picker or the `:` autocomplete first opens; the initial JS has its own budget
    // (scripts/size.mjs), so Vite's 500 KB per-chunk warning would only be noise.
    chunkSizeWarningLimit: 700,
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
