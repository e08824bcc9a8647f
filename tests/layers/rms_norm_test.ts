import assert from "node:assert/strict";
import type { Gpu } from "../../src/gpu/device.ts";
import { addCpu } from "../../src/layers/elementwise.ts";
import {
  rmsNorm,
  rmsNormBackward,
  rmsNormBackwardCpu,
  rmsNormCpu,
  rmsNormScratchShape,
} from "../../src/layers/rms_norm.ts";
import type { Loads } from "../../src/layers/loads.ts";
import { assertShapeError, gpuTest } from "../gpu_support.ts";
import { assertClose, dot, f64, finiteDiff, Rng } from "../numeric.ts";

const EPS = 1e-6;
// f32 sums of squares and rsqrt: a few ulps relative.
const TOL = { atol: 1e-6, rtol: 1e-5 };

interface CheckOptions {
  accumulate?: boolean;
  tol?: { atol: number; rtol: number };
  threadPerRow?: boolean;
  loads?: Loads;
}

/**
 * Runs forward and backward on the GPU, with a workgroup per row and with a thread per row, and
 * compares with the CPU reference.
 */
async function check(
  gpu: Gpu,
  x: Float32Array,
  w: Float32Array,
  d: Float32Array,
  shape: number[],
  label: string,
  opts: CheckOptions = {},
): Promise<void> {
  const widths: Loads[] = w.length % 4 === 0 ? ["scalar", "vec4"] : ["scalar"];
  for (const loads of widths) {
    for (const threadPerRow of [false, true]) {
      const mapping = threadPerRow ? "a thread per row" : "a workgroup per row";
      const how = `${label}, ${mapping}, ${loads} loads`;
      await checkOne(gpu, x, w, d, shape, how, { ...opts, threadPerRow, loads });
    }
  }
}

async function checkOne(
  gpu: Gpu,
  x: Float32Array,
  w: Float32Array,
  d: Float32Array,
  shape: number[],
  label: string,
  opts: CheckOptions,
): Promise<void> {
  const rows = x.length / w.length;
  const tol = opts.tol ?? TOL;
  const X = gpu.upload("x", x, shape), W = gpu.upload("w", w), D = gpu.upload("dout", d, shape);
  const out = gpu.tensor("out", shape), rstd = gpu.tensor("rstd", shape.slice(0, -1));
  const rng = new Rng(x.length);
  const dx0 = opts.accumulate ? rng.normal(x.length) : new Float32Array(x.length);
  const dw0 = opts.accumulate ? rng.normal(w.length) : new Float32Array(w.length);
  const dx = gpu.upload("dx", dx0, shape), dweight = gpu.upload("dw", dw0);
  const acc = !!opts.accumulate;
  await gpu.run([
    rmsNorm(gpu, {
      ...{ x: X, weight: W, out, rstd, eps: EPS },
      ...{ threadPerRow: opts.threadPerRow, loads: opts.loads },
    }),
    rmsNormBackward(gpu, {
      dout: D,
      x: X,
      weight: W,
      rstd,
      dx,
      dweight,
      accumulate: acc,
      accumulateWeight: acc,
      threadPerRow: opts.threadPerRow,
      loads: opts.loads,
    }),
  ]);
  const ref = rmsNormCpu(x, w, EPS);
  const bref = rmsNormBackwardCpu(d, x, w, EPS);
  assertClose(await gpu.read(out), ref.out, { ...tol, label: `out ${label}` });
  assertClose(await gpu.read(rstd), ref.rstd, { ...tol, label: `rstd ${label}` });
  // dx is the difference of two terms, rstd·w·dout and rstd³·x·dot/C, that may nearly cancel:
  // compare it in units of the larger term (plus the accumulated value), where f32 is ~1e-7.
  const c = w.length;
  const mag = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let dt = 0;
    for (let k = 0; k < c; k++) dt += d[r * c + k] * w[k] * x[r * c + k];
    const rs = ref.rstd[r];
    for (let k = 0; k < c; k++) {
      const i = r * c + k;
      const m = Math.max(Math.abs(rs * w[k] * d[i]), Math.abs(rs ** 3 * x[i] * dt / c));
      mag[i] = Math.max(1, m, Math.abs(dx0[i]));
    }
  }
  const per = (a: ArrayLike<number>) => Float64Array.from(a, (v, i) => v / mag[i]);
  assertClose(per(await gpu.read(dx)), per(acc ? addCpu(bref.dx, dx0) : bref.dx), {
    ...tol,
    label: `dx / max(1, |terms|) ${label}`,
  });
  // dweight sums N rows of terms dout·x·rstd of both signs: compare it in units of the sum of
  // their magnitudes, the scale of f32 summation error.
  const sumAbs = new Float64Array(c);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < c; k++) sumAbs[k] += Math.abs(d[r * c + k] * x[r * c + k] * ref.rstd[r]);
  }
  const perW = (a: ArrayLike<number>) =>
    Float64Array.from(a, (v, k) => v / Math.max(1e-30, sumAbs[k] + Math.abs(dw0[k])));
  assertClose(perW(await gpu.read(dweight)), perW(acc ? addCpu(bref.dweight, dw0) : bref.dweight), {
    ...tol,
    label: `dweight / sum |terms| ${label} (${rows} rows)`,
  });
  for (const t of [X, W, D, out, rstd, dx, dweight]) gpu.freeBuffer(t.buffer);
}

Deno.test("rmsNormBackwardCpu() matches float64 finite differences for x and the weight", () => {
  const rng = new Rng(31);
  const [rows, c] = [3, 7];
  const x = f64(rng.normal(rows * c, 2));
  const w = f64(rng.normal(c));
  const g = f64(rng.normal(rows * c));
  for (const eps of [1e-6, 0.5]) {
    const { dx, dweight } = rmsNormBackwardCpu(g, x, w, eps);
    const fx = finiteDiff((v) => dot(g, rmsNormCpu(v, w, eps).out), x);
    const fw = finiteDiff((v) => dot(g, rmsNormCpu(x, v, eps).out), w);
    assertClose(dx, fx, { atol: 1e-8, rtol: 1e-6, label: `dx eps=${eps}` });
    assertClose(dweight, fw, { atol: 1e-8, rtol: 1e-6, label: `dweight eps=${eps}` });
  }
});

gpuTest(
  "rmsNorm() and rmsNormBackward() match the CPU reference when C is not a multiple of the workgroup size (13 x 77)",
  async (gpu) => {
    const rng = new Rng(32);
    for (const c of [77, 76]) {
      const [b, s] = [1, 13];
      const n = b * s * c;
      await check(gpu, rng.normal(n), rng.normal(c, 0.5), rng.normal(n), [b, s, c], `13x${c}`);
    }
  },
);

gpuTest(
  "rmsNorm() and rmsNormBackward() match the CPU reference when C exceeds the workgroup (C = 300, 1000) and rows span several chunks",
  async (gpu) => {
    const rng = new Rng(33);
    for (const [rows, c] of [[100, 300], [45, 1000], [5, 1]]) {
      const n = rows * c;
      await check(gpu, rng.normal(n), rng.normal(c), rng.normal(n), [rows, c], `${rows}x${c}`);
    }
  },
);

gpuTest(
  "rmsNormBackward() accumulates into dx and dweight when asked",
  async (gpu) => {
    const rng = new Rng(34);
    const [b, s, c] = [2, 9, 77];
    const n = b * s * c;
    await check(gpu, rng.normal(n), rng.normal(c), rng.normal(n), [b, s, c], "accumulate", {
      accumulate: true,
    });
  },
);

gpuTest(
  "rmsNorm() and rmsNormBackward() work for 70001 rows (more than 65535 workgroups: folded grid)",
  async (gpu) => {
    const rng = new Rng(35);
    const [rows, c] = [70_001, 5];
    const n = rows * c;
    assert.equal(rmsNormScratchShape(rows, c)[0], 1015);
    await check(gpu, rng.normal(n), rng.normal(c), rng.normal(n), [rows, c], "70001x5");
  },
);

gpuTest(
  "rmsNorm() and rmsNormBackward() stay accurate on extreme rows: zeros, 1e4, 1e-15, negatives",
  async (gpu) => {
    const rng = new Rng(36);
    const c = 77;
    const rows = 6;
    const x = rng.normal(rows * c);
    for (let k = 0; k < c; k++) {
      x[0 * c + k] = 0; // all-zero row: rstd = 1/sqrt(eps), out = 0
      x[1 * c + k] *= 1e4;
      x[2 * c + k] *= 1e-15; // mean square far below eps
      x[3 * c + k] = -Math.abs(x[3 * c + k]) - 1;
      x[4 * c + k] = k === 5 ? 3e4 : 1e-3; // one dominating value
    }
    await check(gpu, x, rng.normal(c), rng.normal(rows * c), [rows, c], "extremes");
  },
);

gpuTest(
  "rmsNormBackward() without dweight computes only dx, and with a given scratch tensor uses it",
  async (gpu) => {
    const rng = new Rng(37);
    const [rows, c] = [40, 33];
    const x = rng.normal(rows * c), w = rng.normal(c), d = rng.normal(rows * c);
    const X = gpu.upload("x", x, [rows, c]),
      W = gpu.upload("w", w),
      D = gpu.upload("d", d, [rows, c]);
    const out = gpu.tensor("out", [rows, c]), rstd = gpu.tensor("rstd", [rows]);
    const dx = gpu.tensor("dx", [rows, c]), dweight = gpu.tensor("dw", [c]);
    const scratch = gpu.tensor("scratch", rmsNormScratchShape(rows, c));
    await gpu.run(rmsNorm(gpu, { x: X, weight: W, out, rstd, eps: EPS }));
    const before = gpu.allocatedBytes;
    const onlyDx = rmsNormBackward(gpu, { dout: D, x: X, weight: W, rstd, dx });
    assert.equal(onlyDx.dispatches.length, 1);
    const onlyDw = rmsNormBackward(gpu, { dout: D, x: X, weight: W, rstd, dweight, scratch });
    assert.equal(onlyDw.dispatches.length, 2);
    // only the uniform blocks (16 bytes each) were allocated: the scratch was not
    assert.ok(gpu.allocatedBytes - before <= 3 * 256, `allocated ${gpu.allocatedBytes - before}`);
    await gpu.run([onlyDx, onlyDw]);
    const ref = rmsNormBackwardCpu(d, x, w, EPS);
    assertClose(await gpu.read(dx), ref.dx, { ...TOL, label: "dx" });
    assertClose(await gpu.read(dweight), ref.dweight, { ...TOL, label: "dweight" });
  },
);

gpuTest(
  "rmsNorm() and rmsNormBackward() reject mismatched shapes and dtypes before dispatching",
  (gpu) => {
    const x = gpu.tensor("x", [2, 3, 8]);
    const w = gpu.tensor("w", [8]);
    const w7 = gpu.tensor("w7", [7]);
    const out = gpu.tensor("out", [2, 3, 8]);
    const outBad = gpu.tensor("outBad", [6, 8]);
    const rstd = gpu.tensor("rstd", [2, 3]);
    const rstdBad = gpu.tensor("rstdBad", [2]);
    const xi = gpu.tensor("xi", [2, 3, 8], "i32");
    const dw = gpu.tensor("dw", [9]);
    const scratch = gpu.tensor("scratch", [1, 4]);
    const eps = 1e-6;
    assertShapeError(
      gpu,
      () => rmsNorm(gpu, { x, weight: w7, out, rstd, eps }),
      "rms_norm",
      "w7(7) f32",
      "x(2, 3, 8) f32",
    );
    assertShapeError(
      gpu,
      () => rmsNorm(gpu, { x, weight: w, out: outBad, rstd, eps }),
      "rms_norm",
      "x(2, 3, 8)",
      "outBad(6, 8)",
    );
    assertShapeError(
      gpu,
      () => rmsNorm(gpu, { x, weight: w, out, rstd: rstdBad, eps }),
      "rms_norm",
      "rstdBad(2)",
      "x(2, 3, 8)",
    );
    assertShapeError(
      gpu,
      () => rmsNorm(gpu, { x: xi, weight: w, out, rstd, eps }),
      "rms_norm",
      "xi(2, 3, 8) i32 must be f32",
    );
    assertShapeError(gpu, () => rmsNorm(gpu, { x, weight: w, out, rstd, eps: NaN }), "eps", "NaN");
    // vec4 loads asked for rows of 7 floats
    const x7 = gpu.tensor("x7", [2, 7]), r2 = gpu.tensor("r2", [2]);
    for (
      const run of [
        () => rmsNorm(gpu, { x: x7, weight: w7, out: x7, rstd: r2, eps, loads: "vec4" }),
        () =>
          rmsNormBackward(gpu, { dout: x7, x: x7, weight: w7, rstd: r2, dx: x7, loads: "vec4" }),
      ]
    ) {
      assertShapeError(gpu, run, 'loads "vec4" needs C', "C = 7 is not", 'use loads "scalar"');
    }
    assertShapeError(
      gpu,
      () => rmsNormBackward(gpu, { dout: outBad, x, weight: w, rstd, dx: out }),
      "rms_norm_backward",
      "x(2, 3, 8)",
      "outBad(6, 8)",
    );
    assertShapeError(
      gpu,
      () => rmsNormBackward(gpu, { dout: out, x, weight: w, rstd, dweight: dw }),
      "rms_norm_backward",
      "w(8)",
      "dw(9)",
    );
    assertShapeError(
      gpu,
      () => rmsNormBackward(gpu, { dout: out, x, weight: w, rstd, dweight: w, scratch }),
      "rms_norm_backward",
      "scratch(1, 4)",
      "x(2, 3, 8)",
    );
    assertShapeError(
      gpu,
      () => rmsNormBackward(gpu, { dout: out, x, weight: w, rstd }),
      "neither dx nor dweight",
    );
  },
);
