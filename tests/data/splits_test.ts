import assert from "node:assert/strict";
import { randperm } from "../../src/data/randperm.ts";
import { selectRows, SPLIT_SCHEMES, splitIndices } from "../../src/data/splits.ts";
import fixtureJson from "../fixtures/randperm.json" with { type: "json" };

const perms = (fixtureJson as { perms: { n: number; head: number[]; tail: number[] }[] }).perms;
const torchPerm = (n: number) => {
  const e = perms.find((p) => p.n === n);
  assert.ok(e, `the randperm fixture lacks n=${n}`);
  return e;
};

function isArange(a: Int32Array, n: number): boolean {
  return a.length === n && a.every((v, i) => v === i);
}

Deno.test("splitIndices('small') halves the validation set by torch's randperm: validation perm[:n//2], test perm[n//2:]", () => {
  // CoLA: 1043 validation rows -> 521 validation, 522 test.
  const s = splitIndices("small", { train: 8551, validation: 1043 });
  const t = torchPerm(1043);
  assert.equal(s.validation.source, "validation");
  assert.equal(s.test.source, "validation");
  assert.equal(s.validation.indices.length, 521);
  assert.equal(s.test.indices.length, 522);
  assert.deepEqual(Array.from(s.validation.indices.subarray(0, 16)), t.head);
  assert.deepEqual(Array.from(s.test.indices.subarray(522 - 16)), t.tail);
  const all = [...s.validation.indices, ...s.test.indices];
  assert.deepEqual(all, Array.from(randperm(1043)));
  assert.equal(s.train.source, "train");
  assert.ok(isArange(s.train.indices, 8551), "train is all of train, in order");
});

Deno.test("splitIndices('small') gives the extra row of an odd validation set to test (RTE 277 -> 138 + 139)", () => {
  const s = splitIndices("small", { train: 2490, validation: 277 });
  assert.equal(s.validation.indices.length, 138);
  assert.equal(s.test.indices.length, 139);
});

Deno.test("splitIndices('large') takes validation = train[perm[:1000]], train = train[perm[1000:]], test = all of validation", () => {
  // QQP: 363846 train rows, 40430 validation rows.
  const s = splitIndices("large", { train: 363846, validation: 40430 });
  const t = torchPerm(363846);
  assert.equal(s.validation.source, "train");
  assert.equal(s.train.source, "train");
  assert.equal(s.test.source, "validation");
  assert.equal(s.validation.indices.length, 1000);
  assert.equal(s.train.indices.length, 362846);
  assert.deepEqual(Array.from(s.validation.indices.subarray(0, 16)), t.head);
  assert.deepEqual(Array.from(s.train.indices.subarray(362846 - 16)), t.tail);
  assert.ok(isArange(s.test.indices, 40430), "test is all of validation, in order");
  const seen = new Uint8Array(363846);
  for (const i of [...s.validation.indices, ...s.train.indices]) seen[i]++;
  assert.ok(seen.every((c) => c === 1), "validation and train partition the train split");
});

Deno.test("splitIndices('mnli') uses train, validation_mismatched as validation and validation_matched as test", () => {
  const s = splitIndices("mnli", {
    train: 50,
    validation_matched: 20,
    validation_mismatched: 30,
  });
  assert.equal(s.train.source, "train");
  assert.equal(s.validation.source, "validation_mismatched");
  assert.equal(s.test.source, "validation_matched");
  assert.ok(isArange(s.train.indices, 50));
  assert.ok(isArange(s.validation.indices, 30));
  assert.ok(isArange(s.test.indices, 20));
});

Deno.test("splitIndices() caps like the authors' n_obs: carved splits keep a prefix, whole splits draw randperm(size)[:cap]", () => {
  const small = splitIndices("small", { train: 8551, validation: 1043 }, {
    maxSamples: { train: 16, validation: 5, test: 10_000 },
  });
  assert.deepEqual(Array.from(small.train.indices), torchPerm(8551).head);
  assert.deepEqual(Array.from(small.validation.indices), torchPerm(1043).head.slice(0, 5));
  assert.equal(small.test.indices.length, 522, "a cap above the size keeps everything");

  const large = splitIndices("large", { train: 67349, validation: 872 }, {
    maxSamples: { train: 3, test: 16 },
  });
  assert.deepEqual(
    Array.from(large.train.indices),
    Array.from(randperm(67349).subarray(1000, 1003)),
  );
  assert.deepEqual(Array.from(large.test.indices), torchPerm(872).head);
  assert.equal(large.validation.indices.length, 1000);
});

Deno.test("splitIndices() honours seed and largeValidationSize options", () => {
  const s = splitIndices("large", { train: 100, validation: 7 }, {
    seed: 7,
    largeValidationSize: 10,
  });
  assert.deepEqual(Array.from(s.validation.indices), Array.from(randperm(100, 7).subarray(0, 10)));
  assert.equal(s.train.indices.length, 90);
});

Deno.test("splitIndices() rejects unknown schemes, missing or invalid sizes and bad caps, quoting them", () => {
  assert.throws(
    // @ts-expect-error: an invalid scheme from untyped input
    () => splitIndices("tiny", { train: 1, validation: 1 }),
    /unknown split scheme "tiny"/,
  );
  assert.throws(() => splitIndices("small", { train: 10 }), /needs the size of split "validation"/);
  assert.throws(
    () => splitIndices("mnli", { train: 10, validation: 5 }),
    /needs the size of split "validation_matched"/,
  );
  assert.throws(
    () => splitIndices("small", { train: 10, validation: -3 }),
    /size of split "validation" must be a non-negative integer, got -3/,
  );
  assert.throws(
    () => splitIndices("large", { train: 10, validation: 2.5 }),
    /got 2\.5/,
  );
  assert.throws(
    () => splitIndices("small", { train: 10, validation: 4 }, { maxSamples: { train: -1 } }),
    /maxSamples\.train must be a non-negative integer, got -1/,
  );
});

Deno.test("SPLIT_SCHEMES assigns every docs/method.md task its scheme", () => {
  for (const t of ["cola", "rte", "mrpc", "stsb", "boolq", "cb", "wic", "wsc", "multirc"]) {
    assert.equal(SPLIT_SCHEMES[t], "small", t);
  }
  for (const t of ["qqp", "qnli", "sst2"]) assert.equal(SPLIT_SCHEMES[t], "large", t);
  assert.equal(SPLIT_SCHEMES.mnli, "mnli");
});

Deno.test("selectRows() gathers rows in index order and rejects out-of-range indices", () => {
  assert.deepEqual(selectRows(["a", "b", "c", "d"], Int32Array.of(3, 0, 3)), ["d", "a", "d"]);
  assert.deepEqual(selectRows([], new Int32Array(0)), []);
  assert.throws(() => selectRows(["a"], [0, 1]), /index 1 at position 1 is outside the 1 rows/);
  assert.throws(() => selectRows(["a"], [-1]), /index -1 at position 0/);
});
