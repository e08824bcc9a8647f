// `sweep slurm` against a real Slurm cluster (a single-node one: tools/slurm_local.sh start, as
// .ci/run does, with SLURM_CONF exported): a job array of three tiny demo runs, one array task
// cancelled with scancel and another's processes killed with SIGKILL mid-run; a re-submission
// holds only those two, resumes them from their checkpoints and finishes the grid without
// redoing the third; the report's numbers are the logs'. Without a cluster the test is ignored
// with a warning; with CI=true it fails instead.
import assert from "node:assert/strict";
import { join } from "node:path";
import { planSweep } from "../../src/sweep/plan.ts";
import { collectReport } from "../../src/sweep/report.ts";
import { readRunState, type RunLock } from "../../src/sweep/run_state.ts";
import { parseSweep } from "../../src/sweep/sweep_file.ts";
import { readCheckpoint } from "../../src/train/checkpoint.ts";
import { type EvalRecord, readLog } from "../../src/train/run_log.ts";
import { testGpu } from "../gpu_support.ts";
import { sweepCli } from "./support.ts";

const required = Deno.env.get("CI") === "true";

async function run(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const t = new TextDecoder();
    return { ok: o.success, out: (t.decode(o.stdout) + t.decode(o.stderr)).trim() };
  } catch (e) {
    return { ok: false, out: (e as Error).message };
  }
}

/** Why no cluster can be used here, or undefined. */
async function noCluster(): Promise<string | undefined> {
  if (testGpu instanceof Error) return `no WebGPU adapter for the runs (${testGpu.message})`;
  const s = await run("sinfo", ["-h", "-o", "%T"]);
  if (!s.ok) return `sinfo failed (${s.out.split("\n")[0] || "no output"})`;
  if (!/idle|mixed|allocated|completing/.test(s.out)) return `no node is up (sinfo: ${s.out})`;
  return undefined;
}

const why = await noCluster();
if (why && !required) {
  console.warn(
    `WARNING: the Slurm cluster tests are ignored: ${why}. Start a single-node cluster with ` +
      "`tools/slurm_local.sh start` (as root) and export the SLURM_CONF it prints, or set " +
      "CI=true to make this a failure",
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, ok: () => Promise<boolean>, seconds = 300): Promise<void> {
  const end = Date.now() + seconds * 1000;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`gave up waiting ${seconds} s for ${what}`);
    await sleep(300);
  }
}

const queued = async (job: string) =>
  (await run("squeue", ["-h", "-j", job, "-o", "%i"])).out !== "";

Deno.test({
  name:
    "sweep slurm on a real cluster: a killed and a cancelled array task are re-submitted alone and resumed; the grid finishes without redoing the rest",
  ignore: why !== undefined && !required,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    if (why) {
      throw new Error(
        `CI=true and no Slurm cluster: ${why}. .ci/run starts one with tools/slurm_local.sh start`,
      );
    }
    const dir = await Deno.makeTempDir({ prefix: "adept_sweep_slurm_" });
    try {
      const sweep = {
        preset: "demo",
        base: {
          steps: 40,
          "batch-size": 8,
          "eval-every": 20,
          "save-every": 5,
          "log-every": 5,
          "eval-limit": 8,
        },
        axes: { seed: [1, 2, 3] },
      };
      const file = join(dir, "tiny.json"), root = join(dir, "runs");
      await Deno.writeTextFile(file, JSON.stringify(sweep));
      const plan = await planSweep(parseSweep(sweep, file), { root });
      const name = `adept-test-${Deno.pid}`;
      const flags = ["--root", root, "--gpus", "0", "--cpus", "1", "--job-name", name];

      // 1. Submit, slowed (200 ms a step) so that the kills land mid-run
      const sub1 = await sweepCli(["slurm", file, ...flags], { ADEPT_TEST_STEP_DELAY_MS: "200" });
      assert.equal(sub1.code, 0, sub1.stdout + sub1.stderr);
      const job1 = /submitted job (\d+): 3 of 3 runs as array 0-2/.exec(sub1.stdout)?.[1];
      assert.ok(job1, sub1.stdout);
      const [r0, r1, r2] = plan.runs;
      const checkpointed = async (d: string) =>
        await readCheckpoint(d).then((c) => c.state.step >= 5, () => false);
      await waitFor(
        "runs 0 and 1 to checkpoint",
        async () => await checkpointed(r0.dir) && await checkpointed(r1.dir),
      );
      for (const r of [r0, r1]) {
        assert.ok(!(await Deno.stat(join(r.dir, "summary.json")).catch(() => null)), "mid-run");
      }
      // task 0 cancelled as users do; task 1's processes die at once (a node lost, an OOM kill)
      assert.ok((await run("scancel", [`${job1}_0`])).ok);
      const lock: RunLock = JSON.parse(await Deno.readTextFile(join(r1.dir, "running.lock")));
      for (const pid of [lock.childPid!, lock.pid]) Deno.kill(pid, "SIGKILL");
      await waitFor(`job ${job1} to leave the queue`, async () => !(await queued(job1)));
      const states1 = await Promise.all(plan.runs.map((r) => readRunState(r.dir)));
      assert.deepEqual(states1.map((s) => s.status), ["interrupted", "killed", "completed"]);

      // 2. Re-submit: the two unfinished runs only, resumed from their checkpoints
      const sub2 = await sweepCli(["slurm", file, ...flags]);
      assert.equal(sub2.code, 0, sub2.stdout + sub2.stderr);
      const m = /submitted job (\d+): 2 of 3 runs as array 0-1 \(1 finished\); script (\S+);/.exec(
        sub2.stdout,
      );
      assert.ok(m, sub2.stdout);
      const script = await Deno.readTextFile(m[2]);
      assert.deepEqual(/RUNS=\(\n([^)]*)\)/.exec(script)![1].trim().split(/\s+/), [
        r0.name,
        r1.name,
      ]);
      await waitFor(`job ${m[1]} to leave the queue`, async () => !(await queued(m[1])));
      const states2 = await Promise.all(plan.runs.map((r) => readRunState(r.dir)));
      assert.deepEqual(states2.map((s) => s.status), ["completed", "completed", "completed"]);
      for (const [r, attempts] of [[r0, 2], [r1, 2], [r2, 1]] as const) {
        const log = await Deno.readTextFile(join(r.dir, "train.log"));
        assert.equal(log.match(/^=== attempt \d+ on /gm)?.length, attempts, `${r.name}:\n${log}`);
        if (attempts === 2) {
          assert.match(log, /=== attempt 2 on .*: resuming from step [1-9]\d* ===/);
        }
      }
      assert.equal(states2[2].outcome?.attempt, 1);

      // 3. The report: the logs' numbers; nothing left to submit
      const rep = await sweepCli(["report", file, "--root", root]);
      assert.equal(rep.code, 0, rep.stderr);
      const report = await collectReport(plan);
      assert.equal(report.chosen.length, 1);
      const tests = await Promise.all(
        plan.runs.map(async (r) =>
          (await readLog(join(r.dir, "log.jsonl"))).filter((x): x is EvalRecord =>
            x.type === "eval" && x.split === "test"
          ).at(-1)!.metrics.accuracy
        ),
      );
      assert.equal(report.chosen[0].test, tests.reduce((a, x) => a + x, 0) / 3);
      assert.match(rep.stdout, /3 runs in .*: 3 completed\./);
      const sub3 = await sweepCli(["slurm", file, ...flags]);
      assert.match(sub3.stdout, /nothing to submit: 3 of 3 runs finished/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
