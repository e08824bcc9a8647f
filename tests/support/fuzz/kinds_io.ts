/**
 * Fuzz kinds of the files src/io reads: single safetensors files and sharded checkpoints.
 *
 * @module
 */

import { join } from "node:path";
import { openSafetensors, writeSafetensors } from "../../../src/io/safetensors.ts";
import {
  flipBytes,
  type FuzzCase,
  type FuzzKind,
  mixture,
  mutateJson,
  oneOf,
  pick,
  put,
  type Rng,
  truncate,
  WrongResult,
} from "./harness.ts";

/** A small valid file: every common dtype, an empty tensor, metadata. */
async function baseFile(): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir();
  try {
    const p = join(dir, "base.safetensors");
    await writeSafetensors(p, {
      "encoder.w": { shape: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => i / 3) },
      "half": { shape: [5], data: Float16Array.of(1, -2, 0.5, 65504, -0) },
      "bf": { dtype: "BF16", shape: [2, 2], data: Uint16Array.of(0x3f80, 0x4000, 0xbf80, 0) },
      "ids": { dtype: "I64", shape: [3], data: BigInt64Array.of(1n, -2n, 2n ** 40n) },
      "mask": { dtype: "U8", shape: [7], data: Uint8Array.of(1, 0, 1, 1, 0, 0, 1) },
      "empty": { shape: [0, 4], data: new Float32Array(0) },
      "f8": { dtype: "F8_E4M3", shape: [4], data: Uint8Array.of(0x38, 0x40, 0xb8, 0x7f) },
    }, { metadata: { format: "pt", note: "fuzz base" } });
    return await Deno.readFile(p);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function headerOf(bytes: Uint8Array): { n: number; text: string } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { n, text: new TextDecoder().decode(bytes.subarray(8, 8 + n)) };
}

/** A file from header text, data and, optionally, a header length other than the text's. */
function fileOf(text: string, data: Uint8Array, headerLen?: number): Uint8Array {
  const json = new TextEncoder().encode(text);
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + data.length).fill(0x20, 8, 8 + padded);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen ?? padded), true);
  out.set(json, 8);
  out.set(data, 8 + padded);
  return out;
}

/** Reads every tensor and checks it is the file's bytes at its offsets, covering the data. */
async function loadChecked(path: string): Promise<void> {
  using st = await openSafetensors(path);
  const files = new Map<string, Uint8Array>();
  for (const f of st.files) files.set(f, await Deno.readFile(f));
  let covered = 0;
  for (const name of st.names()) {
    const info = st.info(name);
    const raw = await st.readBytes(name);
    const file = files.get(info.file)!;
    const want = file.subarray(info.offset, info.offset + info.byteLength);
    if (raw.length !== want.length || raw.some((b, i) => b !== want[i])) {
      throw new WrongResult(`tensor ${name} is not the file's bytes at its offsets`);
    }
    if (["F32", "F16", "BF16", "F64", "F8_E4M3", "F8_E5M2", "F8_E8M0"].includes(info.dtype)) {
      let n = 0;
      for await (const c of st.readFloatChunks(name, { maxBytes: 8 })) n += c.data.length;
      if (n !== info.numel) throw new WrongResult(`tensor ${name}: ${n} of ${info.numel} elements`);
    } else {
      await st.read(name);
    }
    if (info.file === st.files[0]) covered += info.byteLength;
  }
  if (st.files.length === 1) {
    const bytes = files.get(st.files[0])!;
    const { n } = headerOf(bytes);
    if (covered !== bytes.length - 8 - n) {
      throw new WrongResult(`the tensors cover ${covered} of ${bytes.length - 8 - n} data bytes`);
    }
  }
}

export const safetensorsKind: FuzzKind = {
  async cases(rng: Rng, count: number): Promise<FuzzCase[]> {
    const base = await baseFile();
    const { n, text } = headerOf(base);
    const data = base.subarray(8 + n);
    const header = JSON.parse(text);
    const names = Object.keys(header).filter((k) => k !== "__metadata__");
    const focus = [
      ["__metadata__"],
      ...names.flatMap((k) => [[k, "data_offsets"], [k, "shape"], [k, "dtype"], [k]]),
    ];
    const file = (gen: string, bytes: Uint8Array): FuzzCase => ({
      gen,
      write: (dir) => put(dir, "model.safetensors", bytes),
    });
    return await mixture(rng, count, [
      [3, (r) => file("byte flip in the header", flipBytes(r, base, 3, 0, 8 + n))],
      [1, (r) => file("byte flip in the length", flipBytes(r, base, 1, 0, 8))],
      [1, (r) => file("byte flip in the data", flipBytes(r, base, 3, 8 + n))],
      [2, (r) => file("truncation or appended bytes", truncate(r, base))],
      [4, (r) => {
        const { json, label } = mutateJson(r, header, focus);
        const stale = r.next() < 0.2 ? n : undefined;
        return file(label, fileOf(JSON.stringify(json), data, stale));
      }],
      [1, (r) => {
        // A header length that leaves bytes between the header and the data, or cuts the JSON.
        const shift = oneOf(r, [-16, -8, -4, -1, 1, 4, 8]);
        return file(
          "a shifted header length",
          fileOf(text.trimEnd() + " ".repeat(8), data, n + shift),
        );
      }],
      [1, (r) => {
        // A float literal where an integer is expected.
        const t = oneOf(r, [
          text.replace(/"shape":\[(\d+)/, '"shape":[$1.0'),
          text.replace(/\[0,/, "[0e0,"),
        ]);
        return file("a float literal", fileOf(t, data));
      }],
      [1, (r) => {
        // Gaps: one tensor's offsets moved, the data grown to match.
        const h = structuredClone(header);
        const k = oneOf(r, names);
        const d = 1 + pick(r, 8);
        h[k].data_offsets = h[k].data_offsets.map((x: number) => x + d);
        const grown = new Uint8Array(data.length + d);
        grown.set(data);
        return file("a gap in the data", fileOf(JSON.stringify(h), grown));
      }],
    ]);
  },
  load: loadChecked,
};

/** A sharded checkpoint: two shards and an index. */
export const shardsKind: FuzzKind = {
  async cases(rng: Rng, count: number): Promise<FuzzCase[]> {
    const tensors = {
      a: { shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) },
      b: { shape: [4], data: Float32Array.of(7, 8, 9, 10) },
      c: { shape: [1], data: Float32Array.of(11) },
      "lm_head.weight": { shape: [2], data: Float32Array.of(12, 13) },
    };
    const tmp = await Deno.makeTempDir();
    await writeSafetensors(join(tmp, "s1.safetensors"), { a: tensors.a, b: tensors.b });
    await writeSafetensors(join(tmp, "s2.safetensors"), {
      c: tensors.c,
      "lm_head.weight": tensors["lm_head.weight"],
    });
    await writeSafetensors(join(tmp, "dup.safetensors"), { a: tensors.a, c: tensors.c });
    const s1 = await Deno.readFile(join(tmp, "s1.safetensors"));
    const s2 = await Deno.readFile(join(tmp, "s2.safetensors"));
    const dup = await Deno.readFile(join(tmp, "dup.safetensors"));
    await Deno.remove(tmp, { recursive: true });
    const index = {
      metadata: { total_size: 52 },
      weight_map: {
        a: "s1.safetensors",
        b: "s1.safetensors",
        c: "s2.safetensors",
        "lm_head.weight": "s2.safetensors",
      },
    };
    const focus = [["weight_map"], ["weight_map", "a"], ["weight_map", "lm_head.weight"]];
    const folder = (gen: string, idx: unknown, files: Record<string, Uint8Array>): FuzzCase => ({
      gen,
      async write(dir) {
        for (const [name, b] of Object.entries(files)) await put(dir, name, b);
        await put(
          dir,
          "model.safetensors.index.json",
          typeof idx === "string" ? idx : JSON.stringify(idx),
        );
        return dir;
      },
    });
    return await mixture(rng, count, [
      [4, (r) => {
        const { json, label } = mutateJson(r, index, focus);
        return folder(label, json, { "s1.safetensors": s1, "s2.safetensors": s2 });
      }],
      [1, (r) => {
        // The index forgets a tensor (transformers still loads it from its shard).
        const idx = structuredClone(index);
        delete (idx.weight_map as Record<string, string>)[oneOf(r, Object.keys(idx.weight_map))];
        return folder("the index omits a tensor", idx, {
          "s1.safetensors": s1,
          "s2.safetensors": s2,
        });
      }],
      [
        1,
        () =>
          folder("a tensor in two shards", {
            weight_map: { ...index.weight_map, a: "dup.safetensors" },
          }, {
            "s1.safetensors": s1,
            "s2.safetensors": s2,
            "dup.safetensors": dup,
          }),
      ],
      [1, () => folder("a shard missing", index, { "s1.safetensors": s1 })],
      [2, (r) =>
        folder("a shard with a flipped byte", index, {
          "s1.safetensors": flipBytes(r, s1, 2, 0, 120),
          "s2.safetensors": s2,
        })],
      [
        1,
        (r) =>
          folder("a truncated shard", index, {
            "s1.safetensors": s1,
            "s2.safetensors": truncate(r, s2),
          }),
      ],
      [1, (r) => {
        const text = JSON.stringify(index);
        return folder("a truncated index", text.slice(0, pick(r, text.length)), {
          "s1.safetensors": s1,
          "s2.safetensors": s2,
        });
      }],
    ]);
  },
  async load(path: string) {
    using st = await openSafetensors(path);
    const names = st.names();
    if (new Set(names).size !== names.length) throw new WrongResult("a tensor is listed twice");
    // Everything the opened shards hold is there, also what the index does not list.
    for (const f of st.files) {
      using shard = await openSafetensors(f);
      for (const name of shard.names()) {
        if (!st.has(name)) throw new WrongResult(`tensor ${name}, held by ${f}, is missing`);
      }
    }
    await loadChecked(path);
  },
};
