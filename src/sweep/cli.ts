/**
 * The command line of `deno task sweep`, as a library function so it can be tested:
 * `plan`, `run`, `slurm`, `k8s`, `report` (and `exec`, which array tasks and pods call), each
 * with its flags parsed by `node:util` `parseArgs` and checked before anything runs.
 *
 * @module
 */

import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { isUserError } from "../train/cli_errors.ts";
import { SweepError } from "./errors.ts";
import { executeRun } from "./execute.ts";
import { k8sManifests, manifestsYaml } from "./k8s.ts";
import { planStates, prepareRunDir, runSweep } from "./local.ts";
import { planSweep, runSettings, type SweepPlan } from "./plan.ts";
import { collectReport, reportMarkdown, writeReport } from "./report.ts";
import { isFinished, type RunState } from "./run_state.ts";
import { findSbatch, slurmScript, submitSlurm } from "./slurm.ts";
import { loadSweepFile } from "./sweep_file.ts";

/** The `--help` text. */
export const SWEEP_HELP: string = `deno task sweep <command> FILE [flags]

Runs a grid of training runs (a sweep file: a base config and axes, JSON or YAML) and reports
the best settings per task and method, as the paper's tables do.

Commands:
  plan FILE      print the runs: stable id (a hash of the run's config), axis values, status
                 --json            the plan as JSON
  run FILE       run the unfinished runs on this machine, one trainer process each; finished
                 runs are skipped, interrupted ones resumed; Ctrl-C stops cleanly
                 --jobs N          runs at once (checked against the adapter's memory; 1)
                 --gpu-memory GiB  the adapter's memory, where WebGPU cannot tell
  slurm FILE     submit the unfinished runs as one Slurm job array (sbatch)
                 --dry-run         print the batch script instead of submitting it
                 --gpus N (1)  --cpus N (4)  --mem SIZE  --time LIMIT  --parallel P (%P)
                 --partition P  --account A  --job-name NAME  --sbatch-arg "--qos=high" ...
                 --deno PATH       the Deno binary on the compute nodes (this one)
  k8s FILE       print a Kubernetes Indexed Job (batch/v1) and its ConfigMap for the unfinished
                 runs (not applied: pipe it to kubectl apply -f -)
                 --image IMAGE (required)  --name  --namespace  --parallel P  --gpus N (1)
                 --cpus Q (4)  --memory Q  --pvc CLAIM  --mount PATH (/runs)  --workdir PATH (/app)
  report FILE    the results: prints Markdown and writes report.md, report.csv, report.svg
                 --out DIR         where (<root>/report)
  exec DIR       run one prepared run folder (what array tasks and pods call)

Every command takes --root DIR (the run root instead of the sweep file's) and -h, --help.

Examples:
  deno task sweep plan sweeps/demo.yaml
  deno task sweep run sweeps/demo.yaml --jobs 2
  deno task sweep slurm sweeps/glue.yaml --gpus 1 --time 12:00:00 --parallel 8 --dry-run
  deno task sweep report sweeps/glue.yaml`;

const COMMANDS = ["plan", "run", "slurm", "k8s", "report", "exec"] as const;

type Flags = Record<string, string | boolean | string[] | undefined>;

const FLAGS: Record<string, Record<string, { type: "string" | "boolean"; multiple?: boolean }>> = {
  plan: { json: { type: "boolean" } },
  run: { jobs: { type: "string" }, "gpu-memory": { type: "string" } },
  slurm: {
    "dry-run": { type: "boolean" },
    gpus: { type: "string" },
    cpus: { type: "string" },
    mem: { type: "string" },
    time: { type: "string" },
    parallel: { type: "string" },
    partition: { type: "string" },
    account: { type: "string" },
    "job-name": { type: "string" },
    "sbatch-arg": { type: "string", multiple: true },
    deno: { type: "string" },
  },
  k8s: {
    image: { type: "string" },
    name: { type: "string" },
    namespace: { type: "string" },
    parallel: { type: "string" },
    gpus: { type: "string" },
    cpus: { type: "string" },
    memory: { type: "string" },
    pvc: { type: "string" },
    mount: { type: "string" },
    workdir: { type: "string" },
  },
  report: { out: { type: "string" } },
  exec: {},
};

function int(flags: Flags, name: string, min: number): number | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== "string" || v.trim() === "" || !Number.isInteger(n) || n < min) {
    throw new SweepError(`--${name} ${JSON.stringify(v)}: expected a whole number >= ${min}`);
  }
  return n;
}

/** Where to print; tests collect the lines. */
export interface SweepIo {
  /** Standard output lines. @default {console.log} */
  print?: (line: string) => void;
  /** Stop on SIGINT / SIGTERM (`run`, `exec`). @default {true} */
  handleSignals?: boolean;
}

function table(header: string[], rows: string[][]): string[] {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => "  " + cells.map((c, i) => c.padEnd(w[i])).join("  ").trimEnd();
  return [line(header), ...rows.map(line)];
}

function planLines(plan: SweepPlan, states: RunState[]): string[] {
  const { spec } = plan;
  const axes = spec.axes.map((a) => a.flag);
  const lines = [
    `sweep ${spec.name} (${spec.source}): ${plan.runs.length} runs in ${plan.root}; axes ${
      spec.axes.map((a) => `${a.flag} (${a.values.length})`).join(" x ")
    }`,
    ...table(
      ["#", "id", ...axes, "status"],
      plan.runs.map((r, i) => [
        String(r.index),
        r.id,
        ...axes.map((a) => r.values[a] === undefined ? "-" : String(r.values[a])),
        states[i].status,
      ]),
    ),
  ];
  for (const n of plan.notes) lines.push(`note: ${n}`);
  return lines;
}

/**
 * Runs `deno task sweep` with `args` and returns the exit status: 0 done, 1 runs crashed, 2 a
 * refused file or flag (the message says which), 130 stopped by a signal. Errors a user can act
 * on are printed as one line; others are thrown.
 *
 * @example
 * ```ts
 * import { sweepMain } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/g.yaml`, "axes:\n  task: [rte, cb]\n  lr: [0.3, 0.4]\n");
 * const lines: string[] = [];
 * const print = (l: string) => lines.push(l);
 * assert.equal(await sweepMain(["plan", `${dir}/g.yaml`, "--root", `${dir}/runs`], { print }), 0);
 * assert.match(lines[0], /4 runs in/);
 * assert.equal(await sweepMain(["plan", `${dir}/g.yaml`, "--jbos", "2"], { print }), 2);
 * assert.match(lines.at(-1)!, /--jbos/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function sweepMain(args: readonly string[], io: SweepIo = {}): Promise<number> {
  const print = io.print ?? ((l: string) => console.log(l));
  try {
    return await main(args, print, io.handleSignals ?? true);
  } catch (e) {
    if (e instanceof SweepError || isUserError(e)) {
      print(`error: ${(e as Error).message}`);
      return 2;
    }
    throw e;
  }
}

async function main(
  args: readonly string[],
  print: (l: string) => void,
  handleSignals: boolean,
): Promise<number> {
  const [command, ...rest] = args;
  if (command === undefined || command === "help" || command === "-h" || command === "--help") {
    print(SWEEP_HELP);
    return command === undefined ? 2 : 0;
  }
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new SweepError(
      `unknown command ${JSON.stringify(command)}; the commands are ${
        COMMANDS.filter((c) => c !== "exec").join(", ")
      } (see --help)`,
    );
  }
  let values: Flags, positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...rest],
      options: {
        ...FLAGS[command],
        root: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: true,
    }));
  } catch (e) {
    const msg = (e as Error).message.split("\n")[0].replace(/\. To specify.*$/s, "");
    throw new SweepError(`sweep ${command}: ${msg}; see deno task sweep --help`);
  }
  if (values.help) {
    print(SWEEP_HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new SweepError(
      `sweep ${command} takes one ${command === "exec" ? "run folder" : "sweep file"}, got ${
        positionals.length ? positionals.map((p) => JSON.stringify(p)).join(" ") : "none"
      }; see deno task sweep --help`,
    );
  }
  const target = positionals[0];
  if (command === "exec") return await execCommandMain(target, print, handleSignals);

  const spec = await loadSweepFile(target);
  const plan = await planSweep(spec, { root: values.root as string | undefined });
  const states = await planStates(plan);
  const unfinished = plan.runs.filter((_, i) =>
    !isFinished(states[i].status) && states[i].status !== "running"
  );

  switch (command) {
    case "plan": {
      if (values.json) {
        print(JSON.stringify(
          {
            name: spec.name,
            root: plan.root,
            runs: plan.runs.map((r, i) => ({
              index: r.index,
              id: r.id,
              name: r.name,
              dir: r.dir,
              values: r.values,
              settings: runSettings(r.config),
              status: states[i].status,
            })),
            notes: plan.notes,
          },
          null,
          2,
        ));
      } else for (const l of planLines(plan, states)) print(l);
      return 0;
    }
    case "run": {
      const jobs = int(values, "jobs", 1) ?? 1;
      const gib = values["gpu-memory"];
      let gpuMemory: number | undefined;
      if (gib !== undefined) {
        gpuMemory = Number(gib) * 2 ** 30;
        if (!(gpuMemory > 0)) {
          throw new SweepError(`--gpu-memory ${JSON.stringify(gib)}: expected GiB, e.g. 80`);
        }
      }
      const r = await runSweep(plan, { jobs, gpuMemory, print, handleSignals });
      if (r.stopped) return 130;
      return r.states.some((s) => ["crashed", "killed", "refused"].includes(s.status)) ? 1 : 0;
    }
    case "slurm": {
      const running = states.filter((s) => s.status === "running").length;
      if (unfinished.length === 0) {
        print(
          `sweep ${spec.name}: nothing to submit: ${
            plan.runs.length - running
          } of ${plan.runs.length} ` +
            `runs finished${running ? `, ${running} running` : ""}`,
        );
        return 0;
      }
      const script = slurmScript(plan, unfinished, {
        jobName: values["job-name"] as string | undefined,
        gpus: int(values, "gpus", 0),
        cpus: int(values, "cpus", 1),
        mem: values.mem as string | undefined,
        time: values.time as string | undefined,
        parallel: int(values, "parallel", 1),
        partition: values.partition as string | undefined,
        account: values.account as string | undefined,
        extra: values["sbatch-arg"] as string[] | undefined,
        deno: values.deno as string | undefined,
      });
      if (values["dry-run"]) {
        print(script);
        return 0;
      }
      await findSbatch(); // before anything is written
      for (const r of unfinished) await prepareRunDir(r);
      const { jobId, scriptPath } = await submitSlurm(script, plan.root);
      const others = plan.runs.length - unfinished.length;
      print(
        `submitted job ${jobId}: ${unfinished.length} of ${plan.runs.length} runs as array 0-${
          unfinished.length - 1
        }${
          others ? ` (${others - running} finished${running ? `, ${running} running` : ""})` : ""
        }; script ${scriptPath}; logs ${join(plan.root, "slurm", `${jobId}_<i>.out`)}`,
      );
      print(`follow it with: squeue -j ${jobId}; then: deno task sweep report ${target}`);
      return 0;
    }
    case "k8s": {
      // The run root is usually on the cluster's volume: runs this machine cannot see are all
      // included (a finished one exits at once).
      const runs = existsSync(plan.root) ? unfinished : plan.runs;
      if (runs.length === 0) {
        print(`# sweep ${spec.name}: every run is finished or running; nothing to do`);
        return 0;
      }
      print(
        manifestsYaml(k8sManifests(plan, runs, {
          image: values.image as string,
          name: values.name as string | undefined,
          namespace: values.namespace as string | undefined,
          parallel: int(values, "parallel", 1),
          gpus: int(values, "gpus", 0),
          cpus: values.cpus as string | undefined,
          memory: values.memory as string | undefined,
          pvc: values.pvc as string | undefined,
          mountPath: values.mount as string | undefined,
          workdir: values.workdir as string | undefined,
        })).trimEnd(),
      );
      return 0;
    }
    case "report": {
      const report = await collectReport(plan);
      const files = await writeReport(report, (values.out as string) ?? join(plan.root, "report"));
      print(reportMarkdown(report));
      print(`written: ${files.join(", ")}`);
      return 0;
    }
  }
  return 2;
}

async function execCommandMain(
  dir: string,
  print: (l: string) => void,
  handleSignals: boolean,
): Promise<number> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  if (handleSignals) {
    Deno.addSignalListener("SIGINT", onSignal);
    Deno.addSignalListener("SIGTERM", onSignal);
  }
  try {
    const state = await executeRun(dir, { echo: true, signal: stop.signal });
    print(`[sweep] ${dir}: ${state.detail}`);
    if (isFinished(state.status)) return 0;
    if (state.status === "interrupted") return 130;
    return state.status === "refused" ? 2 : 1;
  } finally {
    if (handleSignals) {
      Deno.removeSignalListener("SIGINT", onSignal);
      Deno.removeSignalListener("SIGTERM", onSignal);
    }
  }
}
