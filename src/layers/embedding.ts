/**
 * Token embedding: a row gather `out[i, :] = table[ids[i], :]` and its deterministic backward
 * `dtable[v, :] += Σ_{i: ids[i] = v} dout[i, :]` (no float atomics), plus float64 CPU
 * references.
 *
 * Shape legend: V vocab, C channels (d_model), N tokens (any leading shape, e.g. (B, S)).
 *
 * Out-of-range ids (outside [0, V)) never read or write outside the table: the forward writes a
 * zero row and the backward drops the token's gradient. To catch them, call {@link checkIds} on
 * the host-side ids before uploading them (the batcher does this once per batch; it costs one
 * pass over the ids and no GPU round trip).
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { fmtShape, ShapeError } from "../gpu/errors.ts";
import { buildOps, type Op, workgroupsFor } from "../gpu/op.ts";
import { checkF32, type Tensor } from "../gpu/tensor.ts";

/** Options of {@link embeddingForward}. */
export interface EmbeddingForwardOptions {
  /** The table: (V, C) f32. */
  table: Tensor;
  /** Token ids: (...) i32, any shape of N elements. */
  ids: Tensor;
  /** Output rows: (..., C) f32, the shape of `ids` plus C. */
  out: Tensor;
  /** Name in error messages. @default {"embedding"} */
  label?: string;
}

/** Options of {@link embeddingBackward}. */
export interface EmbeddingBackwardOptions {
  /** Gradient of the table: (V, C) f32, accumulated into (see `accumulate`). */
  dtable: Tensor;
  /** Gradient of the output rows: (..., C) f32, the shape of `ids` plus C. */
  dout: Tensor;
  /** Token ids of the forward pass: (...) i32. */
  ids: Tensor;
  /**
   * Add into `dtable` (llm.c convention). With `false`, the rows of ids that occur are
   * overwritten and the other rows are left untouched: zero `dtable` first.
   * @default {true}
   */
  accumulate?: boolean;
  /** Name in error messages. @default {"embedding_backward"} */
  label?: string;
}

/**
 * Throws a `RangeError` naming the first id outside `[0, vocab)` and its position. The GPU
 * kernels tolerate such ids (zero rows, dropped gradients); call this on the host to catch them.
 *
 * @example
 * ```ts
 * import { checkIds } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * checkIds(Int32Array.of(0, 5, 2), 6); // fine
 * assert.throws(
 *   () => checkIds(Int32Array.of(0, 7), 6),
 *   /ids\[1\] = 7 is outside the vocabulary \[0, 6\)/,
 * );
 * ```
 */
export function checkIds(ids: ArrayLike<number>, vocab: number, label = "ids"): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!(Number.isInteger(id) && id >= 0 && id < vocab)) {
      throw new RangeError(
        `${label}[${i}] = ${id} is outside the vocabulary [0, ${vocab})`,
      );
    }
  }
}

function checkShapes(
  label: string,
  [tableName, table]: [string, readonly number[]],
  ids: Tensor,
  [rowsName, rows]: [string, Tensor],
): { n: number; c: number; v: number } {
  const desc = () =>
    `${tableName} ${fmtShape(table)}, ids ${fmtShape(ids.shape)}, ${rowsName} ${
      fmtShape(rows.shape)
    }`;
  if (table.length !== 2) {
    throw new ShapeError(`${label}: ${tableName} must be (V, C): ${desc()}`);
  }
  const [v, c] = table;
  const want = [...ids.shape, c];
  if (fmtShape(rows.shape) !== fmtShape(want)) {
    throw new ShapeError(`${label}: ${rowsName} must be ${fmtShape(want)}: ${desc()}`);
  }
  return { n: ids.size, c, v };
}

function checkDtypes(label: string, f32s: Tensor[], ids: Tensor): void {
  checkF32(label, Object.fromEntries(f32s.map((t) => [t.name, t])));
  if (ids.dtype !== "i32") throw new ShapeError(`${label}: ids ${ids.describe()} must be i32`);
}

/**
 * `out[i, :] = table[ids[i], :]`; a row whose id is outside `[0, V)` is zeros.
 *
 * @example
 * ```ts
 * import { embeddingForward, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const wte = gpu.upload("wte", Float32Array.of(1, 2, 3, 4, 5, 6), [3, 2]); // (V, C)
 * const inputIds = gpu.upload("input_ids", Int32Array.of(2, 0, 9), [1, 3]); // (B, S)
 * const embeds = gpu.tensor("embeds", [1, 3, 2]); // (B, S, C)
 * await gpu.run(embeddingForward(gpu, { table: wte, ids: inputIds, out: embeds }));
 * assert.deepEqual(await gpu.read(embeds), Float32Array.of(5, 6, 1, 2, 0, 0)); // 9: zeros
 * gpu.destroy();
 * ```
 */
export function embeddingForward(gpu: Gpu, o: EmbeddingForwardOptions): Op {
  const label = o.label ?? "embedding";
  const { n, c, v } = checkShapes(label, ["table", o.table.shape], o.ids, ["out", o.out]);
  checkDtypes(label, [o.table, o.out], o.ids);
  const desc = `${label}(table=${o.table.describe()}, ids=${o.ids.describe()}, ` +
    `out=${o.out.describe()})`;
  if (n * c === 0) return buildOps(gpu, desc, []);
  return buildOps(gpu, desc, [{
    kernel: "embedding_forward",
    label: desc,
    bindings: { table: o.table, ids: o.ids, out: o.out },
    params: { n, c, v },
    workgroups: workgroupsFor(n * c),
  }]);
}

/**
 * `dtable[v, :] += Σ_{i: ids[i] = v} dout[i, :]`, deterministic and without atomics: a first
 * dispatch finds each token's previous token with the same id (O(N²/2) integer comparisons
 * through workgroup memory, parallel over tokens), a second one turns these into "next" links,
 * and a third lets the first token of each id sum its chain in token order, one thread per
 * channel. Tokens with out-of-range ids contribute nothing. The link scratch buffer (2N i32) is
 * allocated once, here.
 *
 * Cost: the chain of the most frequent id is walked sequentially (one thread per channel), so a
 * batch that is mostly padding spends O(count of the pad id) per channel on it.
 *
 * @example
 * ```ts
 * import { embeddingBackward, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const inputIds = gpu.upload("input_ids", Int32Array.of(0, 1, 0), [1, 3]);
 * const dEmbeds = gpu.upload("d_embeds", Float32Array.of(1, 1, 2, 2, 3, 3), [1, 3, 2]);
 * const dwte = gpu.tensor("dwte", [2, 2]); // zeros; the backward adds into it
 * await gpu.run(embeddingBackward(gpu, { dtable: dwte, dout: dEmbeds, ids: inputIds }));
 * assert.deepEqual(await gpu.read(dwte), Float32Array.of(4, 4, 2, 2)); // token 0 twice
 * gpu.destroy();
 * ```
 */
export function embeddingBackward(gpu: Gpu, o: EmbeddingBackwardOptions): Op {
  const label = o.label ?? "embedding_backward";
  const { n, c, v } = checkShapes(label, ["dtable", o.dtable.shape], o.ids, ["dout", o.dout]);
  checkDtypes(label, [o.dtable, o.dout], o.ids);
  const desc = `${label}(dtable=${o.dtable.describe()}, dout=${o.dout.describe()}, ` +
    `ids=${o.ids.describe()})`;
  if (n * c === 0) return buildOps(gpu, desc, []);
  const links = gpu.tensor(`${label}.links`, [2, n], "i32");
  return buildOps(gpu, desc, [
    {
      kernel: "embedding_backward_links",
      label: `${desc}.links`,
      bindings: { ids: o.ids, links },
      params: { n },
      workgroups: workgroupsFor(n),
    },
    {
      kernel: "embedding_backward_next",
      label: `${desc}.next`,
      bindings: { links },
      params: { n },
      workgroups: workgroupsFor(n),
    },
    {
      kernel: "embedding_backward",
      label: `${desc}.sum`,
      bindings: { dout: o.dout, ids: o.ids, links, dtable: o.dtable },
      params: { n, c, v },
      constants: { ACCUMULATE: o.accumulate ?? true },
      workgroups: workgroupsFor(n * c),
    },
  ], [links]);
}

/**
 * Float64 CPU reference of {@link embeddingForward}: `table` is (V, C) row-major; returns
 * (N, C). Out-of-range ids give zero rows.
 *
 * @example
 * ```ts
 * import { embeddingForwardCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const table = [1, 2, 3, 4, 5, 6]; // (3, 2)
 * assert.deepEqual(embeddingForwardCpu(table, [3, 2], [2, 0]), Float64Array.of(5, 6, 1, 2));
 * ```
 */
export function embeddingForwardCpu(
  table: ArrayLike<number>,
  tableShape: readonly [number, number],
  ids: ArrayLike<number>,
): Float64Array {
  const [v, c] = tableShape;
  const out = new Float64Array(ids.length * c);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!(id >= 0 && id < v)) continue;
    for (let k = 0; k < c; k++) out[i * c + k] = table[id * c + k];
  }
  return out;
}

/**
 * Float64 CPU reference of {@link embeddingBackward}: returns `dtable` (V, C) with the
 * gradients of `dout` (N, C) summed per id (added to `accumulateInto` when given).
 *
 * @example
 * ```ts
 * import { embeddingBackwardCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dout = [1, 1, 2, 2, 3, 3]; // (3, 2)
 * assert.deepEqual(embeddingBackwardCpu(dout, [0, 1, 0], [2, 2]), Float64Array.of(4, 4, 2, 2));
 * ```
 */
export function embeddingBackwardCpu(
  dout: ArrayLike<number>,
  ids: ArrayLike<number>,
  tableShape: readonly [number, number],
  accumulateInto?: ArrayLike<number>,
): Float64Array {
  const [v, c] = tableShape;
  const dtable = accumulateInto ? Float64Array.from(accumulateInto) : new Float64Array(v * c);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!(id >= 0 && id < v)) continue;
    for (let k = 0; k < c; k++) dtable[id * c + k] += dout[i * c + k];
  }
  return dtable;
}
