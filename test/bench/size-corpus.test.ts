import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SIZE_CORPUS, measureSizeRatio } from '../../bench/size-corpus.js';

test('the binary protocol is at most half the size of JSON on the size corpus', (t) => {
  const report = measureSizeRatio();
  for (const row of report.rows) {
    t.diagnostic(`${row.name.padEnd(22)} ${String(row.frames).padStart(3)} frames  json ${String(row.jsonBytes).padStart(5)} B  bin ${String(row.binBytes).padStart(5)} B  ${(row.binBytes / row.jsonBytes * 100).toFixed(1)}%`);
  }
  t.diagnostic(`total: json ${report.jsonBytes} B, bin ${report.binBytes} B, ratio ${(report.ratio * 100).toFixed(1)}%`);
  console.log(`size corpus: binary is ${(report.ratio * 100).toFixed(1)}% of JSON (${report.binBytes} / ${report.jsonBytes} bytes, ${SIZE_CORPUS.length} frames)`);
  assert.ok(report.ratio <= 0.5, `ratio ${report.ratio}`);
});

test('the corpus covers every frame type the doc quotes', () => {
  const types = new Set(SIZE_CORPUS.map((f) => f.type));
  for (const t of ['accepted', 'subscribed', 'received', 'joined', 'left', 'event', 'error']) assert.ok(types.has(t as never), t);
});
