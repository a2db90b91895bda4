#!/usr/bin/env node
// Bundles the client library (src/client/) into one minified browser ES module,
// dist/src/client/zenconn-client.js, which zenconn serves at /zenconn/client.js.
// `npm run build` runs it after tsc; test/client/bundle-size.test.ts imports
// `bundleClient` to check the size budget and that nothing of Node got in.
import { build } from 'esbuild';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
/** Where the bundle is written (relative to the repository root). */
export const BUNDLE_PATH = join(root, 'dist', 'src', 'client', 'zenconn-client.js');

/** The minified bundle's text, built in memory. */
export async function bundleClient() {
  const result = await build({
    entryPoints: [join(root, 'src', 'client', 'index.ts')],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    write: false,
    legalComments: 'none',
    logLevel: 'silent'
  });
  return result.outputFiles[0].text;
}

/** Builds the bundle and writes it to BUNDLE_PATH (through a rename: a reader never sees half a file). */
export async function writeClientBundle() {
  const text = await bundleClient();
  mkdirSync(dirname(BUNDLE_PATH), { recursive: true });
  const tmp = `${BUNDLE_PATH}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, BUNDLE_PATH);
  return text;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = await writeClientBundle();
  console.log(`client bundle: ${BUNDLE_PATH} (${text.length} bytes)`);
}
