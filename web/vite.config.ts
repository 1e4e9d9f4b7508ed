import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// The bundle goes where the C build wants it (scripts/console-build.sh sets SG_CONSOLE_OUT);
// `secureguard server` serves that directory at /.
export default defineConfig({
	plugins: [svelte()],
	base: '/',
	build: {
		outDir: process.env.SG_CONSOLE_OUT || 'dist',
		emptyOutDir: true,
		target: 'es2020',
		// No inline scripts or data: URLs for assets: the server's Content-Security-Policy
		// allows scripts and styles from 'self' only.
		assetsInlineLimit: 0,
		modulePreload: { polyfill: false },
		reportCompressedSize: false,
		chunkSizeWarningLimit: 300,
	},
	test: {
		include: ['tests/unit/**/*.test.ts'],
		environment: 'node',
	},
});
