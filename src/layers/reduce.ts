/**
 * Deterministic reductions: column sums (bias gradients) and the global L2 norm of many
 * tensors (gradient clipping), plus float64 CPU references. No float atomics: every sum runs in
 * a fixed order, so results do not depend on scheduling and repeat bit for bit.
 *
 * Shape legend: N rows, C columns.
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { fmtShape, ShapeError } from "../gpu/errors.ts";
import { buildOps, type Op, type OpSpec, workgroupsFor } from "../gpu/op.ts";
import { checkF32, type Tensor } from "../gpu/tensor.ts";

/** Rows one workgroup of the first `sum_rows` pass adds up. */
const ROWS_PER_CHUNK = 256;
/** Elements per workgroup of `sum_squares`. */
const SQUARES_PER_WORKGROUP = 4096;

/** Options of {@link sumRows}. */
export interface SumRowsOptions {
  /** Input: (..., C) f32; all leading dims are rows. */
  x: Tensor;
  /** Column sums: (C) f32. */
  out: Tensor;
  /** Add into `out` instead of overwriting it (gradient accumulation). @default {false} */
  accumulate?: boolean;
  /** Name in error messages. @default {"sum_rows"} */
  label?: string;
}

/**
 * `out[c] (+)= Σ_r x[r, c]`, deterministic. Up to 256 rows take one pass; more rows take two:
 * partial sums of 256-row chunks into a (chunks, C) scratch buffer allocated here, once, then one
 * pass that adds the chunks in order.
 *
 * @example
 * ```ts
 * import { requestGpu, sumRows } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const dy = gpu.upload("dy", Float32Array.of(1, 2, 3, 4, 5, 6), [1, 2, 3]); // (B, S, C)
 * const db = gpu.upload("db", Float32Array.of(1, 1, 1)); // (C), holds a gradient already
 * // bias gradient: db += Σ over the B·S rows of dy
 * await gpu.run(sumRows(gpu, { x: dy, out: db, accumulate: true }));
 * assert.deepEqual(await gpu.read(db), Float32Array.of(6, 8, 10));
 * gpu.destroy();
 * ```
 */
export function sumRows(gpu: Gpu, o: SumRowsOptions): Op {
  const label = o.label ?? "sum_rows";
  const shapes = `x ${fmtShape(o.x.shape)}, out ${fmtShape(o.out.shape)}`;
  if (o.x.shape.length < 1) throw new ShapeError(`${label}: x needs a column dim: ${shapes}`);
  const c = o.x.shape[o.x.shape.length - 1];
  if (fmtShape(o.out.shape) !== fmtShape([c])) {
    throw new ShapeError(`${label}: out must be (${c}): ${shapes}`);
  }
  checkF32(label, { x: o.x, out: o.out });
  const n = c === 0 ? 0 : o.x.size / c;
  const desc = `${label}(x=${o.x.describe()}, out=${o.out.describe()})`;
  if (c === 0) return buildOps(gpu, desc, []);
  const accumulate = !!o.accumulate;
  const gx = Math.ceil(c / 64);
  const maxDim = gpu.limits.maxComputeWorkgroupsPerDimension;
  const rowsPerChunk = Math.max(ROWS_PER_CHUNK, Math.ceil(n / maxDim));
  const chunks = Math.ceil(n / rowsPerChunk);
  if (chunks <= 1) {
    return buildOps(gpu, desc, [{
      kernel: "sum_rows",
      label: desc,
      bindings: { x: o.x, out: o.out },
      params: { n, c, rows_per_chunk: Math.max(1, n) },
      constants: { ACCUMULATE: accumulate },
      workgroups: [gx, 1, 1],
    }]);
  }
  const partials = gpu.tensor(`${label}.partials`, [chunks, c]);
  return buildOps(gpu, desc, [
    {
      kernel: "sum_rows",
      label: `${desc}.chunks`,
      bindings: { x: o.x, out: partials },
      params: { n, c, rows_per_chunk: rowsPerChunk },
      constants: { ACCUMULATE: false },
      workgroups: [gx, chunks, 1],
    },
    {
      kernel: "sum_rows",
      label: `${desc}.total`,
      bindings: { x: partials, out: o.out },
      params: { n: chunks, c, rows_per_chunk: chunks },
      constants: { ACCUMULATE: accumulate },
      workgroups: [gx, 1, 1],
    },
  ], [partials]);
}

/** Options of {@link globalL2Norm}. */
export interface GlobalL2NormOptions {
  /** The tensors, f32, of any shapes and sizes (e.g. every gradient of a model). */
  tensors: readonly Tensor[];
  /** The norm: (1) f32. */
  out: Tensor;
  /** Name in error messages. @default {"global_l2_norm"} */
  label?: string;
}

/**
 * `out[0] = sqrt(Σ_tensors Σ_i x[i]²)`, deterministic: one dispatch per tensor writes the sums
 * of squares of its 4096-element blocks into its own slots of a partials buffer (allocated here,
 * once), then one dispatch adds all slots in a fixed order and takes the square root. Empty
 * tensors contribute nothing; with no elements at all the norm is 0.
 *
 * @example
 * ```ts
 * import { globalL2Norm, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const dPrompt = gpu.upload("d_prompt", Float32Array.of(3), [1, 1]);
 * const dA = gpu.upload("d_A", Float32Array.of(0, 4), [2, 1]);
 * const norm = gpu.tensor("grad_norm", [1]);
 * await gpu.run(globalL2Norm(gpu, { tensors: [dPrompt, dA], out: norm }));
 * assert.deepEqual(await gpu.read(norm), Float32Array.of(5));
 * gpu.destroy();
 * ```
 */
export function globalL2Norm(gpu: Gpu, o: GlobalL2NormOptions): Op {
  const label = o.label ?? "global_l2_norm";
  if (o.out.size !== 1 || o.out.shape.length !== 1 || o.out.dtype !== "f32") {
    throw new ShapeError(`${label}: out ${o.out.describe()} must be (1) f32`);
  }
  checkF32(label, Object.fromEntries(o.tensors.map((t, i) => [`tensors[${i}]`, t])));
  const blocks = o.tensors.map((t) =>
    t.size === 0 ? 0 : workgroupsFor(t.size, SQUARES_PER_WORKGROUP)
  );
  const slots = blocks.reduce((a, b) => a + b, 0);
  const partials = gpu.tensor(`${label}.partials`, [Math.max(1, slots)]);
  const specs: OpSpec[] = [];
  let slot = 0;
  for (const [i, t] of o.tensors.entries()) {
    if (blocks[i] === 0) continue;
    specs.push({
      kernel: "sum_squares",
      label: `${label}.squares[${i}](${t.describe()})`,
      bindings: { x: t, partials },
      params: { n: t.size, slot },
      workgroups: blocks[i],
    });
    slot += blocks[i];
  }
  const desc = `${label}(${o.tensors.length} tensors, ${slots} blocks, out=${o.out.describe()})`;
  specs.push({
    kernel: "l2_norm_final",
    label: `${label}.final`,
    bindings: { partials, out: o.out },
    params: { slots },
    workgroups: 1,
  });
  return buildOps(gpu, desc, specs, [partials]);
}

/**
 * Float64 CPU reference of {@link sumRows}: column sums of `x` (N, C) row-major.
 *
 * @example
 * ```ts
 * import { sumRowsCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(sumRowsCpu([1, 2, 3, 4, 5, 6], 3), Float64Array.of(5, 7, 9));
 * ```
 */
export function sumRowsCpu(x: ArrayLike<number>, c: number): Float64Array {
  const out = new Float64Array(c);
  for (let i = 0; i < x.length; i++) out[i % c] += x[i];
  return out;
}

/**
 * Float64 CPU reference of {@link globalL2Norm}.
 *
 * @example
 * ```ts
 * import { globalL2NormCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(globalL2NormCpu([[3], [4, 0]]), 5);
 * ```
 */
export function globalL2NormCpu(arrays: readonly ArrayLike<number>[]): number {
  let s = 0;
  for (const a of arrays) {
    for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  }
  return Math.sqrt(s);
}
