import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ROOT } from '../helpers/process.js';
import { importCycles, importSpecifiers, layerViolations, readGraph, type ImportEdge } from './import-graph.js';

const { files, edges } = readGraph(join(ROOT, 'src'));

test('the import graph of src/ is read (the checks below are not vacuous)', () => {
  assert.ok(files.length >= 50, `only ${files.length} files found under src/`);
  assert.ok(edges.length >= 200, `only ${edges.length} relative imports found`);
  assert.ok(files.includes('channels/hub.ts') && files.includes('node.ts'));
});

test('imports point down the layers: cli → cluster → node → session → channels → {bus, audit, http} → {protocol, auth, store, transport, config} → {errors, log, timeout}', () => {
  const bad = layerViolations(edges, files);
  if (bad.length > 0) assert.fail(`${bad.length} import(s) break the layer order:\n  ${bad.join('\n  ')}`);
});

test('no import cycles between the files of src/', () => {
  const cycles = importCycles(edges);
  if (cycles.length > 0) assert.fail(`${cycles.length} import cycle(s):\n  ${cycles.join('\n  ')}`);
});

test('the parser finds every kind of import and skips comments', () => {
  const src = [
    "import { a,",
    "  b } from './one.js';",
    "import type { T } from \"../two.js\";",
    "export { c } from './three.js';",
    "export type * from './four.js';",
    "import './five.js';",
    "const m = await import('./six.js');",
    "type X = typeof import('./seven.js');",
    "// import { z } from './not-a.js';",
    "/* import { y } from './not-b.js'; */",
    "const s = 'import from nothing';",
    "import pino from 'pino';"
  ].join('\n');
  assert.deepEqual(
    importSpecifiers(src).sort(),
    ['../two.js', './five.js', './four.js', './one.js', './seven.js', './six.js', './three.js', 'pino']
  );
});

test('the checker flags an upward import, an import within one layer, a store backend, an unknown area, an import from outside src/ and a cycle', () => {
  const files = ['channels/hub.ts', 'session/session.ts', 'bus/bus.ts', 'audit/audit-sink.ts', 'store/sqlite-store.ts', 'widgets/w.ts', 'store/store.ts'];
  const edge = (from: string, to: string): ImportEdge => ({ from, spec: `./${to}`, to });
  const graph = [
    edge('channels/hub.ts', 'session/session.ts'),
    edge('bus/bus.ts', 'audit/audit-sink.ts'),
    edge('audit/audit-sink.ts', 'store/sqlite-store.ts'),
    edge('session/session.ts', 'channels/hub.ts'),
    edge('store/sqlite-store.ts', 'store/store.ts'),
    edge('store/store.ts', '../test/helpers/wait.ts')
  ];
  const bad = layerViolations(graph, files);
  assert.equal(bad.length, 5, bad.join('\n'));
  assert.match(bad.join('\n'), /store\.ts imports .*outside/);
  assert.match(bad.join('\n'), /widgets.*not in the layer order/);
  assert.match(bad.join('\n'), /src\/channels\/hub\.ts imports '\.\/session\/session\.ts'.*channels may not import session/);
  assert.match(bad.join('\n'), /bus and audit share a layer/);
  assert.match(bad.join('\n'), /store backend/);
  assert.deepEqual(importCycles(graph), ['src/channels/hub.ts → src/session/session.ts → src/channels/hub.ts']);
  // The same files, pointing down only, pass.
  const good = [edge('session/session.ts', 'channels/hub.ts'), edge('channels/hub.ts', 'bus/bus.ts'), edge('audit/audit-sink.ts', 'store/store.ts')];
  assert.deepEqual(layerViolations(good, files.filter((f) => !f.startsWith('widgets'))), []);
  assert.deepEqual(importCycles(good), []);
});
