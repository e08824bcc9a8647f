import assert from "node:assert/strict";
import {
  bucketTable,
  positionBias,
  positionBiasCpu,
  relativePositionBucket,
} from "../../src/model/position_bias.ts";
import { gpuTest } from "../gpu_support.ts";
import { assertClose, Rng } from "../numeric.ts";

interface BucketFixture {
  relative_positions: [number, number];
  cases: { num_buckets: number; max_distance: number; bidirectional: boolean; buckets: number[] }[];
}

const fixture: BucketFixture = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/t5_buckets.json", import.meta.url)),
);

Deno.test("relativePositionBucket() equals transformers' buckets for every position in -1100..1100", () => {
  const [lo, hi] = fixture.relative_positions;
  for (const c of fixture.cases) {
    for (let r = lo; r <= hi; r++) {
      const got = relativePositionBucket(r, c.bidirectional, c.num_buckets, c.max_distance);
      assert.equal(
        got,
        c.buckets[r - lo],
        `rel ${r}, ${
          c.bidirectional ? "bi" : "uni"
        }directional, ${c.num_buckets}/${c.max_distance}`,
      );
    }
  }
});

gpuTest(
  "positionBias() matches the CPU reference, with and without a query offset",
  async (gpu) => {
    const rng = new Rng(11);
    const [nb, heads] = [32, 3];
    const weight = rng.normal(nb * heads);
    const W = gpu.upload("w", weight, [nb, heads]);
    for (
      const [bidir, sq, sk, off] of [[true, 13, 13, 0], [false, 7, 29, 0], [
        false,
        1,
        29,
        17,
      ]] as const
    ) {
      const buckets = gpu.upload("buckets", bucketTable(200, bidir, nb, 128));
      const out = gpu.tensor("bias", [heads, sq, sk]);
      await gpu.run(positionBias(gpu, { weight: W, buckets, out, queryOffset: off }));
      assertClose(
        await gpu.read(out),
        positionBiasCpu(weight, heads, sq, sk, bidir, nb, 128, off),
        {
          atol: 0,
          rtol: 0,
          label: `bidir=${bidir} sq=${sq} sk=${sk} off=${off}`,
        },
      );
    }
  },
);

gpuTest("positionBias() rejects a head count that disagrees with the table", (gpu) => {
  const w = gpu.tensor("w", [32, 4]);
  const b = gpu.upload("b", bucketTable(8, true, 32, 128));
  assert.throws(
    () => positionBias(gpu, { weight: w, buckets: b, out: gpu.tensor("o", [3, 5, 5]) }),
    /out o\(3, 5, 5\) f32 has 3 heads, weight w\(32, 4\) f32 4/,
  );
});
