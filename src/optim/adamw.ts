/**
 * AdamW with PyTorch's exact semantics (`torch.optim.AdamW`, single-tensor path) and global
 * gradient-norm clipping (`torch.nn.utils.clip_grad_norm_`), entirely on the GPU: the
 * hyperparameters live in a small f32 tensor that the host rewrites each step (learning-rate
 * schedule, bias corrections), and the clipping coefficient is read from the norm tensor on the
 * GPU, so a training step needs no readback and no op is rebuilt.
 *
 * One step for parameter p with gradient g, moments m and v, at step t ≥ 1:
 * ```
 * p ← p · (1 − lr·wd)
 * m ← β1·m + (1 − β1)·g            (computed as torch's lerp: m + (1 − β1)·(g − m))
 * v ← β2·v + (1 − β2)·g²
 * p ← p − (lr / (1 − β1^t)) · m / (sqrt(v) / sqrt(1 − β2^t) + eps)
 * ```
 *
 * Hyperparameter tensor layout: (G, 8) f32, one row per parameter group, holding the scalars
 * PyTorch derives in float64 and rounds to f32 when it applies them ({@link adamwHyperRow}):
 * `(1 − lr·wd, 1 − β1, β2, 1 − β2, lr / (1 − β1^t), sqrt(1 − β2^t), eps, lr)`.
 *
 * @module
 */

import type { Arena, Gpu } from "../gpu/device.ts";
import { fmtShape, ShapeError } from "../gpu/errors.ts";
import { buildOps, type Op, workgroupsFor } from "../gpu/op.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { globalL2Norm } from "../layers/reduce.ts";

/** Floats per parameter group in the hyperparameter tensor: its shape is (G, 8). */
export const ADAMW_HYPER_WIDTH = 8;

/** AdamW hyperparameters of one parameter group. Defaults are PyTorch's. */
export interface AdamWHyperparams {
  /** Learning rate (the value for this step, after any schedule). */
  lr: number;
  /** Decay rate of the first moment. @default {0.9} */
  beta1?: number;
  /** Decay rate of the second moment. @default {0.999} */
  beta2?: number;
  /** Added to the denominator (docs/method.md uses 1e-6). @default {1e-8} */
  eps?: number;
  /** Decoupled weight decay. @default {0.01} */
  weightDecay?: number;
}

function resolved(h: AdamWHyperparams): Required<AdamWHyperparams> {
  const r = {
    lr: h.lr,
    beta1: h.beta1 ?? 0.9,
    beta2: h.beta2 ?? 0.999,
    eps: h.eps ?? 1e-8,
    weightDecay: h.weightDecay ?? 0.01,
  };
  for (const [k, v] of Object.entries(r)) {
    if (!Number.isFinite(v) || v < 0) {
      throw new RangeError(`AdamW: ${k} must be a finite number >= 0, got ${v}`);
    }
  }
  if (r.beta1 >= 1 || r.beta2 >= 1) {
    throw new RangeError(`AdamW: betas must be in [0, 1), got (${r.beta1}, ${r.beta2})`);
  }
  return r;
}

/**
 * The 8 scalars of one group's row for step `t` (1-based, as PyTorch counts after its
 * increment), in float64: `(1 − lr·wd, 1 − β1, β2, 1 − β2, lr / (1 − β1^t), sqrt(1 − β2^t), eps,
 * lr)`.
 *
 * @example
 * ```ts
 * import { adamwHyperRow } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const row = adamwHyperRow({ lr: 0.3, eps: 1e-6, weightDecay: 0 }, 1);
 * assert.equal(row.length, 8);
 * assert.ok(Math.abs(row[4] - 3) < 1e-12); // lr / (1 − β1^1) = 0.3 / 0.1
 * assert.equal(row[0], 1); // no weight decay
 * ```
 */
export function adamwHyperRow(h: AdamWHyperparams, t: number): number[] {
  if (!Number.isInteger(t) || t < 1) {
    throw new RangeError(`AdamW: the step must be an integer >= 1, got ${t}`);
  }
  const r = resolved(h);
  const bc1 = 1 - r.beta1 ** t;
  const bc2 = 1 - r.beta2 ** t;
  return [
    1 - r.lr * r.weightDecay,
    1 - r.beta1,
    r.beta2,
    1 - r.beta2,
    r.lr / bc1,
    bc2 ** 0.5,
    r.eps,
    r.lr,
  ];
}

/**
 * The contents of the (G, 8) hyperparameter tensor for step `t`: write it with `gpu.write`
 * before submitting the step.
 *
 * @example
 * ```ts
 * import { ADAMW_HYPER_WIDTH, adamwHyper, adamwHyperRow } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * // The prompt at 0.3 and the offset network at 1e-4, both at half their peak (a schedule).
 * const groups = [{ lr: 0.3 * 0.5, eps: 1e-6, weightDecay: 0 }, { lr: 1e-4 * 0.5, eps: 1e-6 }];
 * const h = adamwHyper(groups, 7);
 * assert.equal(h.length, 2 * ADAMW_HYPER_WIDTH);
 * assert.deepEqual(h.subarray(8), Float32Array.from(adamwHyperRow(groups[1], 7)));
 * ```
 */
export function adamwHyper(groups: readonly AdamWHyperparams[], t: number): Float32Array {
  const out = new Float32Array(groups.length * ADAMW_HYPER_WIDTH);
  groups.forEach((g, i) => out.set(adamwHyperRow(g, t), i * ADAMW_HYPER_WIDTH));
  return out;
}

/** Options of {@link adamwStep}. */
export interface AdamWStepOptions {
  /** The parameter: (...) f32, updated in place. */
  param: Tensor;
  /** Its gradient: the shape of `param`, f32. */
  grad: Tensor;
  /** First moment: the shape of `param`, f32, zeros before the first step. */
  m: Tensor;
  /** Second moment: the shape of `param`, f32, zeros before the first step. */
  v: Tensor;
  /** Hyperparameters: (G, 8) f32 (see {@link adamwHyper}). */
  hyper: Tensor;
  /** Row of `hyper` this parameter reads (its parameter group). */
  group: number;
  /**
   * A (4) u32 step guard (`StepGuard.guard`): the step is skipped, leaving the parameter and
   * the moments untouched, when its first element is 0 (a non-finite loss or gradient).
   */
  guard?: Tensor;
  /**
   * Gradient-norm clipping applied as the gradient is read: `g · min(1, maxNorm / (norm +
   * 1e-6))`, the scaling {@link scaleByNorm} would do in place (the gradient tensor is left
   * unscaled), with `norm` the (1) f32 global norm from `globalL2Norm`. One dispatch per
   * parameter fewer than {@link clipGradNorm} followed by the step.
   */
  clip?: ClipSpec;
  /** Name in error messages. @default {"adamw"} */
  label?: string;
}

/** Clipping read by {@link adamwStep}: the global gradient norm and the largest one allowed. */
export interface ClipSpec {
  /** (1) f32: the global L2 norm of every gradient clipped together. */
  norm: Tensor;
  /** The largest total norm allowed (docs/method.md: 1.0). */
  maxNorm: number;
}

/**
 * One AdamW step of one parameter tensor, reading its group's row of `hyper` at run time.
 *
 * @example
 * ```ts
 * import {
 *   ADAMW_HYPER_WIDTH,
 *   adamwHyper,
 *   adamwStep,
 *   adamwStepCpu,
 *   requestGpu,
 * } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const param = gpu.upload("p", Float32Array.of(1, -2, 3));
 * const grad = gpu.upload("dp", Float32Array.of(0.5, 0.25, -1));
 * const [m, v] = [gpu.tensor("m", [3]), gpu.tensor("v", [3])];
 * const hyper = gpu.tensor("adamw.hyper", [1, ADAMW_HYPER_WIDTH]);
 * const op = adamwStep(gpu, { param, grad, m, v, hyper, group: 0 });
 * gpu.write(hyper, adamwHyper([{ lr: 0.3, eps: 1e-6, weightDecay: 0 }], 1));
 * await gpu.run(op);
 * const before = { param: [1, -2, 3], grad: [0.5, 0.25, -1], m: [0, 0, 0], v: [0, 0, 0] };
 * const want = adamwStepCpu(before, { lr: 0.3, eps: 1e-6, weightDecay: 0, step: 1 });
 * (await gpu.read(param)).forEach((p, i) => assert.ok(Math.abs(p - want.param[i]) < 1e-6));
 * gpu.destroy();
 * ```
 */
export function adamwStep(gpu: Gpu, o: AdamWStepOptions): Op {
  const label = o.label ?? "adamw";
  const shapes = `param ${fmtShape(o.param.shape)}, grad ${fmtShape(o.grad.shape)}, m ${
    fmtShape(o.m.shape)
  }, v ${fmtShape(o.v.shape)}`;
  for (const [name, t] of [["grad", o.grad], ["m", o.m], ["v", o.v]] as const) {
    if (fmtShape(t.shape) !== fmtShape(o.param.shape)) {
      throw new ShapeError(`${label}: ${name} must have the shape of param: ${shapes}`);
    }
  }
  for (const t of [o.param, o.grad, o.m, o.v, o.hyper]) {
    if (t.dtype !== "f32") throw new ShapeError(`${label}: ${t.describe()} must be f32`);
  }
  const h = o.hyper.shape;
  if (h.length !== 2 || h[1] !== ADAMW_HYPER_WIDTH) {
    throw new ShapeError(
      `${label}: hyper ${o.hyper.describe()} must be (G, ${ADAMW_HYPER_WIDTH})`,
    );
  }
  if (!Number.isInteger(o.group) || o.group < 0 || o.group >= h[0]) {
    throw new ShapeError(
      `${label}: group ${o.group} is not a row of hyper ${fmtShape(h)} (0..${h[0] - 1})`,
    );
  }
  if (o.guard && (o.guard.dtype !== "u32" || o.guard.size < 1)) {
    throw new ShapeError(`${label}: guard ${o.guard.describe()} must be u32 (StepGuard.guard)`);
  }
  if (o.clip) {
    checkNorm(label, o.clip.norm);
    checkMaxNorm(label, o.clip.maxNorm);
  }
  const n = o.param.size;
  const desc = `${label}(param=${o.param.describe()}, group=${o.group})`;
  if (n === 0) return buildOps(gpu, desc, []);
  return buildOps(gpu, desc, [{
    kernel: "adamw",
    label: desc,
    bindings: {
      hyper: o.hyper,
      grad: o.grad,
      param: o.param,
      m: o.m,
      v: o.v,
      guard: o.guard ?? gpu.placeholder,
      norm: o.clip?.norm ?? gpu.placeholder,
    },
    params: { n, group: o.group, max_norm: o.clip?.maxNorm ?? 0 },
    constants: { GUARDED: !!o.guard, CLIPPED: !!o.clip },
    workgroups: workgroupsFor(n),
  }]);
}

/** Options of {@link scaleByNorm}. */
export interface ScaleByNormOptions {
  /** Tensors scaled in place, f32. */
  tensors: readonly Tensor[];
  /** (1) f32: the global norm (e.g. from `globalL2Norm`). */
  norm: Tensor;
  /** The largest norm allowed. */
  maxNorm: number;
  /** Name in error messages. @default {"scale_by_norm"} */
  label?: string;
}

function checkNorm(label: string, norm: Tensor): void {
  if (norm.size !== 1 || norm.shape.length !== 1 || norm.dtype !== "f32") {
    throw new ShapeError(`${label}: norm ${norm.describe()} must be (1) f32`);
  }
}

function checkMaxNorm(label: string, maxNorm: number): void {
  if (!Number.isFinite(maxNorm) || maxNorm < 0) {
    throw new RangeError(`${label}: maxNorm must be a finite number >= 0, got ${maxNorm}`);
  }
}

/**
 * `x *= min(1, maxNorm / (norm + 1e-6))` for every tensor, in place, with the norm read on the
 * GPU: the scaling half of {@link clipGradNorm}. One dispatch per tensor.
 *
 * @example
 * ```ts
 * import { requestGpu, scaleByNorm } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const g = gpu.upload("g", Float32Array.of(3, 4));
 * const norm = gpu.upload("norm", Float32Array.of(5)); // as globalL2Norm would leave it
 * await gpu.run(scaleByNorm(gpu, { tensors: [g], norm, maxNorm: 1 }));
 * const [a, b] = await gpu.read(g);
 * assert.ok(Math.abs(a - 0.6) < 1e-6 && Math.abs(b - 0.8) < 1e-6);
 * gpu.destroy();
 * ```
 */
export function scaleByNorm(gpu: Gpu, o: ScaleByNormOptions): Op {
  const label = o.label ?? "scale_by_norm";
  checkNorm(label, o.norm);
  for (const [i, t] of o.tensors.entries()) {
    if (t.dtype !== "f32") {
      throw new ShapeError(`${label}: tensors[${i}] = ${t.describe()} must be f32`);
    }
  }
  checkMaxNorm(label, o.maxNorm);
  const desc = `${label}(${o.tensors.length} tensors, maxNorm=${o.maxNorm})`;
  return buildOps(
    gpu,
    desc,
    o.tensors.filter((t) => t.size > 0).map((t) => ({
      kernel: "scale_by_norm" as const,
      label: `${label}(${t.describe()})`,
      bindings: { norm: o.norm, x: t },
      params: { n: t.size, max_norm: o.maxNorm },
      workgroups: workgroupsFor(t.size),
    })),
  );
}

/** Options of {@link clipGradNorm}. */
export interface ClipGradNormOptions {
  /** Every gradient that is clipped together, f32, scaled in place. */
  grads: readonly Tensor[];
  /** (1) f32: receives the total norm before clipping (what PyTorch returns). */
  norm: Tensor;
  /** The largest total norm allowed (docs/method.md: 1.0). */
  maxNorm: number;
  /** Name in error messages. @default {"clip_grad_norm"} */
  label?: string;
}

/**
 * Global gradient-norm clipping with PyTorch's `clip_grad_norm_` semantics: `norm =
 * sqrt(Σ g²)` over all `grads`, then every gradient is multiplied by
 * `min(1, maxNorm / (norm + 1e-6))`, all on the GPU (record the returned ops in order, before the
 * optimizer's).
 *
 * @example
 * ```ts
 * import { clipGradNorm, clipGradNormCpu, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const grads = [gpu.upload("dP", Float32Array.of(1, 2)), gpu.upload("dA", Float32Array.of(2))];
 * const norm = gpu.tensor("grad_norm", [1]);
 * await gpu.run(clipGradNorm(gpu, { grads, norm, maxNorm: 1 })); // then the optimizer's ops
 * const want = [Float64Array.of(1, 2), Float64Array.of(2)];
 * assert.ok(Math.abs((await gpu.read(norm))[0] - clipGradNormCpu(want, 1)) < 1e-6); // 3
 * (await gpu.read(grads[0])).forEach((x, i) => assert.ok(Math.abs(x - want[0][i]) < 1e-6));
 * gpu.destroy();
 * ```
 */
export function clipGradNorm(gpu: Gpu, o: ClipGradNormOptions): Op[] {
  const label = o.label ?? "clip_grad_norm";
  checkNorm(label, o.norm);
  return [
    globalL2Norm(gpu, { tensors: o.grads, out: o.norm, label: `${label}.norm` }),
    scaleByNorm(gpu, { tensors: o.grads, norm: o.norm, maxNorm: o.maxNorm, label }),
  ];
}

/** One parameter and its gradient, for {@link AdamW}. */
export interface AdamWParam {
  /** The parameter, f32, updated in place. */
  param: Tensor;
  /** Its gradient, the same shape, f32. */
  grad: Tensor;
}

/** A parameter group of {@link AdamW}: peak hyperparameters plus parameters. */
export interface AdamWGroup extends AdamWHyperparams {
  /** The parameters of the group. */
  params: readonly AdamWParam[];
}

/** Options of {@link AdamW}. */
export interface AdamWOptions {
  /** Prefix of the names of the tensors it allocates. @default {"adamw"} */
  name?: string;
  /** A step guard every parameter's update reads (see {@link AdamWStepOptions.guard}). */
  guard?: Tensor;
  /**
   * Clip every gradient by the global norm as the steps read them (see
   * {@link AdamWStepOptions.clip}); record `globalL2Norm` into `clip.norm` before the ops.
   */
  clip?: ClipSpec;
}

/**
 * An AdamW optimizer over parameter groups: allocates the moments (zeros) and the
 * hyperparameter tensor once, builds one {@link adamwStep} op per parameter, and writes each
 * step's hyperparameters with {@link AdamW.setStep}.
 *
 * @example
 * ```ts
 * import { AdamW, clipGradNorm, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const P = gpu.upload("P", Float32Array.of(1, 1)), dP = gpu.upload("dP", Float32Array.of(2, 2));
 * const A = gpu.upload("A", Float32Array.of(1)), dA = gpu.upload("dA", Float32Array.of(-1));
 * const opt = new AdamW(gpu, [
 *   { params: [{ param: P, grad: dP }], lr: 0.3, eps: 1e-6, weightDecay: 0 },
 *   { params: [{ param: A, grad: dA }], lr: 1e-4, eps: 1e-6, weightDecay: 0 },
 * ]);
 * const norm = gpu.tensor("grad_norm", [1]);
 * const clip = clipGradNorm(gpu, { grads: [dP, dA], norm, maxNorm: 1 });
 * const schedule = (t: number) => Math.min(1, t / 500); // warm-up
 * for (let t = 1; t <= 3; t++) {
 *   opt.setStep(t, [0.3 * schedule(t), 1e-4 * schedule(t)]);
 *   await gpu.run([...clip, ...opt.ops]); // after the model's forward and backward ops
 * }
 * // The gradients keep their sign and (clipped) size, so each step moves P by its learning rate.
 * const p = await gpu.read(P);
 * assert.ok(Math.abs(p[0] - (1 - 0.3 * (1 + 2 + 3) / 500)) < 1e-4);
 * gpu.destroy();
 * ```
 */
export class AdamW {
  /** (G, 8) f32 hyperparameters, rewritten by {@link AdamW.setStep}. */
  readonly hyper: Tensor;
  /** The moments `m0, v0, m1, v1, ...` in parameter order (group by group). */
  readonly state: Arena;
  /** One op per parameter, in parameter order: record them after the gradients are final. */
  readonly ops: readonly Op[];
  readonly #gpu: Gpu;
  readonly #groups: readonly AdamWGroup[];

  /**
   * Allocates the moments and the hyperparameter tensor and builds the ops; call
   * {@link AdamW.setStep} before each step.
   */
  constructor(gpu: Gpu, groups: readonly AdamWGroup[], options: AdamWOptions = {}) {
    const name = options.name ?? "adamw";
    this.#gpu = gpu;
    this.#groups = groups;
    groups.forEach((g) => resolved(g));
    this.hyper = gpu.tensor(`${name}.hyper`, [Math.max(1, groups.length), ADAMW_HYPER_WIDTH]);
    const params = groups.flatMap((g, gi) => g.params.map((p) => ({ ...p, group: gi })));
    const specs: Record<string, { shape: readonly number[] }> = {};
    params.forEach((p, i) => {
      specs[`m${i}`] = { shape: p.param.shape };
      specs[`v${i}`] = { shape: p.param.shape };
    });
    this.state = gpu.arena(`${name}.state`, specs);
    this.ops = params.map((p, i) =>
      adamwStep(gpu, {
        param: p.param,
        grad: p.grad,
        m: this.state.tensors[`m${i}`],
        v: this.state.tensors[`v${i}`],
        hyper: this.hyper,
        group: p.group,
        guard: options.guard,
        clip: options.clip,
        label: `${name}[${i}]`,
      })
    );
  }

  /**
   * Writes the hyperparameters of step `t` (1-based): bias corrections for `t` and, per group,
   * the learning rate `lrs[g]` (default: the group's `lr`), e.g. from a schedule.
   */
  setStep(t: number, lrs?: readonly number[]): void {
    if (lrs && lrs.length !== this.#groups.length) {
      throw new RangeError(
        `AdamW.setStep: got ${lrs.length} learning rates for ${this.#groups.length} groups`,
      );
    }
    const rows = this.#groups.map((g, i) => ({ ...g, lr: lrs ? lrs[i] : g.lr }));
    if (rows.length > 0) this.#gpu.write(this.hyper, adamwHyper(rows, t));
  }
}

/** A parameter's state for {@link adamwStepCpu}. */
export interface AdamWCpuState {
  /** The parameter. */
  param: ArrayLike<number>;
  /** Its gradient. */
  grad: ArrayLike<number>;
  /** First moment. */
  m: ArrayLike<number>;
  /** Second moment. */
  v: ArrayLike<number>;
}

/**
 * Float64 CPU reference of {@link adamwStep} at step `h.step` (1-based): returns the updated
 * parameter and moments.
 *
 * @example
 * ```ts
 * import { adamwStepCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const r = adamwStepCpu({ param: [1], grad: [0.5], m: [0], v: [0] }, {
 *   lr: 0.1,
 *   weightDecay: 0,
 *   step: 1,
 * });
 * assert.ok(Math.abs(r.param[0] - 0.9) < 1e-6); // the first step moves by about lr
 * assert.ok(Math.abs(r.m[0] - 0.05) < 1e-12); // (1 − β1) · g
 * ```
 */
export function adamwStepCpu(
  s: AdamWCpuState,
  h: AdamWHyperparams & { step: number },
): { param: Float64Array; m: Float64Array; v: Float64Array } {
  const r = resolved(h);
  const t = h.step;
  adamwHyperRow(h, t); // validates the step
  const bc1 = 1 - r.beta1 ** t;
  const bc2 = 1 - r.beta2 ** t;
  const n = s.param.length;
  const out = { param: new Float64Array(n), m: new Float64Array(n), v: new Float64Array(n) };
  for (let i = 0; i < n; i++) {
    const g = s.grad[i];
    const mi = r.beta1 * s.m[i] + (1 - r.beta1) * g;
    const vi = r.beta2 * s.v[i] + (1 - r.beta2) * g * g;
    const p = s.param[i] * (1 - r.lr * r.weightDecay);
    out.m[i] = mi;
    out.v[i] = vi;
    out.param[i] = p - (r.lr / bc1) * mi / (Math.sqrt(vi) / Math.sqrt(bc2) + r.eps);
  }
  return out;
}

/**
 * Float64 CPU reference of {@link clipGradNorm}: scales `grads` in place and returns the total
 * norm before clipping.
 *
 * @example
 * ```ts
 * import { clipGradNormCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const g = [Float64Array.of(3, 4)];
 * assert.equal(clipGradNormCpu(g, 1), 5);
 * assert.ok(Math.abs(g[0][0] - 0.6) < 1e-6 && Math.abs(g[0][1] - 0.8) < 1e-6);
 * ```
 */
export function clipGradNormCpu(grads: readonly Float64Array[], maxNorm: number): number {
  let s = 0;
  for (const g of grads) for (const x of g) s += x * x;
  const norm = Math.sqrt(s);
  const coef = Math.min(1, maxNorm / (norm + 1e-6));
  for (const g of grads) for (let i = 0; i < g.length; i++) g[i] *= coef;
  return norm;
}
