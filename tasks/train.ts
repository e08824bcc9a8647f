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
  "the ADePT method (soft prompt + token-shared offset network) and its baselines PT and DePT",
  "the training loop: AdamW groups with warmup/decay, clipping, evaluation, checkpoints, resume",
];

console.error(
  [
    "deno task train: the trainer is not available yet.",
    "What exists (run `deno task test` and `deno task bench`): the WebGPU runtime and kernels,",
    "T5 from Hub ids or folders (forward, backward to the input embeddings, greedy decoding),",
    "and the data pipeline (tokenizers, GLUE/SuperGLUE tasks, splits, metrics, batches).",
    "Still missing:",
    ...missing.map((m) => `  - ${m}`),
  ].join("\n"),
);
Deno.exit(values.help ? 0 : 2);
