/**
 * Conventions of text-to-text batches shared by the data pipeline and the models: the label
 * value the loss ignores and the decoder input made from the labels. Pure functions, no GPU.
 *
 * Shape legend: B batch, T target length.
 *
 * @module
 */

/** The label value of rows that the loss ignores (PyTorch's default `ignore_index`). */
export const IGNORE_INDEX: -100 = -100;

/**
 * The decoder input of teacher forcing: the labels (B, T) shifted right by one, the start token
 * first and {@link IGNORE_INDEX} replaced by the pad id (transformers' `_shift_right`).
 *
 * @param labels Labels (B, T), `-100` on padding.
 * @param batch B.
 * @param length T.
 * @param startId The decoder start token (T5: the pad id, 0).
 * @param padId The pad id.
 * @param out Where to write (B, T); a new array by default.
 * @returns `out`.
 *
 * @example
 * ```ts
 * import { shiftRight } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dec = shiftRight(Int32Array.from([5, 6, 1, -100]), 1, 4, 0, 0);
 * assert.deepEqual([...dec], [0, 5, 6, 1]);
 * ```
 */
export function shiftRight(
  labels: ArrayLike<number>,
  batch: number,
  length: number,
  startId: number,
  padId: number,
  out: Int32Array = new Int32Array(batch * length),
): Int32Array {
  if (labels.length !== batch * length || out.length !== batch * length) {
    throw new RangeError(
      `shiftRight: labels (${labels.length}) and out (${out.length}) must hold ` +
        `${batch} x ${length} = ${batch * length} ids`,
    );
  }
  for (let b = 0; b < batch; b++) {
    out[b * length] = startId;
    for (let t = 1; t < length; t++) {
      const v = labels[b * length + t - 1];
      out[b * length + t] = v === IGNORE_INDEX ? padId : v;
    }
  }
  return out;
}
