// `sweep slurm` without a cluster: the batch script's requests follow the flags (generated),
// array task i runs the i-th unfinished run (the script run by bash with a stand-in for deno), a
// re-submission holds only the runs not finished or running, bad flags and a missing sbatch are
// refused naming the fix.
import assert from "node:assert/strict";
import { hostname } from "node:os";
import { join } from "node:path";
import { sweepMain } from "../../src/sweep/cli.ts";
import { planSweep } from "../../src/sweep/plan.ts";
import { parseSweep } from "../../src/sweep/sweep_file.ts";
import { withTempDir } from "../support/temp.ts";
import { Gen, sweepCli, writeFakeRun } from "./support.ts";

async function slurm(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const code = await sweepMain(["slurm", ...args], { print: (l) => lines.push(l) });
  return { code, out: lines.join("\n") };
}

const DOC = { axes: { task: ["rte", "cb"], lr: [0.3, 0.4], seed: [1, 2] } };

Deno.test("the batch script requests what the flags say; array task i runs run i (generated)", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/g.json`, JSON.stringify(DOC));
    const plan = await planSweep(parseSweep(DOC, `${dir}/g.json`), { root: `${dir}/runs` });
    const g = new Gen(31);
    for (let i = 0; i < 10; i++) {
      const args = [`${dir}/g.json`, "--root", `${dir}/runs`, "--dry-run", "--deno", "/bin/echo"];
      const gpus = g.int(3), parallel = g.int(2) ? 1 + g.int(4) : undefined;
      args.push("--gpus", String(gpus));
      if (parallel) args.push("--parallel", String(parallel));
      const time = g.int(2) ? g.pick(["90", "12:00:00", "2-00:00:00", "1-12"]) : undefined;
      if (time) args.push("--time", time);
      const mem = g.int(2) ? g.pick(["16G", "32000M", "64g"]) : undefined;
      if (mem) args.push("--mem", mem);
      const cpus = g.int(2) ? 1 + g.int(16) : undefined;
      if (cpus) args.push("--cpus", String(cpus));
      if (g.int(2)) args.push("--partition", "gpu", "--account", "ml");
      if (g.int(2)) args.push("--sbatch-arg=--qos=high", "--sbatch-arg=--constraint=a100");
      const { code, out: script } = await slurm(args);
      assert.equal(code, 0, script);
      const sb = script.split("\n").filter((l) => l.startsWith("#SBATCH ")).map((l) => l.slice(8));
      assert.ok(
        sb.includes(`--array=0-${plan.runs.length - 1}${parallel ? `%${parallel}` : ""}`),
        sb.join(" "),
      );
      assert.equal(sb.includes(`--gres=gpu:${gpus}`), gpus > 0);
      assert.equal(sb.some((s) => s.startsWith("--gres")), gpus > 0);
      assert.equal(sb.includes(`--time=${time}`), time !== undefined);
      assert.equal(sb.includes(`--mem=${mem}`), mem !== undefined);
      assert.ok(sb.includes(`--cpus-per-task=${cpus ?? 4}`));
      assert.equal(
        sb.includes("--partition=gpu") && sb.includes("--account=ml"),
        args.includes("gpu"),
      );
      assert.equal(
        sb.includes("--qos=high") && sb.includes("--constraint=a100"),
        args.some((a) => a.includes("qos")),
      );
      assert.ok(sb.includes(`--output=${dir}/runs/slurm/%A_%a.out`));
      assert.ok(sb.includes(`--chdir=${Deno.cwd()}`));
      // run the script as Slurm would, for two array tasks, with /bin/echo standing in for deno
      for (const t of [0, plan.runs.length - 1]) {
        const out = await new Deno.Command("bash", {
          args: ["-c", script],
          env: { SLURM_ARRAY_TASK_ID: String(t) },
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert.ok(out.success, new TextDecoder().decode(out.stderr));
        const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
        assert.match(lines[1], new RegExp(`/tasks/sweep\\.ts exec ${plan.runs[t].dir}$`));
      }
    }
  });
});

Deno.test("a re-submission holds only the runs neither finished nor running", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/g.json`, JSON.stringify(DOC));
    const plan = await planSweep(parseSweep(DOC, `${dir}/g.json`), { root: `${dir}/runs` });
    const g = new Gen(32);
    const expected: string[] = [];
    for (const run of plan.runs) {
      const kind = g.pick(
        [
          "completed",
          "diverged",
          "crashed",
          "interrupted",
          "pending",
          "running",
          "killed",
        ] as const,
      );
      if (kind === "running" || kind === "killed") {
        await writeFakeRun(run, { status: "pending" });
        const pid = kind === "running" ? Deno.pid : 2 ** 22 + 3;
        await Deno.writeTextFile(
          join(run.dir, "running.lock"),
          JSON.stringify({ host: hostname(), pid, attempt: 1, startedAt: "2026-01-01T00:00:00Z" }),
        );
      } else if (kind !== "pending" || g.int(2)) {
        await writeFakeRun(run, { status: kind, validation: [1], test: 1 });
      }
      if (!["completed", "diverged", "running"].includes(kind)) expected.push(run.name);
    }
    const { code, out } = await slurm([`${dir}/g.json`, "--root", `${dir}/runs`, "--dry-run"]);
    assert.equal(code, 0);
    if (expected.length === 0) {
      assert.match(out, /nothing to submit/);
      return;
    }
    assert.ok(out.includes(`#SBATCH --array=0-${expected.length - 1}\n`), out);
    const runs = /RUNS=\(\n([^)]*)\)/.exec(out)![1].trim().split(/\s+/);
    assert.deepEqual(runs, expected);
    assert.match(out, new RegExp(`${expected.length} unfinished of ${plan.runs.length} runs`));
  });
  await withTempDir(async (dir) => {
    const doc = { axes: { seed: [1, 2] } };
    await Deno.writeTextFile(`${dir}/g.json`, JSON.stringify(doc));
    const plan = await planSweep(parseSweep(doc, `${dir}/g.json`), { root: `${dir}/runs` });
    for (const run of plan.runs) {
      await writeFakeRun(run, { status: "completed", validation: [1], test: 1 });
    }
    const { code, out } = await slurm([`${dir}/g.json`, "--root", `${dir}/runs`]);
    assert.equal(code, 0);
    assert.match(out, /nothing to submit: 2 of 2 runs finished/);
  });
});

Deno.test("bad Slurm flags are refused before anything is written, naming the flag", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/g.json`, JSON.stringify(DOC));
    const f = [`${dir}/g.json`, "--root", `${dir}/runs`];
    for (
      const [extra, re] of [
        [["--time", "soon"], /--time "soon": expected Slurm's format/],
        [["--mem", "lots"], /--mem "lots": expected a size/],
        [["--parallel", "0"], /--parallel "0": expected a whole number >= 1/],
        [["--cpus", "0"], /--cpus "0": expected a whole number >= 1/],
        [["--gpus", "1.5"], /--gpus "1.5": expected a whole number >= 0/],
        [["--gpu", "1"], /Unknown option '--gpu'/],
      ] as const
    ) {
      const { code, out } = await slurm([...f, ...extra]);
      assert.equal(code, 2, extra.join(" "));
      assert.match(out, re);
      assert.ok(!(await Deno.stat(`${dir}/runs`).catch(() => null)), "nothing is written");
    }
  });
});

Deno.test("without sbatch, sweep slurm names the package to install (slurm-wlm)", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/g.json`, JSON.stringify(DOC));
    const r = await sweepCli(["slurm", `${dir}/g.json`, "--root", `${dir}/runs`], {
      PATH: `${dir}/empty`,
    });
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout, /^error: sbatch was not found on PATH: .*apt-get install slurm-wlm/m);
    assert.match(r.stdout, /--dry-run/);
    assert.ok(!(await Deno.stat(`${dir}/runs`).catch(() => null)), "nothing is written");
  });
});
