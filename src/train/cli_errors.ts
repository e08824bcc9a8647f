/**
 * How the command-line tools end: a refused setting or input (a named error a user can act on)
 * prints its message alone and exits with status 2; anything else prints the stack and exits
 * with 1.
 *
 * @module
 */

import { DatasetError } from "../data/datasets.ts";
import { TaskError } from "../data/tasks.ts";
import { TokenizerError } from "../data/tokenizer.ts";
import { GpuDeviceLostError, GpuLimitError, NoAdapterError } from "../gpu/errors.ts";
import { HubError } from "../io/hub.ts";
import { SafetensorsError } from "../io/safetensors.ts";
import { T5ConfigError } from "../model/t5_config.ts";
import { T5WeightsError } from "../model/t5_weights.ts";
import { PeftError } from "../peft/method.ts";
import { TrainConfigError } from "./config.ts";

/** Errors whose message is the whole story for a user. */
const USER_ERRORS = [
  TrainConfigError,
  PeftError,
  TaskError,
  DatasetError,
  TokenizerError,
  HubError,
  SafetensorsError,
  T5ConfigError,
  T5WeightsError,
  NoAdapterError,
  GpuLimitError,
  GpuDeviceLostError,
];

/**
 * Whether an error is one of the named errors a user acts on.
 *
 * @example
 * ```ts
 * import { PeftError, TrainConfigError } from "@adept/trainer";
 * import { isUserError } from "./cli_errors.ts"; // not exported by the package
 * import assert from "node:assert/strict";
 *
 * assert.ok(isUserError(new TrainConfigError("--steps: expected an integer, got \"1.5\"")));
 * assert.ok(isUserError(new PeftError("unknown method \"lora\"")));
 * assert.ok(!isUserError(new TypeError("a bug: print its stack"))); // exit status 1, not 2
 * ```
 */
export function isUserError(e: unknown): boolean {
  return USER_ERRORS.some((C) => e instanceof C);
}

/** Runs a command's body and exits with its status (see the module doc). */
export async function runCli(body: () => Promise<number>): Promise<never> {
  let code: number;
  try {
    code = await body();
  } catch (e) {
    if (isUserError(e)) {
      console.error(`error: ${(e as Error).message}`);
      code = 2;
    } else {
      console.error(e);
      code = 1;
    }
  }
  Deno.exit(code);
}
