import assert from "node:assert/strict";
import type { Gpu } from "../../src/gpu/device.ts";
import { addCpu } from "../../src/layers/elementwise.ts";
import {
  MASKED_LOGIT,
  softmax,
  softmaxBackward,
  softmaxBackwardCpu,
  softmaxCpu,
  type SoftmaxCpuOptions,
} from "../../src/layers/softmax.ts";
import { assertShapeError, gpuTest } from "../gpu_support.ts";
import { assertClose, dot, f32, f64, finiteDiff, Rng } from "../numeric.ts";

type Shape4 = [number, number, number, number];
const size = (s: readonly number[]) => s.reduce((a, d) => a * d, 1);

// f32 exp and one division per probability: a few ulps relative.
const Y_TOL = { atol: 1e-7, rtol: 1e-5 };
const DX_TOL = { atol: 1e-6, rtol: 1e-5 };

/** A (B, Sk) mask of 1/0 with about `p` of the keys masked, key 0 always kept. */
function randomMask(rng: Rng, b: number, sk: number, p: number): Float32Array {
  const m = new Float32Array(b * sk);
  for (let i = 0; i < m.length; i++) m[i] = i % sk === 0 || rng.next() >= p ? 1 : 0;
  return m;
}

interface Case {
  shape: Shape4;
  x: Float32Array;
  opts: SoftmaxCpuOptions & { bias?: Float32Array; mask?: Float32Array };
}

/** Runs softmax() on the GPU for a case and returns the probabilities. */
async function runForward(gpu: Gpu, c: Case): Promise<Float64Array> {
  const [b, h, sq, sk] = c.shape;
  const x = gpu.upload("x", c.x, c.shape);
  const out = gpu.tensor("y", c.shape);
  const bias = c.opts.bias && gpu.upload("bias", c.opts.bias, [h, sq, sk]);
  const mask = c.opts.mask && gpu.upload("mask", c.opts.mask, [b, sk]);
  await gpu.run(softmax(gpu, {
    x,
    out,
    bias,
    mask,
    scale: c.opts.scale,
    causal: c.opts.causal,
    causalOffset: c.opts.causalOffset,
  }));
  const y = await gpu.readF64(out);
  for (const t of [x, out, bias, mask]) if (t) gpu.freeBuffer(t.buffer);
  return y;
}

Deno.test("softmaxBackwardCpu() matches float64 finite differences for the scores and the bias", () => {
  const rng = new Rng(41);
  const shape: Shape4 = [2, 3, 4, 5];
  const [b, h, sq, sk] = shape;
  const x = f64(rng.normal(size(shape), 2));
  const bias = f64(rng.normal(h * sq * sk));
  // key 0 is always kept, so no row is fully masked (there the logits are constants)
  const mask = Float64Array.from([1, 1, 0, 1, 1, 1, 0, 1, 1, 0]);
  assert.equal(mask.length, b * sk);
  const w = f64(rng.normal(size(shape)));
  for (const causal of [false, true]) {
    const opts = { scale: 0.7, bias, mask, causal };
    const y = softmaxCpu(x, shape, opts);
    const { dx, dbias } = softmaxBackwardCpu(w, y, shape, { scale: 0.7 });
    const fx = finiteDiff((v) => dot(w, softmaxCpu(v, shape, opts)), x);
    const fb = finiteDiff((v) => dot(w, softmaxCpu(x, shape, { ...opts, bias: v })), bias);
    assertClose(dx, fx, { atol: 1e-8, rtol: 1e-6, label: `dx causal=${causal}` });
    assertClose(dbias, fb, { atol: 1e-8, rtol: 1e-6, label: `dbias causal=${causal}` });
  }
});

Deno.test("softmaxCpu() gives exact zeros on masked keys and a uniform row when every key is masked", () => {
  const shape: Shape4 = [2, 1, 1, 4];
  const y = softmaxCpu([1, 2, 3, 4, 5, 6, 7, 8], shape, { mask: [1, 0, 1, 0, 0, 0, 0, 0] });
  assert.equal(y[1], 0);
  assert.equal(y[3], 0);
  assertClose(y.slice(0, 4), [1 / (1 + Math.E ** 2), 0, Math.E ** 2 / (1 + Math.E ** 2), 0]);
  assert.deepEqual([...y.slice(4)], [0.25, 0.25, 0.25, 0.25]);
  assert.equal(MASKED_LOGIT, -3.4028234663852886e38);
  assert.equal(Math.fround(MASKED_LOGIT), MASKED_LOGIT, "f32 lowest is representable in f32");
});

gpuTest(
  "softmax() matches the CPU reference for every combination of bias, mask and causal when Sk = 37",
  async (gpu) => {
    const rng = new Rng(42);
    const shape: Shape4 = [2, 3, 5, 37];
    const [b, h, sq, sk] = shape;
    const x = rng.normal(size(shape), 3);
    const bias = rng.normal(h * sq * sk, 2);
    const mask = randomMask(rng, b, sk, 0.3);
    for (let flags = 0; flags < 8; flags++) {
      const opts = {
        scale: 0.7 + 0.1 * flags,
        bias: flags & 1 ? bias : undefined,
        mask: flags & 2 ? mask : undefined,
        causal: !!(flags & 4),
      };
      const got = await runForward(gpu, { shape, x, opts });
      const want = softmaxCpu(x, shape, opts);
      assertClose(got, want, {
        ...Y_TOL,
        label: `bias=${!!opts.bias} mask=${!!opts.mask} causal=${opts.causal}`,
      });
    }
  },
);

gpuTest(
  "softmax() handles long rows (Sk = 700) with a causal offset (queries at the end of the keys)",
  async (gpu) => {
    const rng = new Rng(43);
    const shape: Shape4 = [2, 2, 3, 700];
    const [b, h, sq, sk] = shape;
    const opts = {
      bias: rng.normal(h * sq * sk, 2),
      mask: randomMask(rng, b, sk, 0.2),
      causal: true,
      causalOffset: sk - sq,
    };
    const x = rng.normal(size(shape), 3);
    assertClose(await runForward(gpu, { shape, x, opts }), softmaxCpu(x, shape, opts), {
      ...Y_TOL,
      label: "Sk=700",
    });
  },
);

gpuTest(
  "softmax() puts exact zeros on masked keys and makes fully masked rows uniform, like Hugging Face",
  async (gpu) => {
    const rng = new Rng(44);
    const shape: Shape4 = [2, 2, 4, 37];
    const [b, h, sq, sk] = shape;
    const mask = randomMask(rng, b, sk, 0.4);
    mask.fill(0, sk, 2 * sk); // batch 1: every key masked
    // causal offset -1: query 0 has no key left (fully masked) in every batch
    const opts = { bias: rng.normal(h * sq * sk, 5), mask, causal: true, causalOffset: -1 };
    const x = rng.normal(size(shape), 3);
    const y = await runForward(gpu, { shape, x, opts });
    const want = softmaxCpu(x, shape, opts);
    assertClose(y, want, { ...Y_TOL, label: "masked" });
    for (let row = 0; row < b * h * sq; row++) {
      const bb = Math.floor(row / (h * sq));
      const q = row % sq;
      const full = bb === 1 || q === 0;
      for (let k = 0; k < sk; k++) {
        const v = y[row * sk + k];
        if (full) assert.equal(v, Math.fround(1 / sk), `row ${row} key ${k}: uniform expected`);
        else if (mask[bb * sk + k] === 0 || k > q - 1) assert.equal(v, 0, `row ${row} key ${k}`);
      }
    }
  },
);

gpuTest(
  "softmax() is stable for large logits (±1e4, one dominant key at every thread position, all equal)",
  async (gpu) => {
    const rng = new Rng(45);
    for (const sk of [37, 700]) {
      // one-hot rows put the dominant key on each of the 64 threads (and on later columns of
      // long rows), so a reduction that drops any partial maximum overflows
      const hot = Array.from({ length: Math.min(sk, 64) }, (_, t) => t + 64 * (t % 10))
        .filter((k) => k < sk);
      const rows = 5 + hot.length;
      const shape: Shape4 = [1, 1, rows, sk];
      const x = new Float32Array(size(shape));
      const noise = rng.normal(2 * sk, 2);
      for (let k = 0; k < sk; k++) {
        x[0 * sk + k] = 1e4 + noise[k]; // exp(1e4) overflows without the max subtraction
        x[1 * sk + k] = -1e4 + noise[sk + k]; // exp(-1e4) underflows to 0 for every key
        x[2 * sk + k] = 1e4; // all equal: uniform
        x[3 * sk + k] = k % 2 ? 3e4 + noise[k] : -3e4;
        x[4 * sk + k] = -3e38 + k * 1e31; // near f32 lowest, still unmasked
        hot.forEach((h, r) => x[(5 + r) * sk + k] = k === h ? 1e4 : -1e4);
      }
      const y = await runForward(gpu, { shape, x, opts: {} });
      assert.ok(y.every(Number.isFinite), `Sk=${sk}: every probability is finite`);
      assertClose(y, softmaxCpu(x, shape), { ...Y_TOL, label: `large logits Sk=${sk}` });
    }
  },
);

gpuTest(
  "softmaxBackward() matches the CPU reference for dx and dbias (Sk = 37 and 700), overwriting or accumulating",
  async (gpu) => {
    const rng = new Rng(46);
    for (const shape of [[3, 2, 5, 37], [2, 1, 2, 700]] as Shape4[]) {
      const [b, h, sq, sk] = shape;
      const n = size(shape);
      const mask = randomMask(rng, b, sk, 0.3);
      // probabilities from the reference, rounded to f32: the GPU and CPU see the same y
      const yv = f32(softmaxCpu(rng.normal(n, 2), shape, { mask, causal: true }));
      const d = rng.normal(n);
      for (const accumulate of [false, true]) {
        const dx0 = rng.normal(n), db0 = rng.normal(h * sq * sk);
        const y = gpu.upload("y", yv, shape), dout = gpu.upload("dout", d, shape);
        const dx = gpu.upload("dx", dx0, shape), dbias = gpu.upload("dbias", db0, [h, sq, sk]);
        await gpu.run(softmaxBackward(gpu, {
          dout,
          y,
          dx,
          dbias,
          scale: 0.5,
          accumulate,
          accumulateBias: accumulate,
        }));
        const ref = softmaxBackwardCpu(d, yv, shape, { scale: 0.5 });
        const l = `${shape} accumulate=${accumulate}`;
        assertClose(await gpu.read(dx), accumulate ? addCpu(ref.dx, dx0) : ref.dx, {
          ...DX_TOL,
          label: `dx ${l}`,
        });
        assertClose(await gpu.read(dbias), accumulate ? addCpu(ref.dbias, db0) : ref.dbias, {
          atol: DX_TOL.atol * b,
          rtol: DX_TOL.rtol,
          label: `dbias ${l}`,
        });
        for (const t of [y, dout, dx, dbias]) gpu.freeBuffer(t.buffer);
      }
    }
  },
);

gpuTest(
  "softmax() and softmaxBackward() work in place (out = x, dx = dout)",
  async (gpu) => {
    const rng = new Rng(47);
    const shape: Shape4 = [2, 2, 3, 77];
    const [b, , , sk] = shape;
    const x = rng.normal(size(shape), 3), d = rng.normal(size(shape));
    const mask = randomMask(rng, b, sk, 0.3);
    const X = gpu.upload("x", x, shape), M = gpu.upload("mask", mask, [b, sk]);
    const D = gpu.upload("dout", d, shape);
    const fwd = softmax(gpu, { x: X, out: X, mask: M, causal: true });
    await gpu.run(fwd);
    const y = softmaxCpu(x, shape, { mask, causal: true });
    const yGpu = await gpu.read(X);
    assertClose(yGpu, y, { ...Y_TOL, label: "y in place" });
    await gpu.run(softmaxBackward(gpu, { dout: D, y: X, dx: D }));
    assertClose(await gpu.read(D), softmaxBackwardCpu(d, yGpu, shape).dx, {
      ...DX_TOL,
      label: "dx in place",
    });
  },
);

gpuTest(
  "softmax() and softmaxBackward() work for 70007 rows (more than 65535 workgroups: folded grid)",
  async (gpu) => {
    const rng = new Rng(48);
    const shape: Shape4 = [1, 7, 10001, 3]; // B·H·Sq = H·Sq = 70007 rows
    const [b, h, sq, sk] = shape;
    const n = size(shape);
    const bias = rng.normal(h * sq * sk);
    const opts = { bias, causal: true, causalOffset: 1 };
    const x = rng.normal(n, 2), d = rng.normal(n);
    const X = gpu.upload("x", x, shape), Bias = gpu.upload("bias", bias, [h, sq, sk]);
    const D = gpu.upload("dout", d, shape);
    const Y = gpu.tensor("y", shape), dX = gpu.tensor("dx", shape);
    const dB = gpu.tensor("dbias", [h, sq, sk]);
    await gpu.run([
      softmax(gpu, { x: X, out: Y, ...opts, bias: Bias }),
      softmaxBackward(gpu, { dout: D, y: Y, dx: dX, dbias: dB }),
    ]);
    const y = await gpu.read(Y);
    assertClose(y, softmaxCpu(x, shape, opts), { ...Y_TOL, label: "y" });
    const ref = softmaxBackwardCpu(d, y, shape);
    assertClose(await gpu.read(dX), ref.dx, { ...DX_TOL, label: "dx" });
    assertClose(await gpu.read(dB), ref.dbias, {
      ...DX_TOL,
      atol: DX_TOL.atol * b,
      label: "dbias",
    });
    for (const t of [X, Bias, D, Y, dX, dB]) gpu.freeBuffer(t.buffer);
  },
);

gpuTest(
  "softmax() and softmaxBackward() reject mismatched shapes and dtypes before dispatching",
  (gpu) => {
    const x = gpu.tensor("x", [2, 3, 4, 5]);
    const y = gpu.tensor("y", [2, 3, 4, 5]);
    const yBad = gpu.tensor("yBad", [2, 3, 5, 4]);
    const x3 = gpu.tensor("x3", [6, 4, 5]);
    const biasBad = gpu.tensor("biasBad", [2, 4, 5]);
    const maskBad = gpu.tensor("maskBad", [2, 4]);
    const xi = gpu.tensor("xi", [2, 3, 4, 5], "i32");
    assertShapeError(
      gpu,
      () => softmax(gpu, { x, out: yBad }),
      "softmax",
      "x = x(2, 3, 4, 5) f32",
      "yBad(2, 3, 5, 4) f32",
    );
    assertShapeError(
      gpu,
      () => softmax(gpu, { x: x3, out: x3 }),
      "softmax",
      "x3(6, 4, 5)",
      "(B, H, Sq, Sk)",
    );
    assertShapeError(
      gpu,
      () => softmax(gpu, { x, out: y, bias: biasBad }),
      "softmax",
      "biasBad(2, 4, 5)",
      "must be (3, 4, 5)",
      "x(2, 3, 4, 5)",
    );
    assertShapeError(
      gpu,
      () => softmax(gpu, { x, out: y, mask: maskBad }),
      "softmax",
      "maskBad(2, 4)",
      "must be (2, 5)",
      "x(2, 3, 4, 5)",
    );
    assertShapeError(
      gpu,
      () => softmax(gpu, { x: xi, out: y }),
      "softmax",
      "xi(2, 3, 4, 5) i32 must be f32",
    );
    assertShapeError(
      gpu,
      () => softmax(gpu, { x, out: y, causal: true, causalOffset: 0.5 }),
      "causalOffset",
      "0.5",
    );
    assertShapeError(
      gpu,
      () => softmaxBackward(gpu, { dout: yBad, y, dx: x }),
      "softmax_backward",
      "yBad(2, 3, 5, 4)",
      "y(2, 3, 4, 5)",
    );
    assertShapeError(
      gpu,
      () => softmaxBackward(gpu, { dout: x, y, dx: x, dbias: biasBad }),
      "softmax_backward",
      "biasBad(2, 4, 5)",
      "y(2, 3, 4, 5)",
    );
  },
);
