/**
 * One training step of a method on a frozen T5, recorded once and submitted once per step:
 *
 * ```
 * method input ops → T5 training forward → T5 backward → method backward
 *   → global gradient norm → step guard → AdamW (two groups; the clipping to norm 1.0 is
 *     applied as each step reads its gradient)
 * ```
 *
 * The host writes the batch (source ids, mask, labels), the dropout counter and the learning
 * rates before each submit; the loss, the gradient norm and the skip flag stay on the GPU
 * ({@link StepGuard}) and are read every few steps.
 *
 * Shape legend: B batch, S source tokens, M prompt rows, T target length.
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import type { Op } from "../gpu/op.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { globalL2Norm } from "../layers/reduce.ts";
import type { T5Model } from "../model/t5.ts";
import type { T5Session } from "../model/t5_session.ts";
import { AdamW } from "../optim/adamw.ts";
import { linearWarmupDecay } from "../optim/schedule.ts";
import { StepGuard, type StepStats } from "../optim/step_guard.ts";
import type { MethodBinding, PeftMethod } from "../peft/method.ts";

/** The sizes and the recipe of a {@link TrainStep}. */
export interface TrainStepOptions {
  /** B. */
  batch: number;
  /** S: source tokens (EOS included), without the prompt. */
  sourceLength: number;
  /** T. */
  targetLength: number;
  /** Peak learning rates of the two groups. */
  lrs: { prompt: number; offset: number };
  /** Steps of linear warm-up. */
  warmup: number;
  /** Total steps (the learning rate reaches 0 at the last). */
  steps: number;
  /** Seed of the dropout masks. */
  seed: number;
  /** Dropout of the frozen model; its config's when undefined. */
  dropoutRate?: number;
  /** Steps kept on the GPU between two readbacks of the loss. */
  historySlots: number;
  /** Global gradient-norm clipping. @default {1} */
  maxGradNorm?: number;
  /**
   * The factor on the peak learning rates at step t.
   * @default {linear warm-up over `warmup` steps, then linear decay to 0 at `steps`}
   */
  schedule?: (t: number) => number;
}

/** The host side of a batch a step reads (the data pipeline's `Batch` is one). */
export interface StepBatch {
  /** (B, S) source ids. */
  inputIds: Int32Array;
  /** (B, S) 1 on tokens, 0 on padding. */
  attentionMask: ArrayLike<number>;
  /** (B, T) targets, −100 on padding. */
  labels: Int32Array;
}

/**
 * A method's training step on a session, with its optimizer.
 *
 * @example A few steps of prompt tuning on one example
 * ```ts
 * import { loadT5, methodModule, Mt19937, requestGpu, TrainStep } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const model = await loadT5(gpu, "tests/fixtures/t5/tiny-t5-v1_1");
 * const pt = methodModule("pt");
 * const config = pt.resolve({ promptLength: 4, promptInit: "random" });
 * const method = await pt.create(model, config, { rng: new Mt19937(1) });
 * const step = new TrainStep(model, method, {
 *   batch: 1,
 *   sourceLength: 3,
 *   targetLength: 2,
 *   lrs: { prompt: 0.3, offset: 1e-4 },
 *   warmup: 0,
 *   steps: 3,
 *   seed: 42,
 *   dropoutRate: 0,
 *   historySlots: 3,
 * });
 * const batch = {
 *   inputIds: Int32Array.of(13, 8, 1),
 *   attentionMask: [1, 1, 1],
 *   labels: Int32Array.of(209, 1),
 * };
 * for (let t = 1; t <= 3; t++) await step.run(batch, t); // one submit each, no readback
 * const { history, skipped } = await step.stats(3, 3); // read every few steps
 * assert.ok(history[2].loss < history[0].loss);
 * assert.equal(skipped, 0);
 * step.destroy();
 * method.destroy();
 * model.destroy();
 * gpu.destroy();
 * ```
 */
export class TrainStep {
  /** The T5 session (encoder input M + S rows). */
  readonly session: T5Session;
  /** The method bound to the session in training mode. */
  readonly binding: MethodBinding;
  /** AdamW over the method's two groups. */
  readonly optimizer: AdamW;
  /** (1) f32: the gradient norm before clipping. */
  readonly gradNorm: Tensor;
  /** Loss, norm and skip flag kept on the GPU. */
  readonly guard: StepGuard;
  /** Every op of one step, in order. */
  readonly ops: readonly Op[];
  /** The same ops, each with the part of the step it belongs to (for profiles). */
  readonly parts: readonly { op: Op; part: "method" | "model" | "optimizer" }[];
  readonly #gpu: Gpu;
  readonly #clip: Op[];
  readonly #opts: TrainStepOptions;

  constructor(readonly model: T5Model, readonly method: PeftMethod, options: TrainStepOptions) {
    const gpu = model.gpu;
    this.#gpu = gpu;
    this.#opts = options;
    const M = method.promptLength;
    this.session = model.session(
      {
        batch: options.batch,
        sourceLength: M + options.sourceLength,
        targetLength: options.targetLength,
      },
      { seed: options.seed, dropoutRate: options.dropoutRate },
    );
    this.binding = method.bind(this.session, { train: true });
    this.gradNorm = gpu.tensor("grad_norm", [1]);
    const grads = method.tensors.map((t) => t.grad);
    // Clipping as PyTorch's clip_grad_norm_: the global norm here, the scaling inside AdamW's
    // steps as they read the gradients.
    this.#clip = [globalL2Norm(gpu, { tensors: grads, out: this.gradNorm, label: "grad_norm" })];
    this.guard = new StepGuard(gpu, this.session.loss, this.gradNorm, options.historySlots);
    this.optimizer = new AdamW(gpu, method.paramGroups(options.lrs), {
      guard: this.guard.guard,
      clip: { norm: this.gradNorm, maxNorm: options.maxGradNorm ?? 1 },
    });
    const tag = (part: "method" | "model" | "optimizer", ops: readonly Op[]) =>
      ops.map((op) => ({ op, part }));
    this.parts = [
      ...tag("method", this.binding.forwardOps),
      ...tag("model", [...this.session.trainOps, ...this.session.backwardOps]),
      ...tag("method", this.binding.backwardOps),
      ...tag("optimizer", [...this.#clip, this.guard.op, ...this.optimizer.ops]),
    ];
    this.ops = this.parts.map((p) => p.op);
  }

  /** The learning rates of both groups at step `t` (1-based). */
  learningRates(t: number): { prompt: number; offset: number } {
    const f = this.#opts.schedule?.(t) ?? linearWarmupDecay(t, this.#opts.warmup, this.#opts.steps);
    return { prompt: this.#opts.lrs.prompt * f, offset: this.#opts.lrs.offset * f };
  }

  /**
   * Writes step `t`'s batch, dropout counter, learning rates and history slot, and submits the
   * step (no readback).
   */
  async run(batch: StepBatch, t: number): Promise<void> {
    this.binding.setInputs(batch.inputIds, batch.attentionMask);
    this.session.setLabels(batch.labels);
    this.session.setStep(t);
    const lr = this.learningRates(t);
    const groups = this.method.paramGroups(lr).map((g) => g.lr);
    this.optimizer.setStep(t, groups);
    this.guard.setStep(t);
    await this.#gpu.run(this.ops, `train.step${t}`);
  }

  /** Reads the losses and gradient norms of steps `lastStep − count + 1 .. lastStep`. */
  stats(lastStep: number, count: number): Promise<StepStats> {
    return this.guard.read(lastStep, count);
  }

  /**
   * The optimizer moments by the method's tensor names (`m.prompt`, `v.prompt`, ...), read from
   * the GPU, for checkpoints.
   */
  async readMoments(): Promise<Record<string, Float32Array>> {
    const out: Record<string, Float32Array> = {};
    const names = this.#paramOrder();
    for (const [i, name] of names.entries()) {
      out[`m.${name}`] = await this.#gpu.read(
        this.optimizer.state.tensors[`m${i}`],
      ) as Float32Array;
      out[`v.${name}`] = await this.#gpu.read(
        this.optimizer.state.tensors[`v${i}`],
      ) as Float32Array;
    }
    return out;
  }

  /** Writes moments read by {@link TrainStep.readMoments} (resuming). */
  writeMoments(values: Record<string, Float32Array>): void {
    for (const [i, name] of this.#paramOrder().entries()) {
      for (const k of ["m", "v"] as const) {
        const v = values[`${k}.${name}`];
        const t = this.optimizer.state.tensors[`${k}${i}`];
        if (!v || v.length !== t.size) {
          throw new RangeError(`the checkpoint's ${k}.${name} is missing or has the wrong size`);
        }
        this.#gpu.write(t, v);
      }
    }
  }

  /** The tensor names in the optimizer's parameter order (group by group). */
  #paramOrder(): string[] {
    const order: string[] = [];
    for (const g of ["prompt", "offset"] as const) {
      for (const t of this.method.tensors) if (t.group === g) order.push(t.name);
    }
    return order;
  }

  /** Frees everything but the model and the method. */
  destroy(): void {
    for (const op of this.#clip) op.destroy();
    for (const op of this.optimizer.ops) op.destroy();
    this.guard.destroy();
    this.binding.destroy();
    this.session.destroy();
    this.#gpu.freeBuffer(this.gradNorm.buffer);
    this.#gpu.freeBuffer(this.optimizer.hyper.buffer);
    this.#gpu.freeArena(this.optimizer.state);
  }
}
