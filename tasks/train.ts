/**
 * `deno task train`: fine-tunes a frozen T5 with ADePT (or DePT, prompt tuning). With no flags,
 * the built-in demo; `--help` lists every flag with its default. A thin wrapper over
 * `parseTrainArgs`, `train` and `runDemo` (src/train/).
 *
 * Exit status: 0 when the run completed, 2 for refused settings or inputs, 3 when training
 * diverged, 130 when stopped by a signal (resume with `--resume --out DIR`), 1 otherwise.
 *
 * @module
 */

import { parseTrainArgs } from "../src/train/cli.ts";
import { runDemo } from "../src/train/demo.ts";
import { train } from "../src/train/trainer.ts";
import { runCli } from "../src/train/cli_errors.ts";

await runCli(async () => {
  const cmd = await parseTrainArgs(Deno.args);
  if (cmd.kind === "help") {
    console.log(cmd.text);
    return 0;
  }
  if (cmd.kind === "demo") {
    const r = await runDemo({ overrides: cmd.overrides, handleSignals: true });
    return r.adept.status === "completed" ? 0 : r.adept.status === "interrupted" ? 130 : 3;
  }
  const r = await train(cmd.config, { handleSignals: true });
  return r.status === "completed" ? 0 : r.status === "interrupted" ? 130 : 3;
});
