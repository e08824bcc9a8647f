/**
 * Running one run of a sweep: the same code path for `sweep run` (N of these at once), a Slurm
 * array task and a Kubernetes indexed pod. The run folder is checked against its id (a folder
 * whose settings do not hash to the id in its name is refused), locked, and the trainer is
 * started as its own process through the training command line, `deno task train --config
 * <run>/settings.json --out <run>` (with `--resume` when a checkpoint exists), its output
 * appended to `<run>/train.log`. Its exit status becomes `<run>/outcome.json`.
 *
 * @module
 */

import { hostname } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeFileAtomic } from "../io/files.ts";
import { hasCheckpoint, readCheckpoint } from "../train/checkpoint.ts";
import { SweepError } from "./errors.ts";
import { idOfRunDir, runId, runSettings } from "./plan.ts";
import {
  acquireRunLock,
  currentSlurmJob,
  isFinished,
  OUTCOME_FILE,
  OUTPUT_FILE,
  readRunState,
  releaseRunLock,
  type RunOutcome,
  type RunState,
  SETTINGS_FILE,
  updateRunLock,
} from "./run_state.ts";

/** The training command line (`deno task train`). */
export const TRAIN_SCRIPT: URL = new URL("../../tasks/train.ts", import.meta.url);
/** The project's deno.json (its import map serves the command lines). */
const DENO_JSON: URL = new URL("../../deno.json", import.meta.url);

/**
 * The arguments of `deno` that run one of the project's command lines (`tasks/*.ts`) with the
 * project's config, from any working directory.
 *
 * @example
 * ```ts
 * import { denoRunArgs, TRAIN_SCRIPT } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const args = denoRunArgs(TRAIN_SCRIPT);
 * assert.deepEqual(args.slice(0, 3), ["run", "-A", "--config"]);
 * assert.match(args[3], /deno\.json$/);
 * assert.match(args[4], /tasks\/train\.ts$/);
 * ```
 */
export function denoRunArgs(script: URL): string[] {
  const args = ["run", "-A"];
  if (DENO_JSON.protocol === "file:") args.push("--config", fileURLToPath(DENO_JSON));
  args.push(script.protocol === "file:" ? fileURLToPath(script) : script.href);
  return args;
}

/** Options of {@link executeRun}. */
export interface ExecuteOptions {
  /** The Deno binary. @default {Deno.execPath()} */
  deno?: string;
  /** Copy the trainer's output to this process's stdout too (Slurm's and Kubernetes' logs). */
  echo?: boolean;
  /** Stops the trainer (SIGTERM: it checkpoints and exits); a second abort kills it. */
  signal?: AbortSignal;
  /** Kills the trainer at once (SIGKILL). */
  killSignal?: AbortSignal;
  /** Extra environment for the trainer. */
  env?: Record<string, string>;
}

/**
 * Reads a run folder's settings and checks that they hash to the id in the folder's name, and
 * that the trainer's `config.json` (when there is one) holds the same settings.
 *
 * @example
 * ```ts
 * import { checkRunDir, PAPER_DEFAULTS, runId, runSettings } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const settings = runSettings({ ...PAPER_DEFAULTS, task: "cb" });
 * const dir = `${root}/cb-adept-${runId(settings)}`;
 * await Deno.mkdir(dir);
 * await Deno.writeTextFile(`${dir}/settings.json`, JSON.stringify(settings));
 * assert.equal((await checkRunDir(dir)).task, "cb");
 * await Deno.writeTextFile(`${dir}/settings.json`, JSON.stringify({ ...settings, lr: 0.1 }));
 * await assert.rejects(checkRunDir(dir), /does not match its plan id/);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function checkRunDir(dir: string): Promise<Record<string, unknown>> {
  const id = idOfRunDir(dir);
  if (!id) {
    throw new SweepError(`${dir}: not a sweep run folder (its name must end in -<12 hex digits>)`);
  }
  let settings: Record<string, unknown>;
  try {
    settings = JSON.parse(await Deno.readTextFile(join(dir, SETTINGS_FILE)));
  } catch (e) {
    throw new SweepError(`${join(dir, SETTINGS_FILE)}: cannot read the run's settings (${e})`);
  }
  const got = runId(settings);
  if (got !== id) {
    throw new SweepError(
      `${dir}: its settings.json hashes to ${got}, which does not match its plan id ${id}; the ` +
        "folder holds another run: move it away (or delete it) and plan again",
    );
  }
  await checkTrainerConfig(dir, id);
  return settings;
}

/** Refuses a folder whose trainer `config.json` does not hash to `id`, naming the differences. */
async function checkTrainerConfig(dir: string, id: string): Promise<void> {
  let raw: string;
  try {
    raw = await Deno.readTextFile(join(dir, "config.json"));
  } catch {
    return; // the trainer has not started it yet
  }
  const config = runSettings(JSON.parse(raw));
  const got = runId(config);
  if (got !== id) {
    let planned: Record<string, unknown> = {};
    try {
      planned = JSON.parse(await Deno.readTextFile(join(dir, SETTINGS_FILE)));
    } catch { /* no settings to compare */ }
    const diffs = Object.keys({ ...planned, ...config })
      .filter((k) => k !== "method" && JSON.stringify(planned[k]) !== JSON.stringify(config[k]))
      .map((k) => `${k}: planned ${JSON.stringify(planned[k])}, ran ${JSON.stringify(config[k])}`);
    throw new SweepError(
      `${dir}: the run in this folder was trained with a config that hashes to ${got}, not to ` +
        `its plan id ${id}${diffs.length ? ` (${diffs.join("; ")})` : ""}; it is not this ` +
        "sweep's run: move it away (or delete it) and run the sweep again",
    );
  }
}

/** The trainer's status for each exit code of `deno task train`. */
function outcomeOf(code: number, signal: string | null): RunOutcome["status"] {
  if (signal === null && code === 0) return "completed";
  if (code === 3) return "diverged";
  if (code === 130) return "interrupted";
  if (code === 2) return "refused";
  return "crashed";
}

/**
 * Runs one run of a sweep to its end (see the module doc) and returns its state afterwards.
 * A finished run is left as it is.
 *
 * @param dir The run folder, holding `settings.json`.
 *
 * @example Two steps of the demo's tiny T5, in a child process
 * ```ts
 * import { DEMO_PRESET, executeRun, runId, runSettings } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const tiny = { steps: 2, warmup: 1, batchSize: 4, evalLimit: 4 };
 * const settings = runSettings({ ...DEMO_PRESET, ...tiny });
 * const dir = `${root}/dictionary-adept-${runId(settings)}`;
 * await Deno.mkdir(dir);
 * await Deno.writeTextFile(`${dir}/settings.json`, JSON.stringify(settings));
 * const state = await executeRun(dir);
 * assert.equal(state.status, "completed");
 * assert.equal(state.outcome?.attempt, 1);
 * assert.match(await Deno.readTextFile(`${dir}/train.log`), /test accuracy/);
 * assert.equal((await executeRun(dir)).outcome?.attempt, 1); // finished: not run again
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function executeRun(dir: string, options: ExecuteOptions = {}): Promise<RunState> {
  await checkRunDir(dir);
  const before = await readRunState(dir);
  if (isFinished(before.status)) return before;
  const lock = await acquireRunLock(dir);
  const startedAt = new Date().toISOString();
  let out: Deno.FsFile | undefined;
  try {
    const resume = await hasCheckpoint(dir);
    const resumedFrom = resume
      ? await readCheckpoint(dir).then((c) => c.state.step, () => undefined)
      : undefined;
    out = await Deno.open(join(dir, OUTPUT_FILE), { append: true, create: true });
    const enc = new TextEncoder();
    const write = async (bytes: Uint8Array) => {
      let off = 0;
      while (off < bytes.length) off += await out!.write(bytes.subarray(off));
      if (options.echo) await Deno.stdout.write(bytes);
    };
    await write(enc.encode(
      `=== attempt ${lock.attempt} on ${hostname()}${
        lock.slurmJob ? ` (Slurm job ${lock.slurmJob})` : ""
      } at ${startedAt}: ${resume ? `resuming from step ${resumedFrom}` : "fresh start"} ===\n`,
    ));
    const args = [...denoRunArgs(TRAIN_SCRIPT), "--config", join(dir, SETTINGS_FILE), "--out", dir];
    if (resume) args.push("--resume");
    const child = new Deno.Command(options.deno ?? Deno.execPath(), {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", ...options.env },
    }).spawn();
    await updateRunLock(dir, { ...lock, childPid: child.pid });
    const stop = (sig: Deno.Signal) => () => {
      try {
        child.kill(sig);
      } catch { /* already gone */ }
    };
    let aborts = 0;
    const onAbort = () => stop(++aborts > 1 ? "SIGKILL" : "SIGTERM")();
    const onKill = stop("SIGKILL");
    options.signal?.addEventListener("abort", onAbort);
    options.killSignal?.addEventListener("abort", onKill);
    if (options.signal?.aborted) onAbort();
    if (options.killSignal?.aborted) onKill();
    // One writer for both streams: chunks land whole, in arrival order.
    let chain = Promise.resolve();
    const pump = async (s: ReadableStream<Uint8Array>) => {
      for await (const chunk of s) chain = chain.then(() => write(chunk));
    };
    const [status] = await Promise.all([child.status, pump(child.stdout), pump(child.stderr)]);
    await chain;
    options.signal?.removeEventListener("abort", onAbort);
    options.killSignal?.removeEventListener("abort", onKill);
    const outcome: RunOutcome = {
      status: outcomeOf(status.code, status.signal),
      exitCode: status.signal ? null : status.code,
      signal: status.signal,
      attempt: lock.attempt,
      resumedFrom,
      startedAt,
      endedAt: new Date().toISOString(),
      host: hostname(),
      slurmJob: currentSlurmJob(),
    };
    await write(enc.encode(
      `=== attempt ${lock.attempt} ended: ${outcome.status} (${
        status.signal ? `signal ${status.signal}` : `exit status ${status.code}`
      }) ===\n`,
    ));
    await writeFileAtomic(join(dir, OUTCOME_FILE), JSON.stringify(outcome, null, 2) + "\n");
  } finally {
    out?.close();
    await releaseRunLock(dir);
  }
  return await readRunState(dir);
}
