/**
 * The step guard of a training loop: after the loss and the gradient norm of a step are on the
 * GPU, one tiny dispatch records them in a ring the host reads every few steps, and clears the
 * flag that guarded AdamW ops read when either is not finite, so a NaN step changes nothing.
 * Counts of skipped steps (in all and in a row) stay on the GPU too: a step needs no readback.
 *
 * Shape legend: N ring slots.
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { ShapeError } from "../gpu/errors.ts";
import { buildOp, type Op } from "../gpu/op.ts";
import type { Tensor } from "../gpu/tensor.ts";

/** What the host reads from a {@link StepGuard}. */
export interface StepStats {
  /** (loss, grad norm) of the last `count` steps, oldest first. */
  history: { loss: number; gradNorm: number }[];
  /** Steps skipped since the guard was created (or restored). */
  skipped: number;
  /** Steps skipped in a row up to the last one. */
  skippedInARow: number;
  /** Steps recorded. */
  steps: number;
}

/**
 * A guard tensor, its history ring and the op that updates them.
 *
 * @example A non-finite loss is recorded and skipped
 * ```ts
 * import { requestGpu, StepGuard } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const [loss, norm] = [gpu.tensor("loss", [1]), gpu.tensor("grad_norm", [1])];
 * const guard = new StepGuard(gpu, loss, norm, 4); // keeps 4 steps between readbacks
 * for (const [t, l] of [[1, 2.5], [2, NaN]]) {
 *   gpu.write(loss, Float32Array.of(l)); // here by hand; in training, the step's ops write them
 *   gpu.write(norm, Float32Array.of(0.5));
 *   guard.setStep(t);
 *   await gpu.run(guard.op); // after the gradient norm, before the guarded AdamW ops
 * }
 * const stats = await guard.read(2, 2);
 * assert.deepEqual(stats.history.map((h) => h.loss), [2.5, NaN]);
 * assert.equal(stats.skipped, 1);
 * assert.equal((await gpu.read(guard.guard))[0], 0); // AdamW leaves step 2's parameters alone
 * guard.destroy();
 * gpu.destroy();
 * ```
 */
export class StepGuard {
  /** (4) u32: applied flag, skipped, skipped in a row, steps (read by guarded AdamW ops). */
  readonly guard: Tensor;
  /** (N, 2) f32 ring of (loss, grad norm). */
  readonly history: Tensor;
  /** The update op: record it after the gradient norm and before the optimizer. */
  readonly op: Op;
  readonly #gpu: Gpu;
  readonly #slots: number;

  /**
   * @param loss (1) f32 loss of the step.
   * @param norm (1) f32 gradient norm of the step (before clipping).
   * @param slots N: steps kept between readbacks.
   */
  constructor(gpu: Gpu, loss: Tensor, norm: Tensor, slots: number) {
    for (const [name, t] of [["loss", loss], ["norm", norm]] as const) {
      if (t.size !== 1 || t.dtype !== "f32") {
        throw new ShapeError(`step guard: ${name} ${t.describe()} must be (1) f32`);
      }
    }
    if (!Number.isInteger(slots) || slots < 1) {
      throw new RangeError(`step guard: slots must be a positive integer, got ${slots}`);
    }
    this.#gpu = gpu;
    this.#slots = slots;
    this.guard = gpu.tensor("step_guard", [4], "u32");
    this.history = gpu.tensor("step_history", [slots, 2]);
    this.op = buildOp(gpu, {
      kernel: "step_guard",
      label: "step_guard",
      bindings: { loss, norm, guard: this.guard, history: this.history },
      params: { slot: 0 },
      workgroups: [1, 1, 1],
    });
  }

  /** Points the next recorded step at ring slot `step mod N` (call before each submit). */
  setStep(step: number): void {
    this.op.setParams({ slot: step % this.#slots });
  }

  /** Restores the counters (resuming a run): skipped in all and in a row, steps recorded. */
  restore(skipped: number, skippedInARow: number, steps: number): void {
    this.#gpu.write(this.guard, Uint32Array.of(1, skipped, skippedInARow, steps));
  }

  /** Reads the counters and the `count` most recent (loss, norm) pairs ending at `lastStep`. */
  async read(lastStep: number, count: number): Promise<StepStats> {
    if (count > this.#slots) {
      throw new RangeError(`step guard: ${count} steps asked, the ring holds ${this.#slots}`);
    }
    const [g, h] = [await this.#gpu.read(this.guard), await this.#gpu.read(this.history)];
    const history = [];
    for (let s = lastStep - count + 1; s <= lastStep; s++) {
      const i = (s % this.#slots) * 2;
      history.push({ loss: h[i] as number, gradNorm: h[i + 1] as number });
    }
    return {
      history,
      skipped: g[1] as number,
      skippedInARow: g[2] as number,
      steps: g[3] as number,
    };
  }

  /** Frees the tensors and the op. */
  destroy(): void {
    this.op.destroy();
    this.#gpu.freeBuffer(this.guard.buffer);
    this.#gpu.freeBuffer(this.history.buffer);
  }
}
