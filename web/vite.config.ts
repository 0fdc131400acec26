import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  // The in-page test hooks (`window.peerDebug`) exist only in a build made with
  // PEER_DEBUG_HOOKS=1 (web/e2e/run.mjs makes one in dist-e2e/); `npm run build` has none.
  define: { __PEER_DEBUG__: JSON.stringify(process.env.PEER_DEBUG_HOOKS === '1') },
  build: {
    target: 'es2022',
    outDir: 'dist',
    assetsInlineLimit: 0,
    // No inline scripts: the CSP allows only scripts from the app's own origin.
    modulePreload: { polyfill: false },
  },
  test: {
    include: ['test/**/*.test.ts'],
  },
});
