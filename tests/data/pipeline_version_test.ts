/**
 * Guards of the tokenized-dataset cache key: DATA_PIPELINE_VERSION must change whenever the
 * pipeline's outputs do, and the key must cover it and the tokenizer library's version.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import {
  DATA_PIPELINE_VERSION,
  prepareTask,
  readTokenizedSplits,
  tokenizeExamples,
} from "../../src/data/cache.ts";
import { readTable } from "../../src/data/datasets.ts";
import { randperm } from "../../src/data/randperm.ts";
import { splitIndices } from "../../src/data/splits.ts";
import {
  customTask,
  GENERATION_MAX_LENGTH,
  getTask,
  loadTaskExamples,
  maxTargetLength,
  STSB_LABELS,
  TASK_NAMES,
} from "../../src/data/tasks.ts";
import { loadTokenizer, TOKENIZERS_LIBRARY_VERSION } from "../../src/data/tokenizer.ts";

/**
 * The DATA_PIPELINE_VERSION these outputs belong to, and their digest. When the digest test
 * fails, bump DATA_PIPELINE_VERSION (src/data/cache.ts) and record the new pair here.
 */
const RECORDED = {
  version: 1,
  digest: "d0f6248da35af35680ff2d9f855f895c972760ef09729fcbabc39039223adb30",
};

const DATASETS = new URL("../fixtures/datasets/", import.meta.url).pathname;
const TOKENIZERS = new URL("../fixtures/tokenizers/", import.meta.url).pathname;

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

async function withTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "pipeline_version_test_" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Custom-task splits of every file combination (train only, + validation, + test, all). */
function customSplits(): Promise<unknown> {
  return withTemp(async (dir) => {
    const write = async (name: string, n: number) => {
      const p = join(dir, name);
      await Deno.writeTextFile(
        p,
        Array.from({ length: n }, (_, i) => JSON.stringify({ text: `${name} ${i}`, label: i % 3 }))
          .join("\n"),
      );
      return p;
    };
    const train = await write("train.jsonl", 40);
    const validation = await write("dev.jsonl", 11);
    const test = await write("test.jsonl", 5);
    const base = { train, source: "review: {text}", target: "label" };
    const out: Record<string, unknown> = {};
    for (
      const [name, files] of Object.entries({
        trainOnly: {},
        withValidation: { validation },
        withTest: { test },
        all: { validation, test },
      })
    ) {
      const ex = await loadTaskExamples(customTask({ ...base, ...files }));
      out[name] = [ex.train, ex.validation, ex.test].map((s) => s.map((e) => e.source));
    }
    return out;
  });
}

/**
 * What the pipeline makes of the committed fixtures: every built-in task's source/target
 * strings (tests/fixtures/datasets/task_formats.json), the STS-B labels, custom templates, the
 * readers' rows, the split rules, the target-length rule, and the ids of the tokenizer fixtures
 * (tests/fixtures/tokenizers) on their test texts, whole and truncated.
 */
async function pipelineOutputs(): Promise<unknown> {
  const formats = JSON.parse(await Deno.readTextFile(join(DATASETS, "task_formats.json"))) as {
    tasks: Record<string, { row: Record<string, unknown> }[]>;
  };
  const texts = (JSON.parse(await Deno.readTextFile(join(TOKENIZERS, "expected.json"))) as {
    texts: string[];
  }).texts;
  const rows = await readTable(join(DATASETS, "rows_snappy.parquet"));
  const rowsZstd = await readTable(join(DATASETS, "rows_zstd.parquet"));
  const custom = customTask({
    train: "x.jsonl",
    source: "s: {sentence} i: {idx} sc: {score}",
    target: "{label}",
  });
  const tokenizers: Record<string, unknown> = {};
  for (const name of ["t5", "gpt2", "llama"]) {
    const tok = await loadTokenizer(join(TOKENIZERS, name));
    const split = tokenizeExamples(tok, texts.map((t) => ({ source: t, target: t })), {
      sourceLength: 8,
      targetLength: 3,
    });
    tokenizers[name] = {
      ids: texts.map((t) => tok.encode(t)),
      truncated: [Array.from(split.sourceIds), Array.from(split.targetIds)],
      targetLengths: TASK_NAMES.map((n) =>
        maxTargetLength(getTask(n), (t) => tok.encode(t).length)
      ),
    };
  }
  const sizes = { train: 1010, validation: 11, validation_matched: 7, validation_mismatched: 6 };
  const splits = (["small", "large", "mnli"] as const).map((scheme) =>
    [{}, { train: 5, validation: 3, test: 2 }].map((maxSamples) => {
      const sel = splitIndices(scheme, sizes, { maxSamples });
      return (["train", "validation", "test"] as const).map((s) => [
        sel[s].source,
        Array.from(sel[s].indices),
      ]);
    })
  );
  return {
    formats: Object.fromEntries(
      TASK_NAMES.map((n) => [
        n,
        formats.tasks[n].map(({ row }) => {
          const ex = getTask(n).format(row);
          return [ex.source, ex.target];
        }),
      ]),
    ),
    stsbLabels: STSB_LABELS,
    rows: [rows, rowsZstd],
    custom: [
      ...rows,
      { sentence: "lists and structs", idx: [1, "a", null], score: { x: 0.1 }, label: true },
    ].map((r) => custom.format(r)),
    customSplits: await customSplits(),
    splits,
    randperm: [10, 1000].map((n) => Array.from(randperm(n))),
    generationMaxLength: GENERATION_MAX_LENGTH,
    customTargetLength: maxTargetLength(custom, () => 1),
    tokenizers,
  };
}

Deno.test("DATA_PIPELINE_VERSION is bumped whenever the pipeline's outputs on the fixtures change", async () => {
  const digest = sha256(JSON.stringify(await pipelineOutputs()));
  const v = DATA_PIPELINE_VERSION;
  if (v !== RECORDED.version) {
    assert.fail(
      `DATA_PIPELINE_VERSION is ${v}, but tests/data/pipeline_version_test.ts records version ` +
        `${RECORDED.version}: set RECORDED to { version: ${v}, digest: "${digest}" }.`,
    );
  }
  assert.equal(
    digest,
    RECORDED.digest,
    "The data pipeline's outputs changed (formatting, splitting or tokenization) while " +
      `DATA_PIPELINE_VERSION is still ${v}, so tokenized caches written before would be hit ` +
      `and serve stale ids. Bump DATA_PIPELINE_VERSION in src/data/cache.ts to ${v + 1} and ` +
      `update the digest: set RECORDED in tests/data/pipeline_version_test.ts to ` +
      `{ version: ${v + 1}, digest: "${digest}" }.`,
  );
});

Deno.test("TOKENIZERS_LIBRARY_VERSION is the @huggingface/tokenizers version deno.json pins and loads", async () => {
  const denoJson = JSON.parse(
    await Deno.readTextFile(new URL("../../deno.json", import.meta.url)),
  ) as { imports: Record<string, string> };
  assert.equal(
    denoJson.imports["@huggingface/tokenizers"],
    `npm:@huggingface/tokenizers@${TOKENIZERS_LIBRARY_VERSION}`,
    "update TOKENIZERS_LIBRARY_VERSION in src/data/tokenizer.ts with deno.json",
  );
  const resolved = import.meta.resolve("@huggingface/tokenizers");
  assert.match(
    resolved,
    new RegExp(`tokenizers[@/]${TOKENIZERS_LIBRARY_VERSION.replaceAll(".", "\\.")}/`),
  );
});

Deno.test("the tokenized cache key covers DATA_PIPELINE_VERSION and the tokenizer library's version", async () => {
  await withTemp(async (dir) => {
    const train = join(dir, "train.jsonl");
    await Deno.writeTextFile(
      train,
      Array.from({ length: 20 }, (_, i) => JSON.stringify({ text: `t${i}`, label: i % 2 }))
        .join("\n"),
    );
    const t5 = await loadTokenizer(join(TOKENIZERS, "t5"));
    const task = customTask({ train, source: "{text}", target: "label" });
    const r = await prepareTask(task, t5, { tokenizedCacheDir: join(dir, "cache") });
    const { metadata } = await readTokenizedSplits(r.cacheFile!);
    assert.equal(metadata.key, r.key);
    // The key is the sha256 of key_input, which names both versions.
    assert.equal(sha256(metadata.key_input), r.key);
    const input = JSON.parse(metadata.key_input);
    assert.equal(input.pipeline, DATA_PIPELINE_VERSION);
    assert.equal(input.tokenizersLibrary, TOKENIZERS_LIBRARY_VERSION);
    assert.equal(input.tokenizer, t5.hash);
    assert.equal(input.fingerprint, task.fingerprint);
    assert.equal(input.targetLength, GENERATION_MAX_LENGTH);
  });
});
