import assert from "node:assert/strict";
import { join } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import {
  decodeTargets,
  prepareTask,
  readTokenizedSplits,
  type TokenizedSplit,
  tokenizeExamples,
  writeTokenizedSplits,
} from "../../src/data/cache.ts";
import { DatasetError } from "../../src/data/datasets.ts";
import { customTask, getTask, resolveTaskData } from "../../src/data/tasks.ts";
import { writeSafetensors } from "../../src/io/safetensors.ts";
import { loadTokenizer } from "../../src/data/tokenizer.ts";
import { startMockHub } from "../support/mock_hub.ts";
import { withTempDir } from "../support/temp.ts";

const TOK = new URL("../fixtures/tokenizers/", import.meta.url).pathname;
const t5 = await loadTokenizer(join(TOK, "t5"));

function ids(s: TokenizedSplit, i: number, which: "source" | "target"): number[] {
  const [a, o] = which === "source"
    ? [s.sourceIds, s.sourceOffsets]
    : [s.targetIds, s.targetOffsets];
  return Array.from(a.subarray(o[i], o[i + 1]));
}

function assertSameSplit(a: TokenizedSplit, b: TokenizedSplit) {
  assert.equal(a.size, b.size);
  assert.equal(a.sourceLength, b.sourceLength);
  assert.equal(a.targetLength, b.targetLength);
  assert.deepEqual(a.sourceIds, b.sourceIds);
  assert.deepEqual(a.sourceOffsets, b.sourceOffsets);
  assert.deepEqual(a.targetIds, b.targetIds);
  assert.deepEqual(a.targetOffsets, b.targetOffsets);
  assert.deepEqual(a.targets, b.targets);
}

Deno.test("tokenizeExamples() truncates sources to S and targets to T, both still ending with </s>", () => {
  const long = "word ".repeat(400);
  const s = tokenizeExamples(t5, [
    { source: "sentence: short", target: "1" },
    { source: long, target: "a rather long free-form answer" },
  ], { sourceLength: 16, targetLength: 3 });
  assert.equal(s.size, 2);
  assert.deepEqual(ids(s, 0, "source"), t5.encode("sentence: short"));
  const src1 = ids(s, 1, "source");
  assert.equal(src1.length, 16);
  assert.equal(src1[15], 1);
  assert.deepEqual(ids(s, 0, "target"), t5.encode("1"));
  const tgt1 = ids(s, 1, "target");
  assert.equal(tgt1.length, 3);
  assert.equal(tgt1[2], 1);
  assert.deepEqual(s.targets, ["1", "a rather long free-form answer"]);
  // Scoring decodes the (possibly truncated) label ids, as the authors do.
  const decoded = decodeTargets(s, t5);
  assert.equal(decoded[0], "1");
  assert.equal(decoded[1], t5.decode(t5.encode("a rather long free-form answer").slice(0, 2)));
  assert.equal(s.sourceOffsets[2], s.sourceIds.length);
});

Deno.test("tokenized splits round-trip through the safetensors cache file, unicode targets and empty splits included", async () => {
  await withTempDir(async (dir) => {
    const a = tokenizeExamples(t5, [
      { source: "x", target: "é😀" },
      { source: "y z", target: "" },
    ], { sourceLength: 8, targetLength: 4 });
    const empty = tokenizeExamples(t5, [], { sourceLength: 8, targetLength: 4 });
    const p = join(dir, "c.safetensors");
    await writeTokenizedSplits(p, { train: a, test: empty }, { key: "k" });
    const { splits, metadata } = await readTokenizedSplits(p);
    assert.equal(metadata.key, "k");
    assertSameSplit(splits.train, a);
    assertSameSplit(splits.test, empty);
    // No temporary file is left behind (written to a temp name and renamed).
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["c.safetensors"]);
  });
});

Deno.test("readTokenizedSplits() rejects a safetensors file of another kind with a DatasetError", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "weights.safetensors");
    await writeSafetensors(p, { w: { shape: [1], data: new Float32Array(1) } });
    await assert.rejects(readTokenizedSplits(p), (e: Error) => {
      assert.ok(e instanceof DatasetError);
      assert.equal(e.file, p);
      assert.match(e.message, /not a tokenized-dataset file \(format null\)/);
      return true;
    });
  });
});

function writeRows(path: string, n: number, prefix: string) {
  return Deno.writeTextFile(
    path,
    Array.from({ length: n }, (_, i) => JSON.stringify({ text: `${prefix} ${i}`, label: i % 2 }))
      .join("\n") + "\n",
  );
}

Deno.test("prepareTask() tokenizes once; a second run loads the cache file without reading the data", async () => {
  await withTempDir(async (dir) => {
    const train = join(dir, "train.jsonl");
    await writeRows(train, 50, "review number");
    const task = customTask({
      train,
      source: "review: {text}",
      target: "label",
      labels: ["0", "1"],
    });
    const opts = { tokenizedCacheDir: join(dir, "cache") };
    const first = await prepareTask(task, t5, opts);
    assert.equal(first.fromCache, false);
    assert.equal(first.train.size + first.validation.size + first.test.size, 50);
    assert.equal(first.sourceLength, 256);
    assert.equal(first.targetLength, t5.maxEncodedLength(["0", "1"]));
    assert.ok(first.cacheFile && (await Deno.stat(first.cacheFile)).isFile);

    const messages: string[] = [];
    const second = await prepareTask(task, t5, { ...opts, onMessage: (m) => messages.push(m) });
    assert.equal(second.fromCache, true);
    assert.equal(second.key, first.key);
    assert.ok(messages.some((m) => m.includes("from the cache")));
    assert.ok(!messages.some((m) => m.includes("reading")), "the data was not read");
    for (const s of ["train", "validation", "test"] as const) assertSameSplit(second[s], first[s]);
  });
});

Deno.test("the cache key changes with the data, the template, the tokenizer, the lengths and the seed", async () => {
  await withTempDir(async (dir) => {
    const train = join(dir, "train.jsonl");
    await writeRows(train, 30, "a");
    const opts = { tokenizedCacheDir: join(dir, "cache") };
    const task = customTask({ train, source: "review: {text}", target: "label" });
    const base = await prepareTask(task, t5, opts);
    const keys = new Set([base.key]);
    const add = async (p: Promise<{ key: string; fromCache: boolean }>) => {
      const r = await p;
      assert.equal(r.fromCache, false);
      keys.add(r.key);
    };
    await add(
      prepareTask(customTask({ train, source: "text: {text}", target: "label" }), t5, opts),
    );
    await add(prepareTask(task, await loadTokenizer(join(TOK, "llama")), opts));
    await add(prepareTask(task, t5, { ...opts, sourceLength: 64 }));
    await add(prepareTask(task, t5, { ...opts, seed: 7 }));
    await writeRows(train, 31, "b");
    await add(prepareTask(task, t5, opts));
    assert.equal(keys.size, 6);
  });
});

Deno.test("an unreadable cache file is rebuilt, and refresh: true rebuilds on request", async () => {
  await withTempDir(async (dir) => {
    const train = join(dir, "train.jsonl");
    await writeRows(train, 20, "x");
    const task = customTask({ train, source: "{text}", target: "label" });
    const opts = { tokenizedCacheDir: join(dir, "cache") };
    const first = await prepareTask(task, t5, opts);
    await Deno.writeTextFile(first.cacheFile!, "garbage");
    const warnings: string[] = [];
    const again = await prepareTask(task, t5, { ...opts, onWarning: (m) => warnings.push(m) });
    assert.equal(again.fromCache, false);
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0],
      /^custom: rebuilding the tokenized cache .*: the file is 7 bytes long, too short/,
    );
    assertSameSplit(again.train, first.train);
    assert.equal((await prepareTask(task, t5, opts)).fromCache, true);
    assert.equal((await prepareTask(task, t5, { ...opts, refresh: true })).fromCache, false);
    assert.equal(
      (await prepareTask(task, t5, { ...opts, tokenizedCacheDir: false })).cacheFile,
      undefined,
    );
  });
});

Deno.test("a Hub task is prepared from the mock Hub, then offline from both caches with no request", async () => {
  await withTempDir(async (dir) => {
    const rows = (n: number, p: string) =>
      new Uint8Array(parquetWriteBuffer({
        columnData: [
          { name: "sentence1", data: Array.from({ length: n }, (_, i) => `${p} ${i}`) },
          { name: "sentence2", data: Array.from({ length: n }, () => "h") },
          { name: "label", data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i % 2)) },
          { name: "idx", data: Int32Array.from({ length: n }, (_, i) => i) },
        ],
      }));
    await using hub = startMockHub({
      repos: [{
        id: "nyu-mll/glue",
        type: "dataset",
        files: {
          "rte/train-00000-of-00001.parquet": rows(12, "t"),
          "rte/validation-00000-of-00001.parquet": rows(10, "v"),
          "rte/test-00000-of-00001.parquet": rows(3, "x"),
        },
      }],
    });
    const env = { HF_HUB_CACHE: join(dir, "hub"), HF_ENDPOINT: hub.url };
    const opts = { env, tokenizedCacheDir: join(dir, "tok") };
    const first = await prepareTask(getTask("rte"), t5, opts);
    assert.equal(first.fromCache, false);
    assert.deepEqual([first.train.size, first.validation.size, first.test.size], [12, 5, 5]);
    assert.deepEqual(first.validation.targets, ["0", "0", "1", "0", "0"]); // v2 v6 v1 v8 v4
    hub.clear();
    const offline = await prepareTask(getTask("rte"), t5, {
      ...opts,
      env: { ...env, HF_HUB_OFFLINE: "1" },
    });
    assert.equal(offline.fromCache, true);
    assert.equal(hub.requests.length, 0);
    assertSameSplit(offline.test, first.test);
  });
});

Deno.test("a same-size edit with the modification time put back is not a stale cache hit (content hashes)", async () => {
  await withTempDir(async (dir) => {
    const train = join(dir, "train.jsonl");
    await writeRows(train, 30, "a");
    const { mtime } = await Deno.stat(train);
    const task = customTask({ train, source: "review: {text}", target: "label" });
    const opts = { tokenizedCacheDir: join(dir, "cache") };
    const first = await prepareTask(task, t5, opts);
    // Same size, other contents, the same mtime (as `cp -p`, `rsync -t` or a checkout can leave).
    await writeRows(train, 30, "b");
    await Deno.utime(train, mtime!, mtime!);
    const st = await Deno.stat(train);
    assert.equal(st.mtime?.getTime(), mtime?.getTime());
    const second = await prepareTask(task, t5, opts);
    assert.equal(second.fromCache, false, "the edit is seen");
    assert.notEqual(second.key, first.key);
    assert.ok(second.train.targets.length > 0);
    const text = (s: TokenizedSplit, i: number) => t5.decode(ids(s, i, "source"));
    assert.match(text(second.train, 0), /^review: b /);
    // The same contents in a fresh file (new mtime) hit the cache written for them.
    await writeRows(train, 30, "b");
    assert.equal((await prepareTask(task, t5, opts)).fromCache, true);
  });
});

Deno.test("hashing a 67k-row data file for the cache key takes well under a second", async () => {
  await withTempDir(async (dir) => {
    const train = join(dir, "train.jsonl");
    const n = 67_349; // SST-2's train split
    await Deno.writeTextFile(
      train,
      Array.from({ length: n }, (_, i) =>
        JSON.stringify({
          sentence: `it 's a charming and often affecting journey number ${i} . `,
          label: i % 2,
        })).join("\n"),
    );
    const size = (await Deno.stat(train)).size;
    const task = customTask({ train, source: "sentence: {sentence}", target: "label" });
    const t0 = performance.now();
    const data = await resolveTaskData(task);
    const ms = performance.now() - t0;
    assert.match(data.identity, /[0-9a-f]{64}/);
    assert.ok(ms < 1000, `hashing ${size} bytes took ${ms.toFixed(0)} ms`);
    console.log(`sha256 of a ${n}-row, ${(size / 1e6).toFixed(1)} MB file: ${ms.toFixed(0)} ms`);
  });
});

Deno.test("custom tasks without labels get T = 20 (generation_max_length), never sized by the test split", async () => {
  await withTempDir(async (dir) => {
    const write = async (name: string, targets: string[]) => {
      const p = join(dir, name);
      await Deno.writeTextFile(
        p,
        targets.map((t, i) => JSON.stringify({ q: `question ${i}`, a: t })).join("\n") + "\n",
      );
      return p;
    };
    const short = Array.from({ length: 8 }, (_, i) => `answer ${i}`);
    const train = await write("train.jsonl", short);
    const validation = await write("dev.jsonl", short);
    const long = "a very long answer that only the test split holds ".repeat(6);
    const test = await write("test.jsonl", [...short.slice(0, 7), long]);
    assert.ok(t5.encode(long).length > 40);
    const base = { train, validation, test, source: "q: {q}", target: "a" };
    const opts = { tokenizedCacheDir: join(dir, "cache") };
    const data = await prepareTask(customTask(base), t5, opts);
    assert.equal(data.targetLength, 20);
    assert.equal(data.test.targetLength, 20);
    // The long test target is truncated to T, keeping its </s>.
    const lastTest = ids(data.test, 7, "target");
    assert.equal(lastTest.length, 20);
    assert.equal(lastTest[19], 1);
    // Changing only the test file's targets leaves T alone.
    await write("test.jsonl", short);
    assert.equal((await prepareTask(customTask(base), t5, opts)).targetLength, 20);
    // Explicit lengths still win: the task's maxTargetLength, then the option.
    const fixed = await prepareTask(customTask({ ...base, maxTargetLength: 6 }), t5, opts);
    assert.equal(fixed.targetLength, 6);
    const opt = await prepareTask(customTask(base), t5, { ...opts, targetLength: 48 });
    assert.equal(opt.targetLength, 48);
  });
});
