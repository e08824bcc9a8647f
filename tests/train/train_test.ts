// The trainer end to end on the demo's tiny pretrained T5 and its dictionary task (tasks/default):
// it learns, a run killed with SIGKILL and resumed logs the same losses as an uninterrupted one,
// non-finite steps are skipped and stop the run with a checkpoint, and the saved adapter serves
// `deno task eval` and `deno task predict`.
import assert from "node:assert/strict";
import { join } from "node:path";
import { readCheckpoint } from "../../src/train/checkpoint.ts";
import { PAPER_DEFAULTS, type TrainConfig } from "../../src/train/config.ts";
import { DEMO_PRESET, frozenEvaluation } from "../../src/train/demo.ts";
import { evaluateAdapter, predict } from "../../src/train/inference.ts";
import { readLog, type TrainRecord } from "../../src/train/run_log.ts";
import { train } from "../../src/train/trainer.ts";
import { gpuTest } from "../gpu_support.ts";
import { withTempDir } from "../support/temp.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/**
 * A short run of the demo preset (same code path): 200 steps of batch 16, with the offset
 * network's learning rate at 3e-2 so that so few steps suffice (tasks/default/README.md: 84-86%
 * in PyTorch over three seeds).
 */
function shortConfig(out: string, extra: Partial<TrainConfig> = {}): TrainConfig {
  return {
    ...DEMO_PRESET,
    out,
    steps: 200,
    warmup: 20,
    batchSize: 16,
    lrOffset: 3e-2,
    logEvery: 10,
    evalEvery: 100,
    saveEvery: 100,
    evalLimit: 100,
    ...extra,
  };
}

const quiet = { print: () => {}, bar: false };

gpuTest(
  "ADePT learns the new dictionary: held-out exact match far above the frozen model's 0%",
  async (gpu) => {
    const out = await Deno.makeTempDir();
    const r = await train(shortConfig(out), { ...quiet, gpu });
    assert.equal(r.status, "completed");
    assert.ok(r.best && r.test, "a best step and a test score");
    // The frozen model and an untrained prompt score 0 on this task (tasks/default/README.md); a
    // broken gradient or optimizer cannot reach this.
    assert.ok(r.test!.accuracy >= 50, `test exact match ${r.test!.accuracy}% after 200 steps`);
    const log = await readLog(join(out, "log.jsonl"));
    const losses = log.filter((x): x is TrainRecord => x.type === "train").map((x) => x.loss);
    assert.ok(losses.at(-1)! < losses[0] / 5, `the loss falls: ${losses[0]} -> ${losses.at(-1)}`);
    for (
      const f of [
        "config.json",
        "summary.json",
        "loss.svg",
        "validation.svg",
        "checkpoint.safetensors",
        "best/adapter_config.json",
      ]
    ) {
      assert.ok((await Deno.stat(join(out, f))).isFile, `${f} is written`);
    }
    // the best adapter serves eval and predict
    const ev = await evaluateAdapter({
      adapter: join(out, "best"),
      split: "test",
      limit: 100,
      gpu,
    });
    assert.equal(ev.metrics.accuracy, r.test!.accuracy);
    const rows = (await Deno.readTextFile(join(ROOT, "tasks/default/data/test.jsonl"))).trim()
      .split("\n")
      .slice(0, 4).map((l) => JSON.parse(l));
    const labels = await predict({
      adapter: join(out, "best"),
      texts: rows.map((x) => x.words),
      gpu,
    });
    assert.deepEqual(labels, ev.predictions.slice(0, 4));
    await Deno.remove(out, { recursive: true });
  },
);

/**
 * Runs `deno task train` in a subprocess with the given flags; `slow` pauses 100 ms after every
 * step so that an interruption lands mid-run on any machine.
 */
function trainProcess(args: string[], slow = false): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "tasks/train.ts"), ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: {
      ...Deno.env.toObject(),
      NO_COLOR: "1",
      ADEPT_TEST_STEP_DELAY_MS: slow ? "100" : "0",
    },
  }).spawn();
}

const FLAGS = [
  "--model",
  join(ROOT, "tasks/default/model"),
  "--task",
  join(ROOT, "tasks/default/task.json"),
  "--method",
  "adept",
  "--prompt-length",
  "8",
  "--rank",
  "32",
  "--prompt-init-text",
  "translate the words",
  "--lr-offset",
  "0.01",
  "--warmup",
  "5",
  "--steps",
  "40",
  "--batch-size",
  "16",
  "--dropout",
  "0.1",
  "--log-every",
  "5",
  "--save-every",
  "10",
  "--eval-every",
  "20",
  "--eval-limit",
  "20",
];

gpuTest(
  "a run killed with SIGKILL and resumed logs exactly the losses of an uninterrupted run",
  async () => {
    const base = await Deno.makeTempDir();
    const full = join(base, "full"), killed = join(base, "killed");
    const a = await trainProcess([...FLAGS, "--out", full]).output();
    assert.equal(a.code, 0, new TextDecoder().decode(a.stderr));
    const p = trainProcess([...FLAGS, "--out", killed], true);
    // wait until the checkpoint of step 20 or later exists, then kill mid-run
    for (let i = 0; i < 1200; i++) {
      const step = await readCheckpoint(killed).then((c) => c.state.step, () => 0);
      if (step >= 20) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    p.kill("SIGKILL");
    await p.output();
    const at = (await readCheckpoint(killed)).state.step;
    assert.ok(at >= 20 && at < 40, `killed at checkpoint step ${at}`);
    const b = await trainProcess(["--resume", "--out", killed]).output();
    assert.equal(b.code, 0, new TextDecoder().decode(b.stderr));
    assert.match(new TextDecoder().decode(b.stdout), new RegExp(`resuming .* at step ${at} of 40`));
    const losses = async (dir: string) =>
      (await readLog(join(dir, "log.jsonl"))).filter((r): r is TrainRecord => r.type === "train")
        .map((r) => [r.step, r.loss, r.gradNorm]);
    const want = await losses(full);
    assert.equal(want.length, 8);
    assert.deepEqual(await losses(killed), want, "bit-identical losses and gradient norms");
    const evals = async (dir: string) =>
      (await readLog(join(dir, "log.jsonl"))).filter((r) => r.type === "eval").map((r) =>
        JSON.stringify([r.step, (r as { metrics: unknown }).metrics])
      );
    assert.deepEqual(await evals(killed), await evals(full));
    // a resume with another shape is refused, naming it
    const c = await trainProcess(["--resume", "--out", killed, "--batch-size", "8"]).output();
    assert.equal(c.code, 2);
    assert.match(new TextDecoder().decode(c.stderr), /batchSize: checkpoint 16, now 8/);
    await Deno.remove(base, { recursive: true });
  },
);

gpuTest(
  "SIGTERM stops a run at a step boundary with a checkpoint; --resume finishes it",
  async () => {
    const out = await Deno.makeTempDir();
    const p = trainProcess([...FLAGS, "--save-every", "1000", "--out", out], true);
    // wait for the first logged step, then ask it to stop
    for (let i = 0; i < 1200; i++) {
      if ((await readLog(join(out, "log.jsonl")).catch(() => [])).length > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    p.kill("SIGTERM");
    const r = await p.output();
    assert.equal(r.code, 130, new TextDecoder().decode(r.stderr));
    assert.match(
      new TextDecoder().decode(r.stdout),
      /SIGTERM: stopped at step \d+ with a checkpoint; continue with --resume/,
    );
    const at = (await readCheckpoint(out)).state.step;
    assert.ok(at >= 5 && at < 40);
    const b = await trainProcess(["--resume", "--out", out]).output();
    assert.equal(b.code, 0, new TextDecoder().decode(b.stderr));
    assert.equal((await readCheckpoint(out)).state.step, 40);
    await Deno.remove(out, { recursive: true });
  },
);

gpuTest(
  "non-finite steps are skipped and counted; too many in a row stop the run with a checkpoint",
  async (gpu) => {
    const out = await Deno.makeTempDir();
    // learning rates of 1e38 overflow the parameters within a few steps
    const r = await train(
      shortConfig(out, {
        lr: 1e38,
        lrOffset: 1e38,
        warmup: 0,
        steps: 60,
        maxSkippedSteps: 5,
        logEvery: 5,
      }),
      { ...quiet, gpu },
    );
    assert.equal(r.status, "diverged");
    assert.ok(r.skippedSteps >= 5, `${r.skippedSteps} steps skipped`);
    const ck = await readCheckpoint(out);
    assert.equal(ck.state.step, r.steps);
    assert.ok(ck.state.skippedInARow >= 5);
    const log = (await readLog(join(out, "log.jsonl"))).filter((x): x is TrainRecord =>
      x.type === "train"
    );
    assert.ok(log.some((x) => x.skippedInInterval > 0), "the log counts skipped steps");
    await Deno.remove(out, { recursive: true });
  },
);

Deno.test("PAPER_DEFAULTS are docs/method.md's recipe", () => {
  assert.equal(PAPER_DEFAULTS.lr, 0.3);
  assert.equal(PAPER_DEFAULTS.lrOffset, 1e-4);
  assert.equal(PAPER_DEFAULTS.warmup, 500);
  assert.equal(PAPER_DEFAULTS.batchSize, 32);
  assert.equal(PAPER_DEFAULTS.evalEvery, 1000);
  assert.equal(PAPER_DEFAULTS.seed, 42);
  assert.equal(PAPER_DEFAULTS.steps, 30_000);
});

gpuTest(
  "the demo's frozen-model baseline is scored on the runs' examples (evalLimit, evalBatchSize)",
  async (gpu) => {
    for (const [evalLimit, evalBatchSize] of [[3, 2], [7, 32]]) {
      const r = await frozenEvaluation(gpu, {
        ...DEMO_PRESET,
        out: "unused",
        evalLimit,
        evalBatchSize,
      });
      assert.equal(r.examples, evalLimit);
      assert.equal(r.predictions.length, evalLimit);
      assert.equal(r.score, 0, "the frozen model does not know the new dictionary");
    }
  },
);

gpuTest(
  "--weight-dtype f16 trains on f16 projections: the same losses as f32 within f16's rounding",
  (gpu) =>
    withTempDir(async (tmp) => {
      const losses: number[][] = [];
      for (const weightDtype of ["f32", "f16"] as const) {
        const out = join(tmp, weightDtype);
        const config = shortConfig(out, { steps: 10, logEvery: 1, evalEvery: 10, weightDtype });
        const r = await train(config, { ...quiet, gpu });
        assert.equal(r.status, "completed");
        const log = await readLog(join(out, "log.jsonl"));
        losses.push(log.filter((x): x is TrainRecord => x.type === "train").map((x) => x.loss));
      }
      assert.equal(losses[1].length, 10);
      // The first step's loss differs by f16's rounding of the weights only (tests/model/
      // t5_f16_test.ts: 1-4e-5 on the tiny T5s); the runs then drift apart slowly.
      losses[0].forEach((want, i) => {
        const rel = Math.abs(losses[1][i] - want) / Math.abs(want);
        const tol = i === 0 ? 2e-3 : 3e-2;
        assert.ok(rel < tol, `step ${i + 1}: f16 loss ${losses[1][i]} vs f32 ${want}`);
      });
      assert.notDeepEqual(losses[1], losses[0], "the f16 run really used f16 weights");
    }),
);
