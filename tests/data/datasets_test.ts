import assert from "node:assert/strict";
import { join } from "node:path";
import { parquetReadObjects } from "hyparquet";
import { parquetWriteBuffer } from "hyparquet-writer";
import {
  DatasetError,
  downloadHubSplits,
  loadHubSplits,
  readCsv,
  readJson,
  readJsonl,
  readParquet,
  readTable,
  splitPatterns,
} from "../../src/data/datasets.ts";
import { HubError } from "../../src/io/hub.ts";
import { startMockHub } from "../support/mock_hub.ts";
import { withTempDir } from "../support/temp.ts";

const FIXTURES = new URL("../fixtures/datasets/", import.meta.url).pathname;
const ROWS = JSON.parse(await Deno.readTextFile(join(FIXTURES, "rows.json"))) as Record<
  string,
  unknown
>[];

/** Asserts `p` rejects with a DatasetError whose message contains every needle. */
async function rejectsData(p: Promise<unknown>, ...needles: (string | RegExp)[]) {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof DatasetError, `expected a DatasetError, got ${e}`);
    for (const n of needles) {
      if (typeof n === "string") assert.ok(e.message.includes(n), `${e.message} lacks ${n}`);
      else assert.match(e.message, n);
    }
    return e;
  }
  assert.fail("expected a DatasetError");
}

/** A small GLUE-like parquet file (SNAPPY) written with hyparquet-writer. */
function glueParquet(sentences: string[], labels: number[], offset = 0): Uint8Array {
  return new Uint8Array(parquetWriteBuffer({
    columnData: [
      { name: "sentence", data: sentences, type: "STRING" },
      { name: "label", data: BigInt64Array.from(labels.map(BigInt)), type: "INT64" },
      { name: "idx", data: Int32Array.from(sentences.map((_, i) => i + offset)), type: "INT32" },
    ],
  }));
}

// ---------------------------------------------------------------------------------------------
// Parquet

for (const codec of ["snappy", "zstd"]) {
  Deno.test(`readParquet() reads ${codec.toUpperCase()} pages across row groups, INT64 as numbers`, async () => {
    const rows = await readParquet(join(FIXTURES, `rows_${codec}.parquet`));
    assert.equal(rows.length, 23);
    assert.deepEqual(rows, ROWS);
    assert.equal(typeof rows[3].label, "number"); // 2^40 + 3, a BigInt in hyparquet
    assert.equal(rows[3].label, 2 ** 40 + 3);
  });
}

Deno.test("ZSTD pages need hyparquet-compressors (hyparquet alone cannot read them)", async () => {
  const bytes = await Deno.readFile(join(FIXTURES, "rows_zstd.parquet"));
  await assert.rejects(parquetReadObjects({ file: bytes.buffer }), /ZSTD/);
});

Deno.test("readParquet() decodes only the requested columns and names the missing ones", async () => {
  const path = join(FIXTURES, "rows_snappy.parquet");
  const rows = await readParquet(path, { columns: ["label", "sentence"] });
  assert.deepEqual(Object.keys(rows[0]).sort(), ["label", "sentence"]);
  const e = await rejectsData(
    readParquet(path, { columns: ["sentence", "premise"] }),
    'has no column "premise"',
    '"sentence", "label", "idx", "score"',
  );
  assert.equal(e.file, path);
});

Deno.test("readParquet() turns INT64 beyond 2^53 into decimal strings instead of losing digits", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "big.parquet");
    await Deno.writeFile(
      p,
      new Uint8Array(parquetWriteBuffer({
        columnData: [{ name: "id", data: BigInt64Array.of(2n ** 60n + 1n, -5n), type: "INT64" }],
      })),
    );
    assert.deepEqual(await readParquet(p), [{ id: "1152921504606846977" }, { id: -5 }]);
  });
});

Deno.test("readParquet() names the file when it is not parquet or is truncated", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "train.parquet");
    await Deno.writeTextFile(p, "sentence,label\nhello,1\n");
    await rejectsData(readParquet(p), p, "not a readable parquet file");
    const good = await Deno.readFile(join(FIXTURES, "rows_snappy.parquet"));
    await Deno.writeFile(p, good.subarray(0, good.length - 40));
    await rejectsData(readParquet(p), p);
    await rejectsData(readParquet(join(dir, "missing.parquet")), "missing.parquet does not exist");
  });
});

// ---------------------------------------------------------------------------------------------
// JSONL, JSON

Deno.test("readJsonl() reads one object per line and skips blank lines", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "train.jsonl");
    await Deno.writeTextFile(
      p,
      '{"question": "why?", "answer": "because"}\n\n{"question": "é😀", "answer": 2}\r\n',
    );
    assert.deepEqual(await readJsonl(p, { columns: ["question"] }), [
      { question: "why?", answer: "because" },
      { question: "é😀", answer: 2 },
    ]);
  });
});

Deno.test("readJsonl() names the file and line of invalid JSON, non-objects and missing columns", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "bad.jsonl");
    await Deno.writeTextFile(p, '{"a": 1}\n{"a": 2,}\n');
    const e = await rejectsData(readJsonl(p), `${p}:2: invalid JSON`);
    assert.equal(e.line, 2);
    await Deno.writeTextFile(p, '{"a": 1}\n\n[1, 2]\n');
    await rejectsData(readJsonl(p), `${p}:3: expected a JSON object per line, got an array`);
    await Deno.writeTextFile(p, '{"a": 1, "b": 1}\n{"a": 2}\n');
    await rejectsData(readJsonl(p, { columns: ["a", "b"] }), `${p} (line 2) has no column "b"`);
  });
});

Deno.test("readJson() reads an array of objects and rejects anything else by name", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "dev.json");
    await Deno.writeTextFile(p, '[{"a": 1}, {"a": 2}]');
    assert.deepEqual(await readJson(p), [{ a: 1 }, { a: 2 }]);
    await Deno.writeTextFile(p, '{"a": 1}');
    await rejectsData(readJson(p), "must hold a JSON array");
    await Deno.writeTextFile(p, '{"a": 1}\n{"a": 2}\n');
    await rejectsData(readJson(p), "not valid JSON", ".jsonl");
  });
});

// ---------------------------------------------------------------------------------------------
// CSV, TSV

Deno.test("readCsv() reads GLUE-style TSV with unbalanced quotes (quoting off)", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "train.tsv");
    await Deno.writeTextFile(
      p,
      'sentence\tlabel\nthe "quoted" word \t1\nan unbalanced " quote\t0\n"starts with a quote\t1\n',
    );
    assert.deepEqual(await readCsv(p), [
      { sentence: 'the "quoted" word ', label: "1" },
      { sentence: 'an unbalanced " quote', label: "0" },
      { sentence: '"starts with a quote', label: "1" },
    ]);
  });
});

Deno.test("readCsv() reads RFC 4180 CSV: quoted commas, doubled quotes, multi-line fields, BOM", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "train.csv");
    await Deno.writeTextFile(
      p,
      '\ufefftext,label\n"a, b",1\n"say ""hi""",0\n"two\nlines",1\n',
    );
    assert.deepEqual(await readCsv(p), [
      { text: "a, b", label: "1" },
      { text: 'say "hi"', label: "0" },
      { text: "two\nlines", label: "1" },
    ]);
  });
});

Deno.test("readCsv() names the file and line of a row with the wrong number of fields", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "train.tsv");
    await Deno.writeTextFile(p, "sentence\tlabel\nfine\t1\nextra\tfield\there\n");
    const e = await rejectsData(readCsv(p), p, /line 3/);
    assert.equal(e.line, 3);
    await Deno.writeTextFile(p, "sentence\tsentence\nx\ty\n");
    await rejectsData(readCsv(p), 'names column "sentence" twice');
    await Deno.writeTextFile(p, "sentence\tlabel\nx\t1\n");
    await rejectsData(readCsv(p, { columns: ["question"] }), 'has no column "question"');
    await Deno.writeTextFile(p, "sentence\tlabel\n");
    await rejectsData(readCsv(p, { columns: ["question"] }), 'has no column "question"');
  });
});

Deno.test("text readers name the line of invalid UTF-8", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "train.jsonl");
    const bytes = new TextEncoder().encode('{"a": "ok"}\n{"a": "X"}\n');
    bytes[bytes.indexOf(88)] = 0xff;
    await Deno.writeFile(p, bytes);
    const e = await rejectsData(readJsonl(p), `${p} is not valid UTF-8: line 2, byte offset 19`);
    assert.equal(e.line, 2);
  });
});

Deno.test("readTable() picks the reader by extension and rejects unknown ones", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "a.csv"), "x,y\n1,2\n");
    await Deno.writeTextFile(join(dir, "a.ndjson"), '{"x": 1}\n');
    await Deno.writeTextFile(join(dir, "a.txt"), "x\n");
    assert.deepEqual(await readTable(join(dir, "a.csv")), [{ x: "1", y: "2" }]);
    assert.deepEqual(await readTable(join(dir, "a.ndjson")), [{ x: 1 }]);
    assert.equal((await readTable(join(FIXTURES, "rows_zstd.parquet"))).length, 23);
    await rejectsData(readTable(join(dir, "a.txt")), "unknown data file type", ".parquet");
  });
});

// ---------------------------------------------------------------------------------------------
// Hub datasets

function glueRepo() {
  return {
    id: "nyu-mll/glue",
    type: "dataset" as const,
    sha: "2222222222222222222222222222222222222222",
    files: {
      "README.md": "# GLUE",
      "sst2/train-00000-of-00002.parquet": glueParquet(["a", "b", "c"], [0, 1, 0]),
      "sst2/train-00001-of-00002.parquet": glueParquet(["d", "e"], [1, 1], 3),
      "sst2/validation-00000-of-00001.parquet": glueParquet(["v"], [1]),
      "sst2/test-00000-of-00001.parquet": glueParquet(["t"], [-1]),
      "mnli/validation_matched-00000-of-00001.parquet": glueParquet(["m"], [2]),
      "mnli/validation_mismatched-00000-of-00001.parquet": glueParquet(["mm"], [0]),
    },
  };
}

Deno.test("loadHubSplits() downloads a config's split shards into the HF cache and concatenates them in order", async () => {
  await withTempDir(async (cache) => {
    await using hub = startMockHub({ repos: [glueRepo()] });
    const env = { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.url };
    const got = await loadHubSplits("nyu-mll/glue", "sst2", ["train", "validation"], {
      env,
      columns: ["sentence", "label"],
    });
    assert.deepEqual(got.train.map((r) => r.sentence), ["a", "b", "c", "d", "e"]);
    assert.deepEqual(got.train.map((r) => r.label), [0, 1, 0, 1, 1]);
    assert.deepEqual(got.validation, [{ sentence: "v", label: 1 }]);
    // Cached like a model, under datasets--nyu-mll--glue; the test split was not fetched.
    const snap = join(cache, "datasets--nyu-mll--glue", "snapshots", glueRepo().sha);
    const listed = [...Deno.readDirSync(join(snap, "sst2"))].map((e) => e.name).sort();
    assert.deepEqual(listed, [
      "train-00000-of-00002.parquet",
      "train-00001-of-00002.parquet",
      "validation-00000-of-00001.parquet",
    ]);
    // Offline: served from the cache with no request at all.
    hub.clear();
    const offline = await loadHubSplits("nyu-mll/glue", "sst2", ["train"], {
      env: { ...env, HF_HUB_OFFLINE: "1" },
    });
    assert.equal(offline.train.length, 5);
    assert.equal(hub.requests.length, 0);
  });
});

Deno.test("downloadHubSplits() keeps validation_matched and validation_mismatched apart", async () => {
  await withTempDir(async (cache) => {
    await using hub = startMockHub({ repos: [glueRepo()] });
    const env = { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.url };
    const { files, snapshot } = await downloadHubSplits(
      "nyu-mll/glue",
      "mnli",
      ["validation_matched", "validation_mismatched"],
      { env },
    );
    assert.equal(snapshot.sha, glueRepo().sha);
    assert.equal(files.validation_matched.length, 1);
    assert.match(files.validation_matched[0], /mnli\/validation_matched-00000/);
    assert.match(files.validation_mismatched[0], /mnli\/validation_mismatched-00000/);
  });
});

Deno.test("a split with no parquet file is a DatasetError naming the config, split and patterns", async () => {
  await withTempDir(async (cache) => {
    await using hub = startMockHub({ repos: [glueRepo()] });
    const env = { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.url };
    await rejectsData(
      downloadHubSplits("nyu-mll/glue", "mnli", ["train", "validation_matched"], { env }),
      'config "mnli", split "train"',
      "mnli/train-*.parquet",
    );
  });
});

Deno.test("offline with an empty cache fails with HubError offline_miss, without requests", async () => {
  await withTempDir(async (cache) => {
    await using hub = startMockHub({ repos: [glueRepo()] });
    const env = { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.url, HF_HUB_OFFLINE: "1" };
    await assert.rejects(
      loadHubSplits("nyu-mll/glue", "sst2", ["train"], { env }),
      (e: unknown) => e instanceof HubError && e.kind === "offline_miss",
    );
    assert.equal(hub.requests.length, 0);
  });
});

Deno.test("a local folder with the refs/convert/parquet layout (<config>/<split>/0000.parquet) loads too", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "wsc.fixed", "train"), { recursive: true });
    await Deno.writeFile(join(dir, "wsc.fixed", "train", "0000.parquet"), glueParquet(["w"], [1]));
    await Deno.mkdir(join(dir, "wsc"), { recursive: true });
    await Deno.writeFile(join(dir, "wsc", "super_glue-train.parquet"), glueParquet(["x"], [0]));
    const fixed = await loadHubSplits(dir, "wsc.fixed", ["train"]);
    assert.deepEqual(fixed.train.map((r) => r.sentence), ["w"]);
    const plain = await loadHubSplits(dir, "wsc", ["train"]);
    assert.deepEqual(plain.train.map((r) => r.sentence), ["x"]);
  });
});

Deno.test("splitPatterns() escapes glob characters in config and split names", () => {
  assert.deepEqual(splitPatterns("sst2", "train"), [
    "sst2/train-*.parquet",
    "sst2/train/*.parquet",
    "sst2/*-train.parquet",
  ]);
  assert.equal(splitPatterns("a*b", "x?")[0], "a[*]b/x[?]-*.parquet");
});

Deno.test("readJson() names a bad array element by its index, not as a line", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "dev.json");
    await Deno.writeTextFile(p, '[{"a": 1, "b": 2},\n {"a": 2}]');
    const e = await rejectsData(
      readJson(p, { columns: ["a", "b"] }),
      `${p} (element 1) has no column "b"`,
    );
    assert.equal(e.line, undefined);
    assert.doesNotMatch(e.message, /line/);
    await Deno.writeTextFile(p, '[{"a": 1}, 3]');
    const e2 = await rejectsData(readJson(p), `${p}: element 1 is not an object`);
    assert.equal(e2.line, undefined);
  });
});

Deno.test("readCsv() parses a header-only file's quoted header with the CSV rules", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "empty.csv");
    await Deno.writeTextFile(p, '"a","b, c"\n');
    assert.deepEqual(await readCsv(p, { columns: ["a", "b, c"] }), []);
    await rejectsData(
      readCsv(p, { columns: ["x"] }),
      'has no column "x"',
      'its columns are "a", "b, c"',
    );
    const t = join(dir, "empty.tsv");
    await Deno.writeTextFile(t, "x\ty\r\n");
    assert.deepEqual(await readCsv(t, { columns: ["x", "y"] }), []);
  });
});

Deno.test("offline with some splits cached and others not: HubError offline_miss naming the missing split", async () => {
  await withTempDir(async (cache) => {
    await using hub = startMockHub({ repos: [glueRepo()] });
    const env = { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.url };
    await downloadHubSplits("nyu-mll/glue", "sst2", ["train"], { env });
    hub.clear();
    const offline = { ...env, HF_HUB_OFFLINE: "1" };
    await assert.rejects(
      downloadHubSplits("nyu-mll/glue", "sst2", ["train", "validation"], { env: offline }),
      (e: unknown) => {
        assert.ok(e instanceof HubError, `expected a HubError, got ${e}`);
        assert.equal(e.kind, "offline_miss");
        assert.match(e.message, /split "validation"/);
        assert.match(e.message, /config "sst2"/);
        assert.match(e.message, /HF_HUB_OFFLINE/);
        assert.ok(e.message.includes(cache), "names the cache");
        return true;
      },
    );
    assert.equal(hub.requests.length, 0);
    // Online, the missing split is fetched.
    const got = await downloadHubSplits("nyu-mll/glue", "sst2", ["train", "validation"], { env });
    assert.equal(got.files.validation.length, 1);
  });
});
