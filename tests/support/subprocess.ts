/**
 * Running code where a hang or a crash cannot take the test runner with it: a child `deno run`
 * with a deadline, killed when it passes. Used by the tests of inputs that once hung (named pipes,
 * corrupt parquet pages) and by the fuzz suites.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** What a child run gave. */
export interface ChildResult {
  /** Exit status (null when it was killed). */
  code: number | null;
  /** Its standard output. */
  stdout: string;
  /** Its standard error. */
  stderr: string;
  /** Whether the deadline killed it. */
  timedOut: boolean;
  /** Wall time, in milliseconds. */
  ms: number;
}

/**
 * Runs `deno run -A <script> ...args` from the repository root with the project's config, and
 * kills it (SIGKILL) after `timeoutMs`.
 *
 * @param script A path relative to the repository root, or an absolute path.
 * @param args Arguments for the script.
 * @param timeoutMs The deadline.
 * @returns Its status, output and whether it was killed.
 */
export async function runChild(
  script: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<ChildResult> {
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", join(ROOT, "deno.json"), script, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, timeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  const text = new TextDecoder();
  return {
    code: timedOut ? null : out.code,
    stdout: text.decode(out.stdout),
    stderr: text.decode(out.stderr),
    timedOut,
    ms: performance.now() - t0,
  };
}

/**
 * Runs a snippet of TypeScript in a child (see {@link runChild}). The snippet may import the
 * project's modules by paths relative to the repository root, written `@root/src/...`.
 *
 * @param code The module's source.
 * @param timeoutMs The deadline.
 * @returns Its status, output and whether it was killed.
 */
export async function runSnippet(code: string, timeoutMs: number): Promise<ChildResult> {
  const dir = await Deno.makeTempDir({ prefix: "adept_child_" });
  try {
    const file = join(dir, "child.ts");
    await Deno.writeTextFile(file, code.replaceAll("@root/", `file://${ROOT}`));
    return await runChild(file, [], timeoutMs);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Makes a named pipe with `mkfifo`; false where there is none (Windows). */
export async function makeFifo(path: string): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("mkfifo", { args: [path] }).output();
    return success;
  } catch {
    return false;
  }
}
