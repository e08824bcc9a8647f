/**
 * Fixed-shape batches from a tokenized split, so the GPU input buffers are allocated once and
 * rewritten every step.
 *
 * A {@link Batch} holds row-major `Int32Array`s (shape legend: B batch, S source length,
 * T target length):
 *
 * | field | shape | content |
 * |---|---|---|
 * | `inputIds` | (B, S) | the source ids (ending with EOS), then `padId` |
 * | `attentionMask` | (B, S) | 1 on the source ids, 0 on padding |
 * | `labels` | (B, T) | the target ids (ending with EOS), then -100 (ignored by the loss) |
 * | `decoderInputIds` | (B, T) | labels shifted right: `decoderStartId` (T5: pad id 0), then `labels[t - 1]` with -100 → `padId` |
 * | `rows` | (B) | the example index of each row, or -1 for a padding row |
 *
 * **The last partial batch** of a pass is padded to B rows (`drop: false`, the default, like a
 * PyTorch `DataLoader` with `drop_last=False`, whose loss is the mean over the real rows'
 * tokens): padding rows have `rows[i] = -1`, a source of a single EOS (mask 1 on it, so no row
 * is fully masked), labels all -100 (they add nothing to the loss) and decoder inputs of
 * `decoderStartId` then padding. {@link Batch.count} is the number of real rows. Pass
 * `drop: true` to skip the partial batch instead (training only; evaluation must see every
 * example).
 *
 * **Shuffling** ({@link Batcher}): epoch e visits the examples in the order of the e-th
 * `torch.randperm(N)` drawn from one generator seeded with `seed` (what a PyTorch
 * `RandomSampler` with an explicitly seeded `torch.Generator` gives), so a run is reproducible
 * and {@link Batcher.seek} can resume mid-run at any step.
 *
 * @module
 */

import { Mt19937 } from "./mt19937.ts";
import { randperm } from "./randperm.ts";
import type { TokenizedSplit } from "./cache.ts";

import { IGNORE_INDEX, shiftRight } from "../io/seq2seq.ts";

/**
 * One fixed-shape batch. The arrays are reused by the {@link Batcher} that filled them.
 */
export interface Batch {
  /** Rows B (fixed). */
  readonly batchSize: number;
  /** Source length S. */
  readonly sourceLength: number;
  /** Target length T. */
  readonly targetLength: number;
  /** (B, S) source ids, padded with `padId`. */
  readonly inputIds: Int32Array;
  /** (B, S) 1 on tokens, 0 on padding. */
  readonly attentionMask: Int32Array;
  /** (B, T) target ids, -100 on padding. */
  readonly labels: Int32Array;
  /** (B, T) labels shifted right, starting with `decoderStartId`. */
  readonly decoderInputIds: Int32Array;
  /** (B) example index per row; -1 for padding rows. */
  readonly rows: Int32Array;
  /** Number of real rows (the rest are padding rows). */
  count: number;
}

/** Ids used to fill batches. */
export interface BatchIds {
  /**
   * Padding id of sources and decoder inputs.
   * @default {0}
   */
  padId?: number;
  /**
   * The decoder's start token.
   * @default {padId (T5's decoder_start_token_id)}
   */
  decoderStartId?: number;
  /**
   * The single source token of padding rows.
   * @default {1 (T5's </s>)}
   */
  eosId?: number;
}

/**
 * Allocates a batch.
 *
 * @param batchSize B.
 * @param sourceLength S.
 * @param targetLength T.
 * @returns A batch with zeroed arrays and no rows.
 *
 * @example
 * ```ts
 * import { createBatch } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const b = createBatch(32, 256, 2);
 * assert.equal(b.inputIds.length, 32 * 256);
 * assert.equal(b.count, 0);
 * assert.ok(b.labels.every((l) => l === -100));
 * ```
 */
export function createBatch(batchSize: number, sourceLength: number, targetLength: number): Batch {
  for (
    const [name, v] of [["batchSize", batchSize], ["sourceLength", sourceLength], [
      "targetLength",
      targetLength,
    ]] as const
  ) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`${name} must be a positive integer, got ${v}`);
    }
  }
  return {
    batchSize,
    sourceLength,
    targetLength,
    inputIds: new Int32Array(batchSize * sourceLength),
    attentionMask: new Int32Array(batchSize * sourceLength),
    labels: new Int32Array(batchSize * targetLength).fill(IGNORE_INDEX),
    decoderInputIds: new Int32Array(batchSize * targetLength),
    rows: new Int32Array(batchSize).fill(-1),
    count: 0,
  };
}

/**
 * Fills `batch` with the examples `indices` of `split` (at most B of them); the remaining rows
 * become padding rows.
 *
 * @param batch The batch to overwrite.
 * @param split The tokenized split.
 * @param indices Example indices, `indices.length <= B`.
 * @param ids Pad, decoder-start and EOS ids.
 * @returns `batch`.
 * @throws {RangeError} If an index is out of range or an example is longer than S or T.
 *
 * @example
 * ```ts
 * import { createBatch, fillBatch, loadTokenizer, tokenizeExamples } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const tok = await loadTokenizer("tests/fixtures/tokenizers/t5");
 * const split = tokenizeExamples(tok, [
 *   { source: "sentence: hi", target: "1" },
 *   { source: "sentence: a charming journey", target: "0" },
 * ], { sourceLength: 8, targetLength: 2 });
 * const b = fillBatch(createBatch(3, 8, 2), split, [1, 0], { padId: tok.padId, eosId: tok.eosId });
 * assert.equal(b.count, 2);
 * assert.deepEqual([...b.rows], [1, 0, -1]); // the third row pads the batch
 * const hi = tok.encode("sentence: hi"); // 6 ids, ending with EOS
 * assert.deepEqual([...b.inputIds.subarray(8, 16)], [...hi, tok.padId, tok.padId]);
 * assert.deepEqual([...b.decoderInputIds.subarray(0, 2)], [tok.padId, b.labels[0]]); // shifted
 * ```
 */
export function fillBatch(
  batch: Batch,
  split: TokenizedSplit,
  indices: ArrayLike<number>,
  ids: BatchIds = {},
): Batch {
  const { batchSize: B, sourceLength: S, targetLength: T } = batch;
  if (indices.length > B) {
    throw new RangeError(`${indices.length} examples do not fit a batch of ${B} rows`);
  }
  const pad = ids.padId ?? 0;
  const start = ids.decoderStartId ?? pad;
  const eos = ids.eosId ?? 1;
  const { inputIds, attentionMask, labels, decoderInputIds, rows } = batch;
  inputIds.fill(pad);
  attentionMask.fill(0);
  labels.fill(IGNORE_INDEX);
  for (let r = 0; r < B; r++) {
    const so = r * S, to = r * T;
    if (r >= indices.length) {
      rows[r] = -1;
      inputIds[so] = eos;
      attentionMask[so] = 1;
      continue;
    }
    const i = indices[r];
    if (!Number.isInteger(i) || i < 0 || i >= split.size) {
      throw new RangeError(`example index ${i} is outside the split's ${split.size} examples`);
    }
    rows[r] = i;
    const s0 = split.sourceOffsets[i], s1 = split.sourceOffsets[i + 1];
    const t0 = split.targetOffsets[i], t1 = split.targetOffsets[i + 1];
    if (s1 - s0 > S || t1 - t0 > T) {
      throw new RangeError(
        `example ${i} has ${s1 - s0} source and ${t1 - t0} target ids; the batch holds ${S} ` +
          `and ${T}. Tokenize with these lengths (they keep EOS when truncating).`,
      );
    }
    inputIds.set(split.sourceIds.subarray(s0, s1), so);
    attentionMask.fill(1, so, so + (s1 - s0));
    labels.set(split.targetIds.subarray(t0, t1), to);
  }
  shiftRight(labels, B, T, start, pad, decoderInputIds);
  batch.count = indices.length;
  return batch;
}

/**
 * Options of {@link Batcher} and {@link batches}.
 */
export interface BatcherOptions extends BatchIds {
  /** Rows per batch, B. */
  batchSize: number;
  /**
   * Shuffle each epoch (training); false keeps the split's order (evaluation).
   * @default {true}
   */
  shuffle?: boolean;
  /**
   * Seed of the shuffling generator.
   * @default {42}
   */
  seed?: number;
  /**
   * Skip the last partial batch of each epoch instead of padding it.
   * @default {false}
   */
  drop?: boolean;
  /**
   * Source length S of the batches.
   * @default {the split's sourceLength}
   */
  sourceLength?: number;
  /**
   * Target length T of the batches.
   * @default {the split's targetLength}
   */
  targetLength?: number;
}

/**
 * An endless stream of training batches over epochs, reusing one {@link Batch}.
 *
 * @example
 * ```ts
 * import { Batcher, loadTokenizer, tokenizeExamples } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const tok = await loadTokenizer("tests/fixtures/tokenizers/t5");
 * const examples = Array.from({ length: 5 }, (_, i) => ({ source: `review ${i}`, target: "1" }));
 * const train = tokenizeExamples(tok, examples, { sourceLength: 8, targetLength: 2 });
 * const batcher = new Batcher(train, { batchSize: 2, padId: tok.padId, eosId: tok.eosId });
 * assert.equal(batcher.batchesPerEpoch, 3); // the last one is padded
 * const seen: number[] = [];
 * for (let step = 0; step < 3; step++) {
 *   const batch = batcher.next(); // valid until the next call
 *   // write batch.inputIds, batch.attentionMask, batch.labels, batch.decoderInputIds
 *   seen.push(...batch.rows.subarray(0, batch.count));
 * }
 * assert.deepEqual(seen.sort(), [0, 1, 2, 3, 4]); // one epoch: each example once, shuffled
 * ```
 */
export class Batcher {
  /** The split batched. */
  readonly split: TokenizedSplit;
  /** Batches per epoch. */
  readonly batchesPerEpoch: number;
  readonly #opts: Required<Omit<BatcherOptions, "eosId">> & { eosId: number };
  readonly #batch: Batch;
  #gen: Mt19937;
  #order: Int32Array;
  #epoch = 0;
  #pos = 0;
  #step = 0;

  /**
   * A batcher starting at epoch 0, step 0.
   *
   * @param split The tokenized split (at least one example).
   * @param options Batch size, shuffling, seed, ids, lengths.
   */
  constructor(split: TokenizedSplit, options: BatcherOptions) {
    if (split.size === 0) throw new RangeError("cannot batch an empty split");
    const pad = options.padId ?? 0;
    this.#opts = {
      batchSize: options.batchSize,
      shuffle: options.shuffle ?? true,
      seed: options.seed ?? 42,
      drop: options.drop ?? false,
      padId: pad,
      decoderStartId: options.decoderStartId ?? pad,
      eosId: options.eosId ?? 1,
      sourceLength: options.sourceLength ?? split.sourceLength,
      targetLength: options.targetLength ?? split.targetLength,
    };
    this.split = split;
    this.#batch = createBatch(
      this.#opts.batchSize,
      this.#opts.sourceLength,
      this.#opts.targetLength,
    );
    const B = this.#opts.batchSize;
    this.batchesPerEpoch = this.#opts.drop ? Math.floor(split.size / B) : Math.ceil(split.size / B);
    if (this.batchesPerEpoch === 0) {
      throw new RangeError(
        `drop: true with ${split.size} examples and batch size ${B} leaves no batch`,
      );
    }
    this.#gen = new Mt19937(this.#opts.seed);
    this.#order = this.#newOrder();
  }

  #newOrder(): Int32Array {
    if (this.#opts.shuffle) return randperm(this.split.size, this.#gen);
    const a = new Int32Array(this.split.size);
    for (let i = 0; i < a.length; i++) a[i] = i;
    return a;
  }

  /**
   * The epoch (0-based) of the batch {@link next} returned last; 0 before the first. After
   * `k` batches (by `next()` or {@link seek}), this is `floor((k - 1) / batchesPerEpoch)`: the
   * epoch moves on when the first batch of the next one is drawn.
   */
  get epoch(): number {
    return this.#epoch;
  }

  /** How many batches {@link next} has returned (the global step). */
  get step(): number {
    return this.#step;
  }

  /**
   * The next batch; the arrays are overwritten by the following call.
   *
   * @returns The batch.
   */
  next(): Batch {
    const B = this.#opts.batchSize;
    if (this.#pos >= this.batchesPerEpoch) {
      this.#epoch++;
      this.#pos = 0;
      this.#order = this.#newOrder();
    }
    const from = this.#pos * B;
    const to = Math.min(from + B, this.split.size);
    this.#pos++;
    this.#step++;
    return fillBatch(this.#batch, this.split, this.#order.subarray(from, to), this.#opts);
  }

  /**
   * Moves to global step `step` as if {@link next} had been called `step` times from the
   * start (for resuming a run).
   *
   * @param step The number of batches already consumed.
   */
  seek(step: number): void {
    if (!Number.isInteger(step) || step < 0) {
      throw new RangeError(`step must be a non-negative integer, got ${step}`);
    }
    this.#gen = new Mt19937(this.#opts.seed);
    // As next() leaves it: at an epoch boundary the finished epoch is current (#pos at its end)
    // and the next call draws the following permutation.
    const epoch = step === 0 ? 0 : Math.floor((step - 1) / this.batchesPerEpoch);
    this.#order = this.#newOrder();
    for (let e = 0; e < epoch; e++) this.#order = this.#newOrder();
    this.#epoch = epoch;
    this.#pos = step - epoch * this.batchesPerEpoch;
    this.#step = step;
  }
}

/**
 * One pass over a split in order (evaluation): every example once, the last batch padded.
 * The yielded batch object is reused.
 *
 * @param split The tokenized split.
 * @param options Batch size and ids (`shuffle` and `drop` are ignored).
 * @returns The batches.
 *
 * @example
 * ```ts
 * import { batches, loadTokenizer, tokenizeExamples } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const tok = await loadTokenizer("tests/fixtures/tokenizers/t5");
 * const examples = Array.from({ length: 5 }, (_, i) => ({ source: `review ${i}`, target: "1" }));
 * const validation = tokenizeExamples(tok, examples, { sourceLength: 8, targetLength: 2 });
 * const counts: number[] = [];
 * for (const b of batches(validation, { batchSize: 2, padId: tok.padId, eosId: tok.eosId })) {
 *   // generate for rows 0..b.count-1 (b.rows[i] is the example index)
 *   counts.push(b.count);
 * }
 * assert.deepEqual(counts, [2, 2, 1]); // in order, every example once
 * ```
 */
export function* batches(split: TokenizedSplit, options: BatcherOptions): Generator<Batch> {
  const B = options.batchSize;
  const batch = createBatch(
    B,
    options.sourceLength ?? split.sourceLength,
    options.targetLength ?? split.targetLength,
  );
  const idx = new Int32Array(B);
  for (let from = 0; from < split.size; from += B) {
    const n = Math.min(B, split.size - from);
    for (let i = 0; i < n; i++) idx[i] = from + i;
    yield fillBatch(batch, split, idx.subarray(0, n), options);
  }
}
