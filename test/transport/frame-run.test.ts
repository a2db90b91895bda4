import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameRun } from '../../src/transport/frame-run.js';

const a = FrameRun.of(Buffer.from('aa'));
const b = FrameRun.of(Buffer.from('bbb'));
const c = FrameRun.of(Buffer.from('c'));

test('connections sent the same frames in the same order share one run and one joined buffer', () => {
  const first = a.then(b).then(c);
  const second = a.then(b).then(c);
  assert.equal(first, second);
  assert.equal(first.length, 6);
  assert.equal(first.bytes().toString(), 'aabbbc');
  assert.equal(first.bytes(), second.bytes(), 'joined once');
  assert.equal(a.bytes().toString(), 'aa', 'a run of one frame is the frame itself');
});

test('runs that part keep their own order and bytes', () => {
  const abc = a.then(b).then(c);
  const acb = a.then(c).then(b);
  const ab = a.then(b);
  const ba = b.then(a);
  assert.notEqual(abc, acb);
  assert.equal(abc.bytes().toString(), 'aabbbc');
  assert.equal(acb.bytes().toString(), 'aacbbb');
  assert.equal(ab.bytes().toString(), 'aabbb');
  assert.equal(ba.bytes().toString(), 'bbbaa');
  assert.equal(a.then(a).bytes().toString(), 'aaaa', 'the same frame twice');
});
