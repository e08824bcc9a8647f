/**
 * `deno task train`: fine-tunes a frozen model with ADePT.
 *
 * The trainer is built in stages (see the README's status section). Until the training loop
 * exists, this entry point says what is missing and exits with status 2, rather than pretending
 * to train.
 *
 * @module
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: { help: { type: "boolean", short: "h", default: false } },
  strict: false,
});

const missing = [
  "T5 on WebGPU: checkpoint loading, forward/backward and greedy decoding (issue #3)",
  "the data pipeline: tokenizers, GLUE/SuperGLUE tasks, splits and metrics (issue #4)",
  "the ADePT method, the optimizer schedule and the training loop (later issues)",
];

console.error(
  [
    "deno task train: the trainer is not available yet.",
    "What exists: the WebGPU runtime and the kernels a transformer needs (run `deno task test`",
    "and `deno task bench`). Still missing:",
    ...missing.map((m) => `  - ${m}`),
  ].join("\n"),
);
Deno.exit(values.help ? 0 : 2);
