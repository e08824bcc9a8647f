import assert from "node:assert/strict";
import type { Gpu } from "../../src/gpu/device.ts";
import { ShapeError } from "../../src/gpu/errors.ts";
import {
  checkLabels,
  crossEntropyBackward,
  crossEntropyBackwardCpu,
  crossEntropyForward,
  crossEntropyForwardCpu,
} from "../../src/layers/cross_entropy.ts";
import { IGNORE_INDEX } from "../../src/io/seq2seq.ts";
import { gpuTest } from "../gpu_support.ts";
import { assertClose, f64, finiteDiff, Rng } from "../numeric.ts";

/** Runs forward and backward on the GPU and reads everything back. */
async function runGpu(
  gpu: Gpu,
  logits: Float32Array,
  labels: Int32Array,
  v: number,
  dloss: number | Float32Array = 1,
) {
  const n = labels.length;
  const L = gpu.upload("logits", logits, [n, v]);
  const Y = gpu.upload("labels", labels, [n]);
  const loss = gpu.upload("loss", new Float32Array([NaN]), [1]);
  const dL = gpu.upload("dlogits", new Float32Array(n * v).fill(NaN), [n, v]);
  const fwd = crossEntropyForward(gpu, { logits: L, labels: Y, loss });
  const bwd = crossEntropyBackward(gpu, {
    dlogits: dL,
    logits: L,
    labels: Y,
    lse: fwd.lse,
    nValid: fwd.nValid,
    dloss: typeof dloss === "number" ? dloss : gpu.upload("dloss", dloss, [1]),
  });
  await gpu.run([fwd, bwd]);
  const lse = await gpu.read(fwd.lse);
  return {
    loss: (await gpu.read(loss))[0],
    nValid: (await gpu.read(fwd.nValid))[0],
    lse: Float64Array.from({ length: n }, (_, r) => lse[2 * r] + lse[2 * r + 1]),
    dlogits: await gpu.read(dL),
  };
}

Deno.test("crossEntropyBackwardCpu() matches float64 finite differences, with ignored rows", () => {
  const rng = new Rng(21);
  const [n, v] = [5, 7];
  const logits = f64(rng.normal(n * v, 3));
  const labels = [2, IGNORE_INDEX, 6, 0, IGNORE_INDEX];
  const dloss = 0.7;
  const analytic = crossEntropyBackwardCpu(logits, v, labels, dloss);
  const numeric = finiteDiff((x) => dloss * crossEntropyForwardCpu(x, v, labels).loss, logits);
  assertClose(analytic, numeric, { atol: 1e-8, rtol: 1e-6, label: "dlogits" });
  assert.ok(analytic.slice(v, 2 * v).every((x) => x === 0), "an ignored row gets no gradient");
});

Deno.test("checkLabels() accepts -100 and names the first label outside [0, V) and its position", () => {
  checkLabels(new Int32Array([0, IGNORE_INDEX, 9]), 10);
  assert.throws(
    () => checkLabels(new Int32Array([0, IGNORE_INDEX, 10, -1]), 10),
    (e: Error) =>
      e instanceof RangeError &&
      e.message === "labels[2] = 10 is neither in [0, 10) nor the ignore index -100",
  );
  assert.throws(() => checkLabels([-1], 10, "decoder_labels"), /decoder_labels\[0\] = -1/);
});

gpuTest(
  "crossEntropyForward() and crossEntropyBackward() match the CPU reference when V and N do not divide 256",
  async (gpu) => {
    const rng = new Rng(22);
    for (const [n, v] of [[37, 1000], [3, 32128], [300, 5]]) {
      const logits = rng.normal(n * v, 2);
      const labels = rng.ints(n, 0, v);
      labels[1] = IGNORE_INDEX;
      const got = await runGpu(gpu, logits, labels, v, 2.5);
      const ref = crossEntropyForwardCpu(logits, v, labels);
      const tag = `N=${n} V=${v}`;
      assert.equal(got.nValid, n - 1, `${tag}: valid rows`);
      assertClose([got.loss], [ref.loss], { atol: 1e-6, rtol: 1e-5, label: `${tag}: loss` });
      assertClose(got.lse, ref.lse, { atol: 1e-5, rtol: 1e-6, label: `${tag}: lse` });
      assertClose(got.dlogits, crossEntropyBackwardCpu(logits, v, labels, 2.5), {
        atol: 1e-7,
        rtol: 1e-4,
        label: `${tag}: dlogits`,
      });
    }
  },
);

gpuTest(
  "crossEntropyForward() stays finite and accurate for logits of ±1e4, ties, zeros and negatives",
  async (gpu) => {
    const v = 300;
    const rows: [string, (k: number) => number, number][] = [
      ["one huge logit, label on it", (k) => (k === 7 ? 1e4 : -1e4), 7],
      ["one huge logit, label elsewhere", (k) => (k === 7 ? 1e4 : -1e4), 8],
      ["all equal and large", () => 1e4, 3],
      ["all equal and very negative", () => -1e4, 299],
      ["all zeros", () => 0, 0],
      ["negatives", (k) => -5 - k / 10, 150],
      ["two-way tie at 1e4", (k) => (k === 0 || k === 299 ? 1e4 : -3e3), 0],
      ["ignored row with huge values", (k) => (k % 2 ? 3e38 : -3e38), IGNORE_INDEX],
    ];
    const n = rows.length;
    const logits = new Float32Array(n * v);
    rows.forEach(([, f], r) => {
      for (let k = 0; k < v; k++) logits[r * v + k] = f(k);
    });
    const labels = Int32Array.from(rows.map(([, , l]) => l));
    const got = await runGpu(gpu, logits, labels, v);
    const ref = crossEntropyForwardCpu(logits, v, labels);
    assert.ok(Number.isFinite(got.loss), `loss ${got.loss} is finite`);
    assert.equal(got.nValid, n - 1);
    // The row losses are 0, 2e4, ln 300, ln 300, ln 300, ~5.7, ln 2: their mean to f32 precision.
    assertClose([got.loss], [ref.loss], { atol: 1e-3, rtol: 1e-6, label: "loss" });
    assertClose(got.lse.slice(0, n - 1), ref.lse.slice(0, n - 1), {
      atol: 1e-3,
      rtol: 1e-7,
      label: "lse",
    });
    assert.ok(got.dlogits.every(Number.isFinite), "every gradient is finite");
    assertClose(got.dlogits, crossEntropyBackwardCpu(logits, v, labels), {
      atol: 1e-7,
      rtol: 1e-5,
      label: "dlogits",
    });
  },
);

gpuTest(
  "crossEntropyBackward() scales by a dloss tensor and accumulates when asked",
  async (gpu) => {
    const rng = new Rng(23);
    const [n, v] = [9, 77];
    const logits = rng.normal(n * v);
    const labels = rng.ints(n, 0, v);
    labels[4] = IGNORE_INDEX;
    const got = await runGpu(gpu, logits, labels, v, new Float32Array([-3]));
    assertClose(got.dlogits, crossEntropyBackwardCpu(logits, v, labels, -3), {
      atol: 1e-7,
      rtol: 1e-5,
      label: "dlogits with dloss tensor",
    });
    const L = gpu.upload("logits", logits, [n, v]);
    const Y = gpu.upload("labels", labels);
    const fwd = crossEntropyForward(gpu, { logits: L, labels: Y, loss: gpu.tensor("loss", [1]) });
    const base = rng.normal(n * v);
    const dL = gpu.upload("dlogits", base, [n, v]);
    const bwd = crossEntropyBackward(gpu, {
      dlogits: dL,
      logits: L,
      labels: Y,
      lse: fwd.lse,
      nValid: fwd.nValid,
      accumulate: true,
    });
    await gpu.run([fwd, bwd]);
    const want = crossEntropyBackwardCpu(logits, v, labels).map((g, i) => g + base[i]);
    assertClose(await gpu.read(dL), want, { atol: 1e-6, rtol: 1e-5, label: "accumulated" });
  },
);

gpuTest(
  "crossEntropyForward() gives loss 0, nValid 0 and zero gradients (no NaN) when every row is ignored",
  async (gpu) => {
    const rng = new Rng(24);
    const [n, v] = [4, 50];
    const labels = new Int32Array(n).fill(IGNORE_INDEX);
    labels[2] = v; // invalid labels count as ignored on the GPU
    const got = await runGpu(gpu, rng.normal(n * v), labels, v);
    assert.equal(got.loss, 0);
    assert.equal(got.nValid, 0);
    assert.ok(got.dlogits.every((g) => g === 0), "all gradients are exactly 0");
  },
);

gpuTest(
  "crossEntropyForward() handles more than 65535 rows (one workgroup per row, folded grid)",
  async (gpu) => {
    const rng = new Rng(25);
    const [n, v] = [65600, 3];
    const logits = rng.normal(n * v);
    const labels = rng.ints(n, 0, v);
    for (let r = 0; r < n; r += 97) labels[r] = IGNORE_INDEX;
    const got = await runGpu(gpu, logits, labels, v);
    const ref = crossEntropyForwardCpu(logits, v, labels);
    assert.equal(got.nValid, ref.nValid);
    assertClose([got.loss], [ref.loss], { atol: 1e-6, rtol: 1e-5, label: "loss" });
    assertClose(got.lse, ref.lse, { atol: 1e-5, rtol: 1e-6, label: "lse" });
    assertClose(got.dlogits, crossEntropyBackwardCpu(logits, v, labels), {
      atol: 1e-10,
      rtol: 1e-4,
      label: "dlogits",
    });
  },
);

gpuTest(
  "crossEntropyBackward() handles T5's vocabulary (V = 32128) with more than 65535 · 256 logits (folded grid)",
  async (gpu) => {
    const rng = new Rng(26);
    const [n, v] = [523, 32128];
    const logits = rng.normal(n * v, 3);
    const labels = rng.ints(n, 0, v);
    labels[5] = IGNORE_INDEX;
    const got = await runGpu(gpu, logits, labels, v);
    const ref = crossEntropyForwardCpu(logits, v, labels);
    assertClose([got.loss], [ref.loss], { atol: 1e-6, rtol: 1e-5, label: "loss" });
    assertClose(got.dlogits, crossEntropyBackwardCpu(logits, v, labels), {
      atol: 1e-12,
      rtol: 1e-4,
      label: "dlogits",
    });
  },
);

gpuTest(
  "crossEntropyForward() and crossEntropyBackward() reject mismatched shapes and dtypes before dispatching, naming the shapes",
  (gpu) => {
    const logits = gpu.tensor("logits", [2, 3, 10]);
    const labels = gpu.tensor("labels", [2, 3], "i32");
    const loss = gpu.tensor("loss", [1]);
    assert.throws(
      () => crossEntropyForward(gpu, { logits, labels: gpu.tensor("l2", [6], "i32"), loss }),
      (e: Error) =>
        e instanceof ShapeError &&
        e.message === "cross_entropy: labels must have the leading dims of logits, (2, 3): " +
            "logits (2, 3, 10), labels (6), loss (1)",
    );
    assert.throws(
      () => crossEntropyForward(gpu, { logits, labels: gpu.tensor("lf", [2, 3]), loss }),
      /cross_entropy: lf\(2, 3\) f32 must be i32/,
    );
    assert.throws(
      () => crossEntropyForward(gpu, { logits, labels, loss: gpu.tensor("loss2", [2]) }),
      /cross_entropy: loss must be \(1\): logits \(2, 3, 10\), labels \(2, 3\), loss \(2\)/,
    );
    const fwd = crossEntropyForward(gpu, { logits, labels, loss });
    assert.deepEqual(fwd.lse.shape, [6, 2]);
    assert.throws(
      () =>
        crossEntropyBackward(gpu, {
          dlogits: gpu.tensor("dl", [6, 10]),
          logits,
          labels,
          lse: fwd.lse,
          nValid: fwd.nValid,
        }),
      /cross_entropy_backward: dlogits must be \(2, 3, 10\): logits \(2, 3, 10\), labels \(2, 3\), dlogits \(6, 10\)/,
    );
    assert.throws(
      () =>
        crossEntropyBackward(gpu, {
          dlogits: gpu.tensor("dl", [2, 3, 10]),
          logits,
          labels,
          lse: fwd.lse,
          nValid: gpu.tensor("nv", [1]),
        }),
      /nv\(1\) f32 must be u32/,
    );
  },
);
