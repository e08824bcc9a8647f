/**
 * Runs one fuzz kind's cases and reports each on a line of JSON: `deno run -A child.ts <kind>
 * <seed> <count>`. "start <i>" lines on stderr say which case was running if the parent has to
 * kill this process at its deadline.
 *
 * @module
 */

import { type CaseReport, type FuzzKind, Rng, WrongResult } from "./harness.ts";
import { KINDS } from "./kinds.ts";

const [name, seedText, countText] = Deno.args;
const kind: FuzzKind | undefined = KINDS[name];
if (!kind) {
  console.error(`unknown kind ${name}; known: ${Object.keys(KINDS).join(", ")}`);
  Deno.exit(2);
}
const cases = await kind.cases(new Rng(Number(seedText)), Number(countText));
const root = await Deno.makeTempDir({ prefix: `fuzz_${name}_` });
const encoder = new TextEncoder();
try {
  for (let i = 0; i < cases.length; i++) {
    const dir = `${root}/${i}`;
    await Deno.mkdir(dir);
    const path = await cases[i].write(dir);
    await Deno.stderr.write(encoder.encode(`start ${i} ${cases[i].gen}\n`));
    const t0 = performance.now();
    const report: CaseReport = { i, gen: cases[i].gen, outcome: "ok", ms: 0 };
    try {
      await kind.load(path);
    } catch (e) {
      report.outcome = e instanceof WrongResult ? "wrong" : "refused";
      report.name = e instanceof Error ? e.name : typeof e;
      report.message = e instanceof Error ? e.message : String(e);
    }
    report.ms = performance.now() - t0;
    await Deno.stdout.write(encoder.encode(JSON.stringify(report) + "\n"));
    await Deno.remove(dir, { recursive: true });
  }
} finally {
  await Deno.remove(root, { recursive: true });
}
// A kind may leave workers behind (Deno cannot stop one in a loop): end here.
Deno.exit(0);
