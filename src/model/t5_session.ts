/**
 * A T5 session: every activation and gradient buffer of a frozen T5 allocated once for a fixed
 * (batch, source length, target length), and the ops of an evaluation forward, a training
 * forward (dropout on) and the backward pass to the encoder's input embeddings, built once.
 *
 * A caller that trains something on top (a prompt method, an optimizer) records its own ops in
 * the same submit as the session's: advance the dropout counter with {@link T5Session.nextStep},
 * then run `[...methodOps, ...session.trainOps, ...session.backwardOps, ...methodBackwardOps]`.
 *
 * Shape legend: B batch, S source length (prompt included), T target length, C d_model,
 * V vocab.
 *
 * @module
 */

import { allocTree, flattenSpecs, treeBytes } from "../gpu/arena_tree.ts";
import type { Arena, Gpu } from "../gpu/device.ts";
import { GpuLimitError, ShapeError } from "../gpu/errors.ts";
import type { Op } from "../gpu/op.ts";
import { numel, type Tensor } from "../gpu/tensor.ts";
import { shiftRight } from "../io/seq2seq.ts";
import { checkLabels } from "../layers/cross_entropy.ts";
import { setDropoutState } from "../layers/dropout.ts";
import { checkIds } from "../layers/embedding.ts";
import { bucketTable } from "./position_bias.ts";
import { sessionSpecs, type T5SessionBuffers, type T5Shape } from "./t5_buffers.ts";
import { type FrozenT5, T5Graph } from "./t5_graph.ts";

/** Options of a {@link T5Session} (`T5Model.session`). */
export interface T5SessionOptions {
  /** Seed of the dropout masks. @default {0} */
  seed?: number;
  /**
   * Dropout probability in training mode; 0 turns dropout off (deterministic gradients).
   * @default {config.dropoutRate}
   */
  dropoutRate?: number;
  /** Receives one line with the bytes the session allocates, before it allocates them. */
  log?: (line: string) => void;
  /**
   * Run a self-attention's q, k, v projections (and the decoder's cross-attention k, v of all
   * layers) as one product each; false runs one product per weight (the same numbers, more
   * dispatches). @default {true}
   */
  fuseProjections?: boolean;
}

/** One batch, as host arrays of the session's fixed shape. */
export interface T5Batch {
  /** Source token ids (B, S); embedded on the GPU. Give this or `inputsEmbeds`, or neither. */
  inputIds?: Int32Array;
  /** Encoder input embeddings (B, S, C), e.g. a soft prompt concatenated with token rows. */
  inputsEmbeds?: Float32Array;
  /** 1 for real tokens, 0 for padding (B, S). */
  attentionMask: ArrayLike<number>;
  /** Labels (B, T), −100 on padding. The decoder input is them shifted right. */
  labels: Int32Array;
}

/**
 * Throws a {@link GpuLimitError} suggesting a smaller batch or length when one buffer of a spec
 * tree exceeds what one binding may cover; checked before anything is allocated.
 *
 * @example
 * ```ts
 * import { checkBindings, GpuLimitError, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * checkBindings(gpu, { logits: { shape: [8, 4, 32128] } }, "T5 session"); // fits
 * const huge = { logits: { shape: [2 ** 20, 256, 32128] } };
 * assert.throws(() => checkBindings(gpu, huge, "T5 session"), GpuLimitError);
 * gpu.destroy();
 * ```
 */
export function checkBindings(gpu: Gpu, specs: unknown, what: string): void {
  const maxBinding = gpu.limits.maxStorageBufferBindingSize;
  for (const [name, s] of Object.entries(flattenSpecs(specs))) {
    const bytes = numel(s.shape) * 4;
    if (bytes > maxBinding) {
      throw new GpuLimitError(
        `${what}: buffer "${name}" (${s.shape.join("x")}) needs ${bytes} bytes, more than this ` +
          `device's maxStorageBufferBindingSize of ${maxBinding}; use a smaller batch or ` +
          "sequence length",
      );
    }
  }
}

/**
 * Buffers and ops of a T5 for one fixed (batch, source length, target length): a forward pass
 * in evaluation mode (dropout off), a forward pass in training mode (dropout on, counter-based
 * masks) and the backward pass to the encoder's input embeddings.
 *
 * @example
 * ```ts
 * import { loadT5, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const model = await loadT5(gpu, "tests/fixtures/t5/tiny-t5-v1_1"); // d_model 64
 * const shape = { batch: 1, sourceLength: 4, targetLength: 2 };
 * const session = model.session(shape, { dropoutRate: 0 });
 * session.setBatch({
 *   inputIds: Int32Array.of(13, 8, 1, 0),
 *   attentionMask: [1, 1, 1, 0],
 *   labels: Int32Array.of(209, 1), // the decoder input is them shifted right
 * });
 * await session.forward(); // evaluation mode
 * const loss = await session.readLoss();
 * await session.backward(); // training-mode forward and backward, one submit
 * assert.ok(Math.abs((await session.readLoss()) - loss) < 1e-5); // dropout is off here
 * const grad = await session.readInputsEmbedsGrad(); // (B, S, C)
 * assert.equal(grad.length, 4 * 64);
 * // The same step recorded by hand, as a trainer records it between its own ops:
 * session.nextStep(); // the dropout masks of the next step
 * await gpu.run([session.embedOp, ...session.trainOps, ...session.backwardOps]);
 * assert.deepEqual(await session.readInputsEmbedsGrad(), grad);
 * session.destroy();
 * model.destroy();
 * gpu.destroy();
 * ```
 */
export class T5Session {
  /** Activations and gradients, typed (see `t5_buffers.ts` for the shapes). */
  readonly buffers: T5SessionBuffers;
  /** The arena holding {@link T5Session.buffers}. */
  readonly arena: Arena<string>;
  /** Embeds `input_ids` into {@link T5Session.inputsEmbeds} (used when a batch has ids). */
  readonly embedOp: Op;
  /** Forward ops, evaluation mode (no dropout). */
  readonly evalOps: Op[];
  /** Forward ops, training mode (dropout active). */
  readonly trainOps: Op[];
  /** Backward ops, to be recorded right after {@link T5Session.trainOps} in the same submit. */
  readonly backwardOps: Op[];
  /** The dropout seed. */
  readonly seed: number;
  /** Dropout probability of the training-mode ops (0: none). */
  readonly dropoutRate: number;
  #step = 0;
  #useIds = false;

  constructor(readonly model: FrozenT5, readonly shape: T5Shape, options: T5SessionOptions = {}) {
    const gpu = model.gpu;
    const cfg = model.config;
    const rate = options.dropoutRate ?? cfg.dropoutRate;
    if (!(rate >= 0 && rate < 1)) {
      throw new RangeError(`T5 session: dropoutRate must be in [0, 1), got ${rate}`);
    }
    const seed = options.seed ?? 0;
    if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
      throw new RangeError(`T5 session: seed must be an integer in [0, 2^32), got ${seed}`);
    }
    const specs = sessionSpecs(cfg, shape);
    const what = `T5 session (batch ${shape.batch}, source length ${shape.sourceLength}, ` +
      `target length ${shape.targetLength})`;
    checkBindings(gpu, specs, what);
    options.log?.(
      `[t5] session batch ${shape.batch} x source ${shape.sourceLength} x target ` +
        `${shape.targetLength}: ${(treeBytes(specs) / 2 ** 20).toFixed(1)} MiB of activations ` +
        `and gradients (weights: ${(model.weights.byteLength / 2 ** 20).toFixed(1)} MiB)`,
    );
    const { arena, tensors } = allocTree<T5SessionBuffers>(gpu, "t5_session", specs);
    this.arena = arena;
    this.buffers = tensors;
    this.seed = seed;
    this.dropoutRate = rate;
    const { inputs, decoder } = tensors;
    this.setStep(0);
    const nb = cfg.relativeAttentionNumBuckets, md = cfg.relativeAttentionMaxDistance;
    gpu.write(inputs.buckets, bucketTable(shape.sourceLength, true, nb, md));
    gpu.write(decoder.buckets, bucketTable(shape.targetLength, false, nb, md));
    const graph = new T5Graph(model, shape, tensors, rate, options.fuseProjections ?? true);
    this.embedOp = graph.embed();
    this.evalOps = [...graph.encoder(false), ...graph.decoder(false, decoder)];
    this.trainOps = [...graph.encoder(true), ...graph.decoder(true, decoder)];
    this.backwardOps = graph.backward(decoder, tensors.grads);
  }

  /** Encoder input embeddings (B, S, C): the forward reads them; prompt methods write them. */
  get inputsEmbeds(): Tensor {
    return this.buffers.inputs.inputsEmbeds;
  }

  /** Gradient of the loss with respect to {@link T5Session.inputsEmbeds} (B, S, C). */
  get inputsEmbedsGrad(): Tensor {
    return this.buffers.grads.inputsEmbeds;
  }

  /** Encoder key mask (B, S) f32. */
  get attentionMask(): Tensor {
    return this.buffers.inputs.attentionMask;
  }

  /** Logits (B, T, V). */
  get logits(): Tensor {
    return this.buffers.decoder.logits;
  }

  /** Mean token cross-entropy (1). */
  get loss(): Tensor {
    return this.buffers.decoder.loss;
  }

  /** Encoder output after the final norm (B, S, C). */
  get encoderOutput(): Tensor {
    return this.buffers.encoder.output;
  }

  /** The (2) u32 `(seed, step)` tensor every dropout op of the session reads. */
  get dropoutState(): Tensor {
    return this.buffers.inputs.dropoutState;
  }

  /** The dropout step counter: training-mode ops draw the masks of this step. */
  get step(): number {
    return this.#step;
  }

  /**
   * Sets the dropout step counter (e.g. when resuming a run); the write lands before the next
   * submit.
   */
  setStep(step: number): void {
    if (!Number.isInteger(step) || step < 0 || step >= 2 ** 32) {
      throw new RangeError(`T5 session: step must be an integer in [0, 2^32), got ${step}`);
    }
    setDropoutState(this.model.gpu, this.dropoutState, { seed: this.seed, step });
    this.#step = step;
  }

  /**
   * Advances the dropout counter by one and returns it: call once per training step before
   * recording {@link T5Session.trainOps} yourself ({@link T5Session.forward} with `train` and
   * {@link T5Session.backward} call it for you).
   */
  nextStep(): number {
    this.setStep(this.#step + 1);
    return this.#step;
  }

  /**
   * Uploads one batch (fixed shape). Labels are shifted right into the decoder input. Without
   * `inputIds` and `inputsEmbeds`, the caller fills {@link T5Session.inputsEmbeds} on the GPU.
   */
  setBatch(batch: T5Batch): void {
    const gpu = this.model.gpu;
    const cfg = this.model.config;
    const { batch: B, sourceLength: S, targetLength: T } = this.shape;
    const { inputs } = this.buffers;
    const want = (name: string, got: number, n: number, dims: string) => {
      if (got !== n) {
        throw new ShapeError(
          `T5 batch: ${name} has ${got} elements, the session expects ${n} (${dims})`,
        );
      }
    };
    if (batch.inputIds) {
      want("inputIds", batch.inputIds.length, B * S, `${B} x ${S}`);
      checkIds(batch.inputIds, cfg.vocabSize, "inputIds");
      gpu.write(inputs.inputIds, batch.inputIds);
      this.#useIds = true;
    } else if (batch.inputsEmbeds) {
      want("inputsEmbeds", batch.inputsEmbeds.length, B * S * cfg.dModel, `${B} x ${S} x C`);
      gpu.write(inputs.inputsEmbeds, batch.inputsEmbeds);
      this.#useIds = false;
    } else {
      this.#useIds = false;
    }
    want("attentionMask", batch.attentionMask.length, B * S, `${B} x ${S}`);
    want("labels", batch.labels.length, B * T, `${B} x ${T}`);
    checkLabels(batch.labels, cfg.vocabSize, "labels");
    gpu.write(inputs.attentionMask, Float32Array.from(batch.attentionMask, Number));
    this.setLabels(batch.labels);
  }

  /**
   * Uploads the labels (B, T), −100 on padding, and the decoder input (them shifted right): what
   * a prompt method's caller uploads besides the method's own inputs.
   */
  setLabels(labels: Int32Array): void {
    const gpu = this.model.gpu;
    const cfg = this.model.config;
    const { batch: B, targetLength: T } = this.shape;
    if (labels.length !== B * T) {
      throw new ShapeError(
        `T5 batch: labels has ${labels.length} elements, the session expects ${B * T} ` +
          `(${B} x ${T})`,
      );
    }
    checkLabels(labels, cfg.vocabSize, "labels");
    const { decoder } = this.buffers;
    gpu.write(decoder.labels, labels);
    gpu.write(
      decoder.decoderInputIds,
      shiftRight(labels, B, T, cfg.decoderStartTokenId, cfg.padTokenId),
    );
  }

  /** Forward pass (evaluation mode by default): logits, loss and encoder output. */
  async forward(options: { train?: boolean } = {}): Promise<void> {
    const ops = options.train ? this.trainOps : this.evalOps;
    if (options.train) this.nextStep();
    await this.model.gpu.run(this.#useIds ? [this.embedOp, ...ops] : ops, "t5.forward");
  }

  /**
   * Training-mode forward plus backward in one submit: fills {@link T5Session.loss} and
   * {@link T5Session.inputsEmbedsGrad}. Each call draws fresh dropout masks.
   */
  async backward(): Promise<void> {
    this.nextStep();
    const ops = [...this.trainOps, ...this.backwardOps];
    await this.model.gpu.run(this.#useIds ? [this.embedOp, ...ops] : ops, "t5.backward");
  }

  /** The mean loss of the last forward pass. */
  async readLoss(): Promise<number> {
    return (await this.model.gpu.read(this.loss))[0] as number;
  }

  /** Logits of the last forward pass (B, T, V). */
  readLogits(): Promise<Float32Array> {
    return this.model.gpu.read(this.logits) as Promise<Float32Array>;
  }

  /** Encoder output of the last forward pass (B, S, C). */
  readEncoderOutput(): Promise<Float32Array> {
    return this.model.gpu.read(this.encoderOutput) as Promise<Float32Array>;
  }

  /** Gradient with respect to the encoder's input embeddings (B, S, C). */
  readInputsEmbedsGrad(): Promise<Float32Array> {
    return this.model.gpu.read(this.inputsEmbedsGrad) as Promise<Float32Array>;
  }

  /** Frees the session's buffers and ops; the model stays loaded. */
  destroy(): void {
    for (const op of [this.embedOp, ...this.evalOps, ...this.trainOps, ...this.backwardOps]) {
      op.destroy();
    }
    this.model.gpu.freeArena(this.arena);
  }
}
