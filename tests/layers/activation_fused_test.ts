// Activations with the feed-forward's dropout fused in, forward and backward, against the
// unfused CPU references applied one after another.
import {
  gatedGelu,
  gatedGeluBackward,
  gatedGeluBackwardCpu,
  gatedGeluCpu,
  gelu,
  geluBackward,
  geluBackwardCpu,
  geluCpu,
  relu,
  reluBackward,
  reluBackwardCpu,
  reluCpu,
} from "../../src/layers/activation.ts";
import {
  dropoutBackwardCpu,
  dropoutForwardCpu,
  setDropoutState,
} from "../../src/layers/dropout.ts";
import { gpuTest } from "../gpu_support.ts";
import { assertClose, Rng } from "../numeric.ts";

const N = 1001;
const mask = { seed: 5, step: 2, p: 0.3, stream: 77 };

gpuTest(
  "relu, gelu and gated gelu with a fused dropout equal the activation then the dropout",
  async (gpu) => {
    const rng = new Rng(8);
    const xv = rng.normal(N, 2), uv = rng.normal(N), dv = rng.normal(N);
    const state = gpu.tensor("state", [2], "u32");
    setDropoutState(gpu, state, mask);
    const dropout = { state, p: mask.p, stream: mask.stream };
    const x = gpu.upload("x", xv), up = gpu.upload("up", uv), dout = gpu.upload("dout", dv);
    const out = gpu.tensor("out", [N]), dx = gpu.tensor("dx", [N]), dup = gpu.tensor("dup", [N]);
    const tol = { atol: 1e-5, rtol: 1e-5 };
    for (
      const [name, fwd, bwd, cpu, cpuBack] of [
        ["relu", relu, reluBackward, reluCpu, reluBackwardCpu],
        ["gelu", gelu, geluBackward, geluCpu, geluBackwardCpu],
      ] as const
    ) {
      const ops = [fwd(gpu, { x, out, dropout }), bwd(gpu, { dout, x, dx, dropout })];
      await gpu.run(ops);
      assertClose(await gpu.readF64(out), dropoutForwardCpu(cpu(xv), mask), {
        ...tol,
        label: name,
      });
      assertClose(await gpu.readF64(dx), cpuBack(dropoutBackwardCpu(dv, mask), xv), {
        ...tol,
        label: `${name} backward`,
      });
      for (const op of ops) op.destroy();
    }
    const ops = [
      gatedGelu(gpu, { gate: x, up, out, dropout }),
      gatedGeluBackward(gpu, { dout, gate: x, up, dgate: dx, dup, dropout }),
    ];
    await gpu.run(ops);
    assertClose(await gpu.readF64(out), dropoutForwardCpu(gatedGeluCpu(xv, uv), mask), {
      ...tol,
      label: "gated gelu",
    });
    const g = gatedGeluBackwardCpu(dropoutBackwardCpu(dv, mask), xv, uv);
    assertClose(await gpu.readF64(dx), g.dgate, { ...tol, label: "dgate" });
    assertClose(await gpu.readF64(dup), g.dup, { ...tol, label: "dup" });
    for (const op of ops) op.destroy();
    for (const t of [state, x, up, dout, out, dx, dup]) gpu.freeBuffer(t.buffer);
  },
);
