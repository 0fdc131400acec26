import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
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
