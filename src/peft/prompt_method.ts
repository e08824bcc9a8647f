/**
 * What every prompt method shares: config validation, the soft prompt and its initialisation
 * (rows of the frozen embedding for a text, tiled to M, or N(0, 1)), the tensors and gradients
 * in one arena each, and the binding to a session or generator:
 *
 * ```
 * forward:  tokens = wte[ids]                        (B, S, C)  (a method may gather from another table)
 *           ... the method's offset ops ...
 *           inputs_embeds = [prompt; tokens + offset] (B, M + S, C)
 * backward: d prompt = Σ_b d inputs_embeds[b, :M]     then the method's offset gradients
 * ```
 *
 * A method module subclasses {@link PromptMethod} and supplies its offset: scratch buffers, the
 * forward ops and the backward ops.
 *
 * Shape legend: B batch, S source length (tokens), M prompt length, C d_model, V vocab.
 *
 * @module
 */

import type { Arena, Gpu } from "../gpu/device.ts";
import type { Op } from "../gpu/op.ts";
import type { Tensor, TensorSpec } from "../gpu/tensor.ts";
import { checkIds, embeddingForward } from "../layers/embedding.ts";
import {
  type LowRankOffset,
  type PositionOffset,
  promptEmbed,
  sumBatch,
} from "../layers/prompt_embed.ts";
import { embeddingTable, type FrozenT5 } from "../model/t5_graph.ts";
import type { AdamWGroup } from "../optim/adamw.ts";
import {
  type BindOptions,
  type MethodBinding,
  type MethodConfig,
  type MethodInit,
  type ParamGroup,
  PeftError,
  type PeftMethod,
  type PromptConfig,
  type PromptTarget,
  type RandomSource,
  type TrainableTensor,
} from "./method.ts";

/** The prompt initialisation text of the ADePT and DePT code (the typo is theirs). */
export const DEFAULT_INIT_TEXT = "Classify this text is postive or not:";

/** The AdamW settings of the paper's recipe (docs/method.md): weight decay 0 in effect. */
export const ADAMW_DEFAULTS = { beta1: 0.9, beta2: 0.999, eps: 1e-6, weightDecay: 0 } as const;

/** The dropout stream of a method's own dropout site (apart from T5's streams). */
export const METHOD_DROPOUT_STREAM = 1 << 13;

/** Largest prompt length and rank accepted (a guard against typos such as 1e9). */
const MAX_SIZE = 1 << 20;

/**
 * Validates overrides against a method's defaults: unknown keys, wrong types and out-of-range
 * sizes are refused with the method, the key, the value and the fix.
 *
 * @example
 * ```ts
 * import { ADEPT, PeftError, resolveConfig } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const c = resolveConfig(ADEPT.defaults, { rank: 8 });
 * assert.deepEqual([c.promptLength, c.rank, c.promptInit], [60, 8, "text"]);
 * assert.throws(() => resolveConfig(ADEPT.defaults, { maxSourceLength: 9 }), PeftError); // DePT's
 * assert.throws(() => resolveConfig(ADEPT.defaults, { rank: 0 }), /rank must be an integer/);
 * ```
 */
export function resolveConfig<C extends MethodConfig>(
  defaults: Readonly<C>,
  overrides: Record<string, unknown>,
): C {
  const method = defaults.method;
  const allowed = Object.keys(defaults).filter((k) => k !== "method");
  const out = { ...defaults } as Record<string, unknown>;
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    if (key === "method") {
      if (value !== method) {
        throw new PeftError(`${method}: config says method ${JSON.stringify(value)}`);
      }
      continue;
    }
    if (!allowed.includes(key)) {
      throw new PeftError(
        `${method} has no setting "${key}" (its settings: ${allowed.join(", ")}); remove it or ` +
          "choose a method that has it",
      );
    }
    const want = typeof (defaults as Record<string, unknown>)[key];
    const got = typeof value;
    if (got !== want) {
      throw new PeftError(
        `${method}: ${key} must be a ${want}, got ${JSON.stringify(value)}`,
      );
    }
    out[key] = value;
  }
  for (const key of ["promptLength", "rank", "maxSourceLength"]) {
    if (!(key in out)) continue;
    const v = out[key] as number;
    if (!Number.isInteger(v) || v < 1 || v > MAX_SIZE) {
      throw new PeftError(
        `${method}: ${key} must be an integer in [1, ${MAX_SIZE}], got ${v}; the paper uses ` +
          `${(defaults as Record<string, unknown>)[key]}`,
      );
    }
  }
  if (out.promptInit !== "text" && out.promptInit !== "random") {
    throw new PeftError(
      `${method}: promptInit must be "text" or "random", got ${JSON.stringify(out.promptInit)}`,
    );
  }
  return out as C;
}

/**
 * Checks a method's tensor values against their shapes: every tensor present with its exact
 * size, no unknown name, every value finite. Throws a {@link PeftError} naming the tensor.
 *
 * @example
 * ```ts
 * import { checkState, PeftError } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const shapes = { prompt: { shape: [2, 3] } };
 * checkState("prompt_tuning", shapes, { prompt: new Float32Array(6) }, "the adapter");
 * const wrong = { prompt: new Float32Array(5) }; // "prompt" holds 5 values; ... needs (2, 3) = 6
 * assert.throws(() => checkState("prompt_tuning", shapes, wrong, "the adapter"), PeftError);
 * ```
 */
export function checkState(
  method: string,
  shapes: Record<string, { shape: readonly number[] }>,
  values: Record<string, Float32Array>,
  source: string,
): void {
  const names = Object.keys(shapes);
  for (const k of Object.keys(values)) {
    if (!names.includes(k)) {
      throw new PeftError(
        `${source}: "${k}" is not a tensor of ${method} (its tensors: ${names.join(", ")})`,
      );
    }
  }
  for (const [name, { shape }] of Object.entries(shapes)) {
    const v = values[name];
    const size = shape.reduce((a, d) => a * d, 1);
    if (!v) throw new PeftError(`${source}: the ${method} tensor "${name}" is missing`);
    if (v.length !== size) {
      throw new PeftError(
        `${source}: "${name}" holds ${v.length} values; ${method} with this config and model ` +
          `needs (${shape.join(", ")}) = ${size}`,
      );
    }
    const bad = v.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) {
      throw new PeftError(
        `${source}: "${name}"[${bad}] is ${v[bad]}; a saved adapter must hold finite values ` +
          "(the run that wrote it diverged: resume from an earlier checkpoint)",
      );
    }
  }
}

/**
 * The prompt settings an `adapter_config.json` holds (`num_virtual_tokens`,
 * `prompt_tuning_init`, `prompt_tuning_init_text`), plus the integer fields `extra` maps
 * (`{ r: "rank" }`), checked.
 *
 * @example
 * ```ts
 * import { promptSettingsFrom } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const peftConfig = { num_virtual_tokens: 60, prompt_tuning_init: "RANDOM", r: 19 };
 * assert.deepEqual(promptSettingsFrom(peftConfig, "adapter_config.json", { r: "rank" }), {
 *   promptLength: 60,
 *   promptInit: "random",
 *   rank: 19,
 * });
 * ```
 */
export function promptSettingsFrom(
  j: Record<string, unknown>,
  where: string,
  extra: Record<string, string> = {},
): Record<string, unknown> {
  const int = (field: string) => {
    const v = j[field];
    if (!Number.isInteger(v) || (v as number) < 1) {
      throw new PeftError(
        `${where}: "${field}" must be a positive integer, got ${JSON.stringify(v)}`,
      );
    }
    return v as number;
  };
  const out: Record<string, unknown> = {
    promptLength: int("num_virtual_tokens"),
    promptInit: j.prompt_tuning_init === "TEXT" ? "text" : "random",
  };
  if (typeof j.prompt_tuning_init_text === "string") out.promptInitText = j.prompt_tuning_init_text;
  for (const [field, key] of Object.entries(extra)) out[key] = int(field);
  return out;
}

/**
 * The fields the ADePT and DePT forks write besides the prompt's.
 *
 * @example
 * ```ts
 * import { loraForkFields } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const fields = loraForkFields(19, 256, 768); // R, the source length, d_model
 * assert.equal(fields.r, 19);
 * assert.equal(fields.max_length, 256);
 * assert.equal(fields.hidden_size, 768);
 * ```
 */
export function loraForkFields(
  rank: number,
  maxLength: number,
  dModel: number,
): Record<string, unknown> {
  return {
    bias: "none",
    hidden_size: dModel,
    init_lora_weights: true,
    load_lora_embedding_B: true,
    load_lora_embeddings: true,
    lora_alpha: 8,
    max_length: maxLength,
    r: rank,
    save_lora_embeddings: true,
  };
}

/** A uniform float in (0, 1) from 32 random bits. */
function uniform01(rng: RandomSource): number {
  return (rng.nextUint32() + 0.5) / 2 ** 32;
}

/**
 * `n` values uniform in [lo, hi).
 *
 * @example
 * ```ts
 * import { Mt19937, uniformValues } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const bound = 1 / Math.sqrt(19); // ADePT's A ~ U(−1/√R, 1/√R)
 * const a = uniformValues(new Mt19937(42), 1000, -bound, bound);
 * assert.ok(a.every((x) => x >= -bound && x < bound));
 * assert.deepEqual(uniformValues(new Mt19937(42), 1000, -bound, bound), a); // seeded
 * ```
 */
export function uniformValues(rng: RandomSource, n: number, lo: number, hi: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * uniform01(rng);
  return out;
}

/**
 * `n` standard normal values (Box-Muller).
 *
 * @example
 * ```ts
 * import { Mt19937, normalValues } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const x = normalValues(new Mt19937(42), 10_000); // a random prompt init
 * const mean = x.reduce((a, b) => a + b, 0) / x.length;
 * const variance = x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length;
 * assert.ok(Math.abs(mean) < 0.05 && Math.abs(variance - 1) < 0.05);
 * ```
 */
export function normalValues(rng: RandomSource, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform01(rng)));
    const t = 2 * Math.PI * uniform01(rng);
    out[i] = r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

/**
 * The init text's ids tiled to M rows (`[t0, t1, ..., tk, t0, ...]`), checked against V.
 *
 * @example
 * ```ts
 * import { tiledIds } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(tiledIds([7, 8, 1], 5, 100), Int32Array.of(7, 8, 1, 7, 8));
 * assert.throws(() => tiledIds([7, 300], 2, 100), RangeError); // outside the vocabulary
 * ```
 */
export function tiledIds(ids: readonly number[], m: number, vocab: number): Int32Array {
  if (ids.length === 0) {
    throw new PeftError("the prompt init text tokenized to no ids; give a non-empty text");
  }
  const out = Int32Array.from({ length: m }, (_, i) => ids[i % ids.length]);
  checkIds(out, vocab, "prompt init ids");
  return out;
}

/** The scratch, the ops and the target of one binding, handed to a method's offset hooks. */
export interface BindContext {
  readonly gpu: Gpu;
  /** B, S (tokens), M, C. */
  readonly B: number;
  readonly S: number;
  readonly M: number;
  readonly C: number;
  /** Training mode (dropout on, backward built). */
  readonly train: boolean;
  /** Evaluation from a folded table (see {@link BindOptions.folded}). */
  readonly folded: boolean;
  /** (B, S) i32 source ids. */
  readonly ids: Tensor;
  /** (B, S, C) the gathered token rows. */
  readonly tokens: Tensor;
  /** The method's scratch of this binding (from {@link PromptMethod.scratchSpecs}). */
  readonly scratch: Record<string, Tensor>;
  /** The session or generator. */
  readonly target: PromptTarget;
  /** The model's dropout at this binding (training with a rate > 0 only). */
  readonly dropout?: { state: Tensor; p: number; stream: number };
}

/** What a method's forward hook returns. */
export interface OffsetForward {
  /** Ops run after the gather and before the prompt assembly. */
  ops: Op[];
  /** The offset added to the token rows. */
  offset?: PositionOffset | LowRankOffset;
}

/** A prompt method: the shared prompt, tensors, binding; the offset is the subclass's. */
export abstract class PromptMethod<C extends MethodConfig> implements PeftMethod {
  readonly tensors: readonly TrainableTensor[];
  readonly parameterCount: number;
  readonly gpu: Gpu;
  readonly #params: Arena<string>;
  readonly #grads: Arena<string>;
  readonly #bindings = new Set<MethodBinding>();

  protected constructor(
    readonly model: FrozenT5,
    readonly config: C,
    shapes: Record<string, { shape: number[]; group: ParamGroup }>,
  ) {
    this.gpu = model.gpu;
    const specs = (f: (s: { shape: number[] }) => TensorSpec) =>
      Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, f(s)]));
    this.#params = this.gpu.arena(config.method, specs((s) => ({ shape: s.shape })));
    this.#grads = this.gpu.arena(`${config.method}.grad`, specs((s) => ({ shape: s.shape })));
    this.tensors = Object.entries(shapes).map(([name, s]) => ({
      name,
      param: this.#params.tensors[name],
      grad: this.#grads.tensors[name],
      group: s.group,
    }));
    this.parameterCount = this.tensors.reduce((n, t) => n + t.param.size, 0);
  }

  /** The registry name. */
  get name(): string {
    return this.config.method;
  }

  /** M. */
  get promptLength(): number {
    return this.config.promptLength;
  }

  /** A trainable tensor by name. */
  tensor(name: string): TrainableTensor {
    const t = this.tensors.find((x) => x.name === name);
    if (!t) throw new PeftError(`${this.name} has no tensor "${name}"`);
    return t;
  }

  /**
   * Initialises the prompt (text rows or N(0, 1)) and, through {@link PromptMethod.initOffset},
   * the offset's tensors; every gradient starts at zero.
   */
  async initialize(init: MethodInit): Promise<void> {
    const gpu = this.gpu;
    const prompt = this.tensor("prompt").param;
    const M = this.promptLength, C = this.model.config.dModel;
    if (this.config.promptInit === "text") {
      if (!init.initTextIds) {
        throw new PeftError(
          `${this.name}: the text prompt init needs the ids of ${
            JSON.stringify(this.config.promptInitText)
          } (tokenize it with EOS), or set promptInit "random"`,
        );
      }
      const ids = gpu.upload(
        "prompt_init_ids",
        tiledIds(init.initTextIds, M, this.model.config.vocabSize),
      );
      const op = embeddingForward(gpu, {
        table: embeddingTable(this.model, "encoder"),
        ids,
        out: prompt,
        label: "prompt_init",
      });
      await gpu.run(op);
      op.destroy();
      gpu.freeBuffer(ids.buffer);
    } else {
      gpu.write(prompt, normalValues(init.rng, M * C));
    }
    this.initOffset(init.rng);
    for (const t of this.tensors) gpu.zero(t.grad);
    await gpu.flush();
  }

  async readState(which: "param" | "grad" = "param"): Promise<Record<string, Float32Array>> {
    const out: Record<string, Float32Array> = {};
    for (const t of this.tensors) out[t.name] = await this.gpu.read(t[which]) as Float32Array;
    return out;
  }

  writeState(values: Record<string, Float32Array>, source = "the given state"): void {
    const shapes = Object.fromEntries(
      this.tensors.map((t) => [t.name, { shape: [...t.param.shape] }]),
    );
    checkState(this.name, shapes, values, source);
    for (const t of this.tensors) this.gpu.write(t.param, values[t.name]);
  }

  /** Writes the offset tensors' initial values. */
  protected abstract initOffset(rng: RandomSource): void;

  /** Scratch a binding of B x S needs besides ids and tokens. */
  protected abstract scratchSpecs(
    B: number,
    S: number,
    train: boolean,
    folded: boolean,
  ): Record<string, TensorSpec>;

  /** The table token rows are gathered from (the frozen embedding by default). */
  protected tokenTable(_folded: boolean): Tensor {
    return embeddingTable(this.model, "encoder");
  }

  /** The offset's forward ops (after the gather) and the offset the assembly adds. */
  protected abstract offsetForward(ctx: BindContext): OffsetForward;

  /** The offset tensors' gradient ops, from the target's input gradient. */
  protected abstract offsetBackward(ctx: BindContext, dInputs: Tensor): Op[];

  /** Ops refreshing derived tensors before folded evaluation; none by default. */
  prepareEvalOps(): readonly Op[] {
    return [];
  }

  paramGroups(lrs: { prompt: number; offset: number }): AdamWGroup[] {
    const groups: AdamWGroup[] = [];
    for (const g of ["prompt", "offset"] as const) {
      const params = this.tensors.filter((t) => t.group === g).map((t) => ({
        param: t.param,
        grad: t.grad,
      }));
      if (params.length > 0) groups.push({ ...ADAMW_DEFAULTS, lr: lrs[g], params });
    }
    return groups;
  }

  bind(target: PromptTarget, options: BindOptions): MethodBinding {
    const gpu = this.gpu;
    const { batch: B, sourceLength: L } = target.shape;
    const M = this.promptLength, C = this.model.config.dModel;
    const S = L - M;
    if (S < 1) {
      throw new PeftError(
        `${this.name}: the target's encoder input holds ${L} rows, which leaves no room for a ` +
          `source after the ${M} prompt rows; build it with sourceLength = ${M} + the source length`,
      );
    }
    const train = options.train;
    const folded = !train && (options.folded ?? true);
    if (train && !target.inputsEmbedsGrad) {
      throw new PeftError(`${this.name}: training needs a session (a target with input gradients)`);
    }
    const arena = gpu.arena(`${this.name}.bind`, {
      ids: { shape: [B, S], dtype: "i32" },
      tokens: { shape: [B, S, C] },
      ...this.scratchSpecs(B, S, train, folded),
    });
    const { ids, tokens, ...scratch } = arena.tensors;
    const p = target.dropoutRate ?? 0;
    const ctx: BindContext = {
      gpu,
      B,
      S,
      M,
      C,
      train,
      folded,
      ids,
      tokens,
      scratch,
      target,
      dropout: train && p > 0 && target.dropoutState
        ? { state: target.dropoutState, p, stream: METHOD_DROPOUT_STREAM }
        : undefined,
    };
    const fwd = this.offsetForward(ctx);
    const forwardOps: Op[] = [
      embeddingForward(gpu, {
        table: this.tokenTable(folded),
        ids,
        out: tokens,
        label: `${this.name}.embed`,
      }),
      ...fwd.ops,
      promptEmbed(gpu, {
        prompt: this.tensor("prompt").param,
        tokens,
        out: target.inputsEmbeds,
        offset: fwd.offset,
        label: `${this.name}.inputs_embeds`,
      }),
    ];
    const backwardOps: Op[] = [];
    if (train) {
      const g = target.inputsEmbedsGrad!;
      backwardOps.push(
        sumBatch(gpu, { x: g, row0: 0, out: this.tensor("prompt").grad, label: "prompt.grad" }),
        ...this.offsetBackward(ctx, g),
      );
    }
    const vocab = this.model.config.vocabSize;
    const mask = new Float32Array(B * L);
    const name = this.name;
    const bindings = this.#bindings;
    const binding: MethodBinding = {
      batch: B,
      sourceLength: S,
      inputIds: ids,
      forwardOps,
      backwardOps,
      setInputs(inputIds: Int32Array, attentionMask: ArrayLike<number>) {
        if (inputIds.length !== B * S || attentionMask.length !== B * S) {
          throw new PeftError(
            `${name}: a batch of ${inputIds.length} ids and ${attentionMask.length} mask values ` +
              `does not fit ${B} x ${S} source tokens`,
          );
        }
        checkIds(inputIds, vocab, "inputIds");
        for (let b = 0; b < B; b++) {
          mask.fill(1, b * L, b * L + M);
          for (let s = 0; s < S; s++) mask[b * L + M + s] = Number(attentionMask[b * S + s]);
        }
        gpu.write(ids, inputIds);
        gpu.write(target.attentionMask, mask);
      },
      destroy() {
        if (!bindings.delete(binding)) return;
        for (const op of [...forwardOps, ...backwardOps]) op.destroy();
        gpu.freeArena(arena);
      },
    };
    bindings.add(binding);
    return binding;
  }

  destroy(): void {
    for (const b of [...this.#bindings]) b.destroy();
    this.gpu.freeArena(this.#params);
    this.gpu.freeArena(this.#grads);
  }
}

/** The shared part of every method's {@link MethodModule.resolve} check: the prompt settings. */
export const PROMPT_DEFAULTS: Omit<PromptConfig, "promptLength"> = {
  promptInit: "text",
  promptInitText: DEFAULT_INIT_TEXT,
};
