/**
 * `sweep slurm`: a plan's unfinished runs as one Slurm job array. The batch script requests
 * `#SBATCH --array=0-(K-1)%P` (P runs at once), GPUs, CPUs, memory and time from flags; array
 * task i runs the i-th unfinished run through `deno task sweep exec <run folder>` (the same code
 * path as `sweep run`: a trainer process, resumed from its checkpoint if any). Runs write to the
 * shared run root, so submitting again (after a failure, a time limit, a cancelled task) includes
 * only the runs not finished by then.
 *
 * @module
 */

import { join } from "node:path";
import { writeFileAtomic } from "../io/files.ts";
import { SweepError } from "./errors.ts";
import { denoRunArgs } from "./execute.ts";
import type { PlannedRun, SweepPlan } from "./plan.ts";

/** The sweep's command line (`deno task sweep`). */
export const SWEEP_SCRIPT: URL = new URL("../../tasks/sweep.ts", import.meta.url);

/** The resources and settings of a job array. */
export interface SlurmOptions {
  /** `--job-name`. @default {"adept-<sweep name>"} */
  jobName?: string;
  /** GPUs per run (`--gres=gpu:N`); 0 for none. @default {1} */
  gpus?: number;
  /** CPUs per run (`--cpus-per-task`). @default {4} */
  cpus?: number;
  /** Memory per run (`--mem`, e.g. `32G`). */
  mem?: string;
  /** Time limit per run (`--time`, e.g. `12:00:00`). */
  time?: string;
  /** Runs at once (the `%P` of `--array`). */
  parallel?: number;
  /** `--partition`. */
  partition?: string;
  /** `--account`. */
  account?: string;
  /** More `#SBATCH` lines, e.g. `--qos=high` or `--constraint=a100`. */
  extra?: readonly string[];
  /** The Deno binary on the compute nodes. @default {Deno.execPath()} */
  deno?: string;
  /** The working directory of the runs (relative paths in settings). @default {Deno.cwd()} */
  workdir?: string;
}

/** Quotes a word for bash. */
function q(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

const SLURM_TIME = /^(\d+-)?\d+(:\d{1,2}){0,2}$|^\d+-\d+$/;
const SLURM_MEM = /^\d+[KMGT]?$/i;

/**
 * The command that runs one run folder (`deno run ... tasks/sweep.ts exec <dir>`), as words.
 *
 * @example
 * ```ts
 * import { execCommand } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const words = execCommand("/opt/deno", "$RUN_DIR");
 * assert.equal(words[0], "/opt/deno");
 * assert.deepEqual(words.slice(-2), ["exec", "$RUN_DIR"]);
 * ```
 */
export function execCommand(deno: string, dir: string): string[] {
  return [deno, ...denoRunArgs(SWEEP_SCRIPT), "exec", dir];
}

/**
 * The batch script of a job array over `runs` (see the module doc). Flags are checked first: a
 * time or memory Slurm would not parse is refused, naming it.
 *
 * @example
 * ```ts
 * import { parseSweep, planSweep, slurmScript } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const spec = parseSweep({ axes: { task: ["rte", "cb"], seed: [1, 2] } }, "glue.yaml");
 * const plan = await planSweep(spec, { root: "/shared/runs/glue" });
 * const script = slurmScript(plan, plan.runs, { gpus: 1, time: "12:00:00", parallel: 2 });
 * assert.match(script, /^#SBATCH --array=0-3%2$/m);
 * assert.match(script, /^#SBATCH --gres=gpu:1$/m);
 * assert.match(script, /^#SBATCH --time=12:00:00$/m);
 * assert.ok(script.includes(plan.runs[3].name));
 * ```
 */
export function slurmScript(
  plan: SweepPlan,
  runs: readonly PlannedRun[],
  options: SlurmOptions = {},
): string {
  if (runs.length === 0) throw new SweepError("no runs to submit");
  const gpus = options.gpus ?? 1, cpus = options.cpus ?? 4;
  for (const [flag, v, min] of [["--gpus", gpus, 0], ["--cpus", cpus, 1]] as const) {
    if (!Number.isInteger(v) || v < min) {
      throw new SweepError(`${flag} ${v}: expected a whole number >= ${min}`);
    }
  }
  if (
    options.parallel !== undefined && (!Number.isInteger(options.parallel) || options.parallel < 1)
  ) {
    throw new SweepError(`--parallel ${options.parallel}: expected a whole number of runs >= 1`);
  }
  if (options.time !== undefined && !SLURM_TIME.test(options.time)) {
    throw new SweepError(
      `--time ${JSON.stringify(options.time)}: expected Slurm's format, e.g. 90 (minutes), ` +
        "12:00:00 or 2-00:00:00",
    );
  }
  if (options.mem !== undefined && !SLURM_MEM.test(options.mem)) {
    throw new SweepError(
      `--mem ${JSON.stringify(options.mem)}: expected a size such as 16G or 32000M`,
    );
  }
  const jobName = options.jobName ?? `adept-${plan.spec.name}`;
  const deno = options.deno ?? Deno.execPath();
  const workdir = options.workdir ?? Deno.cwd();
  const logs = join(plan.root, "slurm");
  const sb = [
    `--job-name=${jobName}`,
    `--array=0-${runs.length - 1}${options.parallel ? `%${options.parallel}` : ""}`,
    "--ntasks=1",
    `--cpus-per-task=${cpus}`,
    ...(gpus > 0 ? [`--gres=gpu:${gpus}`] : []),
    ...(options.mem ? [`--mem=${options.mem}`] : []),
    ...(options.time ? [`--time=${options.time}`] : []),
    ...(options.partition ? [`--partition=${options.partition}`] : []),
    ...(options.account ? [`--account=${options.account}`] : []),
    `--output=${join(logs, "%A_%a.out")}`,
    `--chdir=${workdir}`,
    ...(options.extra ?? []),
  ];
  for (const s of sb) {
    if (/[\n\r]/.test(s)) {
      throw new SweepError(`an #SBATCH option holds a line break: ${JSON.stringify(s)}`);
    }
  }
  const cmd = execCommand(deno, "$RUN_DIR").map((w) => w === "$RUN_DIR" ? '"$RUN_DIR"' : q(w));
  return [
    "#!/bin/bash",
    `# ADePT sweep "${plan.spec.name}" (${plan.spec.source}): ${runs.length} unfinished of ` +
    `${plan.runs.length} runs.`,
    `# Written by \`deno task sweep slurm\` at ${
      new Date().toISOString()
    }; array task i runs RUNS[i].`,
    ...sb.map((s) => `#SBATCH ${s}`),
    "set -euo pipefail",
    "",
    `ROOT=${q(plan.root)}`,
    "RUNS=(",
    ...runs.map((r) => `  ${q(r.name)}`),
    ")",
    'RUN_DIR="$ROOT/${RUNS[$SLURM_ARRAY_TASK_ID]}"',
    'echo "[sweep] array task $SLURM_ARRAY_TASK_ID on $(hostname): $RUN_DIR"',
    `exec ${cmd.join(" ")}`,
    "",
  ].join("\n");
}

/**
 * Where `sbatch` is on `path` (a PATH list), or a {@link SweepError} naming the package to
 * install (slurm-wlm).
 *
 * @example
 * ```ts
 * import { findSbatch } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * await assert.rejects(findSbatch("/nonexistent"), /sbatch was not found on PATH.*slurm-wlm/);
 * ```
 */
export async function findSbatch(path: string = Deno.env.get("PATH") ?? ""): Promise<string> {
  const name = "sbatch";
  for (const dir of path.split(":").filter(Boolean)) {
    const p = join(dir, name);
    const info = await Deno.stat(p).catch(() => null);
    if (info?.isFile && (info.mode ?? 0o111) & 0o111) return p;
  }
  throw new SweepError(
    `${name} was not found on PATH: this machine has no Slurm client. Run \`deno task sweep ` +
      "slurm\` on the cluster's login node, or install Slurm's commands (Debian/Ubuntu: " +
      "`sudo apt-get install slurm-wlm`, with munge, configured for your cluster); " +
      "`--dry-run` prints the batch script without submitting it",
  );
}

/**
 * Writes the batch script under `<root>/slurm/` and submits it with `sbatch --parsable`;
 * returns the job id and the script's path. A missing `sbatch` is refused naming the package
 * (slurm-wlm); a refused submission quotes sbatch's message.
 *
 * @param script The batch script ({@link slurmScript}).
 * @param root The run root: the script is written under `<root>/slurm/`.
 * @param options `path`: where to look for `sbatch` (a PATH list). @default {$PATH}
 *
 * @example No Slurm on this machine (no sbatch on the PATH)
 * ```ts
 * import { submitSlurm, SweepError } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await assert.rejects(
 *   submitSlurm("#!/bin/bash\n", root, { path: root }),
 *   (e) => e instanceof SweepError && /sbatch was not found.*slurm-wlm/.test(e.message),
 * );
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function submitSlurm(
  script: string,
  root: string,
  options: { path?: string } = {},
): Promise<{ jobId: string; scriptPath: string }> {
  const sbatch = await findSbatch(options.path);
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "");
  const scriptPath = join(root, "slurm", `submit-${stamp}.sbatch`);
  await Deno.mkdir(join(root, "slurm"), { recursive: true });
  await writeFileAtomic(scriptPath, script);
  await Deno.chmod(scriptPath, 0o755).catch(() => {});
  const out = await new Deno.Command(sbatch, {
    args: ["--parsable", scriptPath],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  if (!out.success) {
    throw new SweepError(
      `sbatch refused ${scriptPath} (exit status ${out.code}): ${
        text.decode(out.stderr).trim() || text.decode(out.stdout).trim()
      }`,
    );
  }
  const jobId = text.decode(out.stdout).trim().split(";")[0];
  return { jobId, scriptPath };
}
