import assert from "node:assert/strict";
import { ShapeError } from "../../src/gpu/errors.ts";
import { globalL2Norm, globalL2NormCpu, sumRows, sumRowsCpu } from "../../src/layers/reduce.ts";
import { gpuTest } from "../gpu_support.ts";
import { assertClose, Rng } from "../numeric.ts";

gpuTest(
  "sumRows() matches the CPU reference for row and column counts that do not divide 64 or 256",
  async (gpu) => {
    const rng = new Rng(41);
    const shapes = [[1, 1], [7, 19], [255, 65], [256, 64], [257, 130], [3, 5, 33], [10007, 70]];
    for (const shape of shapes) {
      const c = shape[shape.length - 1];
      const size = shape.reduce((a, b) => a * b);
      const x = rng.normal(size);
      const X = gpu.upload("x", x, shape);
      for (const accumulate of [false, true]) {
        const out0 = rng.normal(c);
        const out = gpu.upload("out", out0);
        await gpu.run(sumRows(gpu, { x: X, out, accumulate }));
        const want = sumRowsCpu(x, c).map((s, i) => s + (accumulate ? out0[i] : 0));
        assertClose(await gpu.read(out), want, {
          atol: 1e-6 * Math.sqrt(size / c) + 1e-6,
          rtol: 1e-5,
          label: `x ${shape} accumulate=${accumulate}`,
        });
      }
    }
  },
);

gpuTest(
  "sumRows() is exact on zeros and accurate on large and negative values",
  async (gpu) => {
    const [n, c] = [1000, 3];
    const x = new Float32Array(n * c);
    for (let r = 0; r < n; r++) {
      x[r * c + 0] = 0;
      x[r * c + 1] = 1e30 * (1 + (r % 7));
      x[r * c + 2] = -1 - r;
    }
    const out = gpu.tensor("out", [c]);
    await gpu.run(sumRows(gpu, { x: gpu.upload("x", x, [n, c]), out }));
    const got = await gpu.read(out);
    assert.equal(got[0], 0);
    assertClose(got, sumRowsCpu(x, c), { atol: 0, rtol: 1e-6, label: "sums" });
  },
);

gpuTest(
  "sumRows() gives bitwise identical results on every run (two-pass, 50001 rows)",
  async (gpu) => {
    const rng = new Rng(42);
    const [n, c] = [50001, 37];
    const x = rng.normal(n * c);
    const out = gpu.tensor("out", [c]);
    const op = sumRows(gpu, { x: gpu.upload("x", x, [n, c]), out });
    await gpu.run(op);
    const first = await gpu.read(out);
    for (let r = 0; r < 2; r++) {
      await gpu.run(op);
      assert.deepEqual(await gpu.read(out), first, `run ${r + 2}`);
    }
    assertClose(first, sumRowsCpu(x, c), { atol: 1e-3, rtol: 1e-5, label: "sums" });
  },
);

gpuTest(
  "sumRows() widens its row chunks past 65535 · 256 rows (no more than 65535 chunks)",
  async (gpu) => {
    const n = 65535 * 256 + 301;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = (i % 5) - 2; // exact in f32: every partial sum is an integer
    const out = gpu.tensor("out", [1]);
    await gpu.run(sumRows(gpu, { x: gpu.upload("x", x, [n, 1]), out }));
    assert.deepEqual([...await gpu.read(out)], [...sumRowsCpu(x, 1)]);
  },
);

gpuTest(
  "globalL2Norm() matches the CPU reference over many tensors of odd and empty sizes",
  async (gpu) => {
    const rng = new Rng(43);
    const shapes = [[1], [4095], [4096], [4097], [33, 47], [0], [3, 0, 2], [100003], [19, 769]];
    const arrays = shapes.map((s) => rng.normal(s.reduce((a, b) => a * b, 1), 0.3));
    // (empty tensors are allocated, not uploaded: Deno 2.9.6 panics on a 0-byte writeBuffer)
    const tensors = arrays.map((a, i) =>
      a.length ? gpu.upload(`g${i}`, a, shapes[i]) : gpu.tensor(`g${i}`, shapes[i])
    );
    const out = gpu.upload("norm", new Float32Array([NaN]));
    const op = globalL2Norm(gpu, { tensors, out });
    await gpu.run(op);
    const first = (await gpu.read(out))[0];
    assertClose([first], [globalL2NormCpu(arrays)], { atol: 0, rtol: 2e-6, label: "norm" });
    await gpu.run(op);
    assert.equal((await gpu.read(out))[0], first, "a second run gives the same bits");
  },
);

gpuTest(
  "globalL2Norm() is 0 for zeros and for no elements, and accurate for large and negative values",
  async (gpu) => {
    const out = gpu.tensor("norm", [1]);
    await gpu.run(globalL2Norm(gpu, { tensors: [gpu.tensor("z", [5000])], out }));
    assert.equal((await gpu.read(out))[0], 0);
    await gpu.run(globalL2Norm(gpu, { tensors: [gpu.tensor("e", [0])], out }));
    assert.equal((await gpu.read(out))[0], 0);
    await gpu.run(globalL2Norm(gpu, { tensors: [], out }));
    assert.equal((await gpu.read(out))[0], 0);
    const big = new Float32Array(9000).map((_, i) => (i % 2 ? -1e15 : 3e14));
    const neg = new Float32Array(17).fill(-2);
    await gpu.run(globalL2Norm(gpu, {
      tensors: [gpu.upload("big", big), gpu.upload("neg", neg)],
      out,
    }));
    assertClose(await gpu.read(out), [globalL2NormCpu([big, neg])], {
      atol: 0,
      rtol: 1e-6,
      label: "large",
    });
  },
);

gpuTest(
  "sumRows() and globalL2Norm() reject mismatched shapes and dtypes before dispatching, naming the shapes",
  (gpu) => {
    assert.throws(
      () => sumRows(gpu, { x: gpu.tensor("x", [4, 6]), out: gpu.tensor("out", [4]) }),
      (e: Error) =>
        e instanceof ShapeError && e.message === "sum_rows: out must be (6): x (4, 6), out (4)",
    );
    assert.throws(
      () => sumRows(gpu, { x: gpu.tensor("xi", [4, 6], "i32"), out: gpu.tensor("out", [6]) }),
      /sum_rows: x = xi\(4, 6\) i32 must be f32/,
    );
    assert.throws(
      () => globalL2Norm(gpu, { tensors: [gpu.tensor("g", [3])], out: gpu.tensor("o", [2]) }),
      /global_l2_norm: out o\(2\) f32 must be \(1\) f32/,
    );
    assert.throws(
      () =>
        globalL2Norm(gpu, {
          tensors: [gpu.tensor("g", [3]), gpu.tensor("gi", [3], "u32")],
          out: gpu.tensor("o", [1]),
        }),
      /global_l2_norm: tensors\[1\] = gi\(3\) u32 must be f32/,
    );
  },
);
