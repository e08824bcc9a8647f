// `sweep run` for real on the demo's tiny T5 and dictionary task (tasks/default): a grid of two
// methods x two learning rates of the offset network, two runs at a time. Ctrl-C stops it with
// checkpoints; running it again resumes the interrupted runs and finishes the grid; a third run
// does nothing. The report picks, per method, the run an independent reading of the logs picks,
// with the logs' numbers; each run's measured GPU memory is within the up-front estimate.
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadT5Config } from "../../src/model/t5_config.ts";
import { estimateRunMemory } from "../../src/sweep/memory.ts";
import { planSweep } from "../../src/sweep/plan.ts";
import { collectReport, reportMarkdown } from "../../src/sweep/report.ts";
import { readRunState } from "../../src/sweep/run_state.ts";
import { parseSweep } from "../../src/sweep/sweep_file.ts";
import { readCheckpoint } from "../../src/train/checkpoint.ts";
import { type EvalRecord, readLog } from "../../src/train/run_log.ts";
import type { TrainResult } from "../../src/train/trainer.ts";
import { gpuTest } from "../gpu_support.ts";
import { ROOT, sweepCli, sweepCommand } from "./support.ts";

// 150 steps of batch 16: ADePT at the offset network's learning rate 3e-2 reaches about 40%
// validation exact match here, at 1e-3 it stays at 0 (tasks/default/README.md: the dictionary
// needs the offset network), as DePT does (a position offset cannot remap words). The better
// learning rate is planned second, so that picking the first run cannot pass.
const SWEEP = {
  preset: "demo",
  base: {
    steps: 150,
    "batch-size": 16,
    warmup: 10,
    "eval-every": 50,
    "save-every": 25,
    "log-every": 25,
    "eval-limit": 50,
  },
  axes: { method: ["adept", "dept"], "lr-offset": [1e-3, 3e-2] },
};

gpuTest(
  "sweep run: 2 methods x 2 learning rates on the demo; Ctrl-C stops cleanly, a rerun continues; the report's best runs and numbers are the logs'",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "adept_sweep_local_" });
    try {
      const file = join(dir, "demo.json"), root = join(dir, "runs");
      await Deno.writeTextFile(file, JSON.stringify(SWEEP));
      const plan = await planSweep(parseSweep(SWEEP, file), { root });
      assert.equal(plan.runs.length, 4);
      const args = ["run", file, "--root", root, "--jobs", "2"];

      // 1. Ctrl-C once a run has a checkpoint (steps slowed so that it lands mid-run anywhere)
      const child = sweepCommand(args, { ADEPT_TEST_STEP_DELAY_MS: "40" }).spawn();
      const deadline = Date.now() + 300_000;
      let step = 0;
      while (step < 25 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        for (const r of plan.runs) {
          step = Math.max(step, await readCheckpoint(r.dir).then((c) => c.state.step, () => 0));
        }
      }
      child.kill("SIGINT"); // the sweep process only: it stops its trainers itself
      const first = await child.output();
      const out1 = new TextDecoder().decode(first.stdout);
      assert.equal(first.code, 130, out1 + new TextDecoder().decode(first.stderr));
      assert.match(out1, /\[sweep\] stopping: the running trainers write a checkpoint/);
      const states1 = await Promise.all(plan.runs.map((r) => readRunState(r.dir)));
      assert.deepEqual(states1.map((s) => s.status), [
        "interrupted",
        "interrupted",
        "pending",
        "pending",
      ]);
      for (const r of plan.runs.slice(0, 2)) {
        const ck = await readCheckpoint(r.dir);
        assert.ok(
          ck.state.step > 0 && ck.state.step < 150,
          `${r.name} stopped mid-run (${ck.state.step})`,
        );
        assert.ok(
          !(await Deno.stat(join(r.dir, "running.lock")).catch(() => null)),
          "lock released",
        );
      }

      // 2. Again: the interrupted runs resume from their checkpoints, the others start
      const second = await sweepCli(args);
      assert.equal(second.code, 0, second.stdout + second.stderr);
      assert.match(
        second.stdout,
        /4 runs in .*: 0 finished, 0 running elsewhere, 4 to run, 2 at a time/,
      );
      const states2 = await Promise.all(plan.runs.map((r) => readRunState(r.dir)));
      assert.deepEqual(states2.map((s) => s.status), [
        "completed",
        "completed",
        "completed",
        "completed",
      ]);
      for (const [i, r] of plan.runs.entries()) {
        const log = await Deno.readTextFile(join(r.dir, "train.log"));
        assert.equal(states2[i].outcome?.attempt, i < 2 ? 2 : 1);
        assert.equal(
          /=== attempt 2 .*: resuming from step \d+ ===/.test(log),
          i < 2,
          `${r.name}: ${log.slice(0, 300)}`,
        );
      }

      // 3. Once more: nothing to do, nothing touched
      const mtimes = await Promise.all(
        plan.runs.map((r) =>
          Deno.stat(join(r.dir, "summary.json")).then((s) => s.mtime?.getTime())
        ),
      );
      const third = await sweepCli(args);
      assert.equal(third.code, 0);
      assert.match(third.stdout, /4 finished, 0 running elsewhere, 0 to run/);
      const after = await Promise.all(
        plan.runs.map((r) =>
          Deno.stat(join(r.dir, "summary.json")).then((s) => s.mtime?.getTime())
        ),
      );
      assert.deepEqual(after, mtimes);

      // 4. The report: per method, the run with the best validation score in its log
      const report = await collectReport(plan);
      const fromLog = await Promise.all(plan.runs.map(async (r) => {
        const log = (await readLog(join(r.dir, "log.jsonl"))).filter((x): x is EvalRecord =>
          x.type === "eval"
        );
        const val = Math.max(...log.filter((x) => x.split === "validation").map((x) => x.score));
        const test = log.filter((x) => x.split === "test").at(-1)!.metrics.accuracy;
        return { run: r, val, test };
      }));
      for (const method of ["adept", "dept"]) {
        const mine = fromLog.filter((x) => x.run.config.method === method);
        const best = mine.reduce((a, x) => x.val > a.val ? x : a); // ties: the first planned
        const chosen = report.chosen.find((c) => c.method === method)!;
        assert.equal(chosen.runs.length, 1);
        assert.equal(chosen.runs[0].run.id, best.run.id, `${method}: the best run`);
        assert.equal(chosen.validation, best.val);
        assert.equal(chosen.test, best.test);
      }
      const adept = fromLog.filter((x) => x.run.config.method === "adept");
      assert.ok(
        adept[1].val > adept[0].val,
        `ADePT learns at lr-offset 3e-2 (${adept[1].val}) and not at 1e-3 (${adept[0].val})`,
      );
      assert.equal(report.chosen.find((c) => c.method === "adept")!.settings["lr-offset"], 0.03);
      const md = reportMarkdown(report);
      const row = md.split("\n").find((l) => l.startsWith("| ADePT (ours)"))!;
      assert.equal(row.split("|")[2].trim(), adept[1].test.toFixed(2), row);
      const cli = await sweepCli(["report", file, "--root", root]);
      assert.equal(cli.code, 0, cli.stderr);
      assert.ok(cli.stdout.startsWith(md), "the command prints the same report");

      // 5. Each run's peak GPU memory is within the estimate `--jobs` is checked with
      const t5 = await loadT5Config(join(ROOT, "tasks/default/model/config.json"));
      for (const r of plan.runs) {
        const summary: TrainResult = JSON.parse(
          await Deno.readTextFile(join(r.dir, "summary.json")),
        );
        const est = await estimateRunMemory(r.config, t5);
        assert.ok(
          summary.peakGpuBytes <= est.total,
          `${r.name}: peak ${summary.peakGpuBytes} <= estimate ${est.total}`,
        );
        assert.ok(
          est.total < 4 * summary.peakGpuBytes,
          `${r.name}: the estimate ${est.total} is not wild`,
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
