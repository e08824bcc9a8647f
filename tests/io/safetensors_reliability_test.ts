// What Python `safetensors` refuses, refused here too; non-regular files; what the shards hold;
// tensors streamed in bounded pieces. The expected verdicts of the first test were checked against
// Python safetensors 0.7 (safe_open + get_tensor on the same bytes).
import assert from "node:assert/strict";
import { join } from "node:path";
import { openSafetensors, SafetensorsError, writeSafetensors } from "../../src/io/safetensors.ts";
import { Rng } from "../numeric.ts";
import { makeFifo, runSnippet } from "../support/subprocess.ts";
import { withTempDir } from "../support/temp.ts";

/** A file from raw header text (not padded), data bytes and, optionally, a wrong header length. */
function file(headerText: string, data: Uint8Array, headerLen?: number): Uint8Array {
  const json = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen ?? json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const A = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';

/** [case, header text, data length, header length, Python's verdict ("ok" or a needle)] */
const PYTHON_VERDICTS: [string, string, number, number | undefined, string][] = [
  ["exact", A, 8, undefined, "ok"],
  ["one trailing byte", A, 9, undefined, "incomplete metadata, file not fully covered"],
  [
    "a header length that leaves the padding uncovered",
    A + "    ",
    8,
    A.length,
    "incomplete metadata, file not fully covered",
  ],
  ["padding inside the header length", A + "    ", 8, undefined, "ok"],
  ["a leading space", " " + A, 8, undefined, "ok"],
  ["a tab and a newline after the JSON", A + "\t\n", 8, undefined, "ok"],
  [
    "a gap before the first tensor",
    '{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}',
    12,
    undefined,
    "invalid offset",
  ],
  [
    "a gap between tensors",
    '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' +
    '"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}',
    12,
    undefined,
    "invalid offset",
  ],
  ["an empty file", "{}", 0, undefined, "ok"],
  ["an empty header with data", "{}", 1, undefined, "incomplete metadata"],
  [
    "an empty tensor between two",
    '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' +
    '"z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},' +
    '"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
    8,
    undefined,
    "ok",
  ],
  [
    "an empty tensor inside another",
    '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' +
    '"z":{"dtype":"F32","shape":[0],"data_offsets":[2,2]},' +
    '"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
    8,
    undefined,
    "overlap",
  ],
  [
    "an empty tensor past the end",
    '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' +
    '"z":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}}',
    4,
    undefined,
    "beyond the end of the data region",
  ],
  [
    "a float in the shape",
    '{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}',
    8,
    undefined,
    "must be an array of non-negative integers",
  ],
  [
    "a float in data_offsets",
    '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8e0]}}',
    8,
    undefined,
    "must be two non-negative integers",
  ],
  ["a NUL after the JSON", A + "\0", 8, undefined, "not valid JSON"],
  [
    "a metadata value that is not a string",
    '{"__metadata__":{"x":1},' + A.slice(1),
    8,
    undefined,
    "must be a map of strings",
  ],
  ["a null __metadata__", '{"__metadata__":null,' + A.slice(1), 8, undefined, "ok"],
  ["a header that is an array", "[]", 0, undefined, "must be a JSON object"],
];

Deno.test("files whose header and data leave bytes uncovered are refused, as Python safetensors refuses them", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "x.safetensors");
    for (const [name, header, dataLen, headerLen, verdict] of PYTHON_VERDICTS) {
      await Deno.writeFile(p, file(header, new Uint8Array(dataLen), headerLen));
      try {
        using st = await openSafetensors(p);
        for (const n of st.names()) await st.readBytes(n);
        assert.equal(verdict, "ok", `${name}: accepted, but Python refuses it (${verdict})`);
      } catch (e) {
        assert.ok(e instanceof SafetensorsError, `${name}: ${e}`);
        assert.notEqual(verdict, "ok", `${name}: refused (${e.message}), but Python accepts it`);
        assert.ok(e.message.includes(verdict), `${name}: ${e.message} lacks ${verdict}`);
        assert.ok(e.message.startsWith(`${p}: `), e.message);
      }
    }
  });
});

Deno.test("a header length that shifts the data region is refused instead of reading every tensor shifted", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "model.safetensors");
    const data = new Uint8Array(Float32Array.of(1, 2).buffer);
    // The JSON ends in padding spaces: a length 8 short still parses, and used to shift the data.
    await Deno.writeFile(p, file(A + " ".repeat(8), data, A.length));
    await assert.rejects(
      openSafetensors(p),
      /file not fully covered: the tensors cover 8 of the data region's 16 bytes/,
    );
  });
});

Deno.test("a named pipe or device as model.safetensors, a shard or an index is refused without blocking (in a child)", async () => {
  await withTempDir(async (dir) => {
    const pipe = join(dir, "pipe");
    if (!await makeFifo(pipe)) return;
    const model = join(dir, "model");
    const sharded = join(dir, "sharded");
    const index = join(dir, "index");
    for (const d of [model, sharded, index]) await Deno.mkdir(d);
    await Deno.symlink(pipe, join(model, "model.safetensors"));
    await makeFifo(join(sharded, "model-1.safetensors"));
    await Deno.writeTextFile(
      join(sharded, "model.safetensors.index.json"),
      JSON.stringify({ weight_map: { w: "model-1.safetensors" } }),
    );
    await Deno.symlink(pipe, join(index, "model.safetensors.index.json"));
    const paths = [model, sharded, index, pipe, "/dev/zero"];
    const r = await runSnippet(
      `import { openSafetensors } from "@root/src/io/safetensors.ts";
       for (const p of ${JSON.stringify(paths)}) {
         try { await openSafetensors(p); console.log("opened"); }
         catch (e) { console.log(e.name + ": " + e.message); }
       }`,
      20_000,
    );
    assert.ok(!r.timedOut, `blocked: ${r.stdout}`);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, paths.length, r.stdout + r.stderr);
    for (const line of lines.slice(0, 4)) {
      assert.match(line, /^SafetensorsError: .* is a named pipe \(FIFO\), not a regular file$/);
    }
    assert.match(lines[4], /^SafetensorsError: \/dev\/zero: is a character device/);
  });
});

async function writeShards(dir: string, index: Record<string, string>) {
  await writeSafetensors(join(dir, "s1.safetensors"), {
    "shared.weight": { shape: [2], data: Float32Array.of(1, 2) },
  });
  await writeSafetensors(join(dir, "s2.safetensors"), {
    "lm_head.weight": { shape: [2], data: Float32Array.of(3, 4) },
    "other": { shape: [1], data: Float32Array.of(5) },
  });
  await Deno.writeTextFile(
    join(dir, "model.safetensors.index.json"),
    JSON.stringify({ weight_map: index }),
  );
}

Deno.test("a sharded checkpoint holds what its shards hold: a tensor the index omits is still read", async () => {
  await withTempDir(async (dir) => {
    await writeShards(dir, { "shared.weight": "s1.safetensors", "other": "s2.safetensors" });
    using st = await openSafetensors(dir);
    assert.deepEqual(st.names(), ["shared.weight", "other", "lm_head.weight"]);
    assert.deepEqual(await st.readFloat("lm_head.weight"), Float32Array.of(3, 4));
  });
});

Deno.test("shards that hold one tensor twice, or an index that puts a tensor in the wrong shard, are refused", async () => {
  await withTempDir(async (dir) => {
    await writeShards(dir, { "shared.weight": "s2.safetensors", "other": "s2.safetensors" });
    await assert.rejects(
      openSafetensors(dir),
      /tensor "shared.weight": the index puts it in "s2.safetensors", but that shard has no such tensor/,
    );
    await writeShards(dir, {
      "shared.weight": "s2.safetensors",
      "lm_head.weight": "s1.safetensors",
    });
    await assert.rejects(
      openSafetensors(dir),
      /tensor "shared.weight": the index puts it in "s2.safetensors", but shard "s1.safetensors" holds it/,
    );
    await writeSafetensors(join(dir, "s3.safetensors"), {
      "other": { shape: [1], data: Float32Array.of(6) },
    });
    await writeShards(dir, {
      "shared.weight": "s1.safetensors",
      "x": "s3.safetensors",
      "y": "s2.safetensors",
    });
    await assert.rejects(
      openSafetensors(dir),
      (e) =>
        e instanceof SafetensorsError &&
        /shards "s3.safetensors" and "s2.safetensors" both hold it|shards "s2.safetensors" and "s3.safetensors" both hold it/
          .test(e.message),
    );
  });
});

Deno.test("readFloatChunks() streams a tensor in pieces of at most maxBytes that add up to readFloat()", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "x.safetensors");
    const rng = new Rng(5);
    const w = rng.normal(1000);
    const bf16 = new Uint16Array(new Uint32Array(w.buffer).map((x) => x >>> 16));
    await writeSafetensors(p, {
      f32: { shape: [10, 100], data: w },
      bf16: { dtype: "BF16", shape: [1000], data: bf16 },
    });
    using st = await openSafetensors(p);
    for (const name of ["f32", "bf16"]) {
      const whole = await st.readFloat(name);
      const joined = new Float32Array(1000);
      let pieces = 0;
      for await (const { offset, data } of st.readFloatChunks(name, { maxBytes: 300 })) {
        assert.ok(data.byteLength <= (name === "f32" ? 300 : 600), `${data.byteLength}`);
        joined.set(data, offset);
        pieces++;
      }
      assert.deepEqual(joined, whole);
      assert.ok(pieces > 3);
    }
  });
});

Deno.test("a 1 TiB tensor in a sparse file is refused by name when read whole, and streams in pieces", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "huge.safetensors");
    const n = 2 ** 38; // 2^38 F32 elements: 1 TiB
    const header = new TextEncoder().encode(
      JSON.stringify({ huge: { dtype: "F32", shape: [n], data_offsets: [0, n * 4] } }),
    );
    const head = new Uint8Array(8 + header.length);
    new DataView(head.buffer).setBigUint64(0, BigInt(header.length), true);
    head.set(header, 8);
    using f = await Deno.open(p, { write: true, create: true });
    await f.write(head);
    try {
      await f.truncate(head.length + n * 4);
    } catch {
      return; // a file system without 1 TiB sparse files
    }
    using st = await openSafetensors(p);
    await assert.rejects(
      st.readFloat("huge"),
      (e) =>
        e instanceof SafetensorsError && e.file === p && e.tensor === "huge" &&
        /1099511627776 bytes \(F32, shape \[274877906944\]\) do not fit in host memory/.test(
          e.message,
        ),
    );
    for await (const { offset, data } of st.readFloatChunks("huge", { maxBytes: 1 << 20 })) {
      assert.equal(offset, 0);
      assert.equal(data.length, 1 << 18);
      break;
    }
  });
});
