/**
 * Training checkpoints: one safetensors file per run folder, `checkpoint.safetensors`, written
 * atomically (temporary file, fsync, rename) so that a kill at any moment leaves the previous
 * checkpoint intact. It holds the method's tensors (`param.<name>`), both AdamW moments
 * (`m.<name>`, `v.<name>`), the losses logged since the last log line (`history`), and as
 * metadata the step (which is also the scheduler position, the data order position and the
 * dropout counter), the skip counters, the best validation score so far and the run's config.
 *
 * @module
 */

import { openSafetensors, type TensorToWrite, writeSafetensors } from "../io/safetensors.ts";
import { syncDir } from "../io/files.ts";
import { dirname, join } from "node:path";
import type { TrainConfig } from "./config.ts";

/** The checkpoint's file name in a run folder. */
export const CHECKPOINT_FILE = "checkpoint.safetensors";

/** The format tag in the metadata. */
const FORMAT = "adept-trainer-checkpoint/1";

/** Everything of a run's state besides tensors. */
export interface CheckpointState {
  /** Steps applied or skipped so far: the next step is `step + 1`. */
  step: number;
  /** Optimizer steps skipped because of a non-finite loss or gradient. */
  skipped: number;
  /** Of those, in a row up to `step`. */
  skippedInARow: number;
  /** The best validation score and its step (undefined before the first evaluation). */
  best?: { step: number; score: number; metrics: Record<string, number> };
  /** Seconds spent training before this checkpoint. */
  elapsedSeconds: number;
  /** Source and target tokens trained on so far. */
  tokens: number;
  /** The dropout counter (equals `step`: every step draws the masks of its own number). */
  dropoutStep: number;
  /** The data order position: batches drawn (equals `step`). */
  dataPosition: number;
  /** The scheduler position: steps taken (equals `step`). */
  schedulerPosition: number;
}

/** A checkpoint as read back. */
export interface Checkpoint {
  /** The run's settings when it was written. */
  config: TrainConfig;
  /** The state. */
  state: CheckpointState;
  /** `param.<name>`, `m.<name>`, `v.<name>` and `history` (K, 2) of pending (loss, norm). */
  tensors: Record<string, Float32Array>;
}

/**
 * Writes a checkpoint into `dir` atomically.
 *
 * @example
 * ```ts
 * import { hasCheckpoint, PAPER_DEFAULTS, readCheckpoint, writeCheckpoint } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir(); // a run folder
 * const state = {
 *   step: 100,
 *   skipped: 0,
 *   skippedInARow: 0,
 *   elapsedSeconds: 12.5,
 *   tokens: 64_000,
 *   dropoutStep: 100,
 *   dataPosition: 100,
 *   schedulerPosition: 100,
 * };
 * const prompt = Float32Array.of(0.1, 0.2);
 * const tensors = { "param.prompt": prompt, "m.prompt": prompt.map((x) => x / 10) };
 * await writeCheckpoint(dir, { config: { ...PAPER_DEFAULTS, out: dir }, state, tensors });
 * assert.ok(await hasCheckpoint(dir));
 * const back = await readCheckpoint(dir);
 * assert.equal(back.state.step, 100);
 * assert.deepEqual(back.tensors["param.prompt"], prompt);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeCheckpoint(dir: string, ckpt: Checkpoint): Promise<void> {
  const tensors: Record<string, TensorToWrite> = {};
  for (const [k, v] of Object.entries(ckpt.tensors)) tensors[k] = { shape: [v.length], data: v };
  const path = join(dir, CHECKPOINT_FILE);
  await Deno.mkdir(dir, { recursive: true });
  await writeSafetensors(path, tensors, {
    metadata: {
      format: FORMAT,
      config: JSON.stringify(ckpt.config),
      state: JSON.stringify(ckpt.state),
    },
  });
  await syncDir(dirname(path));
}

/** Whether `dir` holds a checkpoint. */
export async function hasCheckpoint(dir: string): Promise<boolean> {
  return (await Deno.stat(join(dir, CHECKPOINT_FILE)).catch(() => null))?.isFile ?? false;
}

/**
 * Reads the checkpoint of `dir`; a missing or malformed one is an error naming the file.
 *
 * @example
 * ```ts
 * import { readCheckpoint, writeSafetensors } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * // any other safetensors file is refused, naming it
 * const x = { shape: [1], data: Float32Array.of(1) };
 * await writeSafetensors(`${dir}/checkpoint.safetensors`, { x });
 * await assert.rejects(readCheckpoint(dir), /not a checkpoint of this trainer/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readCheckpoint(dir: string): Promise<Checkpoint> {
  const path = join(dir, CHECKPOINT_FILE);
  using r = await openSafetensors(path);
  const meta = r.metadata ?? {};
  if (meta.format !== FORMAT) {
    throw new Error(
      `${path}: not a checkpoint of this trainer (format ${JSON.stringify(meta.format)})`,
    );
  }
  const tensors: Record<string, Float32Array> = {};
  for (const name of r.names()) {
    tensors[name] = await r.readFloat(name, { dtype: "f32" }) as Float32Array;
  }
  return {
    config: JSON.parse(meta.config) as TrainConfig,
    state: JSON.parse(meta.state) as CheckpointState,
    tensors,
  };
}
