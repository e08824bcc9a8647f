/**
 * The train / validation / test splits of docs/method.md ("Splits"), as pure functions over row
 * indices. They reproduce the authors' `AbstractTask.get` (DePT/ADePT `src/tasks.py`) with
 * `split_validation_test=True` and the data seed fixed at 42:
 *
 * - `small` (cola, rte, mrpc, stsb, boolq, cb, wic, wsc, multirc): perm = randperm(|validation|);
 *   train = all of train; validation = validation[perm[:n//2]]; test = validation[perm[n//2:]].
 * - `large` (qqp, qnli, sst2, MRQA): perm = randperm(|train|); validation = train[perm[:1000]];
 *   train = train[perm[1000:]]; test = all of the original validation.
 * - `mnli`: train = train; validation = validation_mismatched; test = validation_matched.
 *
 * The optional per-split cap (the authors' `n_obs`, i.e. `max_train_samples` and friends) is
 * reproduced too: a split carved out of a permutation keeps its first `cap` rows; a split
 * that is a whole Hugging Face split is subsampled with `randperm(|split|)[:cap]`.
 *
 * @module
 */

import { randperm } from "./randperm.ts";

/** How a task's splits are built. */
export type SplitScheme = "small" | "large" | "mnli";

/** The three splits the trainer uses. */
export type SplitName = "train" | "validation" | "test";

/** Rows of one Hugging Face split, in the order the trainer sees them. */
export interface SplitSelection {
  /** The Hugging Face split the rows come from, e.g. `"train"` or `"validation_matched"`. */
  source: string;
  /** Row indices into `source`. */
  indices: Int32Array;
}

/** Where each of the trainer's splits comes from. */
export type TaskSplits = Record<SplitName, SplitSelection>;

/** Options for {@linkcode splitIndices}. */
export interface SplitOptions {
  /**
   * Seed of the `torch.randperm` generator.
   *
   * @default {42}
   */
  seed?: number | bigint;
  /**
   * Rows of train that become the validation split under the `large` scheme.
   *
   * @default {1000}
   */
  largeValidationSize?: number;
  /** Optional per-split row caps (the authors' `max_{train,eval,predict}_samples`). */
  maxSamples?: Partial<Record<SplitName, number>>;
}

/**
 * The split scheme of each task docs/method.md names (keys as in its task table; MRQA sets by their
 * short names). Tasks not listed here are not split by the authors' code.
 */
export const SPLIT_SCHEMES: Readonly<Record<string, SplitScheme>> = Object.freeze({
  cola: "small",
  rte: "small",
  mrpc: "small",
  stsb: "small",
  boolq: "small",
  cb: "small",
  wic: "small",
  wsc: "small",
  multirc: "small",
  qqp: "large",
  qnli: "large",
  sst2: "large",
  nq: "large",
  hotpotqa: "large",
  searchqa: "large",
  newsqa: "large",
  mnli: "mnli",
});

/** The Hugging Face split sizes each scheme needs. */
const REQUIRED_SIZES: Record<SplitScheme, readonly string[]> = {
  small: ["train", "validation"],
  large: ["train", "validation"],
  mnli: ["train", "validation_matched", "validation_mismatched"],
};

function arange(n: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}

function checkCount(what: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    throw new RangeError(`${what} must be a non-negative integer, got ${String(v)}`);
  }
  return v;
}

/**
 * Builds each split's row indices for a task, following docs/method.md and the authors' code.
 *
 * @param scheme `"small"`, `"large"` or `"mnli"` (see {@linkcode SPLIT_SCHEMES}).
 * @param sizes Row counts of the Hugging Face splits, keyed by split name: `train` and
 *   `validation` for `small`/`large`; `train`, `validation_matched` and
 *   `validation_mismatched` for `mnli`.
 * @param options Seed, the `large` validation size and optional per-split caps.
 * @returns For each of train / validation / test, the source split and row indices.
 * @throws {RangeError} On an unknown scheme, a missing or invalid size, or an invalid option.
 *
 * @example
 * ```ts
 * import { splitIndices } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * // randperm(10) with seed 42 is [2, 6, 1, 8, 4, 5, 0, 9, 3, 7]
 * const s = splitIndices("small", { train: 30, validation: 10 });
 * assert.deepEqual([...s.validation.indices], [2, 6, 1, 8, 4]);
 * assert.deepEqual([...s.test.indices], [5, 0, 9, 3, 7]);
 * assert.equal(s.test.source, "validation");
 * assert.equal(s.train.indices.length, 30);
 * ```
 */
export function splitIndices(
  scheme: SplitScheme,
  sizes: Readonly<Record<string, number>>,
  options: SplitOptions = {},
): TaskSplits {
  const required = REQUIRED_SIZES[scheme];
  if (required === undefined) {
    throw new RangeError(
      `unknown split scheme ${JSON.stringify(scheme)}; use small, large or mnli`,
    );
  }
  const n: Record<string, number> = {};
  for (const name of required) {
    if (!(name in sizes)) {
      throw new RangeError(
        `split scheme ${scheme} needs the size of split ${JSON.stringify(name)}, got sizes ` +
          JSON.stringify(sizes),
      );
    }
    n[name] = checkCount(`size of split ${JSON.stringify(name)}`, sizes[name]);
  }
  const seed = options.seed ?? 42;
  const largeValidationSize = checkCount(
    "largeValidationSize",
    options.largeValidationSize ?? 1000,
  );
  const caps = options.maxSamples ?? {};
  for (const [k, v] of Object.entries(caps)) {
    if (v !== undefined) checkCount(`maxSamples.${k}`, v);
  }

  // A split carved from a permutation: the cap keeps its first rows (Python's indices[:n_obs]).
  const carved = (source: string, indices: Int32Array, split: SplitName): SplitSelection => {
    const cap = caps[split];
    return { source, indices: cap === undefined ? indices : indices.slice(0, cap) };
  };
  // A whole Hugging Face split: the cap draws randperm(|split|)[:cap] (the authors' subsample).
  const whole = (source: string, size: number, split: SplitName): SplitSelection => {
    const cap = caps[split];
    return {
      source,
      indices: cap === undefined ? arange(size) : randperm(size, seed).slice(0, cap),
    };
  };

  if (scheme === "small") {
    const perm = randperm(n.validation, seed);
    const half = Math.floor(n.validation / 2);
    return {
      train: whole("train", n.train, "train"),
      validation: carved("validation", perm.slice(0, half), "validation"),
      test: carved("validation", perm.slice(half), "test"),
    };
  }
  if (scheme === "large") {
    const perm = randperm(n.train, seed);
    return {
      train: carved("train", perm.slice(largeValidationSize), "train"),
      validation: carved("train", perm.slice(0, largeValidationSize), "validation"),
      test: whole("validation", n.validation, "test"),
    };
  }
  return {
    train: whole("train", n.train, "train"),
    validation: whole("validation_mismatched", n.validation_mismatched, "validation"),
    test: whole("validation_matched", n.validation_matched, "test"),
  };
}

/**
 * Gathers rows by index: `rows[indices[0]], rows[indices[1]], ...` (the `dataset.select`
 * of the authors' code).
 *
 * @param rows The rows of one Hugging Face split.
 * @param indices Row indices into `rows`, e.g. from {@linkcode splitIndices}.
 * @returns The selected rows, in index order.
 * @throws {RangeError} If an index is outside `rows`.
 *
 * @example
 * ```ts
 * import { selectRows } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(selectRows(["a", "b", "c"], Int32Array.of(2, 0)), ["c", "a"]);
 * ```
 */
export function selectRows<T>(rows: readonly T[], indices: ArrayLike<number>): T[] {
  const out = new Array<T>(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i];
    if (!(j >= 0 && j < rows.length)) {
      throw new RangeError(
        `index ${j} at position ${i} is outside the ${rows.length} rows being selected from`,
      );
    }
    out[i] = rows[j];
  }
  return out;
}
