/**
 * Where a sweep's run stands, read from its folder alone (any machine sharing the run root can
 * tell): the trainer's files (`config.json`, `checkpoint.safetensors`, `summary.json`) and the
 * sweep's own, all written atomically:
 *
 * - `settings.json`: the run's settings, the `--config` file of `deno task train`;
 * - `running.lock`: the process running it (host, pid, the trainer's pid, the Slurm job), from
 *   start to end; a lock whose processes are gone means the run was killed;
 * - `outcome.json`: how the last attempt ended (exit status, signal, attempt number);
 * - `train.log`: the trainer's output, every attempt appended under a header line.
 *
 * A run is finished when the trainer wrote `summary.json` with status `completed` or `diverged`;
 * every other run is run (again) by `sweep run` and `sweep slurm`, from its checkpoint if any.
 *
 * @module
 */

import { hostname } from "node:os";
import { join } from "node:path";
import { writeFileAtomic } from "../io/files.ts";
import type { TrainResult } from "../train/trainer.ts";
import { SweepError } from "./errors.ts";

/** The run's settings (`--config` of `deno task train`). */
export const SETTINGS_FILE = "settings.json";
/** The last attempt's outcome. */
export const OUTCOME_FILE = "outcome.json";
/** Present while a process runs the run. */
export const LOCK_FILE = "running.lock";
/** The trainer's output, all attempts. */
export const OUTPUT_FILE = "train.log";

/** Where a run stands. */
export type RunStatus =
  | "pending"
  | "running"
  | "completed"
  | "diverged"
  | "interrupted"
  | "killed"
  | "crashed"
  | "refused";

/** How an attempt ended, as `outcome.json` records it. */
export interface RunOutcome {
  /** `completed`, `diverged` (non-finite steps), `interrupted` (a signal, with a checkpoint),
   * `refused` (the trainer refused a setting or input: exit status 2) or `crashed`. */
  status: "completed" | "diverged" | "interrupted" | "crashed" | "refused";
  /** The trainer's exit status (null when a signal ended it). */
  exitCode: number | null;
  /** The signal that ended the trainer, if any. */
  signal: string | null;
  /** 1 for the first attempt, then 2, ... */
  attempt: number;
  /** The checkpoint step the attempt resumed from (undefined for a fresh start). */
  resumedFrom?: number;
  /** ISO times. */
  startedAt: string;
  endedAt: string;
  /** Where it ran. */
  host: string;
  /** `SLURM_ARRAY_JOB_ID_SLURM_ARRAY_TASK_ID` (or `SLURM_JOB_ID`) under Slurm. */
  slurmJob?: string;
}

/** The lock of a running run. */
export interface RunLock {
  host: string;
  /** The sweep process. */
  pid: number;
  /** The trainer it started. */
  childPid?: number;
  slurmJob?: string;
  /** The attempt it runs. */
  attempt: number;
  startedAt: string;
}

/** A run folder's state. */
export interface RunState {
  status: RunStatus;
  /** A sentence for tables (who runs it, how it ended). */
  detail: string;
  /** The trainer's `summary.json`, when written. */
  summary?: TrainResult;
  /** The last recorded attempt. */
  outcome?: RunOutcome;
  /** The lock, when present (live or stale). */
  lock?: RunLock;
}

/**
 * Whether a run with this status is done (the sweep will not run it again): `completed` or
 * `diverged` (failures are results too).
 *
 * @example
 * ```ts
 * import { isFinished } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.ok(isFinished("completed") && isFinished("diverged"));
 * assert.ok(!isFinished("interrupted") && !isFinished("crashed") && !isFinished("pending"));
 * ```
 */
export function isFinished(status: RunStatus): boolean {
  return status === "completed" || status === "diverged";
}

async function readJson<T>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new SweepError(
      `${path}: not valid JSON (${(e as Error).message}); it was not written by this trainer ` +
        "(its writes are atomic): remove it or the run folder",
    );
  }
}

/**
 * The Slurm job of this process when it runs under Slurm (`<array job>_<task>` for an array
 * task), from the environment Slurm sets.
 *
 * @example
 * ```ts
 * import { currentSlurmJob } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const env = { SLURM_JOB_ID: "12", SLURM_ARRAY_JOB_ID: "10", SLURM_ARRAY_TASK_ID: "2" };
 * assert.equal(currentSlurmJob((k) => env[k as keyof typeof env]), "10_2");
 * assert.equal(currentSlurmJob(() => undefined), undefined); // not under Slurm
 * ```
 */
export function currentSlurmJob(
  env: (k: string) => string | undefined = (k) => Deno.env.get(k),
): string | undefined {
  const array = env("SLURM_ARRAY_JOB_ID"), task = env("SLURM_ARRAY_TASK_ID");
  if (array && task) return `${array}_${task}`;
  return env("SLURM_JOB_ID") || undefined;
}

async function pidAlive(pid: number): Promise<boolean> {
  try {
    const cmd = await Deno.readTextFile(`/proc/${pid}/cmdline`);
    return cmd.includes("deno");
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    if ((await Deno.stat("/proc/self").catch(() => null)) !== null) return false;
  }
  try {
    return (await new Deno.Command("kill", { args: ["-0", String(pid)], stderr: "null" }).output())
      .success;
  } catch {
    return true; // cannot tell: assume it runs
  }
}

/**
 * Whether a lock's processes still run: on this host by their pids, elsewhere by `squeue`
 * when the lock names a Slurm job; a lock of another host with no Slurm job is assumed live.
 *
 * @example
 * ```ts
 * import { lockAlive } from "@adept/trainer";
 * import { hostname } from "node:os";
 * import assert from "node:assert/strict";
 *
 * const startedAt = new Date().toISOString();
 * assert.ok(await lockAlive({ host: hostname(), pid: Deno.pid, attempt: 1, startedAt }));
 * assert.ok(!(await lockAlive({ host: hostname(), pid: 2 ** 22 + 1, attempt: 1, startedAt })));
 * ```
 */
export async function lockAlive(lock: RunLock): Promise<boolean> {
  if (lock.host === hostname()) {
    for (const pid of [lock.pid, lock.childPid]) if (pid && await pidAlive(pid)) return true;
    return false;
  }
  if (lock.slurmJob) {
    try {
      const out = await new Deno.Command("squeue", {
        args: ["-h", "-j", lock.slurmJob, "-o", "%T"],
        stdout: "piped",
        stderr: "null",
      }).output();
      if (out.success) return new TextDecoder().decode(out.stdout).trim() !== "";
    } catch { /* no squeue here */ }
  }
  return true;
}

function describeLock(l: RunLock): string {
  return `host ${l.host}, pid ${l.pid}${l.childPid ? ` (trainer ${l.childPid})` : ""}${
    l.slurmJob ? `, Slurm job ${l.slurmJob}` : ""
  }, attempt ${l.attempt} since ${l.startedAt}`;
}

/**
 * Reads where a run stands (see the module doc).
 *
 * @example
 * ```ts
 * import { readRunState } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * assert.equal((await readRunState(dir)).status, "pending");
 * const summary = { status: "diverged", steps: 7 }; // what the trainer wrote
 * await Deno.writeTextFile(`${dir}/summary.json`, JSON.stringify(summary));
 * assert.equal((await readRunState(dir)).status, "diverged"); // finished: reported, not rerun
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readRunState(dir: string): Promise<RunState> {
  const summary = await readJson<TrainResult>(join(dir, "summary.json"));
  const outcome = await readJson<RunOutcome>(join(dir, OUTCOME_FILE));
  const lock = await readJson<RunLock>(join(dir, LOCK_FILE));
  if (summary && (summary.status === "completed" || summary.status === "diverged")) {
    return {
      status: summary.status,
      detail: summary.status === "completed"
        ? `completed ${summary.steps} steps`
        : `diverged: stopped at step ${summary.steps} after non-finite steps`,
      summary,
      outcome,
      lock,
    };
  }
  if (lock) {
    if (await lockAlive(lock)) {
      return {
        status: "running",
        detail: `running (${describeLock(lock)})`,
        summary,
        outcome,
        lock,
      };
    }
    return {
      status: "killed",
      detail: `killed: the process (${describeLock(lock)}) ended without recording an outcome`,
      summary,
      outcome,
      lock,
    };
  }
  if (outcome) {
    const how = outcome.signal ? `signal ${outcome.signal}` : `exit status ${outcome.exitCode}`;
    const status = outcome.status === "completed" || outcome.status === "diverged"
      ? "crashed" // the trainer said so but wrote no summary
      : outcome.status;
    return {
      status,
      detail:
        `${status} (attempt ${outcome.attempt}, ${how}, ${outcome.endedAt} on ${outcome.host})`,
      summary,
      outcome,
    };
  }
  if (summary?.status === "interrupted") {
    return { status: "interrupted", detail: `interrupted at step ${summary.steps}`, summary };
  }
  return { status: "pending", detail: "pending" };
}

/**
 * Takes a run folder's lock for this process, or throws a {@link SweepError} when a live
 * process holds it. A stale lock (its processes gone) is taken over; its attempt counts.
 *
 * @returns The lock written (its attempt is one more than the last recorded).
 *
 * @example
 * ```ts
 * import { acquireRunLock, releaseRunLock, SweepError } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const lock = await acquireRunLock(dir);
 * assert.equal(lock.attempt, 1);
 * await assert.rejects(acquireRunLock(dir), SweepError); // this process still holds it
 * await releaseRunLock(dir);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function acquireRunLock(dir: string): Promise<RunLock> {
  const path = join(dir, LOCK_FILE);
  const outcome = await readJson<RunOutcome>(join(dir, OUTCOME_FILE));
  for (let tries = 0; tries < 2; tries++) {
    const old = await readJson<RunLock>(path);
    if (old) {
      if (await lockAlive(old)) {
        throw new SweepError(
          `${dir} is being run by another process (${describeLock(old)}); wait for it, or ` +
            `remove ${path} if that process is gone`,
        );
      }
      await Deno.remove(path).catch(() => {});
    }
    const lock: RunLock = {
      host: hostname(),
      pid: Deno.pid,
      slurmJob: currentSlurmJob(),
      attempt: Math.max(outcome?.attempt ?? 0, old?.attempt ?? 0) + 1,
      startedAt: new Date().toISOString(),
    };
    try {
      const f = await Deno.open(path, { write: true, createNew: true });
      await f.write(new TextEncoder().encode(JSON.stringify(lock) + "\n"));
      f.close();
      return lock;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
  }
  throw new SweepError(`${path}: another process took the lock at the same time; try again`);
}

/**
 * Rewrites a run's lock, e.g. with the trainer's pid (so that the lock stays live while the
 * trainer runs, even if the sweep process that started it is killed).
 *
 * @example
 * ```ts
 * import { acquireRunLock, readRunState, releaseRunLock, updateRunLock } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const lock = await acquireRunLock(dir);
 * await updateRunLock(dir, { ...lock, childPid: 12345 });
 * assert.equal((await readRunState(dir)).lock?.childPid, 12345);
 * await releaseRunLock(dir);
 * assert.equal((await readRunState(dir)).lock, undefined);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function updateRunLock(dir: string, lock: RunLock): Promise<void> {
  await writeFileAtomic(join(dir, LOCK_FILE), JSON.stringify(lock) + "\n", { fsync: false });
}

/**
 * Removes a run's lock (see {@link acquireRunLock}); nothing happens when there is none.
 *
 * @example
 * ```ts
 * import { acquireRunLock, releaseRunLock } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await acquireRunLock(dir);
 * await releaseRunLock(dir);
 * await releaseRunLock(dir); // already gone: fine
 * assert.deepEqual([...Deno.readDirSync(dir)], []);
 * await Deno.remove(dir);
 * ```
 */
export async function releaseRunLock(dir: string): Promise<void> {
  await Deno.remove(join(dir, LOCK_FILE)).catch(() => {});
}

/**
 * The last `n` non-empty lines of a text file (read from its last 64 KiB); none when it does not
 * exist.
 *
 * @example
 * ```ts
 * import { tailLines } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/train.log`, "a\nb\n\nc\nd\n");
 * assert.deepEqual(await tailLines(`${dir}/train.log`, 2), ["c", "d"]);
 * assert.deepEqual(await tailLines(`${dir}/none.log`, 2), []);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function tailLines(path: string, n: number): Promise<string[]> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path);
  } catch {
    return [];
  }
  try {
    const size = (await f.stat()).size;
    const len = Math.min(size, 64 * 1024);
    await f.seek(size - len, Deno.SeekMode.Start);
    const buf = new Uint8Array(len);
    let off = 0;
    while (off < len) {
      const r = await f.read(buf.subarray(off));
      if (r === null) break;
      off += r;
    }
    const lines = new TextDecoder().decode(buf.subarray(0, off)).split(/\r?\n/).filter((l) =>
      l.trim()
    );
    if (len < size && lines.length) lines.shift(); // a partial first line
    return lines.slice(-n);
  } finally {
    f.close();
  }
}
