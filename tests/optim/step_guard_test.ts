import assert from "node:assert/strict";
import { AdamW, clipGradNorm } from "../../src/optim/adamw.ts";
import { linearWarmupDecay } from "../../src/optim/schedule.ts";
import { StepGuard } from "../../src/optim/step_guard.ts";
import { gpuTest } from "../gpu_support.ts";

gpuTest(
  "a non-finite loss or gradient skips the step: no parameter or moment changes; counts and history are kept",
  async (gpu) => {
    const p = gpu.upload("p", Float32Array.of(1, 2, 3));
    const g = gpu.tensor("g", [3]);
    const loss = gpu.tensor("loss", [1]);
    const norm = gpu.tensor("norm", [1]);
    const guard = new StepGuard(gpu, loss, norm, 4);
    const opt = new AdamW(gpu, [{ params: [{ param: p, grad: g }], lr: 0.1, weightDecay: 0 }], {
      guard: guard.guard,
    });
    const ops = [...clipGradNorm(gpu, { grads: [g], norm, maxNorm: 1 }), guard.op, ...opt.ops];
    const steps: [number, number[]][] = [
      [2.5, [0.5, -1, 2]],
      [NaN, [0.5, -1, 2]],
      [1.5, [Infinity, 0, 0]],
      [1.25, [NaN, 1, 1]],
      [1, [0.25, 0.25, 0.25]],
    ];
    const snapshots: Float32Array[] = [];
    for (const [t, [l, grad]] of steps.entries()) {
      gpu.write(loss, Float32Array.of(l));
      gpu.write(g, Float32Array.from(grad));
      guard.setStep(t + 1);
      opt.setStep(t + 1);
      await gpu.run(ops);
      snapshots.push(await gpu.read(p) as Float32Array);
    }
    assert.notDeepEqual(snapshots[0], Float32Array.of(1, 2, 3), "step 1 applies");
    assert.deepEqual(snapshots[1], snapshots[0], "NaN loss: skipped");
    assert.deepEqual(snapshots[2], snapshots[0], "infinite gradient: skipped");
    assert.deepEqual(snapshots[3], snapshots[0], "NaN gradient: skipped");
    assert.notDeepEqual(snapshots[4], snapshots[0], "a finite step applies again");
    assert.ok((await gpu.read(opt.state.tensors.m0)).every(Number.isFinite), "moments stay finite");
    const stats = await guard.read(5, 4);
    assert.equal(stats.skipped, 3);
    assert.equal(stats.skippedInARow, 0);
    assert.equal(stats.steps, 5);
    assert.deepEqual(stats.history.map((h) => h.loss), [NaN, 1.5, 1.25, 1]);
    assert.ok(Number.isNaN(stats.history[2].gradNorm) && stats.history[3].gradNorm > 0);
    // three skipped in a row are counted as such
    for (let t = 6; t <= 8; t++) {
      gpu.write(loss, Float32Array.of(NaN));
      guard.setStep(t);
      await gpu.run(ops);
    }
    assert.equal((await guard.read(8, 3)).skippedInARow, 3);
    guard.destroy();
  },
);

Deno.test("linearWarmupDecay() is transformers' linear schedule with warm-up, one step behind PyTorch's optimizer", () => {
  const f = (t: number) => linearWarmupDecay(t, 4, 10);
  assert.deepEqual([1, 2, 3, 4, 5, 6, 10, 11].map(f), [0, 0.25, 0.5, 0.75, 1, 5 / 6, 1 / 6, 0]);
  assert.equal(linearWarmupDecay(1, 0, 10), 1);
  assert.throws(() => linearWarmupDecay(0, 4, 10), /step must be an integer >= 1/);
});
