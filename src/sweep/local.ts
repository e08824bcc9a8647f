/**
 * `sweep run`: a plan's runs on this machine, N at a time, each in its own trainer process
 * ({@link executeRun}). Finished runs are skipped, interrupted and crashed ones resumed from
 * their checkpoints, runs another process is running are left alone. `--jobs` above 1 is checked
 * against the adapter's memory before anything starts. A stop request (Ctrl-C, SIGTERM, an
 * abort signal) lets every running trainer write a checkpoint and exit, starts nothing more,
 * and returns; a second one kills the trainers. Running the sweep again continues.
 *
 * @module
 */

import { join } from "node:path";
import { requestGpu } from "../gpu/device.ts";
import { writeFileAtomic } from "../io/files.ts";
import { formatDuration } from "../train/run_log.ts";
import { SweepError } from "./errors.ts";
import { executeRun } from "./execute.ts";
import { adapterMemory, checkJobsFit, largestRunMemory } from "./memory.ts";
import { type PlannedRun, runSettings, type SweepPlan } from "./plan.ts";
import {
  isFinished,
  readRunState,
  type RunState,
  type RunStatus,
  SETTINGS_FILE,
} from "./run_state.ts";

/**
 * Writes a run's `settings.json` (atomically) unless it is there; an existing one must hold the
 * same settings.
 *
 * @example
 * ```ts
 * import { parseSweep, planSweep, prepareRunDir } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const spec = parseSweep({ preset: "demo", axes: { seed: [1] } }, "s.yaml");
 * const plan = await planSweep(spec, { root });
 * await prepareRunDir(plan.runs[0]);
 * const settings = JSON.parse(await Deno.readTextFile(`${plan.runs[0].dir}/settings.json`));
 * assert.equal(settings.seed, 1);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function prepareRunDir(run: PlannedRun): Promise<void> {
  const path = join(run.dir, SETTINGS_FILE);
  const text = JSON.stringify(runSettings(run.config), null, 2) + "\n";
  const old = await Deno.readTextFile(path).catch(() => undefined);
  if (old === undefined) await writeFileAtomic(path, text);
  else if (JSON.stringify(JSON.parse(old)) !== JSON.stringify(JSON.parse(text))) {
    throw new SweepError(
      `${path} holds other settings than run ${run.id} of the plan; the folder belongs to ` +
        "another run: move it away (or delete it) and run again",
    );
  }
}

/**
 * The state of every run of a plan, in plan order.
 *
 * @example
 * ```ts
 * import { parseSweep, planStates, planSweep } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const plan = await planSweep(parseSweep({ axes: { seed: [1, 2] } }, "g.yaml"), {
 *   root: "/nonexistent/runs",
 * });
 * assert.deepEqual((await planStates(plan)).map((s) => s.status), ["pending", "pending"]);
 * ```
 */
export async function planStates(plan: SweepPlan): Promise<RunState[]> {
  return await Promise.all(plan.runs.map((r) => readRunState(r.dir)));
}

/** Options of {@link runSweep}. */
export interface RunSweepOptions {
  /** Runs at once. @default {1} */
  jobs?: number;
  /** The adapter's memory in bytes, when WebGPU's adapter cannot be asked (see `memory.ts`). */
  gpuMemory?: number;
  /** Where progress lines go. @default {console.log} */
  print?: (line: string) => void;
  /** Stops the sweep: running trainers checkpoint and exit; a second stop kills them. */
  signal?: AbortSignal;
  /** Stop on SIGINT / SIGTERM (the command line sets it). @default {false} */
  handleSignals?: boolean;
  /** Extra environment for the trainers. */
  env?: Record<string, string>;
}

/** What {@link runSweep} did. */
export interface RunSweepResult {
  /** Each run's state at the end, in plan order. */
  states: RunState[];
  /** Runs started by this call. */
  started: number;
  /** Whether a stop request ended it early. */
  stopped: boolean;
}

/**
 * Runs a plan on this machine (see the module doc).
 *
 * @example Two runs of 2 steps on the demo's tiny T5
 * ```ts
 * import { parseSweep, planSweep, runSweep } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const spec = parseSweep(
 *   {
 *     preset: "demo",
 *     base: { steps: 2, "batch-size": 4, "eval-limit": 4 },
 *     axes: { seed: [1, 2] },
 *   },
 *   "tiny.yaml",
 * );
 * const plan = await planSweep(spec, { root });
 * const r = await runSweep(plan, { print: () => {} });
 * assert.equal(r.started, 2);
 * assert.deepEqual(r.states.map((s) => s.status), ["completed", "completed"]);
 * assert.equal((await runSweep(plan, { print: () => {} })).started, 0); // finished: skipped
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function runSweep(
  plan: SweepPlan,
  options: RunSweepOptions = {},
): Promise<RunSweepResult> {
  const print = options.print ?? ((l: string) => console.log(l));
  const jobs = options.jobs ?? 1;
  if (!Number.isInteger(jobs) || jobs < 1) {
    throw new SweepError(`--jobs ${jobs}: expected a whole number of runs at once, 1 or more`);
  }
  const before = await planStates(plan);
  const todo = plan.runs.filter((_, i) =>
    !isFinished(before[i].status) &&
    before[i].status !== "running"
  );
  const count = (s: RunState[], st: RunStatus) => s.filter((x) => x.status === st).length;
  const finished = before.filter((s) => isFinished(s.status)).length;
  const running = count(before, "running");
  print(
    `[sweep] ${plan.spec.name}: ${plan.runs.length} runs in ${plan.root}: ${finished} finished, ` +
      `${running} running elsewhere, ${todo.length} to run` +
      (todo.length ? `, ${Math.min(jobs, todo.length)} at a time` : ""),
  );
  for (const [i, s] of before.entries()) {
    if (s.status === "running") print(`[sweep] ${plan.runs[i].name}: ${s.detail}; left alone`);
  }
  if (todo.length === 0) return { states: before, started: 0, stopped: false };

  const parallel = Math.min(jobs, todo.length);
  if (parallel > 1) {
    const largest = await largestRunMemory(todo.map((r) => r.config));
    const gpu = await requestGpu({ log: false });
    const adapter = gpu.adapter;
    gpu.destroy();
    const memory = await adapterMemory(adapter, options.gpuMemory);
    const what = plan.runs.find((r) => r.config === largest.config)!.name;
    checkJobsFit(parallel, { bytes: largest.bytes, what }, memory, adapter.description);
  }
  for (const r of todo) await prepareRunDir(r);

  const stopCtl = new AbortController(), killCtl = new AbortController();
  let stops = 0;
  const requestStop = () => {
    stops++;
    if (stops === 1) {
      print(
        `[sweep] stopping: the running trainers write a checkpoint and exit; nothing new starts ` +
          `(again to kill them). Run the sweep again to continue.`,
      );
      stopCtl.abort();
    } else {
      print("[sweep] killing the running trainers");
      killCtl.abort();
    }
  };
  const onAbort = () => requestStop();
  options.signal?.addEventListener("abort", onAbort);
  if (options.signal?.aborted) requestStop();
  if (options.handleSignals) {
    Deno.addSignalListener("SIGINT", requestStop);
    Deno.addSignalListener("SIGTERM", requestStop);
  }
  const t0 = performance.now();
  let next = 0, started = 0, done = 0;
  const worker = async () => {
    while (!stopCtl.signal.aborted && next < todo.length) {
      const run = todo[next++];
      started++;
      print(
        `[sweep] start ${run.name} (${started}/${todo.length}: ${
          Object.entries(run.values).filter(([, v]) => v !== undefined)
            .map(([k, v]) => `${k} ${v}`).join(", ")
        }); output in ${join(run.dir, "train.log")}`,
      );
      let state: RunState;
      try {
        state = await executeRun(run.dir, {
          signal: stopCtl.signal,
          killSignal: killCtl.signal,
          env: options.env,
        });
      } catch (e) {
        if (!(e instanceof SweepError)) throw e;
        print(`[sweep] ${run.name}: ${e.message}`);
        continue;
      }
      done++;
      const s = state.summary;
      const score = s?.test
        ? `test ${s.metric} ${s.test[s.metric]?.toFixed(2)} (validation ${
          s.best?.score.toFixed(2)
        })`
        : state.detail;
      print(
        `[sweep] ${state.status} ${run.name} (${done}/${todo.length}): ${score} [${
          formatDuration((performance.now() - t0) / 1000)
        }]`,
      );
    }
  };
  try {
    await Promise.all(Array.from({ length: parallel }, worker));
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    if (options.handleSignals) {
      Deno.removeSignalListener("SIGINT", requestStop);
      Deno.removeSignalListener("SIGTERM", requestStop);
    }
  }
  const states = await planStates(plan);
  const left = states.filter((s) => !isFinished(s.status)).length;
  print(
    `[sweep] ${stopCtl.signal.aborted ? "stopped" : "done"}: ${
      states.length - left
    } of ${states.length} runs finished${
      left ? `; ${left} not (run the sweep again to continue them)` : ""
    }. Report: deno task sweep report ${plan.spec.source}`,
  );
  return { states, started, stopped: stopCtl.signal.aborted };
}
