import assert from "node:assert/strict";
import { ShapeError } from "../../src/gpu/errors.ts";
import {
  checkIds,
  embeddingBackward,
  embeddingBackwardCpu,
  embeddingForward,
  embeddingForwardCpu,
} from "../../src/layers/embedding.ts";
import { gpuTest } from "../gpu_support.ts";
import { assertClose, dot, f64, finiteDiff, Rng } from "../numeric.ts";

Deno.test("embeddingBackwardCpu() matches float64 finite differences with repeated and out-of-range ids", () => {
  const rng = new Rng(11);
  const [V, C] = [5, 3];
  const ids = [1, 3, 1, -1, 4, 1, 5, 0];
  const table = f64(rng.normal(V * C));
  const w = f64(rng.normal(ids.length * C));
  const analytic = embeddingBackwardCpu(w, ids, [V, C]);
  const numeric = finiteDiff((t) => dot(w, embeddingForwardCpu(t, [V, C], ids)), table);
  assertClose(analytic, numeric, { atol: 1e-8, rtol: 1e-7, label: "dtable" });
  // row 2 never occurs: no gradient
  assert.deepEqual([...analytic.slice(2 * C, 3 * C)], [0, 0, 0]);
});

Deno.test("checkIds() names the first out-of-range id and its position", () => {
  checkIds(new Int32Array([0, 4, 2]), 5);
  assert.throws(
    () => checkIds(new Int32Array([0, 4, 5, -1]), 5),
    (e: Error) =>
      e instanceof RangeError && e.message === "ids[2] = 5 is outside the vocabulary [0, 5)",
  );
  assert.throws(() => checkIds([3, -100], 32128, "input_ids"), /input_ids\[1\] = -100/);
});

gpuTest(
  "embeddingForward() matches the CPU reference for odd sizes and writes zero rows for out-of-range ids",
  async (gpu) => {
    const rng = new Rng(12);
    const [V, C, B, S] = [37, 29, 3, 41]; // N * C = 3567, not a multiple of 256
    const table = rng.uniform(V * C, -1e30, 1e30);
    table.set([0, -0, -3.5e-38, 7], 0); // zeros and tiny negatives are gathered exactly
    const ids = rng.ints(B * S, 0, V);
    ids.set([-1, V, 1000, -100, 2 ** 31 - 1], 10);
    const T = gpu.upload("table", table, [V, C]);
    const I = gpu.upload("ids", ids, [B, S]);
    const out = gpu.upload("out", rng.normal(B * S * C), [B, S, C]); // overwritten everywhere
    await gpu.run(embeddingForward(gpu, { table: T, ids: I, out }));
    const got = await gpu.read(out);
    const want = embeddingForwardCpu(table, [V, C], ids);
    assert.equal(got.length, want.length);
    assertClose(got, want, { atol: 0, rtol: 0, label: "gathered rows" });
    for (let i = 10; i < 15; i++) {
      assert.ok(got.slice(i * C, (i + 1) * C).every((x) => x === 0), `row ${i} is zeros`);
    }
  },
);

gpuTest(
  "embeddingBackward() sums repeated ids like the CPU reference, accumulating or overwriting",
  async (gpu) => {
    const rng = new Rng(13);
    const [V, C, N] = [23, 19, 301];
    const ids = rng.ints(N, 0, 6); // heavy repetition in rows 0..5
    ids[7] = 20;
    ids[8] = -5; // dropped
    ids[9] = V; // dropped
    const dout = rng.normal(N * C);
    dout.set([1e30, -1e30, 0, -0], 2 * C); // extreme values in one row
    const d0 = rng.normal(V * C);
    const Ids = gpu.upload("ids", ids);
    const dOut = gpu.upload("dout", dout, [N, C]);
    for (const accumulate of [true, false]) {
      const dT = gpu.upload("dtable", d0, [V, C]);
      await gpu.run(embeddingBackward(gpu, { dtable: dT, dout: dOut, ids: Ids, accumulate }));
      const want = accumulate ? embeddingBackwardCpu(dout, ids, [V, C], d0) : embeddingBackwardCpu(
        dout,
        ids,
        [V, C],
        d0.map((x, i) => {
          const row = Math.floor(i / C);
          return ids.includes(row) ? 0 : x; // rows that occur are overwritten, others kept
        }),
      );
      assertClose(await gpu.read(dT), want, {
        atol: 1e-4,
        rtol: 1e-5,
        label: `dtable accumulate=${accumulate}`,
      });
    }
  },
);

gpuTest(
  "embeddingBackward() matches the CPU reference for 16384 tokens with all ids distinct",
  async (gpu) => {
    const rng = new Rng(14);
    const N = 16384;
    const C = 5;
    const ids = Int32Array.from({ length: N }, (_, i) => i);
    for (let i = N - 1; i > 0; i--) {
      const j = Math.floor(rng.next() * (i + 1));
      [ids[i], ids[j]] = [ids[j], ids[i]];
    }
    ids[N - 1] = ids[0]; // one repeat, as far apart as possible
    const dout = rng.normal(N * C);
    const dT = gpu.tensor("dtable", [N, C]);
    await gpu.run(embeddingBackward(gpu, {
      dtable: dT,
      dout: gpu.upload("dout", dout, [N, C]),
      ids: gpu.upload("ids", ids),
    }));
    const want = embeddingBackwardCpu(dout, ids, [N, C]);
    assertClose(await gpu.read(dT), want, { atol: 1e-6, rtol: 1e-6, label: "dtable" });
  },
);

gpuTest(
  "embeddingForward() and embeddingBackward() handle 16384 tokens of 1025 channels (folded grids)",
  async (gpu) => {
    const rng = new Rng(16);
    const [N, C, V] = [16384, 1025, 50]; // N·C / 256 > 65535 workgroups
    const table = rng.normal(V * C);
    const ids = rng.ints(N, 0, V);
    const Ids = gpu.upload("ids", ids);
    const out = gpu.tensor("out", [N, C]);
    await gpu.run(
      embeddingForward(gpu, { table: gpu.upload("table", table, [V, C]), ids: Ids, out }),
    );
    assertClose(await gpu.read(out), embeddingForwardCpu(table, [V, C], ids), {
      atol: 0,
      rtol: 0,
      label: "gathered rows",
    });
    const dT = gpu.tensor("dtable", [V, C]);
    // reuse `out` as dout: its rows are table rows, so every id's sum is count · table row
    await gpu.run(embeddingBackward(gpu, { dtable: dT, dout: out, ids: Ids }));
    const want = embeddingBackwardCpu(embeddingForwardCpu(table, [V, C], ids), ids, [V, C]);
    assertClose(await gpu.read(dT), want, { atol: 1e-4, rtol: 1e-5, label: "dtable" });
  },
);

gpuTest(
  "embeddingBackward() gives bitwise identical results on every run (4099 tokens, 7 ids)",
  async (gpu) => {
    const rng = new Rng(15);
    const [N, C, V] = [4099, 33, 7];
    const ids = rng.ints(N, 0, V);
    const dout = rng.normal(N * C);
    const dT = gpu.tensor("dtable", [V, C]);
    const op = embeddingBackward(gpu, {
      dtable: dT,
      dout: gpu.upload("dout", dout, [N, C]),
      ids: gpu.upload("ids", ids),
      accumulate: false,
    });
    await gpu.run(op);
    const first = await gpu.read(dT);
    for (let r = 0; r < 3; r++) {
      await gpu.run(op);
      assert.deepEqual(await gpu.read(dT), first, `run ${r + 2} gives the bits of run 1`);
    }
    const want = embeddingBackwardCpu(dout, ids, [V, C]);
    assertClose(first, want, { atol: 1e-4, rtol: 1e-5, label: "dtable" });
  },
);

gpuTest(
  "embeddingForward() and embeddingBackward() reject mismatched shapes and dtypes before dispatching, naming the shapes",
  (gpu) => {
    const table = gpu.tensor("table", [10, 4]);
    const ids = gpu.tensor("ids", [2, 3], "i32");
    assert.throws(
      () => embeddingForward(gpu, { table, ids, out: gpu.tensor("out", [2, 3, 5]) }),
      (e: Error) =>
        e instanceof ShapeError &&
        e.message ===
          "embedding: out must be (2, 3, 4): table (10, 4), ids (2, 3), out (2, 3, 5)",
    );
    assert.throws(
      () =>
        embeddingForward(gpu, {
          table: gpu.tensor("t3", [10, 4, 1]),
          ids,
          out: gpu.tensor("out", [2, 3, 4]),
        }),
      /embedding: table must be \(V, C\): table \(10, 4, 1\), ids \(2, 3\), out \(2, 3, 4\)/,
    );
    assert.throws(
      () =>
        embeddingForward(gpu, {
          table,
          ids: gpu.tensor("idsf", [2, 3]),
          out: gpu.tensor("out", [2, 3, 4]),
        }),
      /embedding: ids idsf\(2, 3\) f32 must be i32/,
    );
    assert.throws(
      () =>
        embeddingBackward(gpu, {
          dtable: gpu.tensor("dt", [10, 4]),
          dout: gpu.tensor("dout", [6, 4]),
          ids,
        }),
      /embedding_backward: dout must be \(2, 3, 4\): dtable \(10, 4\), ids \(2, 3\), dout \(6, 4\)/,
    );
    assert.throws(
      () =>
        embeddingBackward(gpu, {
          dtable: gpu.tensor("dt", [10, 4], "i32"),
          dout: gpu.tensor("dout", [2, 3, 4]),
          ids,
        }),
      (e: Error) => e instanceof ShapeError && /dt\(10, 4\) i32 must be f32/.test(e.message),
    );
  },
);
