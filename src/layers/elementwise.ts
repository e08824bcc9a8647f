/**
 * Elementwise arithmetic: `add` (out = a + b), `scale` (out = alpha · x) and `residualAdd`
 * (x += y in place), with their backward passes, plus float64 CPU references.
 *
 * Every op works on flattened tensors of any shape (N elements); operands must have the same
 * shape and be f32.
 *
 * Backward passes:
 * - {@link add}: dA = dB = dOut. Without accumulation the gradient can simply be reused
 *   (no kernel); {@link addBackward} copies or accumulates it into separate buffers.
 * - {@link scale}: dX = alpha · dOut, see {@link scaleBackward}.
 * - {@link residualAdd} (x_new = x + y): the gradient of x passes through unchanged (in place),
 *   and the branch y receives the same gradient: `residualAdd(gpu, { x: dy, y: dx })` when dy
 *   must accumulate, or reuse dx as dy.
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { ShapeError } from "../gpu/errors.ts";
import { buildOp, buildOps, type Op, type OpSpec, workgroupsFor } from "../gpu/op.ts";
import { checkF32, type Tensor } from "../gpu/tensor.ts";

/** Threads per workgroup of the elementwise kernels. */
const WG = 256;

function sameShape(label: string, [ra, a]: [string, Tensor], [rb, b]: [string, Tensor]): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new ShapeError(
      `${label}: shapes differ: ${ra} = ${a.describe()}, ${rb} = ${b.describe()}`,
    );
  }
}

/** Options of {@link add}. */
export interface AddOptions {
  /** First operand, any shape (N elements). */
  a: Tensor;
  /** Second operand, a's shape. */
  b: Tensor;
  /** Result, a's shape. May be `a` or `b` itself (prefer {@link residualAdd} for in place). */
  out: Tensor;
  /** Name in error messages. @default {"add"} */
  label?: string;
}

/**
 * `out = a + b`, elementwise. Backward: dA = dB = dOut (see {@link addBackward}).
 *
 * @example
 * ```ts
 * import { add, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const x = gpu.upload("x", Float32Array.of(1, 2, 3), [1, 1, 3]); // (B, S, C)
 * const attn = gpu.upload("attn", Float32Array.of(10, 20, 30), [1, 1, 3]);
 * const h = gpu.tensor("h", [1, 1, 3]);
 * await gpu.run(add(gpu, { a: x, b: attn, out: h }));
 * assert.deepEqual(await gpu.read(h), Float32Array.of(11, 22, 33));
 * gpu.destroy();
 * ```
 */
export function add(gpu: Gpu, o: AddOptions): Op {
  const label = o.label ?? "add";
  checkF32(label, { a: o.a, b: o.b, out: o.out });
  sameShape(label, ["a", o.a], ["b", o.b]);
  sameShape(label, ["a", o.a], ["out", o.out]);
  return buildOp(gpu, {
    kernel: "add",
    label: `${label}(${o.a.describe()} + ${o.b.describe()} -> ${o.out.describe()})`,
    bindings: { a: o.a, b: o.b, out: o.out },
    params: { n: o.a.size },
    workgroups: workgroupsFor(o.a.size, WG),
  });
}

/** Options of {@link addBackward}. */
export interface AddBackwardOptions {
  /** Gradient of the output. */
  dout: Tensor;
  /** Gradient for `a` (dout's shape), if wanted. */
  da?: Tensor;
  /** Gradient for `b` (dout's shape), if wanted. */
  db?: Tensor;
  /** Add into `da`/`db` instead of overwriting them. @default {false} */
  accumulate?: boolean;
  /** Name in error messages. @default {"add_backward"} */
  label?: string;
}

/**
 * Backward of {@link add}: `da (+)= dout` and `db (+)= dout`. Without `accumulate` this is a
 * copy, which a model can usually avoid by reusing `dout` itself as both gradients.
 *
 * @example
 * ```ts
 * import { addBackward, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const dh = gpu.upload("dh", Float32Array.of(1, -1));
 * const dattn = gpu.upload("dattn", Float32Array.of(10, 10)); // holds another path's gradient
 * // the branch receives the output's gradient, added to what it already holds
 * await gpu.run(addBackward(gpu, { dout: dh, db: dattn, accumulate: true }));
 * assert.deepEqual(await gpu.read(dattn), Float32Array.of(11, 9));
 * gpu.destroy();
 * ```
 */
export function addBackward(gpu: Gpu, o: AddBackwardOptions): Op {
  const label = o.label ?? "add_backward";
  checkF32(label, { dout: o.dout, da: o.da, db: o.db });
  if (o.da) sameShape(label, ["dout", o.dout], ["da", o.da]);
  if (o.db) sameShape(label, ["dout", o.dout], ["db", o.db]);
  const specs: OpSpec[] = [];
  for (const [role, t] of [["da", o.da], ["db", o.db]] as const) {
    if (!t) continue;
    specs.push(scaleSpec(`${label}.${role}`, o.dout, t, 1, !!o.accumulate));
  }
  return buildOps(gpu, `${label}(${o.dout.describe()})`, specs);
}

function scaleSpec(
  label: string,
  x: Tensor,
  out: Tensor,
  alpha: number,
  accumulate: boolean,
): OpSpec {
  return {
    kernel: "scale",
    label: `${label}(${alpha} * ${x.describe()} ${accumulate ? "+=" : "->"} ${out.describe()})`,
    bindings: { x, out },
    params: { n: x.size, alpha },
    constants: { ACCUMULATE: accumulate },
    workgroups: workgroupsFor(x.size, WG),
  };
}

/** Options of {@link scale}. */
export interface ScaleOptions {
  /** Input, any shape. */
  x: Tensor;
  /** Result, x's shape. Without `accumulate` it may be `x` itself. */
  out: Tensor;
  /** The factor. */
  alpha: number;
  /** `out += alpha · x` instead of `out = alpha · x`. @default {false} */
  accumulate?: boolean;
  /** Name in error messages. @default {"scale"} */
  label?: string;
}

/**
 * `out = alpha · x` (or `out += alpha · x`), elementwise. Backward: {@link scaleBackward}.
 *
 * @example
 * ```ts
 * import { requestGpu, scale } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const C = 4;
 * const h = gpu.upload("h", Float32Array.of(2, 4, 6, 8), [1, 1, C]);
 * // T5 v1.0 rescales the decoder output before its tied LM head: h = h · C^-0.5
 * await gpu.run(scale(gpu, { x: h, out: h, alpha: C ** -0.5 }));
 * assert.deepEqual(await gpu.read(h), Float32Array.of(1, 2, 3, 4));
 * gpu.destroy();
 * ```
 */
export function scale(gpu: Gpu, o: ScaleOptions): Op {
  const label = o.label ?? "scale";
  checkF32(label, { x: o.x, out: o.out });
  sameShape(label, ["x", o.x], ["out", o.out]);
  if (!Number.isFinite(o.alpha)) {
    throw new ShapeError(`${label}: alpha must be a finite number, got ${o.alpha}`);
  }
  return buildOp(gpu, scaleSpec(label, o.x, o.out, o.alpha, !!o.accumulate));
}

/** Options of {@link scaleBackward}. */
export interface ScaleBackwardOptions {
  /** Gradient of the output. */
  dout: Tensor;
  /** Gradient of the input (dout's shape). Without `accumulate` it may be `dout` itself. */
  dx: Tensor;
  /** The factor of the forward pass. */
  alpha: number;
  /** Add into `dx` instead of overwriting it. @default {false} */
  accumulate?: boolean;
  /** Name in error messages. @default {"scale_backward"} */
  label?: string;
}

/**
 * Backward of {@link scale}: `dx (+)= alpha · dout`.
 *
 * @example
 * ```ts
 * import { requestGpu, scaleBackward } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const dh = gpu.upload("dh", Float32Array.of(1, -2));
 * await gpu.run(scaleBackward(gpu, { dout: dh, dx: dh, alpha: 0.5 })); // in place
 * assert.deepEqual(await gpu.read(dh), Float32Array.of(0.5, -1));
 * gpu.destroy();
 * ```
 */
export function scaleBackward(gpu: Gpu, o: ScaleBackwardOptions): Op {
  return scale(gpu, {
    x: o.dout,
    out: o.dx,
    alpha: o.alpha,
    accumulate: o.accumulate,
    label: o.label ?? "scale_backward",
  });
}

/** Options of {@link residualAdd}. */
export interface ResidualAddOptions {
  /** The residual stream, updated in place (bound once, read_write). */
  x: Tensor;
  /** The branch output added to it, x's shape. */
  y: Tensor;
  /** Name in error messages. @default {"residual_add"} */
  label?: string;
}

/**
 * `x += y` in place. Backward: the gradient of `x` passes through unchanged and `y` receives the
 * same gradient (so `residualAdd` also accumulates gradients: `residualAdd(gpu, { x: dy, y: dx })`).
 *
 * @example
 * ```ts
 * import { requestGpu, residualAdd } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const hidden = gpu.upload("hidden", Float32Array.of(1, 2), [1, 1, 2]); // the residual stream
 * const ffnOut = gpu.upload("ffn_out", Float32Array.of(0.5, 0.5), [1, 1, 2]);
 * await gpu.run(residualAdd(gpu, { x: hidden, y: ffnOut })); // hidden += ffn_out
 * assert.deepEqual(await gpu.read(hidden), Float32Array.of(1.5, 2.5));
 * gpu.destroy();
 * ```
 */
export function residualAdd(gpu: Gpu, o: ResidualAddOptions): Op {
  const label = o.label ?? "residual_add";
  checkF32(label, { x: o.x, y: o.y });
  sameShape(label, ["x", o.x], ["y", o.y]);
  return buildOp(gpu, {
    kernel: "residual_add",
    label: `${label}(${o.x.describe()} += ${o.y.describe()})`,
    bindings: { x: o.x, y: o.y },
    params: { n: o.x.size },
    workgroups: workgroupsFor(o.x.size, WG),
  });
}

function checkLengths(label: string, a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) {
    throw new ShapeError(`${label}: lengths differ (${a.length} vs ${b.length})`);
  }
}

/**
 * Float64 CPU reference of {@link add}.
 *
 * @example
 * ```ts
 * import { addCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(addCpu([1, 2], [3, 4]), Float64Array.of(4, 6));
 * ```
 */
export function addCpu(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  checkLengths("addCpu", a, b);
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
  return out;
}

/**
 * Float64 CPU reference of {@link addBackward}: both gradients equal `dout`.
 *
 * @example
 * ```ts
 * import { addBackwardCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const { da, db } = addBackwardCpu([0.5, -1]);
 * assert.deepEqual(da, Float64Array.of(0.5, -1));
 * assert.deepEqual(db, da);
 * ```
 */
export function addBackwardCpu(dout: ArrayLike<number>): { da: Float64Array; db: Float64Array } {
  return { da: Float64Array.from(dout), db: Float64Array.from(dout) };
}

/**
 * Float64 CPU reference of {@link scale}.
 *
 * @example
 * ```ts
 * import { scaleCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(scaleCpu([1, -2], 3), Float64Array.of(3, -6));
 * ```
 */
export function scaleCpu(x: ArrayLike<number>, alpha: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = alpha * x[i];
  return out;
}

/**
 * Float64 CPU reference of {@link scaleBackward}: `dx = alpha · dout`.
 *
 * @example
 * ```ts
 * import { scaleBackwardCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(scaleBackwardCpu([1, -2], 0.5), Float64Array.of(0.5, -1));
 * ```
 */
export function scaleBackwardCpu(dout: ArrayLike<number>, alpha: number): Float64Array {
  return scaleCpu(dout, alpha);
}

/**
 * Float64 CPU reference of {@link residualAdd}: returns the updated `x` (the inputs are left
 * untouched).
 *
 * @example
 * ```ts
 * import { residualAddCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const x = [1, 2];
 * assert.deepEqual(residualAddCpu(x, [10, 20]), Float64Array.of(11, 22));
 * assert.deepEqual(x, [1, 2]); // untouched
 * ```
 */
export function residualAddCpu(x: ArrayLike<number>, y: ArrayLike<number>): Float64Array {
  checkLengths("residualAddCpu", x, y);
  return addCpu(x, y);
}
