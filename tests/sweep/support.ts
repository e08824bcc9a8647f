/**
 * Helpers of the sweep tests: a seeded source of generated inputs, and run folders written by
 * hand as the trainer and the sweep leave them (for the tests of reports and re-submissions that
 * need no GPU).
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Mt19937 } from "../../src/data/mt19937.ts";
import { resolveTask } from "../../src/data/task_file.ts";
import type { PlannedRun } from "../../src/sweep/plan.ts";
import { runSettings } from "../../src/sweep/plan.ts";
import type { RunOutcome } from "../../src/sweep/run_state.ts";

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** Seeded choices for generated inputs. */
export class Gen {
  readonly #rng: Mt19937;
  constructor(seed: number) {
    this.#rng = new Mt19937(seed);
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return this.#rng.nextUint32() % n;
  }
  /** One of `xs`. */
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  /** `k` distinct items of `xs`, in a random order. */
  sample<T>(xs: readonly T[], k: number): T[] {
    const a = [...xs];
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a.slice(0, k);
  }
  /** A random lower-case word of 3 to 10 letters (possibly with a dash). */
  word(): string {
    const n = 3 + this.int(8);
    let s = "";
    for (let i = 0; i < n; i++) {
      s += "abcdefghijklmnopqrstuvwxyz-"[this.int(i && i < n - 1 ? 27 : 26)];
    }
    return s;
  }
}

/** What a hand-written finished run holds. */
export interface FakeRun {
  /** `completed` (with scores), `diverged`, `crashed` (exit status 1), `interrupted`, `pending`. */
  status: "completed" | "diverged" | "crashed" | "interrupted" | "pending";
  /** Validation scores at successive evaluations (the first metric). */
  validation?: number[];
  /** The test score of the best step. */
  test?: number;
  /** The task's first metric. @default {the task's} */
  metric?: string;
  /** Lines of train.log. */
  output?: string[];
}

/**
 * Writes a run folder as the sweep and the trainer leave it: settings.json, config.json,
 * log.jsonl, summary.json, outcome.json and train.log as `fake` says.
 */
export async function writeFakeRun(run: PlannedRun, fake: FakeRun): Promise<void> {
  const dir = run.dir;
  await Deno.mkdir(dir, { recursive: true });
  const settings = runSettings(run.config);
  await Deno.writeTextFile(join(dir, "settings.json"), JSON.stringify(settings, null, 2));
  if (fake.status === "pending") return;
  const metric = fake.metric ?? (await resolveTask(run.config.task)).metrics[0];
  await Deno.writeTextFile(
    join(dir, "config.json"),
    JSON.stringify({ ...run.config, sourceLength: 256, targetLength: 2, parameters: 76051 }),
  );
  const lines: unknown[] = [];
  let best = -Infinity;
  (fake.validation ?? []).forEach((score, i) => {
    const step = (i + 1) * 100;
    lines.push({ type: "train", step, loss: 1 / (i + 1), lastLoss: 1, gradNorm: 1 });
    lines.push({
      type: "eval",
      step,
      split: "validation",
      metrics: { [metric]: score, other: score / 2 },
      score,
      best: score > best,
      examples: 100,
      seconds: 1,
      tokensPerSecond: 1,
    });
    best = Math.max(best, score);
  });
  const steps = 100 * (fake.validation?.length ?? 1);
  if (fake.status === "completed") {
    lines.push({
      type: "eval",
      step: steps,
      split: "test",
      metrics: { [metric]: fake.test ?? 0, other: (fake.test ?? 0) / 2 },
      score: fake.test ?? 0,
      best: false,
      examples: 100,
      seconds: 1,
      tokensPerSecond: 1,
    });
  }
  await Deno.writeTextFile(
    join(dir, "log.jsonl"),
    lines.map((l) => JSON.stringify(l) + "\n").join(""),
  );
  const output = fake.output ?? [`step ${steps}/${steps}  loss 0.1`];
  await Deno.writeTextFile(
    join(dir, "train.log"),
    ["=== attempt 1 on test ===", ...output].join("\n") + "\n",
  );
  if (fake.status !== "crashed") {
    await Deno.writeTextFile(
      join(dir, "summary.json"),
      JSON.stringify({ status: fake.status, steps, metric }),
    );
  }
  const outcome: RunOutcome = {
    status: fake.status,
    exitCode: { completed: 0, diverged: 3, interrupted: 130, crashed: 1 }[fake.status],
    signal: null,
    attempt: 1,
    startedAt: "2026-01-01T00:00:00Z",
    endedAt: "2026-01-01T00:01:00Z",
    host: "test",
  };
  await Deno.writeTextFile(join(dir, "outcome.json"), JSON.stringify(outcome));
}

/** `deno run -A tasks/sweep.ts ...args` from the repository root, output piped. */
export function sweepCommand(
  args: readonly string[],
  env: Record<string, string> = {},
): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", join(ROOT, "deno.json"), join(ROOT, "tasks/sweep.ts"), ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  });
}

/** Runs {@link sweepCommand} to its end; returns status and output. */
export async function sweepCli(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await sweepCommand(args, env).output();
  const t = new TextDecoder();
  return { code: out.code, stdout: t.decode(out.stdout), stderr: t.decode(out.stderr) };
}
