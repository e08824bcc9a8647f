/**
 * Fuzz kinds of the files src/data reads: parquet, JSONL/JSON/CSV/TSV tables, tokenizer.json,
 * the tokenized cache and task files.
 *
 * @module
 */

import { join } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import {
  readTokenizedSplits,
  tokenizeExamples,
  writeTokenizedSplits,
} from "../../../src/data/cache.ts";
import { readParquet, readTableLocated } from "../../../src/data/datasets.ts";
import {
  decodeParquet,
  ParquetProblem,
  readThriftStruct,
  type ThriftStruct,
} from "../../../src/data/parquet.ts";
import { loadTaskFile } from "../../../src/data/task_file.ts";
import { loadTokenizer, TokenizerError } from "../../../src/data/tokenizer.ts";
import { encodeThriftStruct, parquetFooter, withParquetFooter } from "../thrift.ts";
import { rewriteSafetensors } from "../safetensors_edit.ts";
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

const ROOT = new URL("../../../", import.meta.url).pathname;
const DATASETS = join(ROOT, "tests/fixtures/datasets");

// ---------------------------------------------------------------------------------------------
// Parquet

/** Every integer field of a struct tree, as [struct, field id] pairs. */
function intFields(s: ThriftStruct, out: [ThriftStruct, number][] = []): [ThriftStruct, number][] {
  for (const [id, f] of s) {
    if (typeof f.value === "number" || typeof f.value === "bigint") out.push([s, id]);
    else if (f.value instanceof Map) intFields(f.value, out);
    else if (Array.isArray(f.value)) {
      for (const v of f.value) if (v instanceof Map) intFields(v, out);
    }
  }
  return out;
}

/** Changes one field of a decoded struct tree: a nearby value, an extreme, or no field. */
function mutateStruct(rng: Rng, s: ThriftStruct): string {
  const fields = intFields(s);
  const [owner, id] = oneOf(rng, fields);
  const f = owner.get(id)!;
  const r = pick(rng, 4);
  if (r === 0) {
    owner.delete(id);
    return "delete a field";
  }
  const v = BigInt(f.value as number | bigint);
  const next = oneOf(rng, [v + 1n, v - 1n, -v, v * 1000n, 0n, 2n ** 31n - 1n, -1n]);
  f.value = f.type === 6 ? next : Number(BigInt.asIntN(32, next));
  return "change an integer";
}

/** Files to mutate: the GLUE-like fixtures (SNAPPY, ZSTD) and written ones with nulls and lists. */
async function parquetBases(): Promise<Uint8Array[]> {
  const written = new Uint8Array(parquetWriteBuffer({
    columnData: [
      { name: "sentence", data: ["a", null, "c", "dd", null, "f"], type: "STRING" },
      { name: "label", data: Int32Array.of(0, 1, 0, 1, 1, 0), type: "INT32" },
      { name: "score", data: [0.5, null, 1.5, 2, 3, null], type: "DOUBLE" },
    ],
    rowGroupSize: 4,
  }));
  return [
    await Deno.readFile(join(DATASETS, "rows_snappy.parquet")),
    await Deno.readFile(join(DATASETS, "rows_zstd.parquet")),
    written,
  ];
}

export const parquetKind: FuzzKind = {
  async cases(rng: Rng, count: number): Promise<FuzzCase[]> {
    const bases = await parquetBases();
    const file = (gen: string, bytes: Uint8Array, worker = false): FuzzCase => ({
      gen,
      write: (dir) => put(dir, worker ? "w.parquet" : "train.parquet", bytes),
    });
    return await mixture(rng, count, [
      [8, (r) => file("byte flip", flipBytes(r, oneOf(r, bases), 1))],
      [2, (r) => {
        const b = oneOf(r, bases);
        const { start } = parquetFooter(b);
        return file("byte flip in the footer", flipBytes(r, b, 2, start, b.length));
      }],
      [2, (r) => file("truncation or appended bytes", truncate(r, oneOf(r, bases)))],
      [3, (r) => {
        const b = oneOf(r, bases);
        const { struct, start } = parquetFooter(b);
        const label = mutateStruct(r, struct);
        return file(`footer: ${label}`, withParquetFooter(b, start, encodeThriftStruct(struct)));
      }],
      [3, (r) => {
        // A page header (the first of the file) with one field changed, the rest as it was.
        const b = oneOf(r, bases);
        const { struct, end } = readThriftStruct(b, 4, b.length);
        const label = mutateStruct(r, struct);
        const h = encodeThriftStruct(struct);
        const out = new Uint8Array(b.length - (end - 4) + h.length);
        out.set(b.subarray(0, 4));
        out.set(h, 4);
        out.set(b.subarray(end), 4 + h.length);
        return file(`page header: ${label}`, out);
      }],
      [1, (r) => file("through the worker", flipBytes(r, oneOf(r, bases), 1), true)],
    ]);
  },
  async load(path: string) {
    const bytes = await Deno.readFile(path);
    let rows: Record<string, unknown>[];
    if (path.endsWith("w.parquet")) {
      rows = await readParquet(path);
    } else {
      try {
        const d = await decodeParquet(bytes.slice().buffer);
        rows = d.rows!;
      } catch (e) {
        // readParquet names the file the same way.
        if (e instanceof ParquetProblem) throw new ParquetProblem(`${path}: ${e.message}`, e.row);
        throw e;
      }
    }
    const n = bytes.length;
    const len = new DataView(bytes.buffer).getUint32(n - 8, true);
    const numRows = Number(readThriftStruct(bytes, n - 8 - len, n - 8).struct.get(3)!.value);
    if (rows.length !== numRows) {
      throw new WrongResult(`${rows.length} rows, the footer says ${numRows}`);
    }
    for (const [i, row] of rows.entries()) {
      for (const [k, v] of Object.entries(row)) {
        if (v === undefined) throw new WrongResult(`row ${i + 1} has no value for ${k}`);
      }
    }
  },
};

// ---------------------------------------------------------------------------------------------
// Text tables

const ROWS = JSON.parse(await Deno.readTextFile(join(DATASETS, "rows.json"))) as Record<
  string,
  unknown
>[];

function csvOf(rows: Record<string, unknown>[], sep: string): string {
  const cols = Object.keys(rows[0]);
  const cell = (v: unknown) => {
    const s = String(v);
    return sep === "," && /[",\n]/.test(s)
      ? `"${s.replaceAll('"', '""')}"`
      : s.replace(/[\t\n]/g, " ");
  };
  return [cols.join(sep), ...rows.map((r) => cols.map((c) => cell(r[c])).join(sep))].join("\n") +
    "\n";
}

export const textKind: FuzzKind = {
  async cases(rng: Rng, count: number): Promise<FuzzCase[]> {
    const forms: [string, string][] = [
      ["train.jsonl", ROWS.map((r) => JSON.stringify(r)).join("\n") + "\n"],
      ["train.json", JSON.stringify(ROWS, null, 1)],
      ["train.csv", csvOf(ROWS, ",")],
      ["train.tsv", csvOf(ROWS, "\t")],
    ];
    const enc = new TextEncoder();
    const file = (gen: string, name: string, data: Uint8Array | string): FuzzCase => ({
      gen: `${name.split(".")[1]}: ${gen}`,
      write: (dir) => put(dir, name, data),
    });
    return await mixture(rng, count, [
      [3, (r) => {
        const [name, text] = oneOf(r, forms);
        return file("byte flip", name, flipBytes(r, enc.encode(text), 2));
      }],
      [2, (r) => {
        const [name, text] = oneOf(r, forms);
        return file("truncation or appended bytes", name, truncate(r, enc.encode(text)));
      }],
      [3, (r) => {
        // A row that lacks a column, holds another type, or is not an object.
        const { json, label } = mutateJson(r, ROWS);
        const rows = json as Record<string, unknown>[];
        const name = oneOf(r, ["train.jsonl", "train.json"]);
        const text = !Array.isArray(rows)
          ? JSON.stringify(rows)
          : name === "train.json"
          ? JSON.stringify(rows)
          : rows.map((x) => JSON.stringify(x)).join("\n");
        return file(label.replace(/^json: \d+/, "json: [i]"), name, text);
      }],
      [2, (r) => {
        // Lines of CSV/TSV with a field more or less, a stray quote, a repeated header.
        const [name, text] = oneOf(r, forms.slice(2));
        const lines = text.split("\n");
        const i = pick(r, lines.length);
        const sep = name.endsWith(".tsv") ? "\t" : ",";
        lines[i] = oneOf(r, [
          lines[i] + sep + "x",
          lines[i].split(sep).slice(1).join(sep),
          '"' + lines[i],
          lines[0],
        ]);
        return file("a malformed line", name, lines.join("\n"));
      }],
      [1, (r) => {
        const [name, text] = oneOf(r, forms);
        const b = enc.encode(text);
        b[pick(r, b.length)] = oneOf(r, [0xff, 0xc0, 0xed, 0x80]);
        return file("invalid UTF-8", name, b);
      }],
    ]);
  },
  async load(path: string) {
    const { rows, positions } = await readTableLocated(path, { columns: ["sentence", "label"] });
    if (positions.length !== rows.length) throw new WrongResult("a row without a position");
    for (const [i, row] of rows.entries()) {
      if (row === null || typeof row !== "object" || Array.isArray(row)) {
        throw new WrongResult(`row ${i} is not an object`);
      }
      if (row.sentence === undefined || row.label === undefined) {
        throw new WrongResult(`row ${i} lacks a required column`);
      }
    }
  },
};

// ---------------------------------------------------------------------------------------------
// tokenizer.json

const SAMPLES = ["Hello world", "émoji 👍 and ZWJ 👩‍👩‍👧", "a b c 123 !?", "", "  spaces  "];

export const tokenizerKind: FuzzKind = {
  async cases(rng: Rng, count: number): Promise<FuzzCase[]> {
    const bases: [string, unknown][] = [];
    for (const f of ["t5", "gpt2", "llama"]) {
      const text = await Deno.readTextFile(
        join(ROOT, `tests/fixtures/tokenizers/${f}/tokenizer.json`),
      );
      bases.push([f, JSON.parse(text)]);
    }
    const focus = [
      ["model"],
      ["model", "type"],
      ["model", "vocab"],
      ["model", "unk_id"],
      ["model", "unk_token"],
      ["model", "merges"],
      ["normalizer"],
      ["pre_tokenizer"],
      ["decoder"],
      ["post_processor"],
      ["added_tokens"],
    ];
    const file = (gen: string, data: string | Uint8Array): FuzzCase => ({
      gen,
      write: (dir) => put(dir, "tokenizer.json", data),
    });
    return await mixture(rng, count, [
      [6, (r) => {
        const [f, json] = oneOf(r, bases);
        const { json: out, label } = mutateJson(r, json, focus);
        return file(`${f} ${label}`, JSON.stringify(out));
      }],
      [1, (r) => {
        const [f, json] = r.next() < 0.5 ? bases[1] : oneOf(r, bases);
        return file(
          `${f} byte flip`,
          flipBytes(r, new TextEncoder().encode(JSON.stringify(json)), 2),
        );
      }],
      [1, (r) => {
        const [f, json] = oneOf(r, bases);
        const text = JSON.stringify(json);
        return file(`${f} truncation`, text.slice(0, pick(r, text.length)));
      }],
      [1, async (r) => {
        // tokenizer_config.json beside it, mutated.
        const f = oneOf(r, ["t5", "gpt2", "llama"]);
        const dir = join(ROOT, `tests/fixtures/tokenizers/${f}`);
        const config = JSON.parse(await Deno.readTextFile(join(dir, "tokenizer_config.json")));
        const { json, label } = mutateJson(r, config);
        const text = await Deno.readTextFile(join(dir, "tokenizer.json"));
        return {
          gen: `${f} tokenizer_config.json ${label}`,
          async write(out: string) {
            await put(out, "tokenizer_config.json", JSON.stringify(json));
            return await put(out, "tokenizer.json", text);
          },
        };
      }],
      [1, (r) => {
        // The T5 charsmap cut, flipped or emptied.
        const json = structuredClone(bases[0][1]) as {
          normalizer: { precompiled_charsmap: string };
        };
        const cm = json.normalizer.precompiled_charsmap;
        const b = Uint8Array.from(atob(cm), (c) => c.charCodeAt(0));
        const changed = r.next() < 0.5 ? b.slice(0, pick(r, b.length)) : flipBytes(r, b, 2, 0, 64);
        let bin = "";
        for (const c of changed) bin += String.fromCharCode(c);
        json.normalizer.precompiled_charsmap = btoa(bin);
        return file("t5 precompiled_charsmap", JSON.stringify(json));
      }],
    ]);
  },
  async load(path: string) {
    const tok = await loadTokenizer(path);
    for (const s of SAMPLES) {
      let ids: number[];
      try {
        ids = tok.encode(s, { maxLength: 64 });
      } catch (e) {
        if (e instanceof TokenizerError) continue; // an unknown token with no unk: as Rust
        throw e;
      }
      for (const id of ids) {
        if (!Number.isInteger(id) || id < 0 || id >= Math.max(tok.vocabSize, 1)) {
          throw new WrongResult(
            `encode(${JSON.stringify(s)}) gave id ${id} (vocabulary ${tok.vocabSize})`,
          );
        }
      }
      if (typeof tok.decode(ids) !== "string") throw new WrongResult("decode gave no string");
    }
  },
};

// ---------------------------------------------------------------------------------------------
// The tokenized cache

export const cacheKind: FuzzKind = {
  async cases(rng: Rng, count: number): Promise<FuzzCase[]> {
    const tok = await loadTokenizer(join(ROOT, "tests/fixtures/tokenizers/t5"));
    const ex = (n: number, p: string) =>
      Array.from(
        { length: n },
        (_, i) => ({ source: `${p} example ${i}`, target: i % 3 ? "yes" : "no" }),
      );
    const lengths = { sourceLength: 8, targetLength: 3 };
    const tmp = await Deno.makeTempDir();
    const base = join(tmp, "c.safetensors");
    await writeTokenizedSplits(base, {
      train: tokenizeExamples(tok, ex(12, "a"), lengths),
      validation: tokenizeExamples(tok, ex(4, "b"), lengths),
      test: tokenizeExamples(tok, ex(3, "c"), lengths),
    }, { key: "k" });
    const bytes = await Deno.readFile(base);
    await Deno.remove(tmp, { recursive: true });
    const splits = ["train", "validation", "test"];
    const file = (gen: string, edit: (path: string) => Promise<void>): FuzzCase => ({
      gen,
      async write(dir) {
        const p = await put(dir, "cache.safetensors", bytes);
        await edit(p);
        return p;
      },
    });
    return await mixture(rng, count, [
      [4, (r) => {
        const which = `${oneOf(r, splits)}.${
          oneOf(r, ["source", "target", "target_text"])
        }_offsets`;
        const at = r.next();
        const v = oneOf(r, [-1, 0, 1, 2, 7, 9, 1000, 2 ** 30, -(2 ** 31)]);
        const add = r.next() < 0.5;
        return file(`offsets: ${which.split(".")[1]}`, (p) =>
          rewriteSafetensors(p, (t) => {
            const o = t.get(which)!.data as Int32Array;
            const i = Math.floor(at * o.length);
            o[i] = add ? o[i] + v : v;
          }));
      }],
      [2, (r) => {
        const which = `${oneOf(r, splits)}.${oneOf(r, ["source", "target"])}_ids`;
        const v = oneOf(r, [-1, -100, 2 ** 31 - 1, 50_000]);
        const at = r.next();
        return file("ids", (p) =>
          rewriteSafetensors(p, (t) => {
            const ids = t.get(which)!.data as Int32Array;
            if (ids.length) ids[Math.floor(at * ids.length)] = v;
          }));
      }],
      [2, (r) => {
        const lengths = { train: [8, 3], validation: [8, 3], test: [8, 3] };
        const { json, label } = mutateJson(r, lengths);
        return file(`lengths ${label}`, (p) =>
          rewriteSafetensors(p, (_, m) => {
            m.lengths = JSON.stringify(json);
          }));
      }],
      [1, (r) => {
        const v = oneOf(r, ["", "{", "[]", "null", '{"train":"x"}']);
        return file(
          "lengths text",
          (p) => rewriteSafetensors(p, (_, m) => (m.lengths = v, undefined)),
        );
      }],
      [1, (r) => {
        const which = oneOf(r, [
          "train.source_ids",
          "test.target_text",
          "validation.target_offsets",
        ]);
        return file("a tensor missing or retyped", (p) =>
          rewriteSafetensors(p, (t) => {
            const x = t.get(which)!;
            if (r.next() < 0.5) t.delete(which);
            else t.set(which, { shape: x.shape, data: Float32Array.from(x.data as Int32Array) });
          }));
      }],
      [2, (r) => file("byte flip", async (p) => await Deno.writeFile(p, flipBytes(r, bytes, 2)))],
      [1, (r) => file("truncation", async (p) => await Deno.writeFile(p, truncate(r, bytes)))],
    ]);
  },
  async load(path: string) {
    const { splits } = await readTokenizedSplits(path);
    for (const [name, s] of Object.entries(splits)) {
      for (
        const [offsets, data, max] of [
          [s.sourceOffsets, s.sourceIds, s.sourceLength],
          [s.targetOffsets, s.targetIds, s.targetLength],
        ] as const
      ) {
        if (offsets.length !== s.size + 1 || offsets[0] !== 0 || offsets[s.size] !== data.length) {
          throw new WrongResult(`${name}: an index that does not span its data`);
        }
        for (let i = 0; i < s.size; i++) {
          const n = offsets[i + 1] - offsets[i];
          if (n < 0 || n > max) throw new WrongResult(`${name}: example ${i} has ${n} ids`);
        }
        if (data.some((id) => id < 0)) throw new WrongResult(`${name}: a negative id`);
      }
      if (s.targets.length !== s.size) throw new WrongResult(`${name}: targets`);
    }
  },
};

// ---------------------------------------------------------------------------------------------
// Task files

export const taskKind: FuzzKind = {
  async cases(rng: Rng, count: number): Promise<FuzzCase[]> {
    const base = JSON.parse(await Deno.readTextFile(join(ROOT, "tasks/default/task.json")));
    base.labels = ["yes", "no"];
    const focus = Object.keys(base).map((k) => [k]);
    return await mixture(rng, count, [
      [5, (r) => {
        const { json, label } = mutateJson(r, base, focus);
        return { gen: label, write: (dir) => put(dir, "task.json", JSON.stringify(json)) };
      }],
      [1, (r) => {
        const text = JSON.stringify(base);
        return {
          gen: "truncation",
          write: (dir) => put(dir, "task.json", text.slice(0, pick(r, text.length))),
        };
      }],
    ]);
  },
  async load(path: string) {
    const task = await loadTaskFile(path);
    if (typeof task.name !== "string" || !Array.isArray(task.columns)) {
      throw new WrongResult("a task without a name or columns");
    }
  },
};
