import assert from "node:assert/strict";
import { join } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { DatasetError } from "../../src/data/datasets.ts";
import { METRICS } from "../../src/data/metrics.ts";
import { randperm } from "../../src/data/randperm.ts";
import {
  customTask,
  fillTemplate,
  GENERATION_MAX_LENGTH,
  getTask,
  loadTaskExamples,
  markSpan,
  maxTargetLength,
  removeMarkup,
  resolveTaskData,
  STSB_LABELS,
  stsbTarget,
  TASK_NAMES,
  TaskError,
  TASKS,
  templateFields,
} from "../../src/data/tasks.ts";
import { withTempDir } from "../support/temp.ts";

const FIXTURES = new URL("../fixtures/datasets/", import.meta.url).pathname;
const formats = JSON.parse(await Deno.readTextFile(join(FIXTURES, "task_formats.json"))) as {
  tasks: Record<string, { row: Record<string, unknown>; source: string; target: string }[]>;
  stsb_labels: string[];
};

// ---------------------------------------------------------------------------------------------
// Built-in tasks

Deno.test("the 13 docs/method.md tasks format rows exactly as the authors' preprocessors (Python oracle)", () => {
  assert.deepEqual([...TASK_NAMES].sort(), Object.keys(formats.tasks).sort());
  for (const [name, cases] of Object.entries(formats.tasks)) {
    const task = getTask(name);
    cases.forEach(({ row, source, target }, i) => {
      const ex = task.format(row, { file: "fixture", row: i + 1 });
      assert.equal(ex.source, source, `${name} case ${i} source`);
      assert.equal(ex.target, target, `${name} case ${i} target`);
    });
  }
});

Deno.test("each task reads its docs/method.md dataset config, metrics (first selects) and split scheme", () => {
  const want: Record<string, [string, string, string, string, number]> = {
    mnli: ["nyu-mll/glue", "mnli", "accuracy", "mnli", 256],
    qqp: ["nyu-mll/glue", "qqp", "accuracy,f1", "large", 256],
    qnli: ["nyu-mll/glue", "qnli", "accuracy", "large", 256],
    sst2: ["nyu-mll/glue", "sst2", "accuracy", "large", 256],
    stsb: ["nyu-mll/glue", "stsb", "pearson,spearmanr", "small", 256],
    mrpc: ["nyu-mll/glue", "mrpc", "accuracy,f1", "small", 256],
    rte: ["nyu-mll/glue", "rte", "accuracy", "small", 256],
    cola: ["nyu-mll/glue", "cola", "matthews_correlation", "small", 256],
    multirc: ["aps/super_glue", "multirc", "f1", "small", 348],
    boolq: ["aps/super_glue", "boolq", "accuracy", "small", 256],
    wic: ["aps/super_glue", "wic", "accuracy", "small", 256],
    wsc: ["aps/super_glue", "wsc.fixed", "accuracy", "small", 256],
    cb: ["aps/super_glue", "cb", "f1_multiclass,accuracy", "small", 256],
  };
  assert.equal(TASK_NAMES.length, 13);
  for (const [name, [repo, config, metrics, scheme, len]] of Object.entries(want)) {
    const t = TASKS[name as keyof typeof TASKS];
    assert.deepEqual(t.dataset, { repo, config }, name);
    assert.equal(t.metrics.join(","), metrics, name);
    assert.equal(t.splitScheme, scheme, name);
    assert.equal(t.maxSourceLength, len, name);
    for (const m of t.metrics) assert.ok(m in METRICS, `${name}: metric ${m} exists`);
  }
  assert.deepEqual(TASKS.cb.labels, ["0", "1", "2"]);
  assert.deepEqual(TASKS.mnli.labels, ["0", "1", "2"]);
  assert.deepEqual(TASKS.rte.labels, ["0", "1"]);
});

Deno.test("STS-B targets round like np.round((label * 5) / 5, 1), ties to even, and print like Python", () => {
  assert.deepEqual(STSB_LABELS, formats.stsb_labels);
  assert.equal(stsbTarget(5), "5.0");
  assert.equal(stsbTarget(0), "0.0");
  assert.equal(stsbTarget(0.25), "0.2");
  assert.equal(stsbTarget(0.75), "0.8");
  assert.equal(stsbTarget(Math.fround(3.8)), "3.8");
});

Deno.test("MultiRC removes <br> (to a space) and <b>/</b>; WSC marks spans with T5's regex", () => {
  assert.equal(removeMarkup("a<br>b <b>c</b>"), "a b c");
  assert.equal(markSpan("a b c", "b", 1, "*"), "a * b * c");
  assert.equal(markSpan("a b c", "x", 1, "*"), "a b c");
  // The span is used as a regex, as in the authors' code ("." matches any character) ...
  assert.equal(markSpan("Mr Taylor left", "Mr. Taylor", 0, "*"), "Mr Taylor left");
  assert.equal(markSpan("Mrs Taylor left", "Mr. Taylor", 0, "*"), "* Mrs Taylor * left");
  // ... and one that is not a valid regex is marked literally instead of failing.
  assert.equal(markSpan("a (b c", "(b", 1, "#"), "a # (b # c");
});

Deno.test("getTask() accepts the authors' aliases and lists the known tasks for an unknown name", () => {
  assert.equal(getTask("SST2").name, "sst2");
  assert.equal(getTask("superglue-boolq").name, "boolq");
  assert.equal(getTask("wsc.fixed").name, "wsc");
  assert.throws(() => getTask("squad2"), (e: Error) => {
    assert.ok(e instanceof TaskError);
    assert.equal(e.task, "squad2");
    assert.match(e.message, /unknown task "squad2"/);
    for (const n of TASK_NAMES) assert.ok(e.message.includes(n), `lists ${n}`);
    assert.match(e.message, /custom task/);
    return true;
  });
});

Deno.test("getTask() strips superglue- only from the SuperGLUE tasks; superglue-rte is unknown", () => {
  for (const n of ["boolq", "cb", "multirc", "wic", "wsc"]) {
    assert.equal(getTask(`superglue-${n}`).name, n);
    assert.equal(getTask(`SuperGLUE-${n.toUpperCase()}`).name, n);
  }
  assert.equal(getTask("superglue-wsc.fixed").name, "wsc");
  for (const n of ["superglue-rte", "superglue-sst2", "superglue-mnli", "superglue-record"]) {
    assert.throws(() => getTask(n), (e: Error) => {
      assert.match(e.message, new RegExp(`unknown task "${n}"`));
      for (const t of TASK_NAMES) assert.ok(e.message.includes(t), `lists ${t}`);
      return true;
    });
  }
  // The GLUE tasks keep their plain names (and the authors' glue names need no prefix).
  assert.equal(getTask("rte").name, "rte");
});

Deno.test("a built-in task names the file, row and field of a bad row", () => {
  const where = { file: "sst2/train-00000-of-00001.parquet", row: 7 };
  assert.throws(
    () => getTask("sst2").format({ label: 1 }, where),
    /sst2: sst2\/train-00000-of-00001\.parquet, row 7: field "sentence" is missing/,
  );
  assert.throws(
    () => getTask("sst2").format({ label: 1 }, where),
    (e) => e instanceof TaskError && e.task === "sst2" && e.where === where,
  );
  assert.throws(
    () => getTask("rte").format({ sentence1: "a", sentence2: "b", label: "yes" }, where),
    /label must be an integer, got "yes"/,
  );
  assert.throws(
    () => getTask("stsb").format({ sentence1: "a", sentence2: null, label: 1 }, where),
    /field "sentence2" is null/,
  );
});

// ---------------------------------------------------------------------------------------------
// Templates

Deno.test("templates fill {fields}, keep {{ }} as braces, reach into structs and print values", () => {
  assert.deepEqual(templateFields("question: {question} context: {context}"), [
    "question",
    "context",
  ]);
  assert.equal(
    fillTemplate("q: {q} {{literal}} n: {n} ok: {ok} s: {idx.question}", {
      q: "why?",
      n: 3.5,
      ok: true,
      idx: { question: 7 },
    }),
    "q: why? {literal} n: 3.5 ok: true s: 7",
  );
  assert.equal(fillTemplate("{tags}", { tags: ["a", "b"] }), '["a","b"]');
  assert.throws(() => templateFields("a {b"), /unbalanced "\{" at position 2/);
  assert.throws(() => templateFields("a } b"), /unbalanced "\}" at position 2/);
  assert.throws(() => templateFields("a {} b"), /unbalanced/);
  assert.throws(() => templateFields("a {b"), TaskError);
});

Deno.test("a missing template field is an error naming the field, the file and the row", () => {
  assert.throws(
    () => fillTemplate("question: {question}", { q: 1 }, { file: "data/train.jsonl", row: 4 }),
    (e: Error) => {
      assert.ok(e instanceof TaskError);
      assert.deepEqual(e.where, { file: "data/train.jsonl", row: 4 });
      assert.match(e.message, /\{question\}/);
      assert.match(e.message, /data\/train\.jsonl, row 4/);
      assert.match(e.message, /its fields are "q"/);
      return true;
    },
  );
});

// ---------------------------------------------------------------------------------------------
// Custom tasks

Deno.test("customTask() trains on a CSV with a template and a target column, no code needed", async () => {
  await withTempDir(async (dir) => {
    const train = join(dir, "train.csv");
    await Deno.writeTextFile(
      train,
      "question,context,answer\n" +
        Array.from({ length: 40 }, (_, i) => `q${i},"ctx, ${i}",a${i}`).join("\n") + "\n",
    );
    const task = customTask({
      name: "myqa",
      train,
      source: "question: {question} context: {context}",
      target: "answer",
    });
    assert.deepEqual([...task.columns].sort(), ["answer", "context", "question"]);
    const ex = await loadTaskExamples(task);
    // Train only: validation and test are min(1000, n/10) = 4 rows each, by randperm(40).
    const perm = randperm(40);
    assert.equal(ex.validation.length, 4);
    assert.equal(ex.test.length, 4);
    assert.equal(ex.train.length, 32);
    assert.deepEqual(ex.validation[0], {
      source: `question: q${perm[0]} context: ctx, ${perm[0]}`,
      target: `a${perm[0]}`,
    });
    assert.equal(ex.test[0].target, `a${perm[4]}`);
    assert.equal(ex.train[0].target, `a${perm[8]}`);
  });
});

Deno.test("customTask() splits: validation halves into validation/test; given test is kept", async () => {
  await withTempDir(async (dir) => {
    const write = async (name: string, n: number) => {
      const p = join(dir, name);
      await Deno.writeTextFile(
        p,
        Array.from({ length: n }, (_, i) => JSON.stringify({ text: `${name}${i}`, label: i % 2 }))
          .join("\n"),
      );
      return p;
    };
    const train = await write("train.jsonl", 30);
    const validation = await write("dev.jsonl", 10);
    const test = await write("test.jsonl", 5);
    const base = { source: "review: {text}", target: "label", labels: ["0", "1"] };
    const tv = await loadTaskExamples(customTask({ ...base, train, validation }));
    assert.equal(tv.train.length, 30);
    // randperm(10) = [2, 6, 1, 8, 4, 5, 0, 9, 3, 7]
    assert.deepEqual(
      tv.validation.map((e) => e.source),
      [2, 6, 1, 8, 4].map((i) => `review: dev.jsonl${i}`),
    );
    assert.deepEqual(
      tv.test.map((e) => e.source),
      [5, 0, 9, 3, 7].map((i) => `review: dev.jsonl${i}`),
    );
    const all = await loadTaskExamples(customTask({ ...base, train, validation, test }));
    assert.equal(all.validation.length, 10);
    assert.deepEqual(all.test.map((e) => e.target), ["0", "1", "0", "1", "0"]);
    const tt = await loadTaskExamples(customTask({ ...base, train, test }));
    assert.equal(tt.validation.length, 3);
    assert.equal(tt.train.length, 27);
    assert.equal(tt.test.length, 5);
  });
});

Deno.test("customTask() names the missing field and the file (whole file or one row)", async () => {
  await withTempDir(async (dir) => {
    const train = join(dir, "train.jsonl");
    await Deno.writeTextFile(train, '{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n');
    const task = customTask({ train, source: "question: {question}", target: "label" });
    await assert.rejects(loadTaskExamples(task), (e: unknown) => {
      assert.ok(e instanceof DatasetError);
      assert.match(e.message, /train\.jsonl \(line 1\) has no column "question"/);
      assert.equal(e.file, train);
      return true;
    });
    // A target field missing from one row.
    await Deno.writeTextFile(
      train,
      Array.from(
        { length: 20 },
        (_, i) => JSON.stringify(i === 13 ? { text: "x" } : { text: "x", label: 1 }),
      )
        .join("\n"),
    );
    const t2 = customTask({ train, source: "t: {text}", target: "{label}!" });
    await assert.rejects(loadTaskExamples(t2), /train\.jsonl \(line 14\) has no column "label"/);
    assert.throws(
      () => customTask({ train: join(dir, "train.xlsx"), source: "{a}", target: "b" }),
      (e) => e instanceof DatasetError && /unknown data file type/.test(e.message),
    );
    assert.throws(
      () => customTask({ train, source: "no fields", target: "b" }),
      (e) => e instanceof TaskError && /names no \{field\}/.test(e.message),
    );
    await assert.rejects(
      resolveTaskData(customTask({ train: join(dir, "nope.csv"), source: "{a}", target: "b" })),
      (e) =>
        e instanceof DatasetError && e.file === join(dir, "nope.csv") &&
        /the train file .*nope\.csv does not exist/.test(e.message),
    );
  });
});

Deno.test("maxTargetLength() uses the labels (authors' rule), a fixed value, or the generation budget", () => {
  const len = (t: string) => t.length + 1;
  assert.equal(maxTargetLength(getTask("stsb"), len), 4); // "0.0" + EOS
  assert.equal(maxTargetLength(getTask("cb"), len), 2);
  // Without labels: the authors' default_max_length = generation_max_length (20), whatever the
  // data holds; the targets are never measured.
  const custom = customTask({ train: "t.csv", source: "{a}", target: "b" });
  assert.equal(GENERATION_MAX_LENGTH, 20);
  assert.equal(maxTargetLength(custom, len), 20);
  assert.equal(
    maxTargetLength(custom, () => {
      throw new Error("measured a target");
    }),
    20,
  );
  const fixed = customTask({ train: "t.csv", source: "{a}", target: "b", maxTargetLength: 9 });
  assert.equal(maxTargetLength(fixed, len), 9);
  const labelled = customTask({ train: "t.csv", source: "{a}", target: "b", labels: ["yes"] });
  assert.equal(maxTargetLength(labelled, len), 4);
});

// ---------------------------------------------------------------------------------------------
// Built-in tasks' splits from (local copies of) the Hub datasets

function parquet(columns: Record<string, string[] | number[]>): Uint8Array {
  return new Uint8Array(parquetWriteBuffer({
    columnData: Object.entries(columns).map(([name, data]) =>
      typeof data[0] === "number"
        ? { name, data: BigInt64Array.from((data as number[]).map(BigInt)), type: "INT64" as const }
        : { name, data, type: "STRING" as const }
    ),
  }));
}

Deno.test("small tasks: train is all of train; validation/test are validation[perm[:n//2]] / [perm[n//2:]]", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "rte"));
    const rows = (p: string, n: number) => ({
      sentence1: Array.from({ length: n }, (_, i) => `${p}${i}`),
      sentence2: Array.from({ length: n }, () => "h"),
      label: Array.from({ length: n }, (_, i) => i % 2),
    });
    await Deno.writeFile(join(dir, "rte", "train-00000-of-00001.parquet"), parquet(rows("t", 12)));
    await Deno.writeFile(
      join(dir, "rte", "validation-00000-of-00001.parquet"),
      parquet(rows("v", 10)),
    );
    const ex = await loadTaskExamples(getTask("rte"), { datasetRepo: dir });
    assert.equal(ex.train.length, 12);
    assert.equal(ex.train[3].source, "sentence1: t3 sentence2: h");
    assert.deepEqual(ex.validation.map((e) => e.source.split(" ")[1]), [
      "v2",
      "v6",
      "v1",
      "v8",
      "v4",
    ]);
    assert.deepEqual(ex.test.map((e) => e.source.split(" ")[1]), ["v5", "v0", "v9", "v3", "v7"]);
    assert.deepEqual(ex.test.map((e) => e.target), ["1", "0", "1", "1", "1"]);
  });
});

Deno.test("large tasks: validation = train[perm[:1000]], train = train[perm[1000:]], test = validation", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "sst2"));
    const n = 1030;
    await Deno.writeFile(
      join(dir, "sst2", "train-00000-of-00001.parquet"),
      parquet({
        sentence: Array.from({ length: n }, (_, i) => `s${i}`),
        label: Array.from({ length: n }, (_, i) => i % 2),
      }),
    );
    await Deno.writeFile(
      join(dir, "sst2", "validation-00000-of-00001.parquet"),
      parquet({ sentence: ["x", "y"], label: [1, 0] }),
    );
    const ex = await loadTaskExamples(getTask("sst2"), { datasetRepo: dir });
    const perm = randperm(n);
    assert.equal(ex.validation.length, 1000);
    assert.equal(ex.train.length, 30);
    assert.equal(ex.validation[0].source, `sentence: s${perm[0]}`);
    assert.equal(ex.train[0].source, `sentence: s${perm[1000]}`);
    assert.deepEqual(ex.test, [{ source: "sentence: x", target: "1" }, {
      source: "sentence: y",
      target: "0",
    }]);
    // Caps keep the first rows of carved splits (the authors' n_obs).
    const capped = await loadTaskExamples(getTask("sst2"), {
      datasetRepo: dir,
      maxSamples: { validation: 3 },
    });
    assert.deepEqual(capped.validation, ex.validation.slice(0, 3));
  });
});

Deno.test("mnli: validation is validation_mismatched and test is validation_matched", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "mnli"));
    const rows = (p: string) => ({ premise: [p], hypothesis: ["h"], label: [2] });
    for (const s of ["train", "validation_matched", "validation_mismatched"]) {
      await Deno.writeFile(join(dir, "mnli", `${s}-00000-of-00001.parquet`), parquet(rows(s)));
    }
    const ex = await loadTaskExamples(getTask("mnli"), { datasetRepo: dir });
    assert.equal(ex.train[0].source, "premise: train hypothesis: h");
    assert.equal(ex.validation[0].source, "premise: validation_mismatched hypothesis: h");
    assert.equal(ex.test[0].source, "premise: validation_matched hypothesis: h");
    assert.equal(ex.test[0].target, "2");
  });
});

Deno.test("a built-in task whose data lacks a column fails naming the file and the column", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "cola"));
    for (const s of ["train", "validation"]) {
      await Deno.writeFile(
        join(dir, "cola", `${s}-00000-of-00001.parquet`),
        parquet({ text: ["a"], label: [1] }),
      );
    }
    await assert.rejects(loadTaskExamples(getTask("cola"), { datasetRepo: dir }), (e: unknown) => {
      assert.ok(e instanceof DatasetError);
      assert.match(e.message, /cola\/train-00000-of-00001\.parquet has no column "sentence"/);
      return true;
    });
  });
});

Deno.test("format errors name the file and the 1-based line of JSONL rows (blank lines counted)", async () => {
  await withTempDir(async (dir) => {
    const write = async (name: string, text: string) => {
      const p = join(dir, name);
      await Deno.writeTextFile(p, text);
      return p;
    };
    const ok = (i: number) => JSON.stringify({ text: `t${i}`, label: i % 2 });
    const train = await write(
      "train.jsonl",
      [ok(0), "", ok(1), JSON.stringify({ text: null, label: 1 }), ok(2)].join("\n"),
    );
    const validation = await write("dev.jsonl", ok(0) + "\n" + ok(1) + "\n");
    const test = await write("test.jsonl", ok(0) + "\n" + ok(1) + "\n");
    const files = { train, validation, test };
    await assert.rejects(
      loadTaskExamples(customTask({ ...files, source: "t: {text}", target: "label" })),
      (e: Error) => {
        assert.ok(e.message.includes(`${train}, line 4`), e.message);
        assert.doesNotMatch(e.message, /row \d/);
        return true;
      },
    );
    // The same through the target column.
    await write(
      "train.jsonl",
      [ok(0), "", "", JSON.stringify({ text: "x", label: null })].join("\n"),
    );
    await assert.rejects(
      loadTaskExamples(customTask({ ...files, source: "t: {text}", target: "label" })),
      (e: Error) =>
        e instanceof TaskError && e.where?.line === 4 && e.message.includes(`${train}, line 4`) &&
        /is null/.test(e.message),
    );
  });
});

Deno.test("format errors name the physical line a CSV record starts on, multi-line records included", async () => {
  await withTempDir(async (dir) => {
    // Every record spans two lines, so record i starts on line 2 + 2i.
    const train = join(dir, "train.csv");
    await Deno.writeTextFile(
      train,
      "text,label\n" +
        Array.from({ length: 10 }, (_, i) => `"first ${i}\nsecond ${i}",${i % 2}`).join("\n") +
        "\n",
    );
    // {text.x} reaches into a struct, which a CSV string is not: every row fails, and the first
    // one formatted is validation's first, train[randperm(10)[0]] = train[2].
    const task = customTask({ train, source: "t: {text.x}", target: "label" });
    await assert.rejects(loadTaskExamples(task), (e: Error) => {
      assert.equal(randperm(10)[0], 2);
      assert.ok(e.message.includes(`${train}, line 6`), e.message);
      return true;
    });
  });
});

Deno.test("format errors name JSON array elements (0-based) and parquet rows (1-based) as such", async () => {
  await withTempDir(async (dir) => {
    const json = join(dir, "train.json");
    await Deno.writeTextFile(
      json,
      JSON.stringify([{ text: "a", label: 1 }, { text: null, label: 0 }, { text: "c", label: 1 }]),
    );
    const files = { validation: json, test: json };
    await assert.rejects(
      loadTaskExamples(customTask({ train: json, ...files, source: "{text}", target: "label" })),
      (e: Error) => {
        assert.ok(e.message.includes(`${json}, element 1`), e.message);
        return true;
      },
    );
    const pq = join(dir, "train.parquet");
    await Deno.writeFile(
      pq,
      new Uint8Array(parquetWriteBuffer({
        columnData: [
          { name: "text", data: ["a", "b", null, "d"], type: "STRING" },
          { name: "label", data: BigInt64Array.from([1n, 0n, 1n, 0n]), type: "INT64" },
        ],
      })),
    );
    await assert.rejects(
      loadTaskExamples(
        customTask({ train: pq, validation: pq, test: pq, source: "{text}", target: "label" }),
      ),
      (e: Error) => {
        assert.ok(e.message.includes(`${pq}, row 3`), e.message);
        return true;
      },
    );
  });
});

Deno.test("a built-in task's bad parquet row is named by its 1-based row in its own shard", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "rte"));
    const rows = (n: number, bad = -1) => ({
      sentence1: Array.from({ length: n }, (_, i) => `s${i}`),
      sentence2: Array.from({ length: n }, () => "h"),
      label: Array.from({ length: n }, (_, i) => (i === bad ? 7.5 : i % 2)),
    });
    const shard = (i: number) => join(dir, "rte", `train-0000${i}-of-00002.parquet`);
    await Deno.writeFile(shard(0), parquet(rows(3)));
    const second = rows(4, 1);
    await Deno.writeFile(
      shard(1),
      new Uint8Array(parquetWriteBuffer({
        columnData: [
          { name: "sentence1", data: second.sentence1, type: "STRING" },
          { name: "sentence2", data: second.sentence2, type: "STRING" },
          { name: "label", data: Float64Array.from(second.label), type: "DOUBLE" },
        ],
      })),
    );
    await Deno.writeFile(join(dir, "rte", "validation-00000-of-00001.parquet"), parquet(rows(4)));
    await assert.rejects(loadTaskExamples(getTask("rte"), { datasetRepo: dir }), (e: Error) => {
      assert.ok(e.message.includes(`${shard(1)}, row 2: label must be an integer`), e.message);
      return true;
    });
  });
});
