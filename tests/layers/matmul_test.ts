import assert from "node:assert/strict";
import { type Gpu, requestGpu } from "../../src/gpu/device.ts";
import { GpuLimitError, ShapeError } from "../../src/gpu/errors.ts";
import type { Op } from "../../src/gpu/op.ts";
import { Tensor } from "../../src/gpu/tensor.ts";
import {
  allowedSplits,
  loadMatmulTuning,
  matmul,
  MATMUL_TILES,
  matmulBackward,
  matmulBackwardCpu,
  type MatmulConfig,
  matmulConfig,
  matmulConfigName,
  matmulCpu,
  matmulHeuristic,
  matmulKernelsHash,
  matmulNaive,
  matmulShapes,
  matmulStrided,
  type MatmulTile,
  matmulTuningPath,
  matmulWorkgroupBytes,
  saveMatmulTuning,
  tuneMatmuls,
} from "../../src/layers/matmul.ts";
import { relu, reluBackward } from "../../src/layers/activation.ts";
import { dropoutMaskCpu, dropoutState } from "../../src/layers/dropout.ts";
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

// ---------------------------------------------------------------------------------------------
// Tilings, split-K, kernel options, f16 B, and the per-device table of choices.

/** Runs one strided product with a forced configuration and returns C. */
async function product(
  gpu: Gpu,
  o: {
    m: number;
    n: number;
    k: number;
    batch?: [number, number];
    tA: boolean;
    tB: boolean;
    a: Float32Array;
    b: Float32Array | Float16Array;
    c0?: Float32Array;
    bias?: Float32Array;
    alpha?: number;
    /** Operand offset (elements): 1 forces the scalar kernel. */
    offset?: number;
    config?: MatmulConfig;
  },
): Promise<{ c: Float32Array; op: Op }> {
  const { m, n, k, tA, tB } = o;
  const [bo, bi] = o.batch ?? [1, 1];
  const off = o.offset ?? 0;
  const aData = new Float32Array(off + o.a.length);
  aData.set(o.a, off);
  const A = gpu.upload("a", aData);
  const B = gpu.upload("b", o.b);
  const C = o.c0 ? gpu.upload("c", o.c0) : gpu.tensor("c", [bo * bi * m * n]);
  const op = matmulStrided(gpu, {
    m,
    n,
    k,
    batch: [bo, bi],
    transA: tA,
    transB: tB,
    a: { tensor: A, offset: off, ld: tA ? m : k, batchStrides: [bi * m * k, m * k] },
    b: { tensor: B, ld: tB ? k : n, batchStrides: [bi * k * n, k * n] },
    out: { tensor: C, ld: n, batchStrides: [bi * m * n, m * n] },
    bias: o.bias ? gpu.upload("bias", o.bias) : undefined,
    alpha: o.alpha,
    accumulate: !!o.c0,
    config: o.config,
  });
  await gpu.run(op);
  const c = await gpu.read(C) as Float32Array;
  return { c, op };
}

/** The CPU reference of {@link product} (batch entries as a leading dim). */
function productCpu(
  o: Parameters<typeof product>[1],
): Float64Array {
  const [bo, bi] = o.batch ?? [1, 1];
  const { aShape, bShape } = shapes([bo * bi], o.m, o.n, o.k, o.tA, o.tB);
  return matmulCpu(f64(o.a), aShape, f64(o.b), bShape, {
    transA: o.tA,
    transB: o.tB,
    alpha: o.alpha,
    bias: o.bias ? f64(o.bias) : undefined,
    accumulateInto: o.c0 ? f64(o.c0) : undefined,
  }).out;
}

gpuTest(
  "every tile of MATMUL_TILES matches the CPU reference with vec4 and scalar loads, every transpose, ragged and exact sizes, tiled and direct",
  async (gpu) => {
    const rng = new Rng(11);
    for (const tile of Object.keys(MATMUL_TILES) as MatmulTile[]) {
      for (const direct of [false, true]) {
        const { wgX, wgY } = MATMUL_TILES[tile];
        // ragged (36x44x100: vec4 layouts with bounds checks), odd (scalar), exact (no checks)
        const sizes: [number, number, number, number][] = [
          [36, 44, 100, 0],
          [37, 45, 103, 1],
          [8 * wgY, 16 * wgX, 32, 0],
          // K not a multiple of 4: vec4 only where K is not contiguous (Aᵀ with B), k checked
          [36, 44, 103, 0],
        ];
        for (const [m, n, k, offset] of sizes) {
          for (const [tA, tB] of TRANS) {
            const o = {
              m,
              n,
              k,
              tA,
              tB,
              a: rng.normal(m * k),
              b: rng.normal(k * n),
              bias: rng.normal(n),
              alpha: 0.75,
              offset,
              config: { tile, direct },
            };
            const { c, op } = await product(gpu, o);
            op.destroy();
            const want = productCpu(o);
            // vec4 needs each operand's contiguous dimension (A: K, or M when transposed; B: N,
            // or K when transposed) a multiple of 4 and no offset
            const vec4 = !offset && (tA ? m : k) % 4 === 0 && (tB ? k : n) % 4 === 0;
            assertClose(c, want, {
              atol: 1e-4,
              rtol: 1e-4,
              label: `${tile}${direct ? " direct" : ""} ${m}x${n}x${k} tA=${tA} tB=${tB} ${
                vec4 ? "vec4" : "scalar"
              }`,
            });
            // the direct kernel exists for the vec4 layout; other layouts take the tiled one
            assert.equal(
              op.dispatches[0].kernel,
              vec4 ? (direct ? "matmul_direct" : "matmul") : "matmul_scalar",
            );
          }
        }
      }
    }
  },
);

gpuTest(
  "split-K matches the CPU reference and the unsplit product for every transpose, with batch, alpha, bias and accumulate, and gives the same bits on every run",
  async (gpu) => {
    const rng = new Rng(12);
    const [m, n, k] = [21, 38, 333]; // k: chunks of 176 (2), 112 (3) and 48 (7 for 8)
    for (const [tA, tB] of TRANS) {
      for (const offset of [0, 1]) {
        const base = {
          m,
          n,
          k,
          batch: [2, 3] as [number, number],
          tA,
          tB,
          a: rng.normal(6 * m * k),
          b: rng.normal(6 * k * n),
          c0: rng.normal(6 * m * n),
          bias: rng.normal(n),
          alpha: -1.5,
          offset,
        };
        const want = productCpu(base);
        const plain = await product(gpu, { ...base, config: { tile: "32x32", splitK: 1 } });
        assert.equal(plain.op.dispatches.length, 1);
        for (const splitK of [2, 3, 8]) {
          for (
            const [tile, direct] of [["32x32", false], ["16x128", false], ["32x32", true]] as const
          ) {
            const label = `split ${splitK} ${tile}${
              direct ? " direct" : ""
            } tA=${tA} tB=${tB} offset=${offset}`;
            const run1 = await product(gpu, { ...base, config: { tile, splitK, direct } });
            assert.equal(run1.op.dispatches.at(-1)!.kernel, "matmul_reduce", label);
            assertClose(run1.c, want, { atol: 1e-4, rtol: 1e-4, label });
            assertClose(run1.c, plain.c, { atol: 1e-4, rtol: 1e-4, label: `${label} vs unsplit` });
            const run2 = await product(gpu, { ...base, config: { tile, splitK, direct } });
            assert.deepEqual(run2.c, run1.c, `${label}: bitwise equal run to run`);
            run1.op.destroy();
            run2.op.destroy();
          }
        }
        plain.op.destroy();
      }
    }
  },
);

gpuTest(
  "padded workgroup memory and double-buffered k-tiles match the CPU reference on every tile",
  async (gpu) => {
    const rng = new Rng(13);
    for (const tile of Object.keys(MATMUL_TILES) as MatmulTile[]) {
      for (
        const opts of [{ pad: true }, { doubleBuffer: true }, { pad: true, doubleBuffer: true }]
      ) {
        const config = { tile, ...opts };
        if (matmulWorkgroupBytes(config) > gpu.limits.maxComputeWorkgroupStorageSize) continue;
        for (const [tA, tB] of [[false, true], [true, false]]) {
          for (const [m, n, k] of [[36, 44, 100], [5, 3, 17], [40, 40, 1]]) {
            const o = { m, n, k, tA, tB, a: rng.normal(m * k), b: rng.normal(k * n), config };
            const { c, op } = await product(gpu, o);
            op.destroy();
            assertClose(c, productCpu(o), {
              atol: 1e-4,
              rtol: 1e-4,
              label: `${matmulConfigName(config)} ${m}x${n}x${k} tA=${tA} tB=${tB}`,
            });
          }
        }
      }
    }
  },
);

gpuTest(
  "an f16 B (frozen weights) matches the CPU reference of its f16 values, with f32 accumulation, vec4 and scalar, split or not",
  async (gpu) => {
    if (!gpu.hasF16) return; // the adapter has no shader-f16: see the test of the error below
    const rng = new Rng(14);
    for (const [tA, tB] of TRANS) {
      for (
        const [m, n, k, offset, splitK] of [
          [36, 44, 100, 0, 1],
          [37, 45, 103, 1, 1],
          [16, 64, 640, 0, 4],
        ]
      ) {
        const b16 = Float16Array.from(rng.normal(k * n));
        const o = { m, n, k, tA, tB, a: rng.normal(m * k), b: b16, offset, alpha: 2 };
        const { c, op } = await product(gpu, { ...o, config: { tile: "32x32", splitK } });
        assert.equal(op.dispatches[0].kernel, offset ? "matmul_scalar_f16" : "matmul_f16");
        op.destroy();
        // The reference multiplies the same f16 values in float64: only f32 rounding remains.
        assertClose(c, productCpu(o), {
          atol: 1e-4,
          rtol: 1e-4,
          label: `f16 B ${m}x${n}x${k} tA=${tA} tB=${tB} split ${splitK}`,
        });
        // Large sums stay exact to f32 precision: f16 would have rounded 2048 + 1 to 2048.
      }
    }
    const a = gpu.upload("a", new Float32Array(2048).fill(1), [1, 2048]);
    const b = gpu.upload("b", new Float16Array(2048).fill(1), [2048, 1]);
    const out = gpu.tensor("c", [1, 1]);
    await gpu.run(matmul(gpu, { a, b, out, config: { tile: "32x32" } }));
    assert.equal((await gpu.read(out))[0], 2048);
  },
);

Deno.test("matmul() refuses an f16 B on a device without shader-f16, saying so", async () => {
  const gpu = await requestGpu({ log: false, f16: false });
  try {
    const a = gpu.tensor("a", [4, 4]);
    const fake = new Tensor(gpu.tensor("w", [8]).buffer, 0, [4, 4], "f16", "w16");
    assert.throws(
      () => matmul(gpu, { a, b: fake, out: gpu.tensor("c", [4, 4]) }),
      (e: Error) =>
        e instanceof ShapeError &&
        /w16\(4, 4\) f16 is f16, which needs the adapter feature shader-f16/
          .test(e.message),
    );
  } finally {
    gpu.destroy();
  }
});

Deno.test(
  "split-K products share one scratch buffer, freed with the last op; setParams reaches both dispatches",
  async () => {
    const gpu = await requestGpu({ log: false }); // its own device: a fresh scratch pool
    void gpu.placeholder;
    const rng = new Rng(15);
    const [m, n, k] = [8, 12, 512];
    const a = rng.normal(m * k), b = rng.normal(k * n);
    const A = gpu.upload("a", a, [m, k]), B = gpu.upload("b", b, [k, n]);
    const C = gpu.tensor("c", [2, m, n]);
    await gpu.read(C); // the pooled readback buffer, allocated once
    const before = gpu.allocatedBytes;
    const config = { tile: "32x32", splitK: 4 } as const;
    const mk = (row: number) =>
      matmulStrided(gpu, {
        m,
        n,
        k,
        a: { tensor: A, ld: k },
        b: { tensor: B, ld: n },
        out: { tensor: C, offset: row * m * n, ld: n },
        config,
      });
    const op1 = mk(0);
    const grown = gpu.allocatedBytes - before;
    const op2 = mk(1);
    // op2 adds only its uniforms: the scratch is op1's
    assert.ok(gpu.allocatedBytes - before - grown < 1024, `${gpu.allocatedBytes - before}`);
    op1.setParams({ c_offset: m * n }); // both write the second half now
    await gpu.run([op1]);
    const got = await gpu.read(C);
    const want = matmulCpu(f64(a), [m, k], f64(b), [k, n]).out;
    assertClose(got.slice(m * n), want, { atol: 1e-4, rtol: 1e-4, label: "moved by setParams" });
    assert.ok(got.slice(0, m * n).every((x) => x === 0));
    op1.destroy();
    op1.destroy(); // twice: harmless
    assert.ok(gpu.allocatedBytes > before + 1024, "op2 still holds the scratch");
    op2.destroy();
    assert.equal(gpu.allocatedBytes, before);
    gpu.destroy();
  },
);

Deno.test("matmulHeuristic() picks few-row and few-column tiles, and splits K only where the tiles are too few", () => {
  const gpu = { software: false };
  const cpu = { software: true, cores: 2 };
  // the LM head's input gradient at 4 target tokens x batch 4: (16, 32128) · (32128, 512)
  assert.deepEqual(matmulHeuristic({ m: 16, n: 512, k: 32128 }, gpu), {
    tile: "16x128",
    splitK: 32,
  });
  assert.deepEqual(matmulHeuristic({ m: 16, n: 512, k: 32128 }, cpu), {
    tile: "16x128",
    splitK: 1,
  });
  // a low-rank weight's gradient (C, R) = Xᵀ · dH over B·S rows
  assert.deepEqual(matmulHeuristic({ m: 768, n: 16, k: 8192, transA: true }, gpu), {
    tile: "128x16",
    splitK: 32,
  });
  // T5-base decoder products at batch 32 x 4 tokens: 128 rows
  assert.deepEqual(matmulHeuristic({ m: 128, n: 768, k: 768 }, gpu), { tile: "64x64", splitK: 4 });
  assert.deepEqual(matmulHeuristic({ m: 8192, n: 3072, k: 768 }, gpu), {
    tile: "128x128",
    splitK: 1,
  });
  // a CPU adapter takes the tile of least padded work and copying: the tuner's choices on
  // lavapipe for the tiny T5 step's products (128x128 would pad 672 x 192 to 768 x 256)
  assert.deepEqual(matmulHeuristic({ m: 672, n: 192, k: 64 }, cpu), { tile: "64x64", splitK: 1 });
  assert.deepEqual(matmulHeuristic({ m: 32, n: 64, k: 256 }, cpu), { tile: "32x32", splitK: 1 });
  // ... without barriers where the direct kernel exists (vec4 layout, f32 B), never on a GPU
  assert.deepEqual(matmulHeuristic({ m: 672, n: 192, k: 64, vec4: true }, cpu), {
    tile: "64x64",
    splitK: 1,
    direct: true,
  });
  assert.equal(
    matmulHeuristic({ m: 672, n: 192, k: 64, vec4: true, bDtype: "f16" }, cpu).direct,
    undefined,
  );
  assert.equal(matmulHeuristic({ m: 672, n: 192, k: 64, vec4: true }, gpu).direct, undefined);
  // large products keep the largest tile (the least copying per multiply-add)
  assert.deepEqual(matmulHeuristic({ m: 4096, n: 4096, k: 64 }, cpu).tile, "128x128");
  // K too short to split (chunks of at least 128), or an empty product
  assert.deepEqual(matmulHeuristic({ m: 16, n: 16, k: 200 }, gpu), { tile: "64x64", splitK: 1 });
  assert.deepEqual(matmulHeuristic({ m: 0, n: 16, k: 4096 }, gpu).splitK, 1);
  // scratch bounded: splits x M x N x 4 bytes within 64 MiB
  for (const s of [{ m: 4096, n: 4096, k: 1 << 20 }, { m: 100, n: 100, k: 7 }]) {
    const c = matmulHeuristic(s, gpu);
    assert.ok(4 * (c.splitK ?? 1) * s.m * s.n <= 64 * 2 ** 20);
    assert.ok(allowedSplits(s).includes(c.splitK ?? 1));
  }
});

Deno.test("tuneMatmuls() measures the candidates, keeps the fastest per shape, and the table saves and loads by adapter", async () => {
  const gpu = await requestGpu({ log: false });
  const dir = await Deno.makeTempDir();
  try {
    const rng = new Rng(16);
    const [m, n, k] = [12, 40, 384];
    const a = rng.normal(m * k), b = rng.normal(k * n);
    const A = gpu.upload("a", a, [m, k]), B = gpu.upload("b", b, [k, n]);
    const C = gpu.tensor("c", [m, n]);
    matmul(gpu, { a: A, b: B, out: C }).destroy(); // records the shape
    const seen = matmulShapes(gpu);
    assert.equal(seen.length, 1);
    assert.deepEqual(seen[0], {
      shape: { m, n, k, batch: 1, transA: false, transB: false, vec4: true, bDtype: "f32" },
      measured: false,
    });
    const lines: string[] = [];
    const [r] = await tuneMatmuls(gpu, { trials: 1, log: (l) => lines.push(l) });
    assert.equal(lines.length, 1);
    assert.match(lines[0], /^\[matmul\] 12x40x384 b1 nn v4 f32: /);
    assert.ok(r.candidates.length >= 4, `${r.candidates.length} candidates`);
    assert.ok(r.candidates.every((c) => c.ms > 0 && Number.isFinite(c.ms)));
    assert.ok(
      r.candidates.some((c) =>
        c.ms === r.ms && matmulConfigName(c.config) === matmulConfigName(r.config)
      ),
    );
    assert.ok(
      r.candidates.some((c) => matmulConfigName(c.config) === matmulConfigName(r.heuristic.config)),
    );
    assert.deepEqual(matmulConfig(gpu, seen[0].shape), r.config);
    assert.deepEqual(matmulShapes(gpu)[0].measured, true);
    assert.deepEqual(await tuneMatmuls(gpu), []); // nothing left to measure
    // the chosen configuration computes the right product
    const op = matmul(gpu, { a: A, b: B, out: C });
    await gpu.run(op);
    assertClose(await gpu.read(C), matmulCpu(f64(a), [m, k], f64(b), [k, n]).out, {
      atol: 1e-4,
      rtol: 1e-4,
      label: `tuned ${matmulConfigName(r.config)}`,
    });
    // saved under the adapter's name; another device of this adapter loads it
    const path = await saveMatmulTuning(gpu, `${dir}/t.json`);
    const saved = JSON.parse(await Deno.readTextFile(path));
    assert.equal(saved.adapter, gpu.adapter.description);
    assert.equal(saved.kernels, matmulKernelsHash());
    const other = await requestGpu({ log: false });
    assert.equal(await loadMatmulTuning(other, path), 1);
    assert.deepEqual(matmulConfig(other, seen[0].shape), r.config);
    // a file of another adapter, or of other kernels, is ignored
    await Deno.writeTextFile(`${dir}/x.json`, JSON.stringify({ ...saved, adapter: "other" }));
    assert.equal(await loadMatmulTuning(other, `${dir}/x.json`), 0);
    await Deno.writeTextFile(`${dir}/y.json`, JSON.stringify({ ...saved, kernels: "0" }));
    assert.equal(await loadMatmulTuning(other, `${dir}/y.json`), 0);
    assert.equal(await loadMatmulTuning(other, `${dir}/missing.json`), 0);
    await Deno.writeTextFile(`${dir}/bad.json`, "{");
    await assert.rejects(() => loadMatmulTuning(other, `${dir}/bad.json`), /bad\.json/);
    assert.match(matmulTuningPath(gpu), /adept-trainer\/matmul-tuning\/.+\.json$/);
    other.destroy();
  } finally {
    gpu.destroy();
    await Deno.remove(dir, { recursive: true });
  }
});

gpuTest(
  "matmul() refuses an unknown tile and a configuration beyond the workgroup memory",
  (gpu) => {
    const a = gpu.tensor("a", [4, 4]);
    assert.throws(
      () =>
        matmul(gpu, { a, b: a, out: gpu.tensor("c", [4, 4]), config: { tile: "8x8" as never } }),
      /unknown tile "8x8"; tiles: 128x128, 64x64/,
    );
    const huge = { tile: "128x128", pad: true, doubleBuffer: true } as const;
    if (matmulWorkgroupBytes(huge) > gpu.limits.maxComputeWorkgroupStorageSize) {
      assert.throws(
        () => matmul(gpu, { a, b: a, out: gpu.tensor("c", [4, 4]), config: huge }),
        /needs 33792 bytes of workgroup memory/,
      );
    }
    assert.throws(
      () =>
        matmul(gpu, {
          a,
          b: a,
          out: gpu.tensor("c", [4, 4]),
          config: { tile: "64x64", splitK: 0 },
        }),
      /splitK must be a positive integer, got 0/,
    );
  },
);

gpuTest(
  "a ReLU + dropout epilogue equals the product followed by relu() with the same dropout, bit for bit, split or not, vec4 or scalar, and matches the CPU reference",
  async (gpu) => {
    const rng = new Rng(17);
    const state = dropoutState(gpu, { seed: 1234, step: 7 });
    const [B, S, C, F] = [2, 9, 36, 44]; // the feed-forward's wi: (B, S, C) · (F, C)ᵀ
    const x = rng.normal(B * S * C), w = rng.normal(F * C), bias = rng.normal(F);
    const X = gpu.upload("x", x, [B, S, C]), W = gpu.upload("w", w, [F, C]);
    const Bias = gpu.upload("bias", bias);
    const site = { state, p: 0.3, stream: 5 };
    const pre = gpu.tensor("pre", [B, S, F]), ref = gpu.tensor("ref", [B, S, F]);
    await gpu.run([
      matmul(gpu, { a: X, b: W, bias: Bias, out: pre, transB: true, alpha: 0.5 }),
      relu(gpu, { x: pre, out: ref, dropout: site }),
    ]);
    const want = await gpu.read(ref);
    // CPU: relu, then keep ? v · scale : 0 with the kernels' mask
    const cpu = matmulCpu(f64(x), [B, S, C], f64(w), [F, C], {
      transB: true,
      alpha: 0.5,
      bias: f64(bias),
    }).out;
    const mask = dropoutMaskCpu(cpu.length, { seed: 1234, step: 7, stream: 5, p: 0.3 });
    const scale = Math.fround(1 / 0.7);
    const cpuWant = cpu.map((v, i) => mask[i] ? Math.max(v, 0) * scale : 0);
    assertClose(want, cpuWant, { atol: 1e-4, rtol: 1e-4, label: "separate kernels vs CPU" });
    assert.ok(mask.some((k) => !k) && mask.some((k) => k), "some dropped, some kept");
    const configs: MatmulConfig[] = [
      { tile: "32x32" },
      { tile: "16x128", splitK: 3 },
      { tile: "32x32", direct: true },
      { tile: "32x32", splitK: 3, direct: true },
    ];
    for (const config of configs) {
      for (const scalar of [false, true]) {
        // The scalar kernel: x read from an offset of one element.
        const xs = gpu.upload("x1", Float32Array.of(0, ...x));
        const f = gpu.tensor("f", [B, S, F]);
        const op = scalar
          ? matmulStrided(gpu, {
            m: B * S,
            n: F,
            k: C,
            transB: true,
            a: { tensor: xs, offset: 1, ld: C },
            b: { tensor: W, ld: C },
            out: { tensor: f, ld: F },
            bias: Bias,
            alpha: 0.5,
            config,
            epilogue: { activation: "relu", dropout: site },
          })
          : matmul(gpu, {
            a: X,
            b: W,
            bias: Bias,
            out: f,
            transB: true,
            alpha: 0.5,
            config,
            epilogue: { activation: "relu", dropout: site },
          });
        await gpu.run(op);
        const label = `${matmulConfigName(config)} ${scalar ? "scalar" : "vec4"}`;
        assert.equal(
          op.dispatches[0].kernel,
          scalar ? "matmul_scalar" : config.direct ? "matmul_direct" : "matmul",
          label,
        );
        const got = await gpu.read(f);
        if ((config.splitK ?? 1) === 1) {
          assert.deepEqual(got, want, `${label}: bitwise equal to matmul + relu(dropout)`);
        } else {
          // split-K adds in another order: equal to f32 rounding, same zeros
          assertClose(got, want, { atol: 1e-5, rtol: 1e-5, label });
          got.forEach((v, i) => assert.equal(v === 0, want[i] === 0, `${label} zero at ${i}`));
        }
        // The backward can read the result instead of the pre-activation.
        const dout = gpu.upload("dout", rng.normal(B * S * F), [B, S, F]);
        const [dxPre, dxOut] = [gpu.tensor("dx1", [B, S, F]), gpu.tensor("dx2", [B, S, F])];
        await gpu.run([
          reluBackward(gpu, { dout, x: pre, dx: dxPre, dropout: site }),
          reluBackward(gpu, { dout, x: f, dx: dxOut, dropout: site }),
        ]);
        assert.deepEqual(await gpu.read(dxOut), await gpu.read(dxPre), `${label}: backward`);
        op.destroy();
      }
    }
    // ReLU alone; a dropout of p = 0 is none
    const f = gpu.tensor("f", [B, S, F]);
    await gpu.run(matmul(gpu, {
      a: X,
      b: W,
      bias: Bias,
      out: f,
      transB: true,
      alpha: 0.5,
      epilogue: { activation: "relu", dropout: { ...site, p: 0 } },
    }));
    const preV = await gpu.read(pre);
    assert.deepEqual(await gpu.read(f), preV.map((v) => Math.max(v, 0)));
    assert.throws(
      () =>
        matmul(gpu, {
          a: X,
          b: W,
          out: f,
          transB: true,
          epilogue: { activation: "gelu" as never },
        }),
      /epilogue activation must be "relu", got "gelu"/,
    );
    assert.throws(
      () =>
        matmul(gpu, {
          a: X,
          b: W,
          out: f,
          transB: true,
          epilogue: { dropout: { ...site, state: Bias } },
        }),
      /the dropout state bias\(44\) f32 must be \(2\) u32/,
    );
  },
);
