/**
 * Dropout with a counter-based mask: whether element `i` is kept is a pure function of
 * `(seed, step, stream, i)` computed with 32-bit integer hashing only (MurmurHash3_x86_32 of the
 * four words), so the backward pass regenerates the forward's mask instead of storing it, and
 * every adapter (and the CPU reference) computes the same mask bit for bit.
 *
 * - `seed` and `step` live in a small u32 GPU tensor ({@link dropoutState}) that the host
 *   rewrites each step ({@link setDropoutState}); ops are built once and read it at run time.
 * - `stream` is a per-call-site constant (e.g. one per layer and site) so that different
 *   dropout sites of one step draw independent masks.
 * - Element i is kept iff `h / 2^32 >= p` (h the hash), and a kept value is scaled by
 *   `1 / (1 − p)`. `p = 0` is the identity; `p = 1` writes zeros (no division by zero).
 *
 * Shape legend: N elements (any shape; the element index is the flat index).
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { fmtShape, ShapeError } from "../gpu/errors.ts";
import { buildOps, type Op, workgroupsFor } from "../gpu/op.ts";
import { checkF32, type Tensor } from "../gpu/tensor.ts";

/** Which mask: the per-step state plus the per-site stream and the drop probability. */
export interface DropoutMaskSpec {
  /** Drop probability in [0, 1]. */
  p: number;
  /** Per-call-site constant (u32) that separates independent masks within one step. */
  stream: number;
}

/** Options of {@link dropoutForward}. */
export interface DropoutForwardOptions extends DropoutMaskSpec {
  /** Input: (...) f32. */
  x: Tensor;
  /** Output: the shape of `x`, f32. Must not be a view overlapping `x`. */
  out: Tensor;
  /** (2) u32 = (seed, step), from {@link dropoutState}. */
  state: Tensor;
  /** Add into `out` instead of overwriting it. @default {false} */
  accumulate?: boolean;
  /** Name in error messages. @default {"dropout"} */
  label?: string;
}

/** Options of {@link dropoutBackward}. */
export interface DropoutBackwardOptions extends DropoutMaskSpec {
  /** Gradient of the input: (...) f32, the shape of `dout`. */
  dx: Tensor;
  /** Gradient of the output: (...) f32. */
  dout: Tensor;
  /** The state tensor of the forward pass, holding the same (seed, step). */
  state: Tensor;
  /** Add into `dx` instead of overwriting it. @default {false} */
  accumulate?: boolean;
  /** Name in error messages. @default {"dropout_backward"} */
  label?: string;
}

/**
 * A dropout fused into another kernel: the step state, the rate and the call site's mask stream
 * (the mask bit of element i is the one the dropout kernel would draw for that element).
 */
export interface DropoutSite {
  /** The (2) u32 `(seed, step)` state. */
  state: Tensor;
  /** Drop probability in [0, 1); 0 is no dropout. */
  p: number;
  /** The site's stream. */
  stream: number;
}

/**
 * The uniforms fused kernels read for a dropout site (`stream`, `threshold`, `keep_none`,
 * `drop_scale`); without a site (or with p = 0) the identity.
 */
export function dropoutUniforms(
  site?: DropoutSite,
): { stream: number; threshold: number; keep_none: number; drop_scale: number } {
  if (!site || site.p === 0) return { stream: 0, threshold: 0, keep_none: 0, drop_scale: 1 };
  const t = dropoutThreshold(site.p);
  return {
    stream: site.stream,
    threshold: t.threshold,
    keep_none: t.keepNone,
    drop_scale: t.scale,
  };
}

/** Integer parameters of the kernel that encode `p` exactly. */
export interface DropoutThreshold {
  /** Keep iff hash >= threshold: `ceil(p · 2^32)` (0 for p = 0). */
  threshold: number;
  /** 1 when no hash can reach the threshold (p = 1, or p within 2^-33 of 1). */
  keepNone: 0 | 1;
  /** `1 / (1 − p)` rounded to f32; 0 when `keepNone`. */
  scale: number;
}

/**
 * The integer form of "keep iff uniform(h) >= p" with `uniform(h) = h / 2^32`: keep iff
 * `h >= ceil(p · 2^32)`. Throws a `RangeError` for p outside [0, 1].
 *
 * @example
 * ```ts
 * import { dropoutThreshold } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(dropoutThreshold(0.5), { threshold: 2 ** 31, keepNone: 0, scale: 2 });
 * assert.deepEqual(dropoutThreshold(1), { threshold: 0, keepNone: 1, scale: 0 }); // drops all
 * assert.throws(() => dropoutThreshold(1.5), RangeError);
 * ```
 */
export function dropoutThreshold(p: number): DropoutThreshold {
  if (!(p >= 0 && p <= 1)) {
    throw new RangeError(`dropout probability p must be in [0, 1], got ${p}`);
  }
  const t = Math.ceil(p * 2 ** 32);
  if (t >= 2 ** 32) return { threshold: 0, keepNone: 1, scale: 0 };
  return { threshold: t, keepNone: 0, scale: Math.fround(1 / (1 - p)) };
}

function rotl(x: number, r: number): number {
  return ((x << r) | (x >>> (32 - r))) >>> 0;
}

function murmurBlock(h: number, k: number): number {
  let k1 = Math.imul(k, 0xcc9e2d51);
  k1 = rotl(k1, 15);
  k1 = Math.imul(k1, 0x1b873593);
  const h1 = rotl((h ^ k1) >>> 0, 13);
  return (Math.imul(h1, 5) + 0xe6546b64) >>> 0;
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The mask hash of element `i`: MurmurHash3_x86_32 (hash seed 0) of the 16-byte message
 * `[seed, step, stream, i]` (u32 words, little-endian), exactly as the `dropout` kernel
 * computes it. Returns a u32.
 *
 * @example
 * ```ts
 * import { dropoutHash } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const h = dropoutHash(42, 1, 0, 7); // (seed, step, stream, element)
 * assert.ok(Number.isInteger(h) && h >= 0 && h < 2 ** 32);
 * assert.equal(dropoutHash(42, 1, 0, 7), h); // a pure function: the backward pass recomputes it
 * assert.notEqual(dropoutHash(42, 2, 0, 7), h); // another step, another mask
 * ```
 */
export function dropoutHash(seed: number, step: number, stream: number, i: number): number {
  let h = murmurBlock(0, seed >>> 0);
  h = murmurBlock(h, step >>> 0);
  h = murmurBlock(h, stream >>> 0);
  h = murmurBlock(h, i >>> 0);
  return fmix32((h ^ 16) >>> 0);
}

/** The per-step part of a dropout mask's key. */
export interface DropoutStateValues {
  /** Seed, an integer in [0, 2^32). @default {0} */
  seed?: number;
  /** Training step, an integer in [0, 2^32). @default {0} */
  step?: number;
}

/**
 * Allocates the (2) u32 state tensor `(seed, step)` shared by every dropout op of a model.
 *
 * @example
 * ```ts
 * import { dropoutState, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const state = dropoutState(gpu, { seed: 42 }); // shared by every dropout op of a model
 * assert.deepEqual(await gpu.read(state), Uint32Array.of(42, 0)); // (seed, step)
 * gpu.destroy();
 * ```
 */
export function dropoutState(
  gpu: Gpu,
  o: DropoutStateValues & { name?: string } = {},
): Tensor {
  const t = gpu.tensor(o.name ?? "dropout_state", [2], "u32");
  setDropoutState(gpu, t, o);
  return t;
}

/**
 * Writes `(seed, step)` into a state tensor (lands before the next submit).
 *
 * @example
 * ```ts
 * import {
 *   dropoutForward,
 *   dropoutForwardCpu,
 *   dropoutState,
 *   requestGpu,
 *   setDropoutState,
 * } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const ones = new Float32Array(16).fill(1);
 * const [x, out] = [gpu.upload("x", ones), gpu.tensor("out", [16])];
 * const state = dropoutState(gpu, { seed: 42 });
 * const op = dropoutForward(gpu, { x, out, state, p: 0.5, stream: 3 }); // built once
 * for (const step of [1, 2]) {
 *   setDropoutState(gpu, state, { seed: 42, step }); // a fresh mask for every step
 *   await gpu.run(op);
 *   const want = dropoutForwardCpu(ones, { seed: 42, step, stream: 3, p: 0.5 });
 *   assert.deepEqual(await gpu.read(out), Float32Array.from(want));
 * }
 * gpu.destroy();
 * ```
 */
export function setDropoutState(gpu: Gpu, state: Tensor, o: DropoutStateValues): void {
  checkState("setDropoutState", state);
  const seed = o.seed ?? 0;
  const step = o.step ?? 0;
  for (const [name, v] of [["seed", seed], ["step", step]] as const) {
    if (!Number.isInteger(v) || v < 0 || v >= 2 ** 32) {
      throw new RangeError(`setDropoutState: ${name} must be an integer in [0, 2^32), got ${v}`);
    }
  }
  gpu.write(state, new Uint32Array([seed, step]));
}

function checkState(label: string, state: Tensor): void {
  if (state.dtype !== "u32" || state.size !== 2) {
    throw new ShapeError(`${label}: state ${state.describe()} must be (2) u32 = (seed, step)`);
  }
}

function build(
  gpu: Gpu,
  label: string,
  names: [string, string],
  x: Tensor,
  out: Tensor,
  state: Tensor,
  o: DropoutMaskSpec & { accumulate?: boolean },
): Op {
  if (fmtShape(x.shape) !== fmtShape(out.shape)) {
    throw new ShapeError(
      `${label}: ${names[1]} must have the shape of ${names[0]}: ${names[0]} ` +
        `${fmtShape(x.shape)}, ${names[1]} ${fmtShape(out.shape)}`,
    );
  }
  checkF32(label, { [names[0]]: x, [names[1]]: out });
  checkState(label, state);
  if (!Number.isInteger(o.stream) || o.stream < 0 || o.stream >= 2 ** 32) {
    throw new RangeError(`${label}: stream must be an integer in [0, 2^32), got ${o.stream}`);
  }
  const { threshold, keepNone, scale } = dropoutThreshold(o.p);
  const n = x.size;
  const desc = `${label}(${names[0]}=${x.describe()}, ${names[1]}=${out.describe()}, ` +
    `p=${o.p}, stream=${o.stream})`;
  if (n === 0) return buildOps(gpu, desc, []);
  return buildOps(gpu, desc, [{
    kernel: "dropout",
    label: desc,
    bindings: { state, x, out },
    params: { n, stream: o.stream, threshold, keep_none: keepNone, scale },
    constants: { ACCUMULATE: !!o.accumulate },
    workgroups: workgroupsFor(n),
  }]);
}

/**
 * `out (+)= keep(i) ? x[i] / (1 − p) : 0` with the mask of `(seed, step)` from `state` and
 * `stream`.
 *
 * @example
 * ```ts
 * import { dropoutForward, dropoutForwardCpu, dropoutState, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const values = Float32Array.from({ length: 32 }, (_, i) => i / 8);
 * const [h, hDrop] = [gpu.upload("h", values), gpu.tensor("h_drop", [32])];
 * const state = dropoutState(gpu, { seed: 42, step: 1 });
 * await gpu.run(dropoutForward(gpu, { x: h, out: hDrop, state, p: 0.1, stream: 3 }));
 * const want = dropoutForwardCpu(values, { seed: 42, step: 1, stream: 3, p: 0.1 });
 * assert.deepEqual(await gpu.read(hDrop), Float32Array.from(want)); // bit for bit
 * gpu.destroy();
 * ```
 */
export function dropoutForward(gpu: Gpu, o: DropoutForwardOptions): Op {
  return build(gpu, o.label ?? "dropout", ["x", "out"], o.x, o.out, o.state, o);
}

/**
 * `dx (+)= keep(i) ? dout[i] / (1 − p) : 0`, regenerating the forward's mask from the same
 * `state`, `stream` and `p` (run it before the host rewrites the state).
 *
 * @example
 * ```ts
 * import {
 *   dropoutBackward,
 *   dropoutForward,
 *   dropoutMaskCpu,
 *   dropoutState,
 *   requestGpu,
 * } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const ones = new Float32Array(32).fill(1);
 * const [h, hDrop] = [gpu.upload("h", ones), gpu.tensor("h_drop", [32])];
 * const [dhDrop, dh] = [gpu.upload("dh_drop", ones), gpu.tensor("dh", [32])];
 * const state = dropoutState(gpu, { seed: 42, step: 1 });
 * const mask = { state, p: 0.25, stream: 3 }; // the forward's
 * await gpu.run([
 *   dropoutForward(gpu, { x: h, out: hDrop, ...mask }),
 *   dropoutBackward(gpu, { dout: dhDrop, dx: dh, ...mask }), // before the state changes
 * ]);
 * const keep = dropoutMaskCpu(32, { seed: 42, step: 1, stream: 3, p: 0.25 });
 * const scale = Math.fround(1 / 0.75);
 * (await gpu.read(dh)).forEach((g, i) => assert.equal(g, keep[i] ? scale : 0));
 * assert.deepEqual(await gpu.read(dh), await gpu.read(hDrop)); // the same mask
 * gpu.destroy();
 * ```
 */
export function dropoutBackward(gpu: Gpu, o: DropoutBackwardOptions): Op {
  return build(gpu, o.label ?? "dropout_backward", ["dout", "dx"], o.dout, o.dx, o.state, o);
}

/** The mask's full key, for the CPU references. */
export interface DropoutCpuSpec extends DropoutMaskSpec {
  /** Seed (u32). */
  seed: number;
  /** Step (u32). */
  step: number;
}

/**
 * The keep mask of `n` elements (1 kept, 0 dropped), identical to the GPU's.
 *
 * @example
 * ```ts
 * import { dropoutMaskCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const mask = dropoutMaskCpu(1000, { seed: 42, step: 1, stream: 0, p: 0.1 }); // 1 kept, 0 dropped
 * const kept = mask.reduce((a, b) => a + b, 0);
 * assert.ok(kept > 850 && kept < 950, `${kept} of 1000 kept`); // about 900
 * ```
 */
export function dropoutMaskCpu(n: number, s: DropoutCpuSpec): Uint8Array {
  const { threshold, keepNone } = dropoutThreshold(s.p);
  const mask = new Uint8Array(n);
  if (keepNone) return mask;
  for (let i = 0; i < n; i++) {
    mask[i] = dropoutHash(s.seed, s.step, s.stream, i) >= threshold ? 1 : 0;
  }
  return mask;
}

/**
 * Float64 CPU reference of {@link dropoutForward}: `keep ? x · scale : 0` with the kernel's f32
 * scale. For f32 inputs, `Math.fround` of each value equals the GPU's output bit for bit (the
 * f64 product of two f32 values is exact, so rounding it once gives the f32 product).
 *
 * @example
 * ```ts
 * import { dropoutForwardCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const x = [1, 2, 3, 4];
 * const y = dropoutForwardCpu(x, { seed: 1, step: 2, stream: 0, p: 0.5 });
 * y.forEach((v, i) => assert.ok(v === 0 || v === 2 * x[i])); // dropped, or kept and scaled
 * ```
 */
export function dropoutForwardCpu(x: ArrayLike<number>, s: DropoutCpuSpec): Float64Array {
  const { scale } = dropoutThreshold(s.p);
  const mask = dropoutMaskCpu(x.length, s);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = mask[i] ? x[i] * scale : 0;
  return out;
}

/**
 * Float64 CPU reference of {@link dropoutBackward}: the same mask and scale applied to `dout`
 * (dropout is linear in its input, so its backward is itself).
 *
 * @example
 * ```ts
 * import { dropoutBackwardCpu, dropoutForwardCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const spec = { seed: 1, step: 2, stream: 0, p: 0.25 };
 * const dx = dropoutBackwardCpu([1, 1, 1], spec);
 * dx.forEach((g) => assert.ok(g === 0 || g === Math.fround(4 / 3)));
 * assert.deepEqual(dx, dropoutForwardCpu([1, 1, 1], spec)); // dropout is linear
 * ```
 */
export function dropoutBackwardCpu(dout: ArrayLike<number>, s: DropoutCpuSpec): Float64Array {
  return dropoutForwardCpu(dout, s);
}
