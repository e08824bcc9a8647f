import assert from "node:assert/strict";
import { Mt19937, seedLow32 } from "../../src/data/mt19937.ts";
import { MAX_RANDPERM_N, randperm, RANDPERM_64BIT_THRESHOLD } from "../../src/data/randperm.ts";
import fixtureJson from "../fixtures/randperm.json" with { type: "json" };

/** One permutation as tools/make_randperm_fixture.py records it. */
interface PermEntry {
  n: number;
  head: number[];
  tail: number[];
  sha256: string;
  label?: string;
}

interface RandpermFixture {
  seed: number;
  threshold64: number;
  perms: PermEntry[];
  seeds: { seed: string; n: number; perm: number[] }[];
  stream: PermEntry[];
  mt19937: { seed: number; first: number[]; from620: number[]; from1240: number[] };
  huge?: PermEntry[];
}

const fixture = fixtureJson as RandpermFixture;

function envFlag(name: string): boolean {
  try {
    return Deno.env.get(name) === "1";
  } catch {
    return false; // no --allow-env
  }
}

async function sha256Int32Le(a: Int32Array): Promise<string> {
  const bytes = new Uint8Array(a.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < a.length; i++) view.setInt32(4 * i, a[i], true);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Compares against a torch fixture entry; on failure says which n and where it first differs. */
async function assertMatchesTorch(perm: Int32Array, e: PermEntry, what: string): Promise<void> {
  const where = `${what} n=${e.n}${e.label ? ` (${e.label})` : ""}`;
  assert.equal(perm.length, e.n, `${where}: length`);
  const head = Array.from(perm.subarray(0, 16));
  const tail = Array.from(perm.subarray(Math.max(0, e.n - 16)));
  const firstDiff = (got: number[], want: number[]) => got.findIndex((v, i) => v !== want[i]);
  assert.deepEqual(head, e.head, `${where}: head differs first at ${firstDiff(head, e.head)}`);
  assert.deepEqual(tail, e.tail, `${where}: tail differs first at ${firstDiff(tail, e.tail)}`);
  assert.equal(await sha256Int32Le(perm), e.sha256, `${where}: SHA-256 of the permutation`);
}

function assertIsPermutation(perm: Int32Array): void {
  const seen = new Uint8Array(perm.length);
  for (let i = 0; i < perm.length; i++) {
    const v = perm[i];
    if (!(v >= 0 && v < perm.length)) {
      assert.fail(`entry ${i} = ${v} is outside 0..${perm.length - 1}`);
    }
    if (seen[v]) assert.fail(`value ${v} appears twice (again at ${i})`);
    seen[v] = 1;
  }
}

Deno.test("randperm(10) with seed 42 is [2, 6, 1, 8, 4, 5, 0, 9, 3, 7] as docs/method.md states", () => {
  assert.deepEqual(Array.from(randperm(10)), [2, 6, 1, 8, 4, 5, 0, 9, 3, 7]);
  assert.deepEqual(Array.from(randperm(10, 42)), [2, 6, 1, 8, 4, 5, 0, 9, 3, 7]);
});

Deno.test("randperm() equals torch.randperm for every split and cap size, their neighbours and edge sizes", async () => {
  assert.equal(fixture.seed, 42);
  const labels = fixture.perms.map((e) => e.label ?? "").join(",");
  for (
    const name of [
      "cola.validation",
      "rte.validation",
      "mrpc.validation",
      "stsb.validation",
      "boolq.validation",
      "cb.validation",
      "wic.validation",
      "wsc.fixed.validation",
      "multirc.validation",
      "qqp.train",
      "qnli.train",
      "sst2.train",
    ]
  ) {
    assert.ok(labels.includes(name), `the fixture lacks ${name}`);
  }
  for (const n of [0, 1, 2, 10, 1000]) {
    assert.ok(fixture.perms.some((e) => e.n === n), `the fixture lacks n=${n}`);
  }
  for (const e of fixture.perms) {
    const perm = randperm(e.n);
    await assertMatchesTorch(perm, e, "randperm");
    assertIsPermutation(perm);
  }
});

Deno.test("randperm() seeds like torch manual_seed: negative seeds wrap as uint64 and only the low 32 bits count", () => {
  for (const { seed, n, perm } of fixture.seeds) {
    const big = BigInt(seed);
    const got = Array.from(randperm(n, big));
    assert.deepEqual(got, perm, `seed ${seed}`);
    if (Number.isSafeInteger(Number(big)) && BigInt(Number(big)) === big) {
      assert.deepEqual(Array.from(randperm(n, Number(big))), perm, `seed ${seed} as a number`);
    }
  }
});

Deno.test("randperm() continues a reused Mt19937's stream the way a reused torch.Generator does", async () => {
  const gen = new Mt19937(42);
  for (const e of fixture.stream) await assertMatchesTorch(randperm(e.n, gen), e, "stream");
});

Deno.test("Mt19937 reproduces the reference MT19937 output stream across state regenerations", () => {
  const { seed, first, from620, from1240 } = fixture.mt19937;
  const mt = new Mt19937(seed);
  const raw = Array.from({ length: 1252 }, () => mt.nextUint32());
  assert.deepEqual(raw.slice(0, 8), first);
  assert.deepEqual(raw.slice(620, 632), from620);
  assert.deepEqual(raw.slice(1240, 1252), from1240);
  // The C++ standard's check: the 10000th output of a default-constructed std::mt19937.
  const std = new Mt19937();
  let x = 0;
  for (let i = 0; i < 10000; i++) x = std.nextUint32();
  assert.equal(x, 4123659995);
});

Deno.test("Mt19937.nextUint64() puts the first draw high and nextUint64Mod() equals it modulo m", () => {
  const a = new Mt19937(123);
  const b = new Mt19937(123);
  const c = new Mt19937(123);
  for (const m of [1, 2, 3, 1000, 99991, 214748364, 2147483647, 2147483648]) {
    for (let k = 0; k < 50; k++) {
      const hi = a.nextUint32();
      const lo = a.nextUint32();
      const full = b.nextUint64();
      assert.equal(full, (BigInt(hi) << 32n) | BigInt(lo));
      assert.equal(BigInt(c.nextUint64Mod(m)), full % BigInt(m), `m=${m}`);
    }
  }
});

Deno.test("randperm() rejects an n that is negative, fractional or above 2^31, quoting it", () => {
  assert.throws(() => randperm(-1), /n must be an integer in \[0, 2\^31\], got -1/);
  assert.throws(() => randperm(2.5), /got 2\.5/);
  assert.throws(() => randperm(NaN), /got NaN/);
  assert.throws(() => randperm(MAX_RANDPERM_N + 1), /got 2147483649/);
  assert.throws(() => new Mt19937(42).nextUint64Mod(0), /modulus .* got 0/);
});

Deno.test("seedLow32() accepts torch's seed range [-2^63, 2^64 - 1] and rejects the rest, quoting it", () => {
  assert.equal(seedLow32(42), 42);
  assert.equal(seedLow32(-1), 0xffffffff);
  assert.equal(seedLow32(2 ** 32 + 7), 7);
  assert.equal(seedLow32(-(2n ** 63n)), 0);
  assert.equal(seedLow32(2n ** 64n - 1n), 0xffffffff);
  assert.throws(() => seedLow32(2n ** 64n), /got 18446744073709551616n/);
  assert.throws(() => seedLow32(-(2n ** 63n) - 1n), /got -9223372036854775809n/);
  assert.throws(() => seedLow32(0.5), /safe integer .* got 0\.5/);
  assert.throws(() => randperm(3, 2 ** 60), /safe integer .* got 1152921504606847000/);
});

Deno.test({
  name: "randperm() switches to torch's 64-bit inside-out branch exactly at n = 2^32 / 20 " +
    "(set RANDPERM_HUGE=1; about 2 GB and two minutes)",
  ignore: !envFlag("RANDPERM_HUGE"),
  fn: async () => {
    assert.equal(fixture.threshold64, RANDPERM_64BIT_THRESHOLD);
    const huge = fixture.huge;
    assert.ok(huge && huge.length === 2, "the fixture lacks the huge entries (--huge)");
    for (const e of huge) await assertMatchesTorch(randperm(e.n), e, "randperm");
  },
});
