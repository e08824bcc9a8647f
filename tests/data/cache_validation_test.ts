// The tokenized cache is validated as a whole (every offset, the lengths metadata, the ids and
// the target text) and a bad one is rebuilt with one warning line that says why.
import assert from "node:assert/strict";
import { join } from "node:path";
import { prepareTask, readTokenizedSplits } from "../../src/data/cache.ts";
import { DatasetError } from "../../src/data/datasets.ts";
import { customTask } from "../../src/data/tasks.ts";
import { loadTokenizer } from "../../src/data/tokenizer.ts";
import type { TensorToWrite } from "../../src/io/safetensors.ts";
import { rewriteSafetensors } from "../support/safetensors_edit.ts";
import { withTempDir } from "../support/temp.ts";

const t5 = await loadTokenizer(new URL("../fixtures/tokenizers/t5", import.meta.url).pathname);

const i32 = (t: TensorToWrite) => t.data as Int32Array;

/** [case, change, the reason the warning must give] */
const CORRUPTIONS: [
  string,
  (t: Map<string, TensorToWrite>, m: Record<string, string>) => void,
  RegExp,
][] = [
  ["decreasing offsets", (t) => {
    const o = i32(t.get("train.source_offsets")!);
    o[2] = o[1] - 1;
  }, /split "train": the source index decreases at example 1/],
  ["a negative offset", (t) => {
    i32(t.get("train.target_offsets")!)[1] = -4;
  }, /split "train": the target index decreases at example 0 \(0 then -4\)/],
  ["an offset past the data", (t) => {
    const o = i32(t.get("validation.source_offsets")!);
    o[o.length - 1] += 1;
  }, /split "validation": the source index ends at \d+, but the data holds \d+/],
  ["a first offset other than 0", (t) => {
    i32(t.get("test.target_text_offsets")!)[0] = 1;
  }, /split "test": the target text index starts at 1 instead of 0/],
  ["a source longer than the source length", (t) => {
    const o = i32(t.get("train.source_offsets")!);
    o.fill(o[6], 1, 6);
  }, /split "train": the source index gives example 0 \d+ ids, more than the length limit 16/],
  ["lengths that are not JSON", (_, m) => {
    m.lengths = "{";
  }, /its metadata "lengths" is not JSON/],
  ["lengths of the wrong shape", (_, m) => {
    m.lengths = JSON.stringify({ train: [16], validation: [16, 4], test: [16, 4] });
  }, /its metadata "lengths" for split "train" must be two positive integers, got \[16\]/],
  ["lengths other than the key's", (_, m) => {
    m.lengths = JSON.stringify({ train: [16, 5], validation: [16, 4], test: [16, 4] });
  }, /its train split has lengths 16\/5, not 16\/4/],
  ["a split missing", (_, m) => {
    m.lengths = JSON.stringify({ train: [16, 4], validation: [16, 4] });
  }, /it has no test split/],
  ["an id outside the vocabulary", (t) => {
    i32(t.get("train.target_ids")!)[0] = 1_000_000;
  }, /its train split has id 1000000, outside the vocabulary \(\d+\)/],
  ["a negative id", (t) => {
    i32(t.get("test.source_ids")!)[0] = -5;
  }, /split "test": source id -5 at 0 is negative/],
  ["target text that is not UTF-8", (t) => {
    (t.get("train.target_text")!.data as Uint8Array)[0] = 0xff;
  }, /split "train": target 0 is not valid UTF-8/],
  ["offsets of another dtype", (t) => {
    const o = i32(t.get("train.source_offsets")!);
    t.set("train.source_offsets", { shape: [o.length], data: Float32Array.from(o) });
  }, /train\.source_offsets must be a 1-D I32 tensor, got F32/],
  ["a tensor missing", (t) => {
    t.delete("validation.target_ids");
  }, /it has no tensor "validation\.target_ids"/],
];

Deno.test("every kind of bad cache index is rebuilt with one warning line that says why", async () => {
  await withTempDir(async (dir) => {
    const train = join(dir, "train.jsonl");
    await Deno.writeTextFile(
      train,
      Array.from({ length: 30 }, (_, i) => JSON.stringify({ text: `review ${i}`, label: i % 2 }))
        .join("\n"),
    );
    const task = customTask({ train, source: "{text}", target: "label" });
    const opts = { tokenizedCacheDir: join(dir, "cache"), sourceLength: 16, targetLength: 4 };
    const fresh = await prepareTask(task, t5, opts);
    const file = fresh.cacheFile!;
    const good = await Deno.readFile(file);
    for (const [name, change, why] of CORRUPTIONS) {
      await Deno.writeFile(file, good);
      await rewriteSafetensors(file, change);
      const warnings: string[] = [];
      const got = await prepareTask(task, t5, { ...opts, onWarning: (m) => warnings.push(m) });
      assert.equal(got.fromCache, false, name);
      assert.equal(warnings.length, 1, `${name}: ${warnings}`);
      assert.ok(!warnings[0].includes("\n"), name);
      assert.match(
        warnings[0],
        new RegExp(`^custom: rebuilding the tokenized cache ${file}: `),
        name,
      );
      assert.match(warnings[0], why, `${name}: ${warnings[0]}`);
      for (const s of ["train", "validation", "test"] as const) {
        assert.deepEqual(got[s].sourceIds, fresh[s].sourceIds, `${name}: ${s}`);
        assert.deepEqual(got[s].targets, fresh[s].targets, `${name}: ${s}`);
      }
      const again = await prepareTask(task, t5, { ...opts, onWarning: (m) => warnings.push(m) });
      assert.equal(again.fromCache, true, `${name}: the rebuilt cache is used`);
      assert.equal(warnings.length, 1);
    }
    await Deno.writeFile(file, good);
    await rewriteSafetensors(file, (t) => i32(t.get("train.source_offsets")!)[4] = 2 ** 30);
    await assert.rejects(
      readTokenizedSplits(file),
      (e) => e instanceof DatasetError && e.file === file,
    );
  });
});
