/**
 * `deno task eval --adapter DIR [--split test] [--task T] [--model M] [--batch-size B]
 * [--limit N]`: scores a saved adapter (a run's `best/` folder) on a split of its task and
 * prints the task's metrics. A thin wrapper over `evaluateAdapter` (src/train/inference.ts).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { runCli } from "../src/train/cli_errors.ts";
import { TrainConfigError, weightDtypeFlag } from "../src/train/config.ts";
import { evaluateAdapter } from "../src/train/inference.ts";

const HELP = `deno task eval --adapter DIR [flags]

Scores a saved adapter on a split of its task (greedy generation, the task's metrics).

  --adapter <dir>       the adapter folder (a run's best/)
  --split <name>        train, validation or test (default: test)
  --task <name|file>    the task (default: the adapter's)
  --model <id|dir>      the base model (default: the adapter's)
  --batch-size <n>      rows per generation batch (default: 32)
  --weight-dtype <t>    f32 (default) or f16: the frozen projections' storage
  --limit <n>           score only the first n examples
  -h, --help            this help`;

await runCli(async () => {
  let v: Record<string, unknown>;
  try {
    v = parseArgs({
      args: Deno.args,
      strict: true,
      options: {
        adapter: { type: "string" },
        split: { type: "string" },
        task: { type: "string" },
        model: { type: "string" },
        "batch-size": { type: "string" },
        "weight-dtype": { type: "string" },
        limit: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (e) {
    throw new TrainConfigError(
      `${(e as Error).message.replace(/\. To specify.*$/s, "")}; see --help`,
    );
  }
  if (v.help) {
    console.log(HELP);
    return 0;
  }
  if (!v.adapter) throw new TrainConfigError("--adapter DIR is required; see --help");
  const split = (v.split ?? "test") as string;
  if (!["train", "validation", "test"].includes(split)) {
    throw new TrainConfigError(`--split ${split}: expected train, validation or test`);
  }
  const int = (flag: string) => {
    if (v[flag] === undefined) return undefined;
    const n = Number(v[flag]);
    if (!Number.isInteger(n) || n < 1) {
      throw new TrainConfigError(
        `--${flag}: expected a positive integer, got ${JSON.stringify(v[flag])}`,
      );
    }
    return n;
  };
  const r = await evaluateAdapter({
    adapter: v.adapter as string,
    split: split as "test",
    task: v.task as string | undefined,
    model: v.model as string | undefined,
    batchSize: int("batch-size"),
    weightDtype: weightDtypeFlag(v["weight-dtype"]),
    limit: int("limit"),
  });
  console.log(`${r.task} ${r.split} (${r.examples} examples, ${r.seconds.toFixed(1)} s):`);
  for (const [k, val] of Object.entries(r.metrics)) console.log(`  ${k} ${val.toFixed(2)}`);
  return 0;
});
