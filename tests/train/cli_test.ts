import assert from "node:assert/strict";
import { join } from "node:path";
import { defaultRunDir, parseTrainArgs, trainHelp } from "../../src/train/cli.ts";
import { PAPER_DEFAULTS, TRAIN_OPTIONS, TrainConfigError } from "../../src/train/config.ts";
import { checkResume, planRun } from "../../src/train/trainer.ts";

const refused = async (args: string[], re: RegExp) => {
  await assert.rejects(
    parseTrainArgs(args),
    (e: unknown) => {
      assert.ok(e instanceof TrainConfigError, `expected a TrainConfigError, got ${e}`);
      assert.match(e.message, re);
      return true;
    },
  );
};

Deno.test("--help lists every flag with the paper's defaults", async () => {
  const cmd = await parseTrainArgs(["--help"]);
  assert.equal(cmd.kind, "help");
  const text = trainHelp();
  for (const o of TRAIN_OPTIONS) assert.ok(text.includes(`--${o.flag}`), `--${o.flag} is listed`);
  assert.match(text, /--lr <number>\s+peak learning rate of the prompt \(default: 0.3\)/);
  assert.match(text, /--lr-offset <number>.*\(default: 0.0001\)/);
  assert.match(text, /--warmup <integer>.*\(default: 500\)/);
  assert.match(text, /--config <file>/);
});

Deno.test("no --model, --task or --config runs the demo; flags are passed to it", async () => {
  assert.deepEqual(await parseTrainArgs([]), { kind: "demo", overrides: {} });
  assert.deepEqual(await parseTrainArgs(["--steps", "50"]), {
    kind: "demo",
    overrides: { steps: "50" },
  });
});

Deno.test("with a task, the paper's recipe fills every other setting", async () => {
  const cmd = await parseTrainArgs(["--task", "rte", "--out", "runs/x", "--batch-size", "8"]);
  assert.equal(cmd.kind, "train");
  if (cmd.kind !== "train") return;
  assert.deepEqual(cmd.config, {
    ...PAPER_DEFAULTS,
    task: "rte",
    out: "runs/x",
    batchSize: 8,
  });
  const f16 = await parseTrainArgs(["--task", "rte", "--weight-dtype", "f16"]);
  assert.equal(f16.kind === "train" && f16.config.weightDtype, "f16");
  const noOut = await parseTrainArgs(["--task", "cb", "--method", "dept"]);
  if (noOut.kind === "train") assert.match(noOut.config.out, /^runs\/cb-dept-\d{8}-\d{6}$/);
  assert.equal(
    defaultRunDir("my/task.json", "pt", new Date("2026-12-02T01:02:03Z")),
    "runs/task-pt-20261202-010203",
  );
});

Deno.test("unknown flags, bad values and impossible combinations are refused, naming the flag", async () => {
  await refused(["--task", "rte", "--epochs", "3"], /Unknown option '--epochs'.*see --help/);
  await refused(["--task", "rte", "--steps", "0"], /--steps: expected a value >= 1, got "0"/);
  await refused(["--task", "rte", "--steps", "ten"], /--steps: expected a number, got "ten"/);
  await refused(["--task", "rte", "--batch-size", "3.5"], /--batch-size: expected an integer/);
  await refused(["--task", "rte", "--lr", "0"], /--lr: expected a value > 0, got "0"/);
  await refused(["--task", "rte", "--dropout", "1.5"], /--dropout: expected a value <= 0.99/);
  await refused(
    ["--task", "rte", "--prompt-init", "zeros"],
    /--prompt-init: expected one of text, random/,
  );
  await refused(
    ["--task", "rte", "--weight-dtype", "bf16"],
    /--weight-dtype: expected one of f32, f16, got "bf16"/,
  );
  await refused(
    ["--task", "rte", "--warmup", "600", "--steps", "500"],
    /--warmup 600 is longer than --steps 500/,
  );
  await refused(["--model", "google-t5/t5-small"], /--model without --task/);
  await refused(["--resume"], /--resume needs --out/);
  await refused(["--resume", "--out", "/nonexistent/run"], /--resume --out \/nonexistent\/run:/);
});

Deno.test("--config reads a JSON file (kebab-case or camelCase keys); flags override it", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "run.json");
  await Deno.writeTextFile(file, JSON.stringify({ task: "cb", "batch-size": 4, lrOffset: 0.001 }));
  const cmd = await parseTrainArgs(["--config", file, "--batch-size", "2", "--out", "r"]);
  assert.equal(cmd.kind, "train");
  if (cmd.kind === "train") {
    assert.equal(cmd.config.task, "cb");
    assert.equal(cmd.config.batchSize, 2);
    assert.equal(cmd.config.lrOffset, 0.001);
  }
  await Deno.writeTextFile(file, JSON.stringify({ task: "cb", learning_rate: 0.1 }));
  await refused(["--config", file], /--config .*run.json: unknown setting "learning_rate"/);
  await Deno.writeTextFile(file, "[1, 2]");
  await refused(["--config", file], /expected a JSON object/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("the method's settings are checked before anything is loaded", async () => {
  const base = { ...PAPER_DEFAULTS, out: "r" };
  await assert.rejects(
    planRun({ ...base, method: "lora" }),
    /--method lora: unknown method "lora"/,
  );
  await assert.rejects(
    planRun({ ...base, method: "pt", rank: 4 }),
    /--rank 4 does not apply to prompt tuning/,
  );
  await assert.rejects(planRun({ ...base, task: "imdb" }), /unknown task "imdb"/);
  const ok = await planRun({ ...base, method: "dept", maxSourceLength: 128 });
  assert.deepEqual(ok.methodConfig, {
    method: "dept",
    promptLength: 60,
    rank: 30,
    maxSourceLength: 128,
    promptInit: "text",
    promptInitText: "Classify this text is postive or not:",
  });
});

Deno.test("a resume with another model, task, method or shape is refused, naming each difference", () => {
  const saved = { ...PAPER_DEFAULTS, out: "r" };
  checkResume(saved, { ...saved, evalEvery: 10, saveEvery: 5 }, "r"); // intervals may change
  assert.throws(
    () => checkResume(saved, { ...saved, model: "google-t5/t5-small", task: "cb", rank: 4 }, "r"),
    (e: unknown) =>
      e instanceof TrainConfigError &&
      /model: checkpoint "google-t5\/t5-base", now "google-t5\/t5-small"/.test(e.message) &&
      /task: checkpoint "rte", now "cb"/.test(e.message) &&
      /rank: checkpoint undefined, now 4/.test(e.message),
  );
  assert.throws(
    () => checkResume(saved, { ...saved, batchSize: 16 }, "r"),
    /batchSize: checkpoint 32, now 16/,
  );
});
