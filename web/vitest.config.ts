import { defineConfig } from 'vitest/config';

// Unit tests only; the browser tests in e2e/ run under `node --test` (scripts/web-test.sh).
export default defineConfig({
  test: { include: ['src/**/*.test.ts'] },
});
