import assert from "node:assert/strict";
import { fill } from "../../src/layers/fill.ts";
import { matmul } from "../../src/layers/matmul.ts";
import { gpuTest } from "../gpu_support.ts";

gpuTest(
  "profile() times each group of ops as its own pass (timestamp-query), or says it cannot",
  async (gpu) => {
    const a = gpu.tensor("a", [128, 128]), c = gpu.tensor("c", [128, 128]);
    const mm = matmul(gpu, { a, b: a, out: c });
    const f = fill(gpu, { out: a, value: 1 });
    const ms = await gpu.profile([
      { label: "fill", ops: [f] },
      { label: "matmul x8", ops: Array(8).fill(mm) },
    ]);
    if (!gpu.hasTimestamps) {
      assert.equal(ms, undefined);
    } else {
      assert.equal(ms!.length, 2);
      assert.ok(ms!.every((x) => Number.isFinite(x) && x >= 0), `times ${ms}`);
      assert.ok(ms![1] > ms![0], `8 matmuls take longer than a fill: ${ms}`);
      // the work ran: c = a · a with a all ones
      assert.equal((await gpu.read(c))[0], 128);
    }
    // one dispatch: the tiled product, or on a CPU adapter the one without barriers
    assert.deepEqual(mm.dispatches.map((d) => d.kernel), [
      gpu.adapter.software ? "matmul_direct" : "matmul",
    ]);
    mm.destroy();
    f.destroy();
    for (const t of [a, c]) gpu.freeBuffer(t.buffer);
  },
);
