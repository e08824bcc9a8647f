/**
 * The parent side of the fuzz suites: runs a kind in a child with a deadline and checks every
 * case's report: each malformed input gives either a correct result or a refusal by one of the
 * kind's named errors, whose message names the file and says what is wrong in words, within a
 * bounded time; no case crashes or hangs the child.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runChild } from "../subprocess.ts";
import { type CaseReport, INTERNAL_PHRASES } from "./harness.ts";

/** Options of {@link runFuzz}. */
export interface FuzzOptions {
  /** The error names a refusal may have. */
  errors: readonly string[];
  /** The deadline of the whole child. @default {60_000} */
  timeoutMs?: number;
  /** The most one case may take. @default {5_000} */
  caseMs?: number;
  /** The fewest cases that must load (a generator that only breaks files proves little). */
  minOk?: number;
  /** The fewest cases that must be refused. */
  minRefused?: number;
  /** Whether a refusal's message must contain the loaded file's folder. @default {true} */
  namesFile?: boolean;
  /** A fixed list of cases, not scaled by ADEPT_FUZZ_SCALE. @default {false} */
  fixed?: boolean;
}

/** What {@link runFuzz} saw. */
export interface FuzzSummary {
  /** Cases run. */
  cases: number;
  /** Cases that loaded (and whose result checked out). */
  ok: number;
  /** Cases refused with a named error. */
  refused: number;
  /** Cases per generator. */
  byGen: Record<string, number>;
  /** The child's wall time, ms. */
  ms: number;
}

/**
 * Runs `count` cases of `kind` (seeded) in a child and checks them (see the module doc).
 *
 * @param kind The kind's name in kinds.ts.
 * @param seed The seed.
 * @param count How many cases.
 * @param options What a refusal may be, and the time limits.
 * @returns The counts, for the test's log.
 */
export async function runFuzz(
  kind: string,
  seed: number,
  count: number,
  options: FuzzOptions,
): Promise<FuzzSummary> {
  // ADEPT_FUZZ_SEED replays another seed; ADEPT_FUZZ_SCALE runs more (or fewer) cases.
  seed = Number(Deno.env.get("ADEPT_FUZZ_SEED") ?? seed);
  const scale = options.fixed ? 1 : Number(Deno.env.get("ADEPT_FUZZ_SCALE") ?? 1);
  count = Math.max(1, Math.round(count * scale));
  const r = await runChild(
    "tests/support/fuzz/child.ts",
    [kind, String(seed), String(count)],
    options.timeoutMs ?? 60_000,
  );
  const reports = r.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) =>
    JSON.parse(l) as CaseReport
  );
  const started = r.stderr.split("\n").filter((l) => l.startsWith("start ")).at(-1);
  if (r.timedOut) {
    assert.fail(
      `${kind}: the child passed its deadline during "${started}" (a hang; seed ${seed})`,
    );
  }
  assert.equal(
    r.code,
    0,
    `${kind}: the child ended with status ${r.code} during "${started}" (a crash):\n` +
      r.stderr.split("\n").filter((l) => !l.startsWith("start ")).join("\n").slice(-3000),
  );
  assert.equal(reports.length, count, `${kind}: ${reports.length} of ${count} cases reported`);
  const summary: FuzzSummary = { cases: count, ok: 0, refused: 0, byGen: {}, ms: r.ms };
  const caseMs = options.caseMs ?? 5_000;
  for (const c of reports) {
    const where = `${kind} case ${c.i} (${c.gen}; seed ${seed})`;
    summary.byGen[c.gen.replace(/\[\d+\]/g, "[i]")] =
      (summary.byGen[c.gen.replace(/\[\d+\]/g, "[i]")] ?? 0) + 1;
    assert.ok(c.ms < caseMs, `${where} took ${c.ms.toFixed(0)} ms`);
    assert.notEqual(c.outcome, "wrong", `${where}: a wrong result: ${c.message}`);
    if (c.outcome === "ok") {
      summary.ok++;
      continue;
    }
    summary.refused++;
    assert.ok(
      options.errors.includes(c.name!),
      `${where}: refused with ${c.name}, not a named error: ${c.message}`,
    );
    for (const p of INTERNAL_PHRASES) {
      assert.ok(
        !p.test(c.message!),
        `${where}: the message quotes an internal error: ${c.message}`,
      );
    }
    if (options.namesFile ?? true) {
      assert.match(
        c.message!,
        /fuzz_[a-z]+_\w+\/\d+\//,
        `${where}: the message names no file: ${c.message}`,
      );
    }
  }
  assert.ok(summary.ok >= (options.minOk ?? 0), `${kind}: only ${summary.ok} cases loaded`);
  assert.ok(
    summary.refused >= (options.minRefused ?? 0),
    `${kind}: only ${summary.refused} cases were refused`,
  );
  console.log(
    `${kind}: ${count} cases (${summary.ok} loaded, ${summary.refused} refused) in ` +
      `${(r.ms / 1000).toFixed(1)} s; ${
        Object.entries(summary.byGen).map(([g, n]) => `${g} ${n}`).join(", ").slice(0, 400)
      }`,
  );
  return summary;
}
