/**
 * `deno task predict --adapter DIR "text" ["text" ...]`: prints the label a saved adapter
 * generates for each text (formatted as the task's sources are). A thin wrapper over `predict`
 * (src/train/inference.ts).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { runCli } from "../src/train/cli_errors.ts";
import { TrainConfigError, weightDtypeFlag } from "../src/train/config.ts";
import { predict } from "../src/train/inference.ts";

const HELP = `deno task predict --adapter DIR [--model M] [--weight-dtype f16] "text" ["text" ...]

Prints the label a saved adapter generates for each text (greedy, at most 20 tokens). Give the
texts as the task's sources look ("sentence1: ... sentence2: ...").`;

await runCli(async () => {
  let parsed;
  try {
    parsed = parseArgs({
      args: Deno.args,
      strict: true,
      allowPositionals: true,
      options: {
        adapter: { type: "string" },
        model: { type: "string" },
        "weight-dtype": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    throw new TrainConfigError(
      `${(e as Error).message.replace(/\. To specify.*$/s, "")}; see --help`,
    );
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    console.log(HELP);
    return 0;
  }
  if (!v.adapter) throw new TrainConfigError("--adapter DIR is required; see --help");
  if (positionals.length === 0) {
    throw new TrainConfigError("give at least one text to label; see --help");
  }
  const labels = await predict({
    adapter: v.adapter,
    model: v.model,
    weightDtype: weightDtypeFlag(v["weight-dtype"]),
    texts: positionals,
  });
  for (const l of labels) console.log(l);
  return 0;
});
