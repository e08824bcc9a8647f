import assert from "node:assert/strict";
import { Batcher, batches, createBatch, fillBatch } from "../../src/data/batching.ts";
import { IGNORE_INDEX } from "../../src/io/seq2seq.ts";
import type { TokenizedSplit } from "../../src/data/cache.ts";
import { Mt19937 } from "../../src/data/mt19937.ts";
import { randperm } from "../../src/data/randperm.ts";

/** A split whose example i has source [10+i, .., 1] (i % 4 + 2 ids) and target [100+i, 1]. */
function split(n: number, S = 8, T = 3): TokenizedSplit {
  const src: number[] = [], tgt: number[] = [];
  const so = [0], to = [0];
  for (let i = 0; i < n; i++) {
    const len = (i % 4) + 2;
    for (let k = 0; k < len - 1; k++) src.push(10 + i + k);
    src.push(1);
    so.push(src.length);
    tgt.push(100 + i, 1);
    to.push(tgt.length);
  }
  return {
    size: n,
    sourceLength: S,
    targetLength: T,
    sourceIds: Int32Array.from(src),
    sourceOffsets: Int32Array.from(so),
    targetIds: Int32Array.from(tgt),
    targetOffsets: Int32Array.from(to),
    targets: Array.from({ length: n }, (_, i) => String(i)),
  };
}

function row(a: Int32Array, r: number, width: number): number[] {
  return Array.from(a.subarray(r * width, (r + 1) * width));
}

Deno.test("fillBatch() pads sources with pad, masks them, pads labels with -100 and shifts decoder inputs right", () => {
  const s = split(3);
  const b = fillBatch(createBatch(3, 8, 3), s, [2, 0, 1], { padId: 0, eosId: 1 });
  assert.equal(b.count, 3);
  assert.deepEqual(Array.from(b.rows), [2, 0, 1]);
  // Example 2: 4 ids [12, 13, 14, 1].
  assert.deepEqual(row(b.inputIds, 0, 8), [12, 13, 14, 1, 0, 0, 0, 0]);
  assert.deepEqual(row(b.attentionMask, 0, 8), [1, 1, 1, 1, 0, 0, 0, 0]);
  assert.deepEqual(row(b.inputIds, 1, 8), [10, 1, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(row(b.labels, 0, 3), [102, 1, IGNORE_INDEX]);
  assert.deepEqual(row(b.decoderInputIds, 0, 3), [0, 102, 1]);
  assert.deepEqual(row(b.labels, 1, 3), [100, 1, -100]);
  assert.deepEqual(row(b.decoderInputIds, 1, 3), [0, 100, 1]);
});

Deno.test("decoder inputs are labels shifted right with -100 turned into pad, for every row", () => {
  const s = split(5, 8, 5);
  const b = fillBatch(createBatch(6, 8, 5), s, [4, 3, 2, 1, 0], {
    padId: 7,
    decoderStartId: 9,
    eosId: 1,
  });
  for (let r = 0; r < 6; r++) {
    const labels = row(b.labels, r, 5);
    const dec = row(b.decoderInputIds, r, 5);
    assert.equal(dec[0], 9);
    for (let t = 1; t < 5; t++) assert.equal(dec[t], labels[t - 1] === -100 ? 7 : labels[t - 1]);
  }
  // Sources are padded with padId.
  assert.deepEqual(row(b.inputIds, 4, 8), [10, 1, 7, 7, 7, 7, 7, 7]);
});

Deno.test("a partial batch keeps its shape: padding rows are flagged -1, hold one EOS and carry no loss", () => {
  const s = split(5);
  const b = fillBatch(createBatch(4, 8, 3), s, [3], { padId: 0, eosId: 1 });
  assert.equal(b.count, 1);
  assert.deepEqual(Array.from(b.rows), [3, -1, -1, -1]);
  for (let r = 1; r < 4; r++) {
    assert.deepEqual(row(b.inputIds, r, 8), [1, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(row(b.attentionMask, r, 8), [1, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(row(b.labels, r, 3), [-100, -100, -100]);
    assert.deepEqual(row(b.decoderInputIds, r, 3), [0, 0, 0]);
  }
  assert.equal(b.inputIds.length, 4 * 8);
});

Deno.test("fillBatch() refuses examples longer than the batch and indices outside the split", () => {
  const s = split(4, 8, 3);
  assert.throws(() => fillBatch(createBatch(2, 3, 3), s, [3]), /5 source and 2 target ids/);
  assert.throws(() => fillBatch(createBatch(2, 8, 3), s, [4]), /outside the split's 4 examples/);
  assert.throws(() => fillBatch(createBatch(1, 8, 3), s, [0, 1]), /do not fit/);
  assert.throws(() => createBatch(0, 8, 3), /batchSize must be a positive integer/);
});

Deno.test("Batcher: epoch e follows the e-th torch.randperm(n) of one generator seeded 42, every example once", () => {
  const n = 10, B = 4;
  const b = new Batcher(split(n), { batchSize: B });
  assert.equal(b.batchesPerEpoch, 3);
  const gen = new Mt19937(42);
  for (let epoch = 0; epoch < 3; epoch++) {
    const perm = Array.from(randperm(n, gen));
    const seen: number[] = [];
    for (let k = 0; k < 3; k++) {
      const batch = b.next();
      assert.equal(b.epoch, epoch);
      seen.push(...Array.from(batch.rows).slice(0, batch.count));
      assert.equal(batch.count, k < 2 ? 4 : 2, "the last batch of an epoch is partial");
    }
    assert.deepEqual(seen, perm);
  }
  // randperm(10) with seed 42 starts the first epoch.
  const first = new Batcher(split(n), { batchSize: 10 }).next();
  assert.deepEqual(Array.from(first.rows), [2, 6, 1, 8, 4, 5, 0, 9, 3, 7]);
});

Deno.test("Batcher reuses one set of buffers, so GPU uploads need no new arrays", () => {
  const b = new Batcher(split(9), { batchSize: 4 });
  const x = b.next();
  const y = b.next();
  assert.equal(x, y);
  assert.equal(x.inputIds, y.inputIds);
  assert.equal(x.labels.length, 4 * 3);
});

Deno.test("Batcher with drop: true skips the partial batch; without shuffle it keeps the order", () => {
  const b = new Batcher(split(10), { batchSize: 4, drop: true, shuffle: false });
  assert.equal(b.batchesPerEpoch, 2);
  const rows = [0, 1, 2].map(() => Array.from(b.next().rows));
  assert.deepEqual(rows, [[0, 1, 2, 3], [4, 5, 6, 7], [0, 1, 2, 3]]);
  assert.throws(() => new Batcher(split(3), { batchSize: 4, drop: true }), /leaves no batch/);
});

Deno.test("Batcher.seek(k) resumes exactly where k calls to next() would be", () => {
  const s = split(23);
  const a = new Batcher(s, { batchSize: 5, seed: 7 });
  const want: number[][] = [];
  for (let i = 0; i < 17; i++) want.push(Array.from(a.next().rows));
  for (const k of [0, 4, 5, 11, 16]) {
    const b = new Batcher(s, { batchSize: 5, seed: 7 });
    b.seek(k);
    assert.equal(b.step, k);
    for (let i = k; i < 17; i++) assert.deepEqual(Array.from(b.next().rows), want[i], `step ${i}`);
  }
});

Deno.test("batches() visits every example once in order, padding only the last batch", () => {
  const s = split(7);
  const seen: number[] = [];
  let last = -1;
  for (const b of batches(s, { batchSize: 3, padId: 0, eosId: 1 })) {
    seen.push(...Array.from(b.rows).slice(0, b.count));
    last = b.count;
    assert.equal(b.rows.length, 3);
  }
  assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(last, 1);
});

Deno.test("Batcher.seek(k) reports the same epoch as k calls to next(), at epoch boundaries too", () => {
  const s = split(23);
  for (const drop of [false, true]) {
    const a = new Batcher(s, { batchSize: 5, seed: 7, drop });
    const bpe = a.batchesPerEpoch;
    const epochs = [a.epoch];
    for (let k = 1; k <= 3 * bpe + 1; k++) {
      a.next();
      epochs.push(a.epoch);
    }
    // next() reports the epoch of the batch it last returned: still 0 after bpe calls.
    assert.equal(epochs[bpe], 0);
    assert.equal(epochs[bpe + 1], 1);
    for (let k = 0; k < epochs.length; k++) {
      const b = new Batcher(s, { batchSize: 5, seed: 7, drop });
      b.seek(k);
      assert.equal(b.epoch, epochs[k], `drop ${drop}: epoch after seek(${k})`);
      assert.equal(b.step, k);
      // And the batches that follow, with their epochs, are the same.
      const c = new Batcher(s, { batchSize: 5, seed: 7, drop });
      for (let i = 0; i < k; i++) c.next();
      for (let i = 0; i < bpe + 1; i++) {
        assert.deepEqual(Array.from(b.next().rows), Array.from(c.next().rows));
        assert.equal(b.epoch, c.epoch, `drop ${drop}: epoch ${k} + ${i + 1}`);
      }
    }
  }
});
