/**
 * T5's LayerNorm: root-mean-square normalisation with a scale and no mean subtraction or bias,
 * forward and backward, plus a float64 CPU reference.
 *
 * Per row of C values (N = B·S rows): `rstd = 1 / sqrt(mean(x²) + eps)` computed in f32 and
 * `out = weight ⊙ (x · rstd)`, as Hugging Face's `T5LayerNorm`. The forward pass saves `rstd`
 * (N) for the backward pass, which gives the input gradient and, optionally (a frozen model
 * skips it), the weight gradient through a deterministic two-pass reduction (per-chunk partial
 * sums over rows, then an ordered sum of the chunks; no atomics).
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { fmtShape, ShapeError } from "../gpu/errors.ts";
import { buildOp, buildOps, type Op, type OpSpec, workgroupsFor } from "../gpu/op.ts";
import { checkF32, type Tensor } from "../gpu/tensor.ts";
import { type DropoutSite, dropoutUniforms } from "./dropout.ts";
import { type Loads, loadWidth } from "./loads.ts";

/** Columns per workgroup of the weight-gradient kernels (rows use one workgroup of 64 each). */
const DW_COLUMNS = 256;

/** At most this many row chunks in the first pass of the weight gradient. */
const MAX_CHUNKS = 1024;
/** At least this many rows per chunk (fewer chunks for small N). */
const MIN_ROWS_PER_CHUNK = 32;

/** Options of {@link rmsNorm}. */
export interface RmsNormOptions {
  /** Input (..., C), N = numel / C rows. */
  x: Tensor;
  /** Scale (C). */
  weight: Tensor;
  /** Result, x's shape. May be `x` itself. */
  out: Tensor;
  /** Saved 1 / sqrt(mean(x²) + eps) per row: N elements, e.g. (B, S). */
  rstd: Tensor;
  /** Added to the mean square (T5: `layer_norm_epsilon`, 1e-6). */
  eps: number;
  /** As {@link ResidualRmsNormOptions.threadPerRow}. */
  threadPerRow?: boolean;
  /** As {@link ResidualRmsNormOptions.loads}. */
  loads?: Loads;
  /** Name in error messages. @default {"rms_norm"} */
  label?: string;
}

interface Geometry {
  rows: number;
  c: number;
}

function geometry(
  label: string,
  x: Tensor,
  weight: Tensor,
  others: Record<string, Tensor | undefined>,
  rstd: Tensor,
): Geometry {
  checkF32(label, { x, weight, rstd, ...others });
  if (x.shape.length < 1) {
    throw new ShapeError(`${label}: x = ${x.describe()} needs at least one dimension (C)`);
  }
  const c = x.shape[x.shape.length - 1];
  if (weight.shape.length !== 1 || weight.shape[0] !== c) {
    throw new ShapeError(
      `${label}: weight = ${weight.describe()} must be (${c}), the last dimension of x = ${x.describe()}`,
    );
  }
  for (const [role, t] of Object.entries(others)) {
    if (t && fmtShape(t.shape) !== fmtShape(x.shape)) {
      throw new ShapeError(
        `${label}: shapes differ: x = ${x.describe()}, ${role} = ${t.describe()}`,
      );
    }
  }
  const rows = c === 0 ? 0 : x.size / c;
  if (rstd.size !== rows) {
    throw new ShapeError(
      `${label}: rstd = ${rstd.describe()} must have one element per row of x = ${x.describe()} ` +
        `(${rows})`,
    );
  }
  return { rows, c };
}

/**
 * `out = weight ⊙ x · rsqrt(mean(x²) + eps)` per row, saving `rstd`.
 *
 * @example
 * ```ts
 * import { requestGpu, rmsNorm, rmsNormCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const [xs, ws] = [[3, 4, 1, -1], [1, 2]];
 * const x = gpu.upload("x", Float32Array.from(xs), [1, 2, 2]); // (B, S, C)
 * const weight = gpu.upload("ln_weight", Float32Array.from(ws));
 * const h = gpu.tensor("h", [1, 2, 2]);
 * const rstd = gpu.tensor("rstd", [1, 2]); // (B, S), kept for the backward pass
 * await gpu.run(rmsNorm(gpu, { x, weight, out: h, rstd, eps: 1e-6 }));
 * const want = rmsNormCpu(xs, ws, 1e-6);
 * (await gpu.read(h)).forEach((v, i) => assert.ok(Math.abs(v - want.out[i]) < 1e-6));
 * (await gpu.read(rstd)).forEach((v, i) => assert.ok(Math.abs(v - want.rstd[i]) < 1e-6));
 * gpu.destroy();
 * ```
 */
export function rmsNorm(gpu: Gpu, o: RmsNormOptions): Op {
  return residualRmsNorm(gpu, { ...o, label: o.label ?? "rms_norm" });
}

/** A dropout inside a fused norm (see `DropoutSite`). */
export type NormDropout = DropoutSite;

/** Options of {@link residualRmsNorm}. */
export interface ResidualRmsNormOptions {
  /** The residual stream coming in (..., C); absent: the stream is `dropout(y)` alone. */
  x?: Tensor;
  /** The branch added to it (x's shape), after `dropoutY` when given. */
  y?: Tensor;
  /** Scale (C). */
  weight: Tensor;
  /** Where the new stream `x + dropout(y)` is written (needed downstream), if wanted. */
  sum?: Tensor;
  /** The normed stream (x's shape), after `dropoutOut` when given. */
  out: Tensor;
  /** Saved 1 / sqrt(mean(s²) + eps) per row. */
  rstd: Tensor;
  /** Added to the mean square (T5: 1e-6). */
  eps: number;
  /** Dropout of the branch before the add. */
  dropoutY?: NormDropout;
  /** Dropout of the normed output (a T5 stack's final dropout). */
  dropoutOut?: NormDropout;
  /**
   * One thread per row (true: no barrier, for CPU adapters, where a barrier switches between all
   * of a workgroup's invocations) or one workgroup of 64 threads per row (false).
   * @default {true on a software adapter, else false}
   */
  threadPerRow?: boolean;
  /**
   * How the row kernels read rows: 4 floats per load (`"vec4"`, C a multiple of 4) or one.
   * @default {vec4 where C is a multiple of 4, else scalar}
   */
  loads?: Loads;
  /** Name in error messages. @default {"residual_rms_norm"} */
  label?: string;
}

/** Floats per load of the row kernels: 4 where C is a multiple of 4 (see `loads`). */
function rowLoads(label: string, c: number, loads: Loads | undefined): 1 | 4 {
  const needs = "C, the rows' length, to be a multiple of 4";
  return loadWidth(label, loads, needs, c % 4 === 0 ? undefined : `C = ${c}`);
}

/** The row kernels' grid and mapping constant for `rows` rows (see `threadPerRow`). */
function rowMapping(gpu: Gpu, rows: number, threadPerRow: boolean | undefined) {
  const perThread = threadPerRow ?? gpu.adapter.software;
  return { workgroups: perThread ? workgroupsFor(rows, 64) : rows, ROW_PER_THREAD: perThread };
}

/** The dropout uniforms of the fused norm kernels: one rate for both sites, two streams. */
function dropParams(...ds: (NormDropout | undefined)[]) {
  const d = ds.find((x) => x && x.p > 0);
  if (ds.some((x) => x && d && x.p !== d.p)) {
    throw new ShapeError("the dropouts of one fused norm must share one rate");
  }
  const u = dropoutUniforms(d);
  return {
    state: d?.state,
    threshold: u.threshold,
    keep_none: u.keep_none,
    drop_scale: u.drop_scale,
  };
}

/**
 * `s = x + dropout(y)`, `out = dropout(weight ⊙ s · rsqrt(mean(s²) + eps))` per row in one
 * dispatch, saving `rstd` (and `s` into `sum`): where a T5 sublayer's residual meets the next
 * norm. Without `y` it is {@link rmsNorm}; without `x`, the stream is `dropout(y)`.
 *
 * @example The end of a sublayer: the residual add, then the next norm
 * ```ts
 * import { requestGpu, residualRmsNorm, rmsNormCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const [hs, bs, ws] = [[1, 2, 3, 4], [0.5, -1, 2, 0], [1, 2]];
 * const h = gpu.upload("h", Float32Array.from(hs), [2, 2]); // the residual stream (rows, C)
 * const branch = gpu.upload("branch", Float32Array.from(bs), [2, 2]); // the sublayer's output
 * const weight = gpu.upload("ln_weight", Float32Array.from(ws));
 * const [h2, n] = [gpu.tensor("h2", [2, 2]), gpu.tensor("normed", [2, 2])];
 * const rstd = gpu.tensor("rstd", [2]);
 * // training adds `dropoutY: { state, p, stream }`: h2 = h + dropout(branch)
 * const op = residualRmsNorm(gpu, { x: h, y: branch, sum: h2, weight, out: n, rstd, eps: 1e-6 });
 * await gpu.run(op);
 * const sum = hs.map((v, i) => v + bs[i]);
 * assert.deepEqual(await gpu.read(h2), Float32Array.from(sum));
 * const want = rmsNormCpu(sum, ws, 1e-6).out;
 * (await gpu.read(n)).forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6));
 * gpu.destroy();
 * ```
 */
export function residualRmsNorm(gpu: Gpu, o: ResidualRmsNormOptions): Op {
  const label = o.label ?? "residual_rms_norm";
  const ref = o.x ?? o.y;
  if (!ref) throw new ShapeError(`${label}: give x, y or both`);
  const g = geometry(label, ref, o.weight, { x: o.x, y: o.y, sum: o.sum, out: o.out }, o.rstd);
  if (!Number.isFinite(o.eps) || o.eps < 0) {
    throw new ShapeError(`${label}: eps must be a finite number >= 0, got ${o.eps}`);
  }
  const dropY = !!o.dropoutY && o.dropoutY.p > 0 && !!o.y;
  const dropOut = !!o.dropoutOut && o.dropoutOut.p > 0;
  const d = dropParams(dropY ? o.dropoutY : undefined, dropOut ? o.dropoutOut : undefined);
  const ph = gpu.placeholder;
  const parts = [o.x && "x", o.y && `${dropY ? "dropout(y)" : "y"}`].filter(Boolean).join(" + ");
  const map = rowMapping(gpu, g.rows, o.threadPerRow);
  const w = rowLoads(label, g.c, o.loads);
  return buildOp(gpu, {
    kernel: w === 4 ? "rms_norm_vec4" : "rms_norm",
    label:
      `${label}(${parts}: ${ref.describe()}, weight=${o.weight.describe()} -> ${o.out.describe()})`,
    bindings: {
      x: o.x ?? ph,
      y: o.y ?? ph,
      weight: o.weight,
      state: d.state ?? ph,
      sum: o.sum ?? gpu.sink,
      out: o.out,
      rstd: o.rstd,
    },
    params: {
      rows: g.rows,
      c: g.c / w,
      eps: o.eps,
      stream_y: dropY ? o.dropoutY!.stream : 0,
      stream_out: dropOut ? o.dropoutOut!.stream : 0,
      threshold: d.threshold,
      keep_none: d.keep_none,
      drop_scale: d.drop_scale,
    },
    constants: {
      HAS_X: !!o.x,
      HAS_Y: !!o.y,
      DROP_Y: dropY,
      DROP_OUT: dropOut,
      WRITE_SUM: !!o.sum,
      ROW_PER_THREAD: map.ROW_PER_THREAD,
    },
    workgroups: g.c === 0 ? 0 : map.workgroups,
  });
}

/**
 * Shape (J, C) of the scratch tensor that {@link rmsNormBackward} uses for the weight gradient of
 * N rows of C: J row chunks of `ceil(N / J)` rows.
 *
 * @example
 * ```ts
 * import { rmsNormScratchShape } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(rmsNormScratchShape(70_000, 512), [1015, 512]); // 1015 chunks of 69 rows
 * assert.deepEqual(rmsNormScratchShape(16, 64), [1, 64]);
 * ```
 */
export function rmsNormScratchShape(rows: number, c: number): [number, number] {
  const perChunk = Math.max(MIN_ROWS_PER_CHUNK, Math.ceil(rows / MAX_CHUNKS));
  return [Math.max(1, Math.ceil(rows / perChunk)), c];
}

/** Options of {@link rmsNormBackward}. */
export interface RmsNormBackwardOptions {
  /** Gradient of the output (..., C). */
  dout: Tensor;
  /** Input of the forward pass. */
  x: Tensor;
  /** Scale of the forward pass (C). */
  weight: Tensor;
  /** `rstd` saved by {@link rmsNorm} (N). */
  rstd: Tensor;
  /** Gradient of the input, x's shape. Without `accumulate` it may be `dout` itself. */
  dx?: Tensor;
  /** Gradient of the weight (C), if wanted (a frozen norm skips it). */
  dweight?: Tensor;
  /** Add into `dx` instead of overwriting it (residual paths). @default {false} */
  accumulate?: boolean;
  /** Add into `dweight` instead of overwriting it. @default {false} */
  accumulateWeight?: boolean;
  /** The backward of a dropout after the norm: `dout` goes through it first. */
  doutDropout?: NormDropout;
  /**
   * Also write `dropout'(dx)` (the final dx) into `out`: the gradient of the dropped residual
   * branch that fed x ({@link ResidualRmsNormOptions.dropoutY}).
   */
  branch?: NormDropout & { out: Tensor };
  /**
   * Scratch for the weight gradient, at least {@link rmsNormScratchShape} elements; allocated
   * once by the launcher when not given.
   */
  scratch?: Tensor;
  /** As {@link ResidualRmsNormOptions.threadPerRow} (for dx). */
  threadPerRow?: boolean;
  /** As {@link ResidualRmsNormOptions.loads} (for dx). */
  loads?: Loads;
  /** Name in error messages. @default {"rms_norm_backward"} */
  label?: string;
}

/**
 * Backward of {@link rmsNorm}:
 * `dx (+)= rstd·(weight ⊙ dout − x·rstd²·Σ(dout ⊙ weight ⊙ x)/C)` per row, and optionally
 * `dweight (+)= Σ_rows dout ⊙ x · rstd` (two deterministic passes through `scratch`).
 *
 * @example
 * ```ts
 * import { requestGpu, rmsNorm, rmsNormBackward, rmsNormBackwardCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const [xs, ws, gs] = [[3, 4, 1, -1], [1, 2], [1, 0, 0.5, 2]];
 * const x = gpu.upload("x", Float32Array.from(xs), [2, 2]);
 * const weight = gpu.upload("ln_weight", Float32Array.from(ws));
 * const dh = gpu.upload("dh", Float32Array.from(gs), [2, 2]);
 * const [h, rstd] = [gpu.tensor("h", [2, 2]), gpu.tensor("rstd", [2])];
 * const [dx, dweight] = [gpu.tensor("dx", [2, 2]), gpu.tensor("d_ln_weight", [2])];
 * await gpu.run([
 *   rmsNorm(gpu, { x, weight, out: h, rstd, eps: 1e-6 }), // saves rstd
 *   rmsNormBackward(gpu, { dout: dh, x, weight, rstd, dx, dweight }), // a frozen norm: no dweight
 * ]);
 * const want = rmsNormBackwardCpu(gs, xs, ws, 1e-6);
 * (await gpu.read(dx)).forEach((v, i) => assert.ok(Math.abs(v - want.dx[i]) < 1e-5));
 * (await gpu.read(dweight)).forEach((v, i) => assert.ok(Math.abs(v - want.dweight[i]) < 1e-5));
 * gpu.destroy();
 * ```
 */
export function rmsNormBackward(gpu: Gpu, o: RmsNormBackwardOptions): Op {
  const label = o.label ?? "rms_norm_backward";
  const g = geometry(label, o.x, o.weight, { dout: o.dout, dx: o.dx }, o.rstd);
  if (!o.dx && !o.dweight) {
    throw new ShapeError(`${label}: neither dx nor dweight was given; nothing to compute`);
  }
  if (o.dweight && fmtShape(o.dweight.shape) !== fmtShape(o.weight.shape)) {
    throw new ShapeError(
      `${label}: shapes differ: weight = ${o.weight.describe()}, dweight = ${o.dweight.describe()}`,
    );
  }
  checkF32(label, { dweight: o.dweight });
  const [chunks] = rmsNormScratchShape(g.rows, g.c);
  if (o.dweight && o.scratch) {
    if (o.scratch.dtype !== "f32" || o.scratch.size < chunks * g.c) {
      throw new ShapeError(
        `${label}: scratch = ${o.scratch.describe()} must be f32 with at least ${chunks} x ${g.c} ` +
          `elements for x = ${o.x.describe()}`,
      );
    }
  }
  if (o.doutDropout && o.dweight) {
    throw new ShapeError(`${label}: doutDropout applies to dx only; compute dweight apart`);
  }
  if (o.branch) {
    if (!o.dx) throw new ShapeError(`${label}: a branch output needs dx`);
    geometry(label, o.x, o.weight, { branch: o.branch.out }, o.rstd);
  }
  const dropDout = !!o.doutDropout && o.doutDropout.p > 0;
  const branch = !!o.branch && o.branch.p > 0;
  const d = dropParams(dropDout ? o.doutDropout : undefined, branch ? o.branch : undefined);
  const specs: OpSpec[] = [];
  if (o.dx && g.rows > 0 && g.c > 0) {
    const map = rowMapping(gpu, g.rows, o.threadPerRow);
    const w = rowLoads(label, g.c, o.loads);
    specs.push({
      kernel: w === 4 ? "rms_norm_backward_vec4" : "rms_norm_backward",
      label: `${label}.dx(dout=${o.dout.describe()}, x=${o.x.describe()} -> ${o.dx.describe()})`,
      bindings: {
        dout: o.dout,
        x: o.x,
        weight: o.weight,
        rstd: o.rstd,
        state: d.state ?? gpu.placeholder,
        dx: o.dx,
        dbranch: branch ? o.branch!.out : gpu.sink,
      },
      params: {
        rows: g.rows,
        c: g.c / w,
        stream_dout: dropDout ? o.doutDropout!.stream : 0,
        stream_branch: branch ? o.branch!.stream : 0,
        threshold: d.threshold,
        keep_none: d.keep_none,
        drop_scale: d.drop_scale,
      },
      constants: {
        ACCUMULATE: !!o.accumulate,
        DROP_DOUT: dropDout,
        BRANCH: branch,
        ROW_PER_THREAD: map.ROW_PER_THREAD,
      },
      workgroups: map.workgroups,
    });
  }
  const owned: Tensor[] = [];
  if (o.dweight && g.c > 0) {
    const perChunk = g.rows === 0 ? 1 : Math.ceil(g.rows / chunks);
    const scratch = o.scratch ?? gpu.tensor(`${label}.scratch`, [chunks, g.c]);
    if (!o.scratch) owned.push(scratch);
    specs.push({
      kernel: "rms_norm_dweight",
      label: `${label}.dweight_partial(${o.x.describe()} -> ${scratch.describe()})`,
      bindings: { dout: o.dout, x: o.x, rstd: o.rstd, partial: scratch },
      params: { rows: g.rows, c: g.c, rows_per_chunk: perChunk },
      workgroups: [workgroupsFor(g.c, DW_COLUMNS), chunks, 1],
    });
    specs.push({
      kernel: "rms_norm_dweight_reduce",
      label: `${label}.dweight(${scratch.describe()} -> ${o.dweight.describe()})`,
      bindings: { partial: scratch, dweight: o.dweight },
      params: { c: g.c, chunks },
      constants: { ACCUMULATE: !!o.accumulateWeight },
      workgroups: workgroupsFor(g.c, DW_COLUMNS),
    });
  }
  const desc =
    `${label}(dout=${o.dout.describe()}, x=${o.x.describe()}, weight=${o.weight.describe()})`;
  return specs.length === 1
    ? buildOp(gpu, { ...specs[0], label: desc }, owned)
    : buildOps(gpu, desc, specs, owned);
}

// ---------------------------------------------------------------------------------------------
// Float64 CPU references

function cpuRows(label: string, x: ArrayLike<number>, weight: ArrayLike<number>): number {
  const c = weight.length;
  if (c === 0 || x.length % c !== 0) {
    throw new ShapeError(`${label}: x has ${x.length} elements, not a multiple of C = ${c}`);
  }
  return x.length / c;
}

/**
 * Float64 CPU reference of {@link rmsNorm}: returns `out` (x's length) and `rstd` (N).
 *
 * @example
 * ```ts
 * import { rmsNormCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const { out, rstd } = rmsNormCpu([3, 4], [1, 2], 0); // one row of C 2
 * const rms = Math.sqrt((9 + 16) / 2);
 * assert.equal(rstd[0], 1 / rms);
 * assert.deepEqual(out, Float64Array.of(3 / rms, 8 / rms));
 * ```
 */
export function rmsNormCpu(
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  eps: number,
): { out: Float64Array; rstd: Float64Array } {
  const c = weight.length;
  const rows = cpuRows("rmsNormCpu", x, weight);
  const out = new Float64Array(x.length);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let k = 0; k < c; k++) ss += x[r * c + k] * x[r * c + k];
    const rs = 1 / Math.sqrt(ss / c + eps);
    rstd[r] = rs;
    for (let k = 0; k < c; k++) out[r * c + k] = weight[k] * x[r * c + k] * rs;
  }
  return { out, rstd };
}

/**
 * Float64 CPU reference of {@link rmsNormBackward}: gradients of `Σ dout ⊙ rmsNorm(x)` with
 * respect to x and the weight (rstd is recomputed from x and eps).
 *
 * @example
 * ```ts
 * import { rmsNormBackwardCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const x = [3, 4];
 * const { dx, dweight } = rmsNormBackwardCpu([1, 0], x, [1, 1], 0);
 * // the norm ignores the scale of x, so its gradient is orthogonal to x
 * assert.ok(Math.abs(dx[0] * x[0] + dx[1] * x[1]) < 1e-12);
 * assert.deepEqual(dweight, Float64Array.of(3 / Math.sqrt(12.5), 0)); // dout ⊙ x · rstd
 * ```
 */
export function rmsNormBackwardCpu(
  dout: ArrayLike<number>,
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  eps: number,
): { dx: Float64Array; dweight: Float64Array } {
  const c = weight.length;
  const rows = cpuRows("rmsNormBackwardCpu", x, weight);
  if (dout.length !== x.length) {
    throw new ShapeError(`rmsNormBackwardCpu: lengths differ (${dout.length} vs ${x.length})`);
  }
  const { rstd } = rmsNormCpu(x, weight, eps);
  const dx = new Float64Array(x.length);
  const dweight = new Float64Array(c);
  for (let r = 0; r < rows; r++) {
    const rs = rstd[r];
    let dot = 0;
    for (let k = 0; k < c; k++) dot += dout[r * c + k] * weight[k] * x[r * c + k];
    const coef = rs * rs * dot / c;
    for (let k = 0; k < c; k++) {
      const i = r * c + k;
      dx[i] = rs * (weight[k] * dout[i] - x[i] * coef);
      dweight[k] += dout[i] * x[i] * rs;
    }
  }
  return { dx, dweight };
}
