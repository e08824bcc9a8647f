/**
 * The small interface every parameter-efficient method implements, and the registry that maps a
 * method's name to its module (as Hugging Face PEFT registers its tuners). Code outside a
 * method's own module never branches on the method's name: it asks the registry for the module
 * and talks to the {@link PeftMethod} it creates.
 *
 * A method owns its trainable tensors (each with a gradient and a parameter group) and builds,
 * for a T5 session or generator ({@link PromptTarget}), the ops that write the encoder's input
 * embeddings and mask from a batch of source ids, and the ops that turn the gradient of those
 * embeddings into its tensors' gradients ({@link MethodBinding}).
 *
 * Shape legend: B batch, S source length (tokens), M prompt length, C d_model, V vocab.
 *
 * @example A method from the registry: one training step's gradients
 * ```ts
 * import { loadT5, methodModule, Mt19937, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const model = await loadT5(gpu, "tests/fixtures/t5/tiny-t5-v1_1");
 * const adept = methodModule("adept"); // or "dept", "pt"
 * const config = adept.resolve({ promptLength: 4, rank: 8, promptInit: "random" });
 * const method = await adept.create(model, config, { rng: new Mt19937(42) });
 * // the session's encoder input holds the prompt rows, then the source: M + S
 * const session = model.session({ batch: 1, sourceLength: 4 + 3, targetLength: 2 });
 * const binding = method.bind(session, { train: true });
 * binding.setInputs(Int32Array.of(13, 8, 1), [1, 1, 1]); // source ids (B, S) and mask
 * session.setLabels(Int32Array.of(209, 1));
 * session.nextStep();
 * await gpu.run([
 *   ...binding.forwardOps, // writes the session's input embeddings and mask
 *   ...session.trainOps,
 *   ...session.backwardOps,
 *   ...binding.backwardOps, // from the input embeddings' gradient to the method's
 * ]);
 * const grads = await method.readState("grad");
 * assert.deepEqual(Object.keys(grads), ["prompt", "A", "a", "Bw", "b"]);
 * assert.ok(grads.prompt.some((g) => g !== 0));
 * method.destroy();
 * session.destroy();
 * model.destroy();
 * gpu.destroy();
 * ```
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import type { Op } from "../gpu/op.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { FrozenT5 } from "../model/t5_graph.ts";
import type { AdamWGroup } from "../optim/adamw.ts";

/**
 * A method's configuration was refused (unknown name, bad value), or an adapter does not fit a
 * model: the message names the value and the fix.
 */
export class PeftError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PeftError";
  }
}

/** The optimizer group a tensor belongs to (each has its own learning rate). */
export type ParamGroup = "prompt" | "offset";

/** One trainable tensor of a method. */
export interface TrainableTensor {
  /** Its name in the method and in saved adapters (`prompt`, `A`, ...). */
  readonly name: string;
  /** The values, f32, updated in place by the optimizer. */
  readonly param: Tensor;
  /** The gradient, same shape, overwritten by every backward pass. */
  readonly grad: Tensor;
  /** Its optimizer group. */
  readonly group: ParamGroup;
}

/** Where a method's ops write: a T5 session (training) or generator (evaluation). */
export interface PromptTarget {
  /** Sizes; `sourceLength` counts the prompt rows too (M + S). */
  readonly shape: { readonly batch: number; readonly sourceLength: number };
  /** (B, M + S, C): the encoder input the method writes. */
  readonly inputsEmbeds: Tensor;
  /** (B, M + S): the encoder mask the method writes (prompt rows attended). */
  readonly attentionMask: Tensor;
  /** (B, M + S, C): the gradient the method's backward reads (sessions only). */
  readonly inputsEmbedsGrad?: Tensor;
  /** (2) u32 dropout `(seed, step)` shared with the model (sessions only). */
  readonly dropoutState?: Tensor;
  /** The model's dropout rate in training (sessions only). */
  readonly dropoutRate?: number;
}

/** How a binding's forward ops run. */
export interface BindOptions {
  /** Training mode: dropout on (at the target's rate) and backward ops built. */
  train: boolean;
  /**
   * Evaluation from a folded embedding table where the method has one (ADePT), so the method
   * costs what a plain prompt costs; run {@link PeftMethod.prepareEvalOps} after every update
   * of the parameters and before the binding's ops. @default {true}
   */
  folded?: boolean;
}

/** A method bound to one target: its input ids, forward ops and backward ops. */
export interface MethodBinding {
  /** B. */
  readonly batch: number;
  /** S: source tokens per row, without the prompt. */
  readonly sourceLength: number;
  /** (B, S) i32: the source ids the forward ops read (written by {@link MethodBinding.setInputs}). */
  readonly inputIds: Tensor;
  /**
   * Writes a batch's source ids (B, S) and mask (B, S) to the GPU; the target's mask gets the
   * prompt rows (attended) in front.
   */
  setInputs(inputIds: Int32Array, attentionMask: ArrayLike<number>): void;
  /** Ops that write the target's encoder input embeddings. */
  readonly forwardOps: readonly Op[];
  /** Ops from the target's input gradient to every tensor's gradient (training only). */
  readonly backwardOps: readonly Op[];
  /** Frees the binding's scratch and ops. */
  destroy(): void;
}

/** A method's trainable state on the GPU, bound to a frozen model. */
export interface PeftMethod {
  /** The registry name (`adept`, `dept`, `prompt_tuning`). */
  readonly name: string;
  /** The resolved configuration. */
  readonly config: MethodConfig;
  /** M: the prompt rows prepended to the encoder input. */
  readonly promptLength: number;
  /** The trainable tensors, prompt first. */
  readonly tensors: readonly TrainableTensor[];
  /** Σ of the tensors' sizes. */
  readonly parameterCount: number;
  /** The device the tensors live on. */
  readonly gpu: Gpu;
  /** Reads every tensor's values (or gradients) to the host, by name. */
  readState(which?: "param" | "grad"): Promise<Record<string, Float32Array>>;
  /**
   * Writes tensor values by name (e.g. from a saved adapter): every tensor must be given with
   * its exact size and finite values, else a {@link PeftError} names it and nothing is written.
   */
  writeState(values: Record<string, Float32Array>, source?: string): void;
  /** Binds the method to a session or generator. */
  bind(target: PromptTarget, options: BindOptions): MethodBinding;
  /** Ops that refresh derived tensors (ADePT's folded table) before folded evaluation. */
  prepareEvalOps(): readonly Op[];
  /** The two AdamW parameter groups: the prompt and the offset network (empty ones omitted). */
  paramGroups(lrs: { prompt: number; offset: number }): AdamWGroup[];
  /** Frees the tensors, gradients and every binding's scratch. */
  destroy(): void;
}

/** Settings every prompt method shares. */
export interface PromptConfig {
  /** M: prompt rows. */
  promptLength: number;
  /** How the prompt starts: copies of the embedding rows of a text, or N(0, 1). */
  promptInit: "text" | "random";
  /** The text whose token rows initialise the prompt (tiled to M). */
  promptInitText: string;
}

/** ADePT's settings. */
export interface AdeptConfig extends PromptConfig {
  method: "adept";
  /** R: the offset network's width. */
  rank: number;
}

/** DePT's settings. */
export interface DeptConfig extends PromptConfig {
  method: "dept";
  /** R: the rank of the position offset A1·B1. */
  rank: number;
  /** S: the source positions the offset covers (rows of A1). */
  maxSourceLength: number;
}

/** Vanilla prompt tuning's settings. */
export interface PromptTuningConfig extends PromptConfig {
  method: "prompt_tuning";
}

/** Any method's settings; `method` names its registry entry. */
export type MethodConfig = AdeptConfig | DeptConfig | PromptTuningConfig;

/** Random bits for initialisation (e.g. the data pipeline's torch-exact `Mt19937`). */
export interface RandomSource {
  /** A uniform integer in [0, 2^32). */
  nextUint32(): number;
}

/** What creating a method needs besides its config. */
export interface MethodInit {
  /** Random bits for the random initialisations (seeded: runs are reproducible). */
  rng: RandomSource;
  /** The token ids of `promptInitText` with EOS, for the text initialisation. */
  initTextIds?: readonly number[];
}

/** One setting of a method, as the CLI and config files name it. */
export interface MethodOption {
  /** The config key (`rank`). */
  key: string;
  /** What it does, with the paper's default. */
  description: string;
}

/** A registered method: its defaults, validation, size and constructor. */
export interface MethodModule<C extends MethodConfig = MethodConfig> {
  /** The registry name. */
  readonly name: C["method"];
  /** The method's full name, for logs. */
  readonly title: string;
  /** The paper's settings. */
  readonly defaults: Readonly<C>;
  /** The settings beyond {@link PromptConfig}, for help texts. */
  readonly options: readonly MethodOption[];
  /**
   * The config from defaults and overrides, validated; throws {@link PeftError} naming the
   * field, the value and the fix. `maxSourceLength` and the model are checked in `create`.
   */
  resolve(overrides: Record<string, unknown>): C;
  /** The trainable tensors' shapes for a model width C. */
  shapes(config: C, dModel: number): Record<string, { shape: number[]; group: ParamGroup }>;
  /** How the method's adapters are saved (see `adapter.ts`). */
  readonly adapter: AdapterFormat<C>;
  /** Builds and initialises the method's tensors on the model's device. */
  create(model: FrozenT5, config: C, init: MethodInit): Promise<PeftMethod>;
}

/** A method's adapter files in PEFT's layout (`adapter_config.json` + safetensors). */
export interface AdapterFormat<C extends MethodConfig = MethodConfig> {
  /** `peft_type` in `adapter_config.json` (PEFT's, or the authors' fork's). */
  readonly peftType: string;
  /** The method's tensor name → the name in `adapter_model.safetensors`. */
  readonly tensorNames: Readonly<Record<string, string>>;
  /** Copies of the prompt rows saved (PEFT's seq2seq prompt tuning: 2; the forks: 1). */
  readonly promptCopies: number;
  /** The method-specific fields of `adapter_config.json`. */
  configFields(
    config: C,
    model: { dModel: number; sourceLength?: number },
  ): Record<string, unknown>;
  /** The method's settings from an `adapter_config.json` (adapters other tools wrote). */
  settingsFrom(peftConfig: Record<string, unknown>, where: string): Record<string, unknown>;
}

const REGISTRY = new Map<string, MethodModule>();
const ALIASES = new Map<string, string>();

/** Adds a method to the registry under its name and aliases (e.g. `pt`). */
export function registerMethod(module: MethodModule, aliases: readonly string[] = []): void {
  if (REGISTRY.has(module.name)) {
    throw new PeftError(`a method named "${module.name}" is already registered`);
  }
  REGISTRY.set(module.name, module);
  for (const a of aliases) ALIASES.set(a, module.name);
}

/**
 * Names of the registered methods.
 *
 * @example
 * ```ts
 * import { methodNames } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(methodNames(), ["adept", "dept", "prompt_tuning"]);
 * ```
 */
export function methodNames(): string[] {
  return [...REGISTRY.keys()];
}

/**
 * The registered module of a method by name or alias; throws {@link PeftError} listing the
 * known names for an unknown one.
 *
 * @example
 * ```ts
 * import { methodModule, PeftError } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const pt = methodModule("pt"); // an alias
 * assert.equal(pt.name, "prompt_tuning");
 * assert.equal(pt.resolve({}).promptLength, 100); // the paper's default
 * assert.throws(() => methodModule("lora"), PeftError); // lists the known methods
 * ```
 */
export function methodModule(name: string): MethodModule {
  const m = REGISTRY.get(ALIASES.get(name) ?? name);
  if (!m) {
    const known = [...REGISTRY.keys(), ...ALIASES.keys()].map((n) => `"${n}"`).join(", ");
    throw new PeftError(`unknown method ${JSON.stringify(name)}; known methods: ${known}`);
  }
  return m;
}

/**
 * Σ of a method's tensor sizes for a model width, without allocating anything.
 *
 * @example
 * ```ts
 * import { methodModule, parameterCount } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * // the paper's settings on T5-base (d_model 768)
 * assert.equal(parameterCount(methodModule("adept").resolve({}), 768), 76_051); // M 60, R 19
 * assert.equal(parameterCount(methodModule("dept").resolve({}), 768), 76_800); // M 60, R 30
 * assert.equal(parameterCount(methodModule("pt").resolve({}), 768), 76_800); // L 100
 * ```
 */
export function parameterCount(config: MethodConfig, dModel: number): number {
  const shapes = methodModule(config.method).shapes(config as never, dModel);
  return Object.values(shapes).reduce((n, s) => n + s.shape.reduce((a, d) => a * d, 1), 0);
}
