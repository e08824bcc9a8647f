// The fused residual norm (x + dropout(y), the norm, a dropout after it) and the fused backward
// (a dropout before it, the branch gradient after it) against compositions of the CPU references.
import assert from "node:assert/strict";
import { ShapeError } from "../../src/gpu/errors.ts";
import {
  dropoutBackwardCpu,
  dropoutForwardCpu,
  setDropoutState,
} from "../../src/layers/dropout.ts";
import {
  residualRmsNorm,
  rmsNormBackward,
  rmsNormBackwardCpu,
  rmsNormCpu,
} from "../../src/layers/rms_norm.ts";
import { gpuTest } from "../gpu_support.ts";
import { assertClose, Rng } from "../numeric.ts";

const N = 7;
// C neither a multiple of 64 nor below it; 84 (a multiple of 4) takes the vec4 kernels
const WIDTHS = [83, 84];
const mask = { seed: 9, step: 4, p: 0.25 };

for (const C of WIDTHS) {
  for (const threadPerRow of [false, true]) {
    const mapping = `C ${C}, ${threadPerRow ? "a thread per row" : "a workgroup per row"}`;
    gpuTest(
      `residualRmsNorm() equals dropout, add, rms norm and dropout done one after another (${mapping})`,
      async (gpu) => {
        const rng = new Rng(3);
        const x = rng.normal(N * C), y = rng.normal(N * C), w = rng.uniform(C, 0.5, 1.5);
        const state = gpu.tensor("state", [2], "u32");
        setDropoutState(gpu, state, mask);
        const t = {
          x: gpu.upload("x", x, [N, C]),
          y: gpu.upload("y", y, [N, C]),
          w: gpu.upload("w", w),
          sum: gpu.tensor("sum", [N, C]),
          out: gpu.tensor("out", [N, C]),
          rstd: gpu.tensor("rstd", [N]),
        };
        const cases = [
          { name: "x + y", x: true, dy: false, dout: false },
          { name: "x + dropout(y)", x: true, dy: true, dout: false },
          { name: "dropout(y) alone", x: false, dy: true, dout: false },
          { name: "x + dropout(y), dropout after the norm", x: true, dy: true, dout: true },
        ];
        for (const c of cases) {
          const op = residualRmsNorm(gpu, {
            x: c.x ? t.x : undefined,
            y: t.y,
            weight: t.w,
            sum: t.sum,
            out: t.out,
            rstd: t.rstd,
            eps: 1e-6,
            dropoutY: c.dy ? { state, p: mask.p, stream: 5 } : undefined,
            dropoutOut: c.dout ? { state, p: mask.p, stream: 6 } : undefined,
            threadPerRow,
          });
          await gpu.run(op);
          const yd = c.dy ? dropoutForwardCpu(y, { ...mask, stream: 5 }) : Float64Array.from(y);
          const s = yd.map((v, i) => v + (c.x ? x[i] : 0));
          const { out, rstd } = rmsNormCpu(s, w, 1e-6);
          const want = c.dout ? dropoutForwardCpu(out, { ...mask, stream: 6 }) : out;
          const tol = { atol: 1e-5, rtol: 1e-5 };
          assertClose(await gpu.readF64(t.sum), s, { ...tol, label: `${c.name}: sum` });
          assertClose(await gpu.readF64(t.out), want, { ...tol, label: `${c.name}: out` });
          assertClose(await gpu.readF64(t.rstd), rstd, { ...tol, label: `${c.name}: rstd` });
          op.destroy();
        }
        for (const v of [...Object.values(t), state]) gpu.freeBuffer(v.buffer);
      },
    );

    gpuTest(
      `rmsNormBackward() with a dropout before it and the branch gradient after it (${mapping})`,
      async (gpu) => {
        const rng = new Rng(4);
        const x = rng.normal(N * C), w = rng.uniform(C, 0.5, 1.5), dout = rng.normal(N * C);
        const acc = rng.normal(N * C);
        const { rstd } = rmsNormCpu(x, w, 1e-6);
        const state = gpu.tensor("state", [2], "u32");
        setDropoutState(gpu, state, mask);
        const t = {
          x: gpu.upload("x", x, [N, C]),
          w: gpu.upload("w", w),
          dout: gpu.upload("dout", dout, [N, C]),
          rstd: gpu.upload("rstd", Float32Array.from(rstd), [N]),
          dx: gpu.upload("dx", acc, [N, C]),
          branch: gpu.tensor("branch", [N, C]),
        };
        const op = rmsNormBackward(gpu, {
          dout: t.dout,
          x: t.x,
          weight: t.w,
          rstd: t.rstd,
          dx: t.dx,
          accumulate: true,
          doutDropout: { state, p: mask.p, stream: 7 },
          branch: { out: t.branch, state, p: mask.p, stream: 8 },
          threadPerRow,
        });
        await gpu.run(op);
        const g = dropoutBackwardCpu(dout, { ...mask, stream: 7 });
        const dx = rmsNormBackwardCpu(g, x, w, 1e-6).dx.map((v, i) => v + acc[i]);
        const tol = { atol: 1e-5, rtol: 1e-4 };
        assertClose(await gpu.readF64(t.dx), dx, { ...tol, label: "dx" });
        assertClose(await gpu.readF64(t.branch), dropoutBackwardCpu(dx, { ...mask, stream: 8 }), {
          ...tol,
          label: "branch",
        });
        assert.throws(
          () =>
            rmsNormBackward(gpu, {
              dout: t.dout,
              x: t.x,
              weight: t.w,
              rstd: t.rstd,
              dweight: t.w,
              doutDropout: { state, p: 0.1, stream: 1 },
            }),
          (e: unknown) =>
            e instanceof ShapeError && /doutDropout applies to dx only/.test(e.message),
        );
        op.destroy();
        for (const v of [...Object.values(t), state]) gpu.freeBuffer(v.buffer);
      },
    );
  }
}
