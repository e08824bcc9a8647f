import assert from "node:assert/strict";
import { GpuLimitError, ShapeError } from "../../src/gpu/errors.ts";
import { Tensor } from "../../src/gpu/tensor.ts";
import {
  matmul,
  matmulBackward,
  matmulBackwardCpu,
  matmulCpu,
  matmulNaive,
  matmulStrided,
} from "../../src/layers/matmul.ts";
import { gpuTest } from "../gpu_support.ts";
import { assertClose, dot, f32, f64, finiteDiff, Rng } from "../numeric.ts";

const TRANS: [boolean, boolean][] = [[false, false], [true, false], [false, true], [true, true]];

function shapes(
  batch: number[],
  m: number,
  n: number,
  k: number,
  tA: boolean,
  tB: boolean,
  sharedB = false,
) {
  return {
    aShape: [...batch, ...(tA ? [k, m] : [m, k])],
    bShape: [...(sharedB ? [] : batch), ...(tB ? [n, k] : [k, n])],
    outShape: [...batch, m, n],
  };
}

Deno.test("matmulBackwardCpu() matches float64 finite differences for every transpose combination", () => {
  const rng = new Rng(1);
  for (const [tA, tB] of TRANS) {
    for (
      const [batch, sharedB] of [[[], false], [[2], false], [[3], true]] as [number[], boolean][]
    ) {
      const { aShape, bShape, outShape } = shapes(batch, 3, 4, 5, tA, tB, sharedB);
      const a = f64(rng.normal(aShape.reduce((x, y) => x * y)));
      const b = f64(rng.normal(bShape.reduce((x, y) => x * y)));
      const w = f64(rng.normal(outShape.reduce((x, y) => x * y)));
      const opts = { transA: tA, transB: tB, alpha: 0.7 };
      const { da, db } = matmulBackwardCpu(w, a, aShape, b, bShape, opts);
      const fa = finiteDiff((x) => dot(w, matmulCpu(x, aShape, b, bShape, opts).out), a);
      const fb = finiteDiff((x) => dot(w, matmulCpu(a, aShape, x, bShape, opts).out), b);
      const label = `tA=${tA} tB=${tB} batch=${batch} sharedB=${sharedB}`;
      assertClose(da, fa, { atol: 1e-7, rtol: 1e-6, label: `dA ${label}` });
      assertClose(db, fb, { atol: 1e-7, rtol: 1e-6, label: `dB ${label}` });
    }
  }
});

gpuTest(
  "matmul() matches the CPU reference for odd sizes (33x47x61) and every transpose",
  async (gpu) => {
    const rng = new Rng(2);
    const [m, n, k] = [33, 47, 61];
    for (const [tA, tB] of TRANS) {
      const { aShape, bShape, outShape } = shapes([], m, n, k, tA, tB);
      const a = rng.normal(m * k), b = rng.normal(k * n), bias = rng.normal(n);
      const A = gpu.upload("a", a, aShape), B = gpu.upload("b", b, bShape);
      const Bias = gpu.upload("bias", bias);
      const C = gpu.tensor("c", outShape);
      await gpu.run(
        matmul(gpu, { a: A, b: B, out: C, bias: Bias, transA: tA, transB: tB, alpha: 0.5 }),
      );
      const ref = matmulCpu(f64(a), aShape, f64(b), bShape, {
        transA: tA,
        transB: tB,
        alpha: 0.5,
        bias: f64(bias),
      });
      assertClose(await gpu.read(C), ref.out, {
        atol: 1e-5,
        rtol: 1e-4,
        label: `C tA=${tA} tB=${tB}`,
      });
    }
  },
);

gpuTest(
  "matmul() matches the CPU reference on the 128x128-tile path with ragged edges (130x257x35)",
  async (gpu) => {
    const rng = new Rng(7);
    const [m, n, k] = [130, 257, 35];
    for (const [tA, tB] of TRANS) {
      const { aShape, bShape, outShape } = shapes([], m, n, k, tA, tB);
      const a = rng.normal(m * k), b = rng.normal(k * n);
      const A = gpu.upload("a", a, aShape), B = gpu.upload("b", b, bShape);
      const C = gpu.tensor("c", outShape);
      await gpu.run(matmul(gpu, { a: A, b: B, out: C, transA: tA, transB: tB }));
      const ref = matmulCpu(f64(a), aShape, f64(b), bShape, { transA: tA, transB: tB });
      assertClose(await gpu.read(C), ref.out, {
        atol: 1e-5,
        rtol: 1e-4,
        label: `C tA=${tA} tB=${tB}`,
      });
    }
    // Exact multiples of the tile skip the bounds checks.
    const a = rng.normal(128 * 32), b = rng.normal(32 * 256);
    const C = gpu.tensor("c", [128, 256]);
    await gpu.run(
      matmul(gpu, { a: gpu.upload("a", a, [128, 32]), b: gpu.upload("b", b, [32, 256]), out: C }),
    );
    assertClose(await gpu.read(C), matmulCpu(f64(a), [128, 32], f64(b), [32, 256]).out, {
      atol: 1e-5,
      rtol: 1e-4,
      label: "unchecked 128x256x32",
    });
  },
);

gpuTest("matmul() handles batched, shared-B and accumulating products", async (gpu) => {
  const rng = new Rng(3);
  for (const [tA, tB] of TRANS) {
    for (const sharedB of [false, true]) {
      const { aShape, bShape, outShape } = shapes([2, 3], 17, 70, 9, tA, tB, sharedB);
      const a = rng.normal(aShape.reduce((x, y) => x * y));
      const b = rng.normal(bShape.reduce((x, y) => x * y));
      const c0 = rng.normal(outShape.reduce((x, y) => x * y));
      const A = gpu.upload("a", a, aShape), B = gpu.upload("b", b, bShape);
      const C = gpu.upload("c", c0, outShape);
      await gpu.run(matmul(gpu, { a: A, b: B, out: C, transA: tA, transB: tB, accumulate: true }));
      const ref = matmulCpu(f64(a), aShape, f64(b), bShape, {
        transA: tA,
        transB: tB,
        accumulateInto: f64(c0),
      });
      assertClose(await gpu.read(C), ref.out, {
        atol: 1e-5,
        rtol: 1e-4,
        label: `tA=${tA} tB=${tB} sharedB=${sharedB}`,
      });
    }
  }
});

gpuTest(
  "matmulBackward() matches the CPU reference, including a shared B summed over the batch",
  async (gpu) => {
    const rng = new Rng(4);
    for (const [tA, tB] of TRANS) {
      for (
        const [batch, sharedB] of [[[], false], [[3], false], [[2, 2], true]] as [
          number[],
          boolean,
        ][]
      ) {
        const { aShape, bShape, outShape } = shapes(batch, 21, 66, 35, tA, tB, sharedB);
        const a = rng.normal(aShape.reduce((x, y) => x * y));
        const b = rng.normal(bShape.reduce((x, y) => x * y));
        const dc = rng.normal(outShape.reduce((x, y) => x * y));
        const A = gpu.upload("a", a, aShape), B = gpu.upload("b", b, bShape);
        const dC = gpu.upload("dc", dc, outShape);
        const dA = gpu.tensor("da", aShape), dB = gpu.tensor("db", bShape);
        await gpu.run(
          matmulBackward(gpu, {
            dout: dC,
            a: A,
            b: B,
            da: dA,
            db: dB,
            transA: tA,
            transB: tB,
            alpha: 2,
          }),
        );
        const ref = matmulBackwardCpu(f64(dc), f64(a), aShape, f64(b), bShape, {
          transA: tA,
          transB: tB,
          alpha: 2,
        });
        const label = `tA=${tA} tB=${tB} batch=${batch} sharedB=${sharedB}`;
        assertClose(await gpu.read(dA), ref.da, { atol: 1e-4, rtol: 1e-4, label: `dA ${label}` });
        assertClose(await gpu.read(dB), ref.db, { atol: 1e-4, rtol: 1e-4, label: `dB ${label}` });
      }
    }
  },
);

gpuTest(
  "matmulStrided() computes per-head attention scores in place from (B, S, H*D) tensors",
  async (gpu) => {
    const rng = new Rng(5);
    const [Bn, S, H, D] = [2, 13, 3, 8];
    const q = rng.normal(Bn * S * H * D), k = rng.normal(Bn * S * H * D);
    const Q = gpu.upload("q", q, [Bn, S, H * D]), K = gpu.upload("k", k, [Bn, S, H * D]);
    const out = gpu.tensor("scores", [Bn, H, S, S]);
    await gpu.run(matmulStrided(gpu, {
      m: S,
      n: S,
      k: D,
      batch: [Bn, H],
      transB: true,
      a: { tensor: Q, ld: H * D, batchStrides: [S * H * D, D] },
      b: { tensor: K, ld: H * D, batchStrides: [S * H * D, D] },
      out: { tensor: out, ld: S, batchStrides: [H * S * S, S * S] },
    }));
    const expect = new Float64Array(Bn * H * S * S);
    for (let b = 0; b < Bn; b++) {
      for (let h = 0; h < H; h++) {
        for (let i = 0; i < S; i++) {
          for (let j = 0; j < S; j++) {
            let s = 0;
            for (let d = 0; d < D; d++) {
              s += q[(b * S + i) * H * D + h * D + d] *
                k[(b * S + j) * H * D + h * D + d];
            }
            expect[((b * H + h) * S + i) * S + j] = s;
          }
        }
      }
    }
    assertClose(await gpu.read(out), expect, { atol: 1e-5, rtol: 1e-5, label: "scores" });
  },
);

gpuTest(
  "matmul() stays accurate on extreme values: large magnitudes, zeros and negatives",
  async (gpu) => {
    const rng = new Rng(6);
    const [m, n, k] = [65, 65, 64];
    const cases: [string, Float32Array, Float32Array][] = [
      ["large", rng.uniform(m * k, -3e4, 3e4), rng.uniform(k * n, -3e4, 3e4)],
      ["zeros", new Float32Array(m * k), rng.normal(k * n)],
      ["negatives", rng.uniform(m * k, -5, -1), rng.uniform(k * n, 1, 5)],
    ];
    for (const [name, a, b] of cases) {
      const A = gpu.upload("a", a, [m, k]), B = gpu.upload("b", b, [k, n]);
      const C = gpu.tensor("c", [m, n]);
      await gpu.run(matmul(gpu, { a: A, b: B, out: C }));
      const ref = matmulCpu(f64(a), [m, k], f64(b), [k, n]);
      // f32 accumulation of k products: relative error ~ k * 2^-24 of the sum of magnitudes
      const scale = name === "large" ? 3e4 * 3e4 * k * 1e-6 : 1e-4;
      assertClose(await gpu.read(C), ref.out, { atol: scale, rtol: 1e-5, label: name });
    }
  },
);

gpuTest(
  "matmul() rejects mismatched shapes and dtypes before dispatching, naming both shapes",
  (gpu) => {
    const a = gpu.tensor("a", [4, 5]);
    const b = gpu.tensor("b", [6, 7]);
    const c = gpu.tensor("c", [4, 7]);
    assert.throws(() => matmul(gpu, { a, b, out: c }), (e: Error) => {
      assert.ok(e instanceof ShapeError);
      assert.match(e.message, /matmul: inner dimensions differ \(5 vs 6\): A \(4, 5\), B \(6, 7\)/);
      return true;
    });
    const b2 = gpu.tensor("b2", [5, 7]);
    assert.throws(
      () => matmul(gpu, { a, b: b2, out: gpu.tensor("c2", [4, 8]) }),
      /C must be \(4, 7\)/,
    );
    assert.throws(
      () => matmul(gpu, { a, b: gpu.tensor("bi", [5, 7], "i32"), out: c }),
      /bi\(5, 7\) i32 must be f32/,
    );
    assert.throws(
      () =>
        matmul(gpu, {
          a: gpu.tensor("a3", [2, 4, 5]),
          b: gpu.tensor("b3", [3, 5, 7]),
          out: gpu.tensor("c3", [2, 4, 7]),
        }),
      /batch dims of A and B differ/,
    );
    assert.throws(
      () => matmul(gpu, { a, b: b2, out: c, bias: gpu.tensor("bias", [6]) }),
      /bias bias\(6\) f32 must have N = 7/,
    );
  },
);

gpuTest(
  "matmul() refuses a tensor larger than the storage binding limit instead of computing garbage",
  (gpu) => {
    const limit = gpu.limits.maxStorageBufferBindingSize;
    const small = gpu.tensor("small", [4]);
    const rows = Math.floor(limit / 4 / 1024) + 1;
    // A view that claims more elements than one binding may cover (no allocation needed).
    const huge = new Tensor(small.buffer, 0, [rows, 1024], "f32", "huge");
    assert.throws(
      () =>
        matmul(gpu, { a: huge, b: gpu.tensor("b", [1024, 1]), out: gpu.tensor("c", [rows, 1]) }),
      (e: Error) =>
        e instanceof GpuLimitError && e.message.includes(`maxStorageBufferBindingSize of ${limit}`),
    );
    void f32;
  },
);

gpuTest(
  "matmulNaive(), the benchmark baseline, matches the CPU reference on odd sizes",
  async (gpu) => {
    const rng = new Rng(8);
    const [m, n, k] = [37, 19, 45];
    const a = rng.normal(m * k), b = rng.normal(k * n);
    const C = gpu.tensor("c", [m, n]);
    await gpu.run(
      matmulNaive(gpu, { a: gpu.upload("a", a, [m, k]), b: gpu.upload("b", b, [k, n]), out: C }),
    );
    assertClose(await gpu.read(C), matmulCpu(f64(a), [m, k], f64(b), [k, n]).out, {
      atol: 1e-5,
      rtol: 1e-4,
    });
  },
);

gpuTest(
  "matmulBackward() zeroes a shared B's gradient for an empty batch instead of leaving it stale",
  async (gpu) => {
    const a = gpu.tensor("a", [0, 5, 3]); // transA: (K=5, M=3) per entry, no entries
    const b = gpu.tensor("b", [5, 4]);
    const dout = gpu.tensor("dc", [0, 3, 4]);
    const db = gpu.upload("db", new Float32Array(20).fill(7), [5, 4]);
    await gpu.run(matmulBackward(gpu, { dout, a, b, db, transA: true }));
    assert.deepEqual(await gpu.read(db), new Float32Array(20));
  },
);
