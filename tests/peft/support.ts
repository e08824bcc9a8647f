/**
 * Shared helpers of the method tests: the tiny T5 fixtures, a seeded batch, one recorded
 * training step of a method on a session, and reading a method's tensors.
 *
 * @module
 */

import type { Gpu } from "../../src/gpu/device.ts";
import { Mt19937 } from "../../src/data/mt19937.ts";
import { loadT5, type T5Model } from "../../src/model/t5.ts";
import type { T5Session } from "../../src/model/t5_session.ts";
import "../../src/peft/registry.ts";
import { methodModule, type PeftMethod } from "../../src/peft/method.ts";

export const T5_FIXTURES = new URL("../fixtures/t5/", import.meta.url).pathname;
export const PEFT_FIXTURES = new URL("../fixtures/peft/", import.meta.url).pathname;

const models = new Map<string, Promise<T5Model>>();

/** A tiny T5 fixture, loaded once per device. */
export function tinyModel(gpu: Gpu, variant: "tiny-t5-v1_0" | "tiny-t5-v1_1"): Promise<T5Model> {
  const key = `${variant}`;
  let m = models.get(key);
  if (!m) {
    m = loadT5(gpu, `${T5_FIXTURES}${variant}`);
    models.set(key, m);
  }
  return m;
}

/** A batch of source ids (rows of different lengths ending in EOS), mask and labels. */
export interface SourceBatch {
  B: number;
  S: number;
  T: number;
  inputIds: Int32Array;
  attentionMask: Float32Array;
  labels: Int32Array;
}

/** A padded batch with `lengths[b]` real source tokens and `targets[b]` real labels per row. */
export function makeBatch(
  seed: number,
  lengths: readonly number[],
  S: number,
  targets: readonly number[],
  T: number,
  vocab = 230,
): SourceBatch {
  const rng = new Mt19937(seed);
  const B = lengths.length;
  const inputIds = new Int32Array(B * S), attentionMask = new Float32Array(B * S);
  const labels = new Int32Array(B * T).fill(-100);
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < lengths[b]; s++) {
      inputIds[b * S + s] = s === lengths[b] - 1 ? 1 : 3 + (rng.nextUint32() % (vocab - 3));
      attentionMask[b * S + s] = 1;
    }
    for (let t = 0; t < targets[b]; t++) {
      labels[b * T + t] = t === targets[b] - 1 ? 1 : 3 + (rng.nextUint32() % (vocab - 3));
    }
  }
  return { B, S, T, inputIds, attentionMask, labels };
}

/** Creates a registered method by name with the given settings on a model. */
export function createMethod(
  model: T5Model,
  name: string,
  overrides: Record<string, unknown>,
  seed = 1,
): Promise<PeftMethod> {
  const mod = methodModule(name);
  return mod.create(model, mod.resolve({ promptInit: "random", ...overrides }), {
    rng: new Mt19937(seed),
  });
}

/**
 * Records and runs one training step as ONE submit: the method's input ops, the T5 training
 * forward, the T5 backward and the method's backward; returns the loss.
 */
export async function trainStep(
  method: PeftMethod,
  session: T5Session,
  batch: SourceBatch,
  step?: number,
): Promise<number> {
  const gpu = session.model.gpu;
  const binding = method.bind(session, { train: true });
  binding.setInputs(batch.inputIds, batch.attentionMask);
  session.setLabels(batch.labels);
  if (step === undefined) session.nextStep();
  else session.setStep(step);
  await gpu.run(
    [...binding.forwardOps, ...session.trainOps, ...session.backwardOps, ...binding.backwardOps],
    "method.step",
  );
  const loss = await session.readLoss();
  binding.destroy();
  return loss;
}
