// Fixtures under tests/fixtures/safetensors/ come from tools/make_safetensors_fixtures.py (Python
// safetensors writes python.safetensors; Python reads our deno_written.safetensors back). This
// test never needs Python; to regenerate, follow the workflow in that script's docstring.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  openSafetensors,
  SafetensorsError,
  type SafetensorsReader,
  type TensorToWrite,
  writeSafetensors,
} from "../../src/io/safetensors.ts";
import { Rng } from "../numeric.ts";
import { withTempDir } from "../support/temp.ts";

const FIXTURES = new URL("../fixtures/safetensors/", import.meta.url);
const fixture = (name: string) => new URL(name, FIXTURES).pathname;
const UPDATE = Deno.args.includes("--update-fixtures");

interface PythonView {
  metadata: Record<string, string>;
  tensors: Record<string, { dtype: string; shape: number[]; values: (number | string)[] }>;
}

/** Decodes the fixture's float encoding ("nan", "inf", "-inf" as strings). */
function num(v: number | string): number {
  if (v === "nan") return NaN;
  if (v === "inf") return Infinity;
  if (v === "-inf") return -Infinity;
  return Number(v);
}

/** Element-wise equality with Object.is (so -0 ≠ 0 and NaN = NaN), naming the first mismatch. */
function assertSameValues(actual: ArrayLike<unknown>, expected: ArrayLike<unknown>, label: string) {
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) {
      assert.fail(`${label}[${i}]: got ${String(actual[i])}, expected ${String(expected[i])}`);
    }
  }
}

/** A file from a header (object or raw JSON text) and data bytes; header padded to 8 bytes. */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(), headerLen?: bigint) {
  const text = typeof header === "string" ? header : JSON.stringify(header);
  const json = new TextEncoder().encode(text);
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + data.length).fill(0x20, 8, 8 + padded);
  new DataView(out.buffer).setBigUint64(0, headerLen ?? BigInt(padded), true);
  out.set(json, 8);
  out.set(data, 8 + padded);
  return out;
}

async function rejectsWith(
  p: Promise<unknown>,
  ...needles: string[]
): Promise<SafetensorsError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof SafetensorsError, `expected SafetensorsError, got ${e}`);
    for (const n of needles) {
      assert.ok(e.message.includes(n), `message ${JSON.stringify(e.message)} lacks ${n}`);
    }
    return e;
  }
  assert.fail(`expected a SafetensorsError mentioning ${needles.join(", ")}`);
}

async function openRaw(dir: string, bytes: Uint8Array, name = "x.safetensors") {
  const p = join(dir, name);
  await Deno.writeFile(p, bytes);
  return { path: p, open: () => openSafetensors(p) };
}

// ---------------------------------------------------------------------------------------------
// Interop with Python safetensors

Deno.test("openSafetensors() reads every tensor of the Python-written fixture exactly", async () => {
  const expected: PythonView = JSON.parse(await Deno.readTextFile(fixture("python.expected.json")));
  using st = await openSafetensors(fixture("python.safetensors"));
  assert.deepEqual(st.metadata, expected.metadata);
  assert.deepEqual(st.names().toSorted(), Object.keys(expected.tensors).toSorted());
  for (const [name, want] of Object.entries(expected.tensors)) {
    const info = st.info(name);
    assert.equal(info.dtype, want.dtype, name);
    assert.deepEqual([...info.shape], want.shape, name);
    const t = await st.read(name);
    assert.equal(t.dtype, want.dtype);
    assert.deepEqual(t.shape, want.shape);
    if (["F32", "F16", "BF16", "F64"].includes(want.dtype) || want.dtype.startsWith("F8_")) {
      assert.ok(t.data instanceof Float32Array, `${name} converts to Float32Array`);
      assertSameValues(t.data, want.values.map((v) => Math.fround(num(v))), name);
      // f16 compute dtype rounds the same values to half precision.
      const h = await st.readFloat(name, { dtype: "f16" });
      assert.ok(h instanceof Float16Array);
      assertSameValues(h, Float16Array.from(want.values.map(num)), `${name} as f16`);
    } else if (want.dtype === "I64") {
      assert.ok(t.data instanceof BigInt64Array);
      assertSameValues(t.data, want.values.map((v) => BigInt(v)), name);
    } else {
      const ctor = {
        I32: Int32Array,
        I16: Int16Array,
        I8: Int8Array,
        U8: Uint8Array,
        BOOL: Uint8Array,
      }[want.dtype]!;
      assert.ok(t.data instanceof ctor, `${name} is a ${ctor.name}`);
      assertSameValues(t.data, want.values, name);
    }
  }
});

Deno.test("writeSafetensors() reproduces the Python-written fixture byte for byte", async () => {
  const original = await Deno.readFile(fixture("python.safetensors"));
  using st = await openSafetensors(fixture("python.safetensors"));
  // Hand the tensors over in reverse order: the writer sorts them the way Python does.
  const tensors: [string, TensorToWrite][] = [];
  for (const name of st.names().toReversed()) {
    const info = st.info(name);
    tensors.push([name, { dtype: info.dtype, shape: info.shape, data: await st.readBytes(name) }]);
  }
  await withTempDir(async (dir) => {
    const out = join(dir, "ours.safetensors");
    await writeSafetensors(out, tensors, { metadata: { format: "pt" } });
    const ours = await Deno.readFile(out);
    assert.equal(ours.length, original.length);
    const firstDiff = ours.findIndex((b, i) => b !== original[i]);
    assert.equal(firstDiff, -1, `bytes differ first at offset ${firstDiff}`);
  });
});

/** Edge cases our writer must get right; Python's reading of them is committed. */
function denoWrittenTensors(): Record<string, TensorToWrite> {
  return {
    "weight": { shape: [2, 3], data: Float32Array.from([1, -2.5, 0.1, -0, Infinity, NaN]) },
    "bf16": { dtype: "BF16", shape: [4], data: Uint16Array.from([0x3f80, 0xc049, 0x7f80, 1]) },
    "half": { shape: [2, 2], data: Float16Array.from([1, -2, 65504, 0.000061]) },
    "ids": { shape: [3], data: BigInt64Array.from([0n, -1n, 2n ** 62n]) },
    "scalar": { shape: [], data: Float32Array.from([3.5]) },
    "empty": { shape: [0, 4], data: new Float32Array(0) },
    "0": { shape: [1], data: Int32Array.from([7]) },
    "ünïcødé.名前": { shape: [3], data: Uint8Array.from([1, 2, 3]) },
    "mask": { dtype: "BOOL", shape: [2], data: Uint8Array.from([1, 0]) },
  };
}

Deno.test("Python reads what writeSafetensors() writes (committed, Python-verified fixture)", async () => {
  const tensors = denoWrittenTensors();
  const metadata = { format: "pt", note: "written by the Deno writer" };
  const committed = fixture("deno_written.safetensors");
  if (UPDATE) {
    await writeSafetensors(committed, tensors, { metadata });
    console.log(`updated ${committed}; now run tools/make_safetensors_fixtures.py --verify-deno`);
    return;
  }
  await withTempDir(async (dir) => {
    const out = join(dir, "now.safetensors");
    await writeSafetensors(out, tensors, { metadata });
    assert.deepEqual(await Deno.readFile(out), await Deno.readFile(committed));
  });
  const py: PythonView = JSON.parse(await Deno.readTextFile(fixture("deno_written.python.json")));
  assert.deepEqual(py.metadata, metadata);
  assert.deepEqual(Object.keys(py.tensors).toSorted(), Object.keys(tensors).toSorted());
  for (const [name, t] of Object.entries(tensors)) {
    const seen = py.tensors[name];
    assert.deepEqual(seen.shape, t.shape, name);
    const data = t.data as unknown as ArrayLike<number | bigint>;
    if (t.dtype === "BF16") {
      const f = new Float32Array(Uint32Array.from(t.data as Uint16Array, (x) => x << 16).buffer);
      assertSameValues(seen.values.map(num), f, name);
    } else if (data instanceof BigInt64Array) {
      assertSameValues(seen.values.map((v) => BigInt(v)), data, name);
    } else {
      assertSameValues(seen.values.map(num), Array.from(data as ArrayLike<number>), name);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Reading

Deno.test("openSafetensors() copies tensors at unaligned data offsets instead of viewing them", async () => {
  await withTempDir(async (dir) => {
    const f32 = Float32Array.from([1.5, -2, 3.25]);
    const data = new Uint8Array(3 + 12);
    data.set([7, 8, 9]);
    data.set(new Uint8Array(f32.buffer), 3);
    const header = {
      b: { dtype: "U8", shape: [3], data_offsets: [0, 3] },
      a: { dtype: "F32", shape: [3], data_offsets: [3, 15] },
    };
    const { open } = await openRaw(dir, rawFile(header, data));
    using st = await open();
    assert.deepEqual(st.names(), ["b", "a"]);
    assert.deepEqual(await st.readFloat("a"), f32);
    assert.deepEqual((await st.read("b")).data, Uint8Array.from([7, 8, 9]));
  });
});

Deno.test("openSafetensors() serves concurrent reads of one file correctly", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "many.safetensors");
    const rng = new Rng(7);
    const tensors: Record<string, TensorToWrite> = {};
    for (let i = 0; i < 20; i++) tensors[`t${i}`] = { shape: [100 + i], data: rng.normal(100 + i) };
    await writeSafetensors(p, tensors);
    using st = await openSafetensors(p);
    const got = await Promise.all(st.names().map((n) => st.readFloat(n)));
    st.names().forEach((n, i) => assert.deepEqual(got[i], tensors[n].data, n));
  });
});

Deno.test("openSafetensors() reads a tensor that starts beyond 4 GiB in a sparse file", async () => {
  await withTempDir(async (dir) => {
    const big = 4 * 2 ** 30 + 3; // odd size: the second tensor starts unaligned, past 2^32
    const tail = Float32Array.from([42, -1]);
    const header = rawFile({
      big: { dtype: "U8", shape: [big], data_offsets: [0, big] },
      tail: { dtype: "F32", shape: [2], data_offsets: [big, big + 8] },
    });
    const p = join(dir, "sparse.safetensors");
    using f = await Deno.open(p, { write: true, create: true });
    await f.write(header);
    await f.truncate(header.length + big);
    await f.seek(header.length + big, Deno.SeekMode.Start);
    await f.write(new Uint8Array(tail.buffer));
    using st = await openSafetensors(p);
    assert.equal(st.info("tail").offset, header.length + big);
    assert.deepEqual(await st.readFloat("tail"), tail);
  });
});

Deno.test("readFloat() converts F32, F16 and BF16 to f32 or f16; read() keeps integers", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "mix.safetensors");
    await writeSafetensors(p, {
      f32: { shape: [3], data: Float32Array.from([0.1, 1, -65536]) },
      f16: { shape: [3], data: Float16Array.from([0.5, -1, 2048]) },
      bf16: { dtype: "BF16", shape: [2], data: Uint16Array.from([0x4049, 0xbf80]) },
      u32: { shape: [2], data: Uint32Array.from([1, 2 ** 32 - 1]) },
    });
    using st = await openSafetensors(p);
    assert.deepEqual(await st.readFloat("bf16"), Float32Array.from([3.140625, -1]));
    assert.deepEqual(await st.readFloat("f16"), Float32Array.from([0.5, -1, 2048]));
    assert.deepEqual(
      await st.readFloat("f16", { dtype: "f16" }),
      Float16Array.from([0.5, -1, 2048]),
    );
    assert.deepEqual(
      await st.readFloat("f32", { dtype: "f16" }),
      Float16Array.from([0.1, 1, -65536]),
    );
    assert.deepEqual((await st.read("u32")).data, Uint32Array.from([1, 2 ** 32 - 1]));
    await rejectsWith(st.readFloat("u32"), "u32", "U32", "not a floating-point type");
  });
});

Deno.test("a closed reader refuses to read and names the tensor", async () => {
  const st = await openSafetensors(fixture("python.safetensors"));
  st.close();
  await rejectsWith(st.readBytes("f32.matrix"), "f32.matrix", "closed");
});

// ---------------------------------------------------------------------------------------------
// Errors name the file, the tensor and the bad value

Deno.test("openSafetensors() reports each kind of corruption with the file, tensor and value", async () => {
  await withTempDir(async (dir) => {
    const f32x2 = new Uint8Array(8);
    const cases: [string, Uint8Array, string[]][] = [
      ["short", Uint8Array.from([1, 2, 3]), ["3 bytes long", "truncated"]],
      ["beyond", rawFile({}, new Uint8Array(), 1000n), ["header length 1000", "end of the file"]],
      ["hugelen", rawFile({}, new Uint8Array(), 2n ** 64n - 1n), ["18446744073709551615"]],
      ["json", rawFile("{not json"), ["not valid JSON"]],
      ["array", rawFile("[1,2]"), ["must be a JSON object", "array"]],
      [
        "dtype",
        rawFile({ w: { dtype: "F33", shape: [2], data_offsets: [0, 8] } }, f32x2),
        ['tensor "w"', 'unknown dtype "F33"'],
      ],
      [
        "size",
        rawFile({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, f32x2),
        ['tensor "w"', "hold 8 bytes", "needs 12"],
      ],
      [
        "range",
        rawFile({ w: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, f32x2),
        ['tensor "w"', "[0, 16]", "beyond the end of the data region (8 bytes)"],
      ],
      [
        "overlap",
        rawFile({
          a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
          b: { dtype: "F32", shape: [1], data_offsets: [4, 8] },
        }, f32x2),
        ['"a"', '"b"', "overlap", "[4, 8]"],
      ],
      [
        "shape",
        rawFile({ w: { dtype: "F32", shape: [-2], data_offsets: [0, 8] } }, f32x2),
        ['tensor "w"', "shape [-2]"],
      ],
      [
        "meta",
        rawFile({ __metadata__: { epoch: 3 } }),
        ["__metadata__", '"epoch"', "3"],
      ],
    ];
    for (const [name, bytes, needles] of cases) {
      const { path, open } = await openRaw(dir, bytes, `${name}.safetensors`);
      const e = await rejectsWith(open(), path, ...needles);
      assert.equal(e.file, path);
    }
    const { open } = await openRaw(dir, rawFile({}), "small-cap.safetensors");
    (await open()).close();
    const capped = rawFile({ __metadata__: { pad: "x".repeat(100) } });
    const p = join(dir, "cap.safetensors");
    await Deno.writeFile(p, capped);
    await rejectsWith(openSafetensors(p, { maxHeaderBytes: 64 }), "exceeds the limit of 64");
    await rejectsWith(openSafetensors(join(dir, "nope.safetensors")), "nope.safetensors");
  });
});

Deno.test("info() of a missing tensor names it and lists some that exist", async () => {
  using st = await openSafetensors(fixture("python.safetensors"));
  assert.throws(
    () => st.info("encoder.block.0.weight"),
    (e: unknown) =>
      e instanceof SafetensorsError && e.tensor === "encoder.block.0.weight" &&
      e.message.includes("python.safetensors") && e.message.includes("no such tensor"),
  );
});

Deno.test("a file truncated after opening fails the read with a SafetensorsError", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "t.safetensors");
    await writeSafetensors(p, { w: { shape: [64], data: new Float32Array(64) } });
    using st = await openSafetensors(p);
    await Deno.truncate(p, 100);
    await rejectsWith(st.readBytes("w"), p, '"w"', "truncated");
  });
});

// ---------------------------------------------------------------------------------------------
// Sharded checkpoints

async function writeSharded(dir: string): Promise<Record<string, Float32Array>> {
  const rng = new Rng(3);
  const all = { a: rng.normal(6), b: rng.normal(4), c: rng.normal(5) };
  await writeSafetensors(join(dir, "model-00001-of-00002.safetensors"), {
    a: { shape: [2, 3], data: all.a },
    b: { shape: [4], data: all.b },
  }, { metadata: { format: "pt" } });
  await writeSafetensors(join(dir, "model-00002-of-00002.safetensors"), {
    c: { shape: [5], data: all.c },
  }, { metadata: { format: "pt", shard: "2" } });
  await Deno.writeTextFile(
    join(dir, "model.safetensors.index.json"),
    JSON.stringify({
      metadata: { total_size: 60 },
      weight_map: {
        a: "model-00001-of-00002.safetensors",
        b: "model-00001-of-00002.safetensors",
        c: "model-00002-of-00002.safetensors",
      },
    }),
  );
  return all;
}

Deno.test("a sharded checkpoint opens as one logical file from its folder or its index", async () => {
  await withTempDir(async (dir) => {
    const all = await writeSharded(dir);
    for (const path of [dir, join(dir, "model.safetensors.index.json")]) {
      using st = await openSafetensors(path);
      assert.deepEqual(st.names(), ["a", "b", "c"]);
      assert.equal(st.files.length, 2);
      assert.deepEqual(st.metadata, { format: "pt", shard: "2" });
      for (const [k, v] of Object.entries(all)) assert.deepEqual(await st.readFloat(k), v);
      assert.ok(st.info("c").file.endsWith("model-00002-of-00002.safetensors"));
    }
  });
});

Deno.test("shard names that escape the model folder are refused", async () => {
  await withTempDir(async (dir) => {
    const model = join(dir, "model");
    await Deno.mkdir(model);
    await writeSafetensors(join(dir, "outside.safetensors"), {
      w: { shape: [1], data: new Float32Array(1) },
    });
    await Deno.symlink(join(dir, "outside.safetensors"), join(model, "link.safetensors"));
    await Deno.symlink(dir, join(model, "up"));
    const index = join(model, "model.safetensors.index.json");
    for (
      const [shard, needle] of [
        ["../outside.safetensors", "'..'"],
        [join(dir, "outside.safetensors"), "absolute"],
        ["sub\\..\\..\\outside.safetensors", "backslash"],
        ["link.safetensors", "outside the model folder"],
        ["up/outside.safetensors", "outside the model folder"],
      ]
    ) {
      await Deno.writeTextFile(index, JSON.stringify({ weight_map: { w: shard } }));
      const e = await rejectsWith(openSafetensors(index), index, needle);
      assert.ok(e.message.includes(JSON.stringify(shard)), e.message);
    }
  });
});

Deno.test("shards symlinked into a Hugging Face cache blobs/ folder are accepted", async () => {
  await withTempDir(async (dir) => {
    const repo = join(dir, "models--org--tiny");
    const snap = join(repo, "snapshots", "0123456789abcdef0123456789abcdef01234567");
    await Deno.mkdir(join(repo, "blobs"), { recursive: true });
    await Deno.mkdir(snap, { recursive: true });
    await writeSafetensors(join(repo, "blobs", "deadbeef"), {
      w: { shape: [2], data: Float32Array.from([1, 2]) },
    });
    await Deno.symlink("../../blobs/deadbeef", join(snap, "model-1.safetensors"));
    await Deno.writeTextFile(
      join(snap, "model.safetensors.index.json"),
      JSON.stringify({ weight_map: { w: "model-1.safetensors" } }),
    );
    using st = await openSafetensors(snap);
    assert.deepEqual(await st.readFloat("w"), Float32Array.from([1, 2]));
  });
});

Deno.test("an index whose shard lacks a listed tensor, or that is malformed, is refused", async () => {
  await withTempDir(async (dir) => {
    await writeSharded(dir);
    const index = join(dir, "model.safetensors.index.json");
    await Deno.writeTextFile(
      index,
      JSON.stringify({ weight_map: { zz: "model-00002-of-00002.safetensors" } }),
    );
    await rejectsWith(openSafetensors(index), '"zz"', "model-00002-of-00002.safetensors");
    for (const bad of ["{", "[]", '{"weight_map":[]}', '{"weight_map":{"a":3}}']) {
      await Deno.writeTextFile(index, bad);
      await rejectsWith(openSafetensors(index), index);
    }
    await Deno.writeTextFile(index, JSON.stringify({ weight_map: { a: "missing.safetensors" } }));
    await rejectsWith(openSafetensors(index), "missing.safetensors", "cannot be opened");
  });
});

// ---------------------------------------------------------------------------------------------
// Writing

Deno.test("writeSafetensors() is atomic: a failed write leaves the old file and no temp file", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "adapter.safetensors");
    await writeSafetensors(p, { w: { shape: [2], data: Float32Array.from([1, 2]) } });
    const before = await Deno.readFile(p);
    await rejectsWith(
      writeSafetensors(p, { w: { shape: [3], data: Float32Array.from([1, 2]) } }),
      p,
      '"w"',
      "needs 12 bytes",
    );
    await rejectsWith(
      writeSafetensors(join(dir, "no-such-dir", "x.safetensors"), {}),
      "writing failed",
    );
    assert.deepEqual(await Deno.readFile(p), before);
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names, ["adapter.safetensors"]);
  });
});

Deno.test("writeSafetensors() rejects reserved names, unknown dtypes and bad shapes", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "x.safetensors");
    const data = new Float32Array(2);
    await rejectsWith(writeSafetensors(p, { __metadata__: { shape: [2], data } }), "reserved");
    await rejectsWith(
      writeSafetensors(p, { w: { dtype: "F33" as "F32", shape: [2], data } }),
      '"F33"',
    );
    await rejectsWith(writeSafetensors(p, { w: { shape: [-2], data } }), "shape [-2]");
    await rejectsWith(
      writeSafetensors(p, { w: { shape: [2], data: new DataView(data.buffer) } }),
      "no dtype given",
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Fuzzing: corrupted files only ever raise SafetensorsError, and never allocate much

function fuzzBase(): Promise<Uint8Array> {
  return (async () => {
    const dir = await Deno.makeTempDir();
    try {
      const p = join(dir, "base.safetensors");
      const rng = new Rng(11);
      await writeSafetensors(p, {
        "enc.w": { shape: [3, 4], data: rng.normal(12) },
        "enc.b": { dtype: "BF16", shape: [5], data: Uint16Array.from([1, 2, 3, 4, 5]) },
        "ids": { shape: [2], data: BigInt64Array.from([1n, 2n]) },
        "mask": { dtype: "BOOL", shape: [3], data: Uint8Array.from([1, 0, 1]) },
        "half": { shape: [2, 2], data: Float16Array.from([1, 2, 3, 4]) },
        "fp8": { dtype: "F8_E4M3", shape: [3], data: Uint8Array.from([1, 2, 3]) },
      }, { metadata: { format: "pt" } });
      return await Deno.readFile(p);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  })();
}

const WEIRD_VALUES: unknown[] = [
  null,
  -1,
  1.5,
  2 ** 53,
  2 ** 53 + 2,
  1e308,
  "F32",
  "",
  [],
  [-1],
  [1.5],
  ["3"],
  [0],
  [2 ** 31, 2 ** 31],
  [2 ** 40, 2 ** 40, 0],
  [1e300, 1e301],
  [0, 2 ** 53],
  [2 ** 53 - 1, 2 ** 53 + 1],
  [0, 1, 2],
  [[3]],
  {},
  { a: 1 },
  "__proto__",
  true,
];

function mutateJson(rng: Rng, header: Record<string, unknown>): Record<string, unknown> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng.next() * xs.length)];
  const h = structuredClone(header) as Record<string, Record<string, unknown>>;
  const names = Object.keys(h);
  const name = names.length ? pick(names) : "fresh";
  const old: unknown = h[name];
  const entry = typeof old === "object" && old !== null && !Array.isArray(old)
    ? old as Record<string, unknown>
    : (h[name] = {});
  switch (Math.floor(rng.next() * 9)) {
    case 0: // replace a field with a weird value
      entry[pick(["dtype", "shape", "data_offsets"])] = pick(WEIRD_VALUES);
      break;
    case 1: // a random dtype from the valid list or garbage
      entry.dtype = pick(["F32", "F16", "BF16", "I64", "U8", "F4", "F6_E2M3", "C64", "F33", "f32"]);
      break;
    case 2: { // shift offsets
      const o = entry.data_offsets as number[];
      if (Array.isArray(o)) {
        const d = Math.floor(rng.next() * 17) - 8;
        entry.data_offsets = rng.next() < 0.5 ? [o[0] + d, o[1] + d] : [o[0], o[1] + d];
      }
      break;
    }
    case 3: // copy another tensor's offsets (overlap)
      entry.data_offsets = (h[pick(names)] as Record<string, unknown>)?.data_offsets;
      break;
    case 4: // delete a field or the entry
      if (rng.next() < 0.5) delete entry[pick(["dtype", "shape", "data_offsets"])];
      else delete h[name];
      break;
    case 5: // metadata mischief
      (h as Record<string, unknown>).__metadata__ = pick([
        null,
        5,
        [],
        { a: 1 },
        { a: null },
        "str",
        JSON.parse('{"__proto__":"x"}'),
        {},
      ]);
      break;
    case 6: // a new tensor anywhere
      Object.defineProperty(h, pick(["new", "__proto__", "0", "constructor"]), {
        value: {
          dtype: pick(["F32", "U8", "I64"]),
          shape: [Math.floor(rng.next() * 5)],
          data_offsets: [Math.floor(rng.next() * 80), Math.floor(rng.next() * 120)],
        },
        enumerable: true,
        writable: true,
        configurable: true,
      });
      break;
    case 7: // reshape
      entry.shape = [Math.floor(rng.next() * 8), Math.floor(rng.next() * 3)];
      break;
    default: // swap begin/end
      if (Array.isArray(entry.data_offsets)) {
        entry.data_offsets = [...(entry.data_offsets as number[])].reverse();
      }
  }
  return h;
}

function mutate(rng: Rng, base: Uint8Array): Uint8Array {
  const n = Number(new DataView(base.buffer).getBigUint64(0, true));
  const headerText = new TextDecoder().decode(base.subarray(8, 8 + n));
  const data = base.subarray(8 + n);
  const r = (k: number) => Math.floor(rng.next() * k);
  switch (r(10)) {
    case 0: { // flip bytes anywhere
      const b = base.slice();
      for (let i = 0, k = 1 + r(4); i < k; i++) b[r(b.length)] ^= 1 << r(8);
      return b;
    }
    case 1: { // flip bytes in the header
      const b = base.slice();
      for (let i = 0, k = 1 + r(4); i < k; i++) b[8 + r(n)] = r(256);
      return b;
    }
    case 2: // truncate
      return base.slice(0, r(base.length));
    case 3: { // weird header lengths
      const b = base.slice();
      const len = [
        0n,
        1n,
        7n,
        BigInt(base.length - 7),
        BigInt(base.length),
        2n ** 32n,
        2n ** 53n + 3n,
        2n ** 63n,
        2n ** 64n - 1n,
        BigInt(n + r(17) - 8),
        BigInt(Math.floor(rng.next() * 2 ** 40)),
      ][r(11)];
      new DataView(b.buffer).setBigUint64(0, len < 0n ? 0n : len, true);
      return b;
    }
    case 4:
    case 5:
    case 6: { // JSON-level mutations, optionally keeping the stale length
      let h = JSON.parse(headerText);
      for (let i = 0, k = 1 + r(3); i < k; i++) h = mutateJson(rng, h);
      return rawFile(h, data, rng.next() < 0.2 ? BigInt(n) : undefined);
    }
    case 7: { // insert or delete characters in the JSON text
      const pos = r(headerText.length);
      const text = rng.next() < 0.5
        ? headerText.slice(0, pos) + '{}[],:"0-9e'.charAt(r(11)) + headerText.slice(pos)
        : headerText.slice(0, pos) + headerText.slice(pos + 1 + r(5));
      return rawFile(text, data);
    }
    case 8: { // whole-header replacements
      const texts = [
        "",
        "null",
        "[]",
        "123",
        '"s"',
        "{}",
        "[".repeat(100_000) + "]".repeat(100_000),
        '{"a":' + "[".repeat(50_000) + "]".repeat(50_000) + "}",
        '{"a":{"dtype":"F32"}}',
        '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"U8","shape":[1],' +
        '"data_offsets":[0,1]}}',
      ];
      return rawFile(texts[r(texts.length)], data);
    }
    default: { // invalid UTF-8 or trailing garbage
      if (rng.next() < 0.5) {
        const b = base.slice();
        b[8 + r(n)] = 0xff;
        return b;
      }
      const extra = new Uint8Array(r(64)).map(() => r(256));
      const b = new Uint8Array(base.length + extra.length);
      b.set(base);
      b.set(extra, base.length);
      return b;
    }
  }
}

async function readEverything(st: SafetensorsReader): Promise<void> {
  for (const name of st.names()) {
    await st.readBytes(name);
    await st.read(name);
    await st.read(name, { dtype: "f16" });
  }
}

Deno.test("800 corrupted files only ever raise SafetensorsError and never allocate much", async () => {
  const base = await fuzzBase();
  const rng = new Rng(20251127);
  let parsed = 0, refused = 0;
  const external0 = Deno.memoryUsage().external;
  let maxExternal = 0;
  await withTempDir(async (dir) => {
    const p = join(dir, "fuzz.safetensors");
    for (let i = 0; i < 800; i++) {
      const bytes = mutate(rng, base);
      await Deno.writeFile(p, bytes);
      try {
        using st = await openSafetensors(p);
        await readEverything(st);
        parsed++;
      } catch (e) {
        if (!(e instanceof SafetensorsError)) {
          const head = new TextDecoder().decode(bytes.subarray(0, 300));
          assert.fail(`case ${i} threw ${e} instead of a SafetensorsError; file starts ${head}`);
        }
        refused++;
      }
      maxExternal = Math.max(maxExternal, Deno.memoryUsage().external - external0);
    }
  });
  assert.ok(parsed > 10 && refused > 400, `parsed ${parsed}, refused ${refused}: want a mix`);
  assert.ok(maxExternal < 64 * 2 ** 20, `external memory grew by ${maxExternal} bytes`);
});
