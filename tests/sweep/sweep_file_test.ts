// Sweep files and plans: generated bad files are refused naming the file, the key and the fix
// (in JSON and in YAML alike); good files expand into the grid with ids that depend on each run's
// config alone, so re-planning an edited file never renumbers a run.
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { SweepError } from "../../src/sweep/errors.ts";
import { planSweep, runId, runSettings } from "../../src/sweep/plan.ts";
import {
  AXIS_KEYS,
  MAX_RUNS,
  parseSweep,
  parseSweepText,
  type SweepSpec,
} from "../../src/sweep/sweep_file.ts";
import { sweepMain } from "../../src/sweep/cli.ts";
import { TASK_NAMES } from "../../src/data/tasks.ts";
import { optionFor, PAPER_DEFAULTS, TRAIN_OPTIONS } from "../../src/train/config.ts";
import { Gen } from "./support.ts";

const VALID = {
  name: "grid",
  preset: "paper",
  base: { "batch-size": 16, "eval-every": 500 },
  axes: {
    task: ["rte", "cb"],
    method: ["adept", "dept"],
    lr: [0.3, 0.4],
    "lr-offset": [1e-4, 5e-3],
    "prompt-length": [60],
    rank: [19],
    seed: [42, 7],
    steps: [1000],
  },
};

const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x));

/** Asserts that `doc` is refused as JSON and as YAML, with a message matching every pattern. */
function refused(doc: unknown, ...patterns: RegExp[]): void {
  for (const [file, text] of [["bad.json", JSON.stringify(doc)], ["bad.yaml", stringify(doc)]]) {
    assert.throws(
      () => parseSweepText(text, file),
      (e: unknown) => {
        assert.ok(e instanceof SweepError, `${file}: expected a SweepError, got ${e}`);
        assert.ok(e.message.startsWith(`${file}: `), `the message names the file: ${e.message}`);
        for (const p of patterns) assert.match(e.message, p);
        return true;
      },
      `${file} should be refused: ${JSON.stringify(doc)}`,
    );
  }
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const KNOWN_WORDS = new Set<string>([
  ...TRAIN_OPTIONS.flatMap((o) => [o.flag, o.key as string]),
  "name",
  "root",
  "preset",
  "base",
  "axes",
  ...TASK_NAMES,
  "adept",
  "dept",
  "pt",
  "prompt_tuning",
]);

Deno.test("the valid example parses, in JSON and YAML alike, with the axes in file order", () => {
  const a = parseSweepText(JSON.stringify(VALID), "grid.json");
  const b = parseSweepText(stringify(VALID), "grid.yaml");
  assert.deepEqual({ ...a, source: "" }, { ...b, source: "" });
  assert.deepEqual(a.axes.map((x) => x.key), [...AXIS_KEYS]);
  assert.deepEqual(a.base, { batchSize: 16, evalEvery: 500 });
  assert.equal(a.root, "runs/sweeps/grid");
});

Deno.test("unknown keys are refused at every level, naming the key (generated)", () => {
  const g = new Gen(1);
  for (let i = 0; i < 30; i++) {
    let w = g.word();
    while (KNOWN_WORDS.has(w)) w = g.word();
    const top = clone(VALID) as Record<string, unknown>;
    top[w] = g.pick([1, "x", [1], { a: 1 }]);
    refused(top, new RegExp(`unknown key "${esc(w)}"`), /a sweep file has name, root/);
    const base = clone(VALID);
    (base.base as Record<string, unknown>)[w] = 1;
    refused(base, new RegExp(`base\\.${esc(w)} is not a training setting`), /the settings are/);
    const axes = clone(VALID);
    (axes.axes as Record<string, unknown>)[w] = [1];
    refused(axes, new RegExp(`axes\\.${esc(w)} is not a sweep axis`), /the axes are task, method/);
  }
  // near misses get a suggestion
  for (const [k, hint] of [["tasks", "task"], ["seeds", "seed"], ["lr_offset", "lr-offset"]]) {
    const d = clone(VALID) as { axes: Record<string, unknown> };
    d.axes = { [k]: [1] };
    refused(d, new RegExp(`did you mean "${hint}"`));
  }
  refused({ ...clone(VALID), axis: {} }, /unknown key "axis"; did you mean "axes"/);
  // training settings that are not axes belong under base
  for (const k of ["batch-size", "warmup", "dropout", "evalLimit"]) {
    refused(
      { axes: { [k]: [1] } },
      new RegExp(`axes\\.${k} is not a sweep axis \\(.* under base\\)`),
    );
  }
  for (const k of ["out", "resume"]) {
    refused({ base: { [k]: "x" }, axes: { seed: [1] } }, /the sweep chooses each run's folder/);
  }
});

Deno.test("values of the wrong type are refused, naming the axis and the item (generated)", () => {
  const g = new Gen(2);
  const wrong: Record<string, unknown[]> = {
    number: ["fast", true, "", "1e", "NaN"],
    integer: ["ten", false, 1.5, 2.25, "0.5"],
    string: [1, true, 0.3, ""],
  };
  for (const key of AXIS_KEYS) {
    const o = optionFor(key)!;
    for (let i = 0; i < 8; i++) {
      const bad = g.pick(wrong[o.kind]);
      const goods = o.kind !== "string"
        ? [1, 2, 3]
        : key === "task"
        ? ["rte", "cb", "wic"]
        : ["adept", "dept", "pt"];
      const at = g.int(3);
      const values: unknown[] = goods.map((v, j) => j === at ? bad : v); // only one is wrong
      refused({ axes: { [o.flag]: values } }, new RegExp(`axes\\.${o.flag}\\[${at}\\]: expected`));
    }
    // nested lists, mappings and nulls are never values
    for (const bad of [[1], { a: 1 }, null]) {
      refused({ axes: { [o.flag]: [bad] } }, new RegExp(`axes\\.${o.flag}\\[0\\]: expected a`));
    }
  }
  // ranges: learning rates > 0, lengths and steps >= 1, seeds in [0, 2^32)
  for (
    const [k, v] of [
      ["lr", 0],
      ["lr", -0.1],
      ["lr-offset", 0],
      ["prompt-length", 0],
      ["rank", 0],
      ["steps", 0],
      ["seed", -1],
      ["seed", 2 ** 32],
    ] as const
  ) refused({ axes: { [k]: [v] } }, new RegExp(`axes\\.${k}\\[0\\]: expected a value`));
  // the same checks under base
  refused(
    { base: { "batch-size": "many" }, axes: { seed: [1] } },
    /base\.batch-size: expected a number/,
  );
  refused(
    { base: { dropout: 1.5 }, axes: { seed: [1] } },
    /base\.dropout: expected a value <= 0.99/,
  );
  refused({ base: { steps: null }, axes: { seed: [1] } }, /base\.steps has no value/);
});

Deno.test("unknown tasks and methods are refused, naming the known ones (generated)", () => {
  const g = new Gen(3);
  for (let i = 0; i < 20; i++) {
    let w = g.word();
    while (KNOWN_WORDS.has(w)) w = g.word();
    refused(
      { axes: { task: ["rte", w] } },
      new RegExp(`axes\\.task\\[1\\]: unknown task "${esc(w)}"`),
      /known tasks: mnli/,
    );
    refused(
      { axes: { method: [w] } },
      new RegExp(`axes\\.method\\[0\\]: unknown method "${esc(w)}"`),
      /"adept"/,
    );
    refused({ base: { method: w }, axes: { seed: [1] } }, /base\.method: unknown method/);
  }
});

Deno.test("empty, repeated and conflicting axes are refused (generated)", () => {
  const g = new Gen(4);
  for (const key of AXIS_KEYS) {
    const flag = optionFor(key)!.flag;
    refused(
      { axes: { seed: [1], [flag]: [] } },
      new RegExp(`axes\\.${flag} is empty; give at least one value`),
    );
  }
  refused({ axes: {} }, /axes is empty/);
  refused({ base: { steps: 10 } }, /no axes/);
  refused({ axes: [1, 2] }, /axes must be a mapping/);
  for (let i = 0; i < 10; i++) {
    const v = 1 + g.int(1000);
    const values = g.sample([v, 1001, 1002, 1003], 4);
    values.splice(g.int(5), 0, v); // v twice
    refused({ axes: { seed: values } }, new RegExp(`axes\\.seed repeats ${v}`));
  }
  refused({ base: { lr: 0.3 }, axes: { lr: [0.3, 0.4] } }, /lr is both under base and under axes/);
  refused({ axes: { lrOffset: [0.3], "lr-offset": [0.4] } }, /axes set lr-offset twice/);
  refused({
    axes: {
      seed: Array.from({ length: 101 }, (_, i) => i),
      lr: Array.from({ length: 100 }, (_, i) => (i + 1) / 100),
    },
  }, new RegExp(`more than ${MAX_RUNS}`));
});

Deno.test("the document itself: not a mapping, bad name, preset or root, bad syntax", () => {
  for (const doc of [[], 3, "axes", null]) refused(doc, /expected a mapping with name, root/);
  refused({ name: "a b", axes: { seed: [1] } }, /name must be letters, digits/);
  refused({ name: "", axes: { seed: [1] } }, /name must be/);
  refused({ preset: "tiny", axes: { seed: [1] } }, /preset must be "paper" .* or "demo"/);
  refused({ root: 3, axes: { seed: [1] } }, /root must be a non-empty string/);
  assert.throws(() => parseSweepText("{", "x.json"), /x\.json: not valid JSON/);
  assert.throws(() => parseSweepText("axes:\n  seed: [1\n", "x.yaml"), /x\.yaml: not valid YAML/);
  assert.throws(
    () => parseSweepText("axes:\n  seed: [1]\naxes:\n  lr: [1]\n", "x.yaml"),
    /x\.yaml: not valid YAML .*[Mm]ap keys must be unique/,
  );
  assert.throws(() => parseSweepText("{}", "x.toml"), /ends in \.json, \.yaml or \.yml/);
});

Deno.test("a plan is the product of the axes, in file order; prompt tuning ignores rank and lr-offset", async () => {
  const spec = parseSweep(VALID, "grid.yaml");
  const plan = await planSweep(spec, { root: "/tmp/none" });
  assert.equal(plan.runs.length, 2 * 2 * 2 * 2 * 2);
  // the first axis outermost, the last innermost
  assert.deepEqual(
    plan.runs.slice(0, 5).map((r) => [r.values.lr, r.values["lr-offset"], r.values.seed]),
    [[0.3, 1e-4, 42], [0.3, 1e-4, 7], [0.3, 5e-3, 42], [0.3, 5e-3, 7], [0.4, 1e-4, 42]],
  );
  assert.deepEqual(plan.runs.map((r) => r.index), plan.runs.map((_, i) => i));
  assert.equal(new Set(plan.runs.map((r) => r.id)).size, plan.runs.length);
  for (const r of plan.runs) {
    assert.equal(r.id, runId(r.config));
    assert.equal(r.dir, `/tmp/none/${r.name}`);
    assert.equal(r.config.out, r.dir);
    assert.equal(r.config.batchSize, 16); // base
    assert.equal(r.config.model, PAPER_DEFAULTS.model); // the preset
  }
  const pt = await planSweep(
    parseSweep(
      { axes: { method: ["adept", "pt"], rank: [8, 16], "lr-offset": [1e-4, 1e-3] } },
      "p.yaml",
    ),
  );
  assert.equal(pt.runs.filter((r) => r.values.method === "adept").length, 4);
  const ptRuns = pt.runs.filter((r) => r.values.method === "pt");
  assert.equal(ptRuns.length, 1);
  assert.equal(ptRuns[0].config.rank, undefined);
  assert.equal(ptRuns[0].config.lrOffset, PAPER_DEFAULTS.lrOffset);
  assert.equal(pt.notes.length, 2);
});

Deno.test("re-planning an edited sweep keeps every unchanged run's id and folder (generated)", async () => {
  const g = new Gen(5);
  const pools: Record<string, unknown[]> = {
    task: ["rte", "cb", "wic", "boolq"],
    method: ["adept", "dept", "pt"],
    lr: [0.3, 0.4, 0.1],
    "lr-offset": [1e-4, 5e-3, 1e-2],
    "prompt-length": [40, 60],
    rank: [8, 19, 30],
    seed: [1, 2, 42],
    steps: [100, 200],
  };
  for (let i = 0; i < 12; i++) {
    const keys = g.sample(Object.keys(pools), 2 + g.int(3));
    const small: Record<string, unknown[]> = {}, big: Record<string, unknown[]> = {};
    for (const k of keys) {
      small[k] = g.sample(pools[k], 1 + g.int(2));
      big[k] = g.sample([...new Set([...small[k], ...pools[k]])], pools[k].length); // more values, shuffled
    }
    // the bigger grid lists its axes in another order, and adds one
    const extra = Object.keys(pools).find((k) => !keys.includes(k))!;
    const bigAxes = Object.fromEntries(g.sample(Object.entries(big), keys.length));
    const a = await planSweep(parseSweep({ axes: small }, "a.yaml"), { root: "/r" });
    const b = await planSweep(
      parseSweep({ axes: { ...bigAxes, [extra]: [pools[extra][0]] } }, "a.yaml"),
      { root: "/r" },
    );
    const defaults: Record<string, unknown> = { ...PAPER_DEFAULTS, rank: undefined };
    for (const r of a.runs) {
      // the same run in b: same settings but the extra axis at its first value
      const same = b.runs.filter((x) =>
        keys.every((k) => JSON.stringify(x.values[k]) === JSON.stringify(r.values[k]))
      );
      const match = same.find((x) => x.id === r.id);
      const extraKey = optionFor(extra)!.key;
      const extraIsDefault = JSON.stringify(pools[extra][0]) ===
        JSON.stringify(defaults[extraKey]);
      if (
        extraIsDefault || (extra === "rank" && r.config.method === "prompt_tuning") ||
        (extra === "lr-offset" && ["pt", "prompt_tuning"].includes(r.config.method))
      ) {
        assert.ok(match, `run ${r.name} (${JSON.stringify(r.values)}) keeps its id`);
        assert.equal(match.name, r.name);
      } else {
        assert.ok(!match, "a run whose config changed gets a new id");
      }
    }
  }
});

Deno.test("an id changes with every setting but out and resume (generated)", () => {
  const g = new Gen(6);
  const base = { ...PAPER_DEFAULTS, promptLength: 60, rank: 19, evalLimit: 100 };
  const id = runId(base);
  assert.equal(runId({ ...base, out: "elsewhere", resume: true }), id);
  assert.equal(runId(runSettings(base)), id); // settings.json hashes the same
  for (const o of TRAIN_OPTIONS) {
    if (o.key === "out" || o.key === "resume") continue;
    const v = (base as Record<string, unknown>)[o.key];
    const changed = o.kind === "string"
      ? (o.choices ? o.choices.find((c) => c !== v) : `${v ?? ""}${g.word()}`)
      : typeof v === "number"
      ? v + 1 + g.int(5)
      : 1 + g.int(5);
    assert.notEqual(runId({ ...base, [o.key]: changed }), id, `${o.key} ${v} -> ${changed}`);
  }
});

Deno.test("the demo preset plans with paths relative to the project, and names runs by task", async () => {
  const plan = await planSweep(parseSweep({ preset: "demo", axes: { seed: [1] } }, "d.yaml"));
  const r = plan.runs[0];
  assert.equal(r.config.model, "tasks/default/model"); // tests run from the project's root
  assert.equal(r.config.task, "tasks/default/task.json");
  assert.match(r.name, /^dictionary-adept-[0-9a-f]{12}$/);
});

Deno.test("a run the trainer would refuse is refused at planning, naming its axis values", async () => {
  await assert.rejects(
    planSweep(parseSweep({ axes: { task: ["rte", "nowhere/mine.json"] } }, "g.yaml")),
    (e: unknown) =>
      e instanceof SweepError && /the run with task "nowhere\/mine\.json"/.test(e.message),
  );
  await assert.rejects(
    planSweep(parseSweep({ base: { warmup: 500 }, axes: { steps: [100] } }, "g.yaml")),
    /the run with steps 100: .*--warmup 500 is longer than --steps 100/,
  );
});

Deno.test("sweep plan prints one line per run with its id and status; --json the same", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/g.yaml`,
      stringify({ axes: { task: ["rte", "cb"], seed: [1, 2, 3] } }),
    );
    const lines: string[] = [];
    const print = (l: string) => lines.push(...l.split("\n"));
    assert.equal(await sweepMain(["plan", `${dir}/g.yaml`, "--root", `${dir}/runs`], { print }), 0);
    assert.match(lines[0], /6 runs in .*\/runs; axes task \(2\) x seed \(3\)/);
    assert.match(lines[1], /#\s+id\s+task\s+seed\s+status/);
    assert.equal(
      lines.filter((l) => /^\s+\d+\s+[0-9a-f]{12}\s+(rte|cb)\s+\d\s+pending$/.test(l)).length,
      6,
    );
    lines.length = 0;
    assert.equal(
      await sweepMain(["plan", `${dir}/g.yaml`, "--root", `${dir}/runs`, "--json"], { print }),
      0,
    );
    const json = JSON.parse(lines.join("\n"));
    const spec: SweepSpec = parseSweep(
      { axes: { task: ["rte", "cb"], seed: [1, 2, 3] } },
      `${dir}/g.yaml`,
    );
    const plan = await planSweep(spec, { root: `${dir}/runs` });
    assert.deepEqual(json.runs.map((r: { id: string }) => r.id), plan.runs.map((r) => r.id));
    // bad flags and commands: status 2 and one line naming them
    for (
      const [args, re] of [
        [["plan"], /takes one sweep file, got none/],
        [["plan", "a.yaml", "b.yaml"], /takes one sweep file, got "a\.yaml" "b\.yaml"/],
        [["plna", "a.yaml"], /unknown command "plna"/],
        [["run", `${dir}/g.yaml`, "--jobs", "0"], /--jobs "0": expected a whole number >= 1/],
        [["run", `${dir}/g.yaml`, "--job", "2"], /Unknown option '--job'/],
        [["plan", `${dir}/missing.yaml`], /cannot read the sweep file/],
      ] as const
    ) {
      lines.length = 0;
      assert.equal(await sweepMain(args, { print }), 2, args.join(" "));
      assert.match(lines.join("\n"), re);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
