/**
 * T5 on WebGPU: the encoder-decoder of Hugging Face transformers' `T5ForConditionalGeneration`
 * (v1.0 and v1.1 / flan-T5), frozen. {@link loadT5} reads a checkpoint by Hub id or folder;
 * {@link T5Model.session} builds the buffers and ops of a forward pass, the loss and the backward
 * pass to the encoder's input embeddings (the gradient every prompt method needs);
 * {@link T5Model.generator} builds KV-cached greedy decoding. Both are sized once for fixed
 * shapes.
 *
 * Files: `t5_config.ts` (config.json), `t5_weights.ts` (safetensors to the GPU),
 * `t5_buffers.ts` (the typed buffer tables), `t5_graph.ts` (the op lists), `t5_session.ts`
 * and `t5_generate.ts`.
 *
 * @example
 * ```ts
 * import { loadT5, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * // A Hub id ("google-t5/t5-base", through the HF cache) or a folder: the tests' tiny T5 v1.1
 * const model = await loadT5(gpu, "tests/fixtures/t5/tiny-t5-v1_1");
 * const inputIds = Int32Array.of(13, 8, 1, 0); // (B 1, S 4), EOS (1) then padding
 * const attentionMask = [1, 1, 1, 0];
 * const session = model.session({ batch: 1, sourceLength: 4, targetLength: 2 });
 * session.setBatch({ inputIds, attentionMask, labels: Int32Array.of(209, 1) });
 * await session.forward();
 * assert.ok((await session.readLoss()) > 0);
 * const generator = model.generator({ batch: 1, sourceLength: 4, maxNewTokens: 5 });
 * const [ids] = await generator.generate({ inputIds, attentionMask });
 * assert.ok(ids.length >= 1 && ids.length <= 5);
 * session.destroy();
 * generator.destroy();
 * model.destroy();
 * gpu.destroy();
 * ```
 *
 * @module
 */

import type { Arena, Gpu } from "../gpu/device.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { hubDownload, type HubDownloadOptions } from "../io/hub.ts";
import { sessionSpecs, type T5GeneratorShape, type T5Shape } from "./t5_buffers.ts";
import { treeBytes } from "../gpu/arena_tree.ts";
import { loadT5Config, type T5Config } from "./t5_config.ts";
import { T5Generator } from "./t5_generate.ts";
import type { FrozenT5 } from "./t5_graph.ts";
import { T5Session, type T5SessionOptions } from "./t5_session.ts";
import { isT5Projection, loadT5Weights, type T5WeightDtype } from "./t5_weights.ts";

/**
 * Options of {@link loadT5}: where to look on the Hub (see `hubDownload`), and the element type
 * of the frozen projection matrices on the GPU.
 */
export type LoadT5Options = Omit<HubDownloadOptions, "files" | "patterns" | "repoType"> & {
  /**
   * `"f16"` keeps the attention and feed-forward projections (and an untied LM head) in f16:
   * half their memory and bandwidth, products still accumulated in f32 (see `T5WeightDtype`).
   * Needs the adapter feature `shader-f16`.
   * @default {"f32"}
   */
  weightDtype?: T5WeightDtype;
};

/** Files of a T5 checkpoint folder that the model reads. */
const MODEL_FILES = ["config.json", "*.safetensors", "model.safetensors.index.json"];

/**
 * Loads a T5 by Hub id (`google-t5/t5-base`, downloaded into the Hugging Face cache; offline
 * mode honoured) or local folder: parses `config.json` (T5 v1.0 and v1.1 / flan-T5) and uploads
 * the safetensors weights.
 *
 * @example A local folder
 * ```ts
 * import { loadT5, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const model = await loadT5(gpu, "tests/fixtures/t5/tiny-t5-v1_0");
 * assert.equal(model.config.variant, "v1_0"); // ReLU, lm_head tied to the embedding
 * assert.deepEqual(model.w("shared.weight").shape, [256, 64]); // (V, C)
 * assert.equal(model.revision, undefined); // a folder has no Hub commit
 * model.destroy();
 * gpu.destroy();
 * ```
 *
 * @example Frozen projections in f16 (the adapter must offer shader-f16; lavapipe does)
 * ```ts
 * import { loadT5, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const model = await loadT5(gpu, "tests/fixtures/t5/tiny-t5-v1_1", { weightDtype: "f16" });
 * assert.equal(model.weightDtype, "f16");
 * assert.equal(model.w("encoder.block.0.layer.0.SelfAttention.q.weight").dtype, "f16");
 * assert.equal(model.w("shared.weight").dtype, "f32"); // embeddings, biases and norms stay f32
 * model.destroy();
 * gpu.destroy();
 * ```
 *
 * @example A Hub model id (needs the network, or the model in the Hugging Face cache)
 * ```ts ignore
 * import { loadT5, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const model = await loadT5(gpu, "google-t5/t5-base"); // downloaded once into the HF cache
 * assert.equal(model.config.dModel, 768);
 * assert.match(model.revision!, /^[0-9a-f]{40}$/); // the commit the weights came from
 * model.destroy();
 * gpu.destroy();
 * ```
 */
export async function loadT5(
  gpu: Gpu,
  idOrPath: string,
  options: LoadT5Options = {},
): Promise<T5Model> {
  const { weightDtype, ...hub } = options;
  const snap = await hubDownload(idOrPath, { ...hub, patterns: MODEL_FILES });
  const config = await loadT5Config(snap.path("config.json"));
  const weights = await loadT5Weights(gpu, snap.dir, config, { weightDtype });
  return new T5Model(gpu, config, weights, snap.dir, snap.sha);
}

/** A frozen T5 on the GPU: config and weights; sessions and generators are built from it. */
export class T5Model implements FrozenT5 {
  constructor(
    readonly gpu: Gpu,
    /** Parsed `config.json`. */
    readonly config: T5Config,
    /** The frozen weights, by transformers' names. */
    readonly weights: Arena<string>,
    /** The checkpoint folder it was loaded from (a Hub snapshot or a local folder), if any. */
    readonly dir?: string,
    /** The Hub commit sha of the checkpoint (undefined for a local folder). */
    readonly revision?: string,
  ) {}

  /**
   * The element type of the frozen projection matrices: `"f16"` when the weights were loaded
   * with `weightDtype: "f16"` (see {@link LoadT5Options}), else `"f32"`.
   */
  get weightDtype(): T5WeightDtype {
    const [name] = Object.keys(this.weights.tensors).filter(isT5Projection);
    return name && this.weights.tensors[name].dtype === "f16" ? "f16" : "f32";
  }

  /** A frozen weight by transformers' name. */
  w(name: string): Tensor {
    const t = this.weights.tensors[name];
    if (!t) throw new Error(`T5 weight "${name}" is not loaded`);
    return t;
  }

  /** Frees the weights (sessions and generators of this model must be destroyed first). */
  destroy(): void {
    this.gpu.freeArena(this.weights);
  }

  /** Bytes of activations and gradients a session of `shape` allocates. */
  sessionBytes(shape: T5Shape): number {
    return treeBytes(sessionSpecs(this.config, shape));
  }

  /**
   * Builds a session: sizes and allocates every activation once for `shape`, and builds the
   * forward and backward ops. Throws a `GpuLimitError` suggesting a smaller batch or length when
   * one activation exceeds what a binding may cover.
   */
  session(shape: T5Shape, options: T5SessionOptions = {}): T5Session {
    return new T5Session(this, shape, options);
  }

  /** Builds a greedy generator for `shape` (at most 20 new tokens by default). */
  generator(shape: T5GeneratorShape): T5Generator {
    return new T5Generator(this, shape);
  }
}
