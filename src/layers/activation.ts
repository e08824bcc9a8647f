/**
 * Activations of T5's feed-forward block, forward and backward, with float64 CPU references:
 *
 * - ReLU (T5 v1.0): `max(x, 0)`; its derivative is taken as 0 at x = 0, as in PyTorch.
 * - GELU, tanh form (Hugging Face "gelu_new", T5 v1.1 / Flan-T5):
 *   `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
 * - Gated GELU (T5 v1.1 `gated-gelu`): `out = gelu_new(gate) ⊙ up`, with gate = wi_0·x and
 *   up = wi_1·x.
 *
 * The kernels evaluate the GELU through the identical `x·sigmoid(2u)`, `u = √(2/π)(x + 0.044715x³)`,
 * with a sigmoid that never overflows and x clamped inside the cubic, so any finite input gives a
 * finite result (large positive x → x, large negative x → -0) where a driver's `tanh` may give NaN.
 *
 * Backward passes take the gradient of the output first, then the saved forward inputs, and
 * write (or with `accumulate`, add to) the input gradients.
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { ShapeError } from "../gpu/errors.ts";
import { buildOp, type Op, workgroupsFor } from "../gpu/op.ts";
import { checkF32, type Tensor } from "../gpu/tensor.ts";
import { type DropoutSite, dropoutUniforms } from "./dropout.ts";

/** Threads per workgroup of the activation kernels. */
const WG = 256;

/** Kernel codes of the `ACT` override constant. */
const ACT = { relu: 0, gelu: 1 } as const;
type ActKind = keyof typeof ACT;

function checkSame(label: string, ts: Record<string, Tensor>): void {
  const entries = Object.entries(ts);
  checkF32(label, ts);
  const [r0, t0] = entries[0];
  for (const [role, t] of entries.slice(1)) {
    if (t.shape.length !== t0.shape.length || t.shape.some((d, i) => d !== t0.shape[i])) {
      throw new ShapeError(
        `${label}: shapes differ: ${r0} = ${t0.describe()}, ${role} = ${t.describe()}`,
      );
    }
  }
}

/** Options of {@link relu} and {@link gelu}. */
export interface ActivationOptions {
  /** Input, any shape (N elements), e.g. (B, S, F). */
  x: Tensor;
  /** Result, x's shape. May be `x` itself. */
  out: Tensor;
  /** A dropout applied to the result (the feed-forward's), fused into the kernel. */
  dropout?: DropoutSite;
  /** Name in error messages. @default {"relu"} or {"gelu"} */
  label?: string;
}

/** Options of {@link reluBackward} and {@link geluBackward}. */
export interface ActivationBackwardOptions {
  /** Gradient of the output, x's shape. */
  dout: Tensor;
  /** Input of the forward pass. */
  x: Tensor;
  /** Gradient of the input, x's shape. Without `accumulate` it may be `dout` itself. */
  dx: Tensor;
  /** Add into `dx` instead of overwriting it. @default {false} */
  accumulate?: boolean;
  /** The forward's fused dropout: `dout` goes through its backward first. */
  dropout?: DropoutSite;
  /** Name in error messages. @default {"relu_backward"} or {"gelu_backward"} */
  label?: string;
}

function hasDropout(d?: DropoutSite): boolean {
  return !!d && d.p > 0;
}

function activationOp(gpu: Gpu, kind: ActKind, o: ActivationOptions): Op {
  const label = o.label ?? kind;
  checkSame(label, { x: o.x, out: o.out });
  return buildOp(gpu, {
    kernel: "activation",
    label: `${label}(${o.x.describe()} -> ${o.out.describe()})`,
    bindings: {
      x: o.x,
      up: gpu.placeholder,
      state: o.dropout?.state ?? gpu.placeholder,
      out: o.out,
    },
    params: { n: o.x.size, ...dropoutUniforms(o.dropout) },
    constants: { ACT: ACT[kind], GATED: false, DROPOUT: hasDropout(o.dropout) },
    workgroups: workgroupsFor(o.x.size, WG),
  });
}

function activationBackwardOp(gpu: Gpu, kind: ActKind, o: ActivationBackwardOptions): Op {
  const label = o.label ?? `${kind}_backward`;
  checkSame(label, { x: o.x, dout: o.dout, dx: o.dx });
  return buildOp(gpu, {
    kernel: "activation_backward",
    label: `${label}(dout=${o.dout.describe()}, x=${o.x.describe()} -> dx=${o.dx.describe()})`,
    bindings: { dout: o.dout, x: o.x, state: o.dropout?.state ?? gpu.placeholder, dx: o.dx },
    params: { n: o.x.size, ...dropoutUniforms(o.dropout) },
    constants: { ACT: ACT[kind], ACCUMULATE: !!o.accumulate, DROPOUT: hasDropout(o.dropout) },
    workgroups: workgroupsFor(o.x.size, WG),
  });
}

/**
 * `out = max(x, 0)`, elementwise.
 *
 * @example
 * ```ts
 * import { relu, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const h = gpu.upload("h", Float32Array.of(-1, 0, 2)); // e.g. (B, S, F) flattened
 * await gpu.run(relu(gpu, { x: h, out: h })); // in place, as T5 v1.0's feed-forward
 * assert.deepEqual(await gpu.read(h), Float32Array.of(0, 0, 2));
 * gpu.destroy();
 * ```
 */
export function relu(gpu: Gpu, o: ActivationOptions): Op {
  return activationOp(gpu, "relu", o);
}

/**
 * Backward of {@link relu}: `dx (+)= dout · [x > 0]`.
 *
 * @example
 * ```ts
 * import { reluBackward, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const x = gpu.upload("x", Float32Array.of(-1, 0, 2)); // the forward's input
 * const dh = gpu.upload("dh", Float32Array.of(5, 5, 5));
 * await gpu.run(reluBackward(gpu, { dout: dh, x, dx: dh })); // in place
 * assert.deepEqual(await gpu.read(dh), Float32Array.of(0, 0, 5)); // 0 at x = 0, as in PyTorch
 * gpu.destroy();
 * ```
 */
export function reluBackward(gpu: Gpu, o: ActivationBackwardOptions): Op {
  return activationBackwardOp(gpu, "relu", o);
}

/**
 * GELU, tanh form ("gelu_new"): `out = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
 *
 * @example
 * ```ts
 * import { gelu, geluCpu, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const values = [-3, -0.5, 0, 1, 4];
 * const h = gpu.upload("h", Float32Array.from(values));
 * await gpu.run(gelu(gpu, { x: h, out: h }));
 * const want = geluCpu(values);
 * (await gpu.read(h)).forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-5));
 * gpu.destroy();
 * ```
 */
export function gelu(gpu: Gpu, o: ActivationOptions): Op {
  return activationOp(gpu, "gelu", o);
}

/**
 * Backward of {@link gelu}: `dx (+)= dout · gelu_new'(x)`.
 *
 * @example
 * ```ts
 * import { geluBackward, geluBackwardCpu, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const values = [-3, -0.5, 0, 1, 4];
 * const x = gpu.upload("x", Float32Array.from(values));
 * const dh = gpu.upload("dh", Float32Array.of(1, 1, 1, 1, 1));
 * await gpu.run(geluBackward(gpu, { dout: dh, x, dx: dh }));
 * const want = geluBackwardCpu([1, 1, 1, 1, 1], values);
 * (await gpu.read(dh)).forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-5));
 * gpu.destroy();
 * ```
 */
export function geluBackward(gpu: Gpu, o: ActivationBackwardOptions): Op {
  return activationBackwardOp(gpu, "gelu", o);
}

/** Options of {@link gatedGelu}. */
export interface GatedGeluOptions {
  /** Gate pre-activation wi_0·x, any shape, e.g. (B, S, F). */
  gate: Tensor;
  /** Linear branch wi_1·x, gate's shape. */
  up: Tensor;
  /** Result, gate's shape. May be `gate` or `up` itself. */
  out: Tensor;
  /** A dropout applied to the result (the feed-forward's), fused into the kernel. */
  dropout?: DropoutSite;
  /** Name in error messages. @default {"gated_gelu"} */
  label?: string;
}

/**
 * Gated GELU of T5 v1.1: `out = gelu_new(gate) ⊙ up`.
 *
 * @example
 * ```ts
 * import { gatedGelu, gatedGeluCpu, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * // h = gelu_new(x·wi_0) ⊙ (x·wi_1), here with the two branches given
 * const [gate, up] = [[-1, 0.5, 2], [3, -2, 0.25]];
 * const h0 = gpu.upload("h0", Float32Array.from(gate));
 * const h1 = gpu.upload("h1", Float32Array.from(up));
 * await gpu.run(gatedGelu(gpu, { gate: h0, up: h1, out: h0 }));
 * const want = gatedGeluCpu(gate, up);
 * (await gpu.read(h0)).forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-5));
 * gpu.destroy();
 * ```
 */
export function gatedGelu(gpu: Gpu, o: GatedGeluOptions): Op {
  const label = o.label ?? "gated_gelu";
  checkSame(label, { gate: o.gate, up: o.up, out: o.out });
  return buildOp(gpu, {
    kernel: "activation",
    label: `${label}(gate=${o.gate.describe()}, up=${o.up.describe()} -> ${o.out.describe()})`,
    bindings: { x: o.gate, up: o.up, state: o.dropout?.state ?? gpu.placeholder, out: o.out },
    params: { n: o.gate.size, ...dropoutUniforms(o.dropout) },
    constants: { ACT: ACT.gelu, GATED: true, DROPOUT: hasDropout(o.dropout) },
    workgroups: workgroupsFor(o.gate.size, WG),
  });
}

/** Options of {@link gatedGeluBackward}. */
export interface GatedGeluBackwardOptions {
  /** Gradient of the output, gate's shape. */
  dout: Tensor;
  /** Gate of the forward pass. */
  gate: Tensor;
  /** Linear branch of the forward pass. */
  up: Tensor;
  /** Gradient of the gate (gate's shape). Without `accumulate` it may be `dout` itself. */
  dgate: Tensor;
  /** Gradient of the linear branch (gate's shape); a buffer distinct from `dgate`. */
  dup: Tensor;
  /** Add into `dgate` and `dup` instead of overwriting them. @default {false} */
  accumulate?: boolean;
  /** The forward's fused dropout: `dout` goes through its backward first. */
  dropout?: DropoutSite;
  /** Name in error messages. @default {"gated_gelu_backward"} */
  label?: string;
}

/**
 * Backward of {@link gatedGelu}: `dgate (+)= dout ⊙ up ⊙ gelu_new'(gate)` and
 * `dup (+)= dout ⊙ gelu_new(gate)`.
 *
 * @example
 * ```ts
 * import { gatedGeluBackward, gatedGeluBackwardCpu, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const [gate, up, dout] = [[-1, 0.5, 2], [3, -2, 0.25], [1, 1, 1]];
 * const h0 = gpu.upload("h0", Float32Array.from(gate));
 * const h1 = gpu.upload("h1", Float32Array.from(up));
 * const dh = gpu.upload("dh", Float32Array.from(dout));
 * const dh1 = gpu.tensor("dh1", [3]);
 * await gpu.run(gatedGeluBackward(gpu, { dout: dh, gate: h0, up: h1, dgate: dh, dup: dh1 }));
 * const want = gatedGeluBackwardCpu(dout, gate, up);
 * (await gpu.read(dh)).forEach((v, i) => assert.ok(Math.abs(v - want.dgate[i]) < 1e-5));
 * (await gpu.read(dh1)).forEach((v, i) => assert.ok(Math.abs(v - want.dup[i]) < 1e-5));
 * gpu.destroy();
 * ```
 */
export function gatedGeluBackward(gpu: Gpu, o: GatedGeluBackwardOptions): Op {
  const label = o.label ?? "gated_gelu_backward";
  checkSame(label, { gate: o.gate, up: o.up, dout: o.dout, dgate: o.dgate, dup: o.dup });
  return buildOp(gpu, {
    kernel: "gated_activation_backward",
    label: `${label}(dout=${o.dout.describe()}, gate=${o.gate.describe()}, up=${o.up.describe()})`,
    bindings: {
      dout: o.dout,
      gate: o.gate,
      up: o.up,
      state: o.dropout?.state ?? gpu.placeholder,
      dgate: o.dgate,
      dup: o.dup,
    },
    params: { n: o.gate.size, ...dropoutUniforms(o.dropout) },
    constants: { ACT: ACT.gelu, ACCUMULATE: !!o.accumulate, DROPOUT: hasDropout(o.dropout) },
    workgroups: workgroupsFor(o.gate.size, WG),
  });
}

// ---------------------------------------------------------------------------------------------
// Float64 CPU references

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_C = 0.044715;

/** gelu_new(v) in float64, the Hugging Face formula. */
function geluNew(v: number): number {
  return 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + GELU_C * v * v * v)));
}

/** d gelu_new / dv in float64. */
function geluNewGrad(v: number): number {
  const t = Math.tanh(SQRT_2_OVER_PI * (v + GELU_C * v * v * v));
  return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_C * v * v);
}

function lengths(label: string, ...as: ArrayLike<number>[]): void {
  for (const a of as) {
    if (a.length !== as[0].length) {
      throw new ShapeError(`${label}: lengths differ (${as.map((x) => x.length).join(" vs ")})`);
    }
  }
}

/**
 * Float64 CPU reference of {@link relu}.
 *
 * @example
 * ```ts
 * import { reluCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(reluCpu([-1, 0, 2]), Float64Array.of(0, 0, 2));
 * ```
 */
export function reluCpu(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v) => Math.max(v, 0));
}

/**
 * Float64 CPU reference of {@link reluBackward}: `dx = dout · [x > 0]`.
 *
 * @example
 * ```ts
 * import { reluBackwardCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(reluBackwardCpu([1, 1], [-1, 2]), Float64Array.of(0, 1));
 * ```
 */
export function reluBackwardCpu(dout: ArrayLike<number>, x: ArrayLike<number>): Float64Array {
  lengths("reluBackwardCpu", dout, x);
  return Float64Array.from(x, (v, i) => v > 0 ? dout[i] : 0);
}

/**
 * Float64 CPU reference of {@link gelu} (the tanh formula of Hugging Face's "gelu_new").
 *
 * @example
 * ```ts
 * import { geluCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const [atZero, atOne] = geluCpu([0, 1]);
 * assert.equal(atZero, 0);
 * assert.ok(Math.abs(atOne - 0.841192) < 1e-6);
 * ```
 */
export function geluCpu(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, geluNew);
}

/**
 * Float64 CPU reference of {@link geluBackward}: `dx = dout · gelu_new'(x)`.
 *
 * @example
 * ```ts
 * import { geluBackwardCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(geluBackwardCpu([1], [0]), Float64Array.of(0.5)); // gelu_new'(0) = 1/2
 * ```
 */
export function geluBackwardCpu(dout: ArrayLike<number>, x: ArrayLike<number>): Float64Array {
  lengths("geluBackwardCpu", dout, x);
  return Float64Array.from(x, (v, i) => dout[i] * geluNewGrad(v));
}

/**
 * Float64 CPU reference of {@link gatedGelu}: `gelu_new(gate) ⊙ up`.
 *
 * @example
 * ```ts
 * import { gatedGeluCpu, geluCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(gatedGeluCpu([1], [2]), Float64Array.of(geluCpu([1])[0] * 2));
 * ```
 */
export function gatedGeluCpu(gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  lengths("gatedGeluCpu", gate, up);
  return Float64Array.from(gate, (g, i) => geluNew(g) * up[i]);
}

/**
 * Float64 CPU reference of {@link gatedGeluBackward}.
 *
 * @example
 * ```ts
 * import { gatedGeluBackwardCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const { dgate, dup } = gatedGeluBackwardCpu([1], [0], [2]); // dout, gate, up
 * assert.deepEqual(dgate, Float64Array.of(1)); // dout · up · gelu_new'(0) = 1 · 2 · 0.5
 * assert.deepEqual(dup, Float64Array.of(0)); // dout · gelu_new(0)
 * ```
 */
export function gatedGeluBackwardCpu(
  dout: ArrayLike<number>,
  gate: ArrayLike<number>,
  up: ArrayLike<number>,
): { dgate: Float64Array; dup: Float64Array } {
  lengths("gatedGeluBackwardCpu", dout, gate, up);
  const dgate = new Float64Array(gate.length);
  const dup = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) {
    dgate[i] = dout[i] * up[i] * geluNewGrad(gate[i]);
    dup[i] = dout[i] * geluNew(gate[i]);
  }
  return { dgate, dup };
}
