/**
 * Evaluation: greedy generation (at most 20 new tokens) over a split, decoded and scored with
 * the task's metrics, as the paper scores its checkpoints. With a method the encoder input is
 * the method's (ADePT from its folded table: it costs what prompt tuning costs); without one it
 * is the frozen model on the source alone (the no-prompt baseline).
 *
 * Shape legend: B batch, S source tokens, M prompt rows, N new tokens.
 *
 * @module
 */

import { batches } from "../data/batching.ts";
import type { TokenizedSplit } from "../data/cache.ts";
import { METRICS, pyStrip } from "../data/metrics.ts";
import type { Task } from "../data/tasks.ts";
import type { TextTokenizer } from "../data/tokenizer.ts";
import type { T5Model } from "../model/t5.ts";
import type { T5Generator } from "../model/t5_generate.ts";
import type { MethodBinding, PeftMethod } from "../peft/method.ts";

/** Scores of one evaluation. */
export interface EvalResult {
  /** Every metric of the task (0 to 100), the first one selects checkpoints. */
  metrics: Record<string, number>;
  /** The task's first metric. */
  score: number;
  /** Decoded, stripped predictions, in split order. */
  predictions: string[];
  /** Targets, in split order. */
  targets: string[];
  /** Examples scored. */
  examples: number;
  /** Tokens generated (EOS included, up to each row's end). */
  generatedTokens: number;
  /** Wall-clock seconds. */
  seconds: number;
}

/** Options of {@link Evaluator}. */
export interface EvaluatorOptions {
  /** Rows per generation batch (B). */
  batchSize: number;
  /** Source tokens per example (S, without the prompt). */
  sourceLength: number;
  /** Most new tokens per example. @default {20} */
  maxNewTokens?: number;
  /** Evaluate ADePT from its folded table. @default {true} */
  folded?: boolean;
}

/**
 * A generator (and the method bound to it) reused across evaluations of one shape.
 *
 * @example The frozen model on the demo's task (no method: the no-prompt baseline)
 * ```ts
 * import {
 *   Evaluator,
 *   loadT5,
 *   loadTokenizer,
 *   prepareTask,
 *   requestGpu,
 *   resolveTask,
 * } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const model = await loadT5(gpu, "tasks/default/model");
 * const tokenizer = await loadTokenizer("tasks/default/model");
 * const task = await resolveTask("tasks/default/task.json");
 * const data = await prepareTask(task, tokenizer); // tokenized once, then read from the cache
 * const ev = new Evaluator(model, undefined, tokenizer, {
 *   batchSize: 8,
 *   sourceLength: data.sourceLength,
 * });
 * const r = await ev.evaluate(data.validation, task, 8); // the first 8 examples
 * assert.equal(r.examples, 8);
 * assert.equal(r.predictions.length, 8);
 * assert.equal(r.score, r.metrics.accuracy); // the task's first metric selects checkpoints
 * ev.destroy();
 * model.destroy();
 * gpu.destroy();
 * ```
 */
export class Evaluator {
  readonly generator: T5Generator;
  readonly #binding?: MethodBinding;

  constructor(
    readonly model: T5Model,
    readonly method: PeftMethod | undefined,
    readonly tokenizer: TextTokenizer,
    readonly options: EvaluatorOptions,
  ) {
    const M = method?.promptLength ?? 0;
    this.generator = model.generator({
      batch: options.batchSize,
      sourceLength: M + options.sourceLength,
      maxNewTokens: options.maxNewTokens ?? 20,
    });
    this.#binding = method?.bind(this.generator, {
      train: false,
      folded: options.folded ?? true,
    });
  }

  /** Generates for every example of `split` (the first `limit`), decodes and scores. */
  async evaluate(split: TokenizedSplit, task: Task, limit?: number): Promise<EvalResult> {
    const t0 = performance.now();
    const n = Math.min(split.size, limit ?? split.size);
    const predictions: string[] = new Array(n);
    let generated = 0;
    await this.prepare();
    const S = this.options.sourceLength;
    const it = batches(split, {
      batchSize: this.options.batchSize,
      sourceLength: S,
      padId: this.model.config.padTokenId,
      eosId: this.model.config.eosTokenId,
    });
    for (const b of it) {
      if (b.rows[0] >= n) break;
      const { texts, ids } = await this.#generate(b.inputIds, b.attentionMask);
      for (let r = 0; r < b.count; r++) {
        const i = b.rows[r];
        if (i >= n) continue;
        generated += ids[r].length;
        predictions[i] = texts[r];
      }
    }
    const targets = split.targets.slice(0, n).map(pyStrip);
    const metrics: Record<string, number> = {};
    for (const m of task.metrics) metrics[m] = METRICS[m](predictions, targets);
    return {
      metrics,
      score: metrics[task.metrics[0]],
      predictions,
      targets,
      examples: n,
      generatedTokens: generated,
      seconds: (performance.now() - t0) / 1000,
    };
  }

  /** Refreshes the method's derived tensors (ADePT's folded table) after a parameter update. */
  async prepare(): Promise<void> {
    if (this.method) await this.model.gpu.run(this.method.prepareEvalOps(), "eval.prepare");
  }

  /**
   * Greedy generation for one batch of source ids (B, S) and mask, decoded and stripped (call
   * {@link Evaluator.prepare} first after the parameters changed).
   */
  async generate(inputIds: Int32Array, attentionMask: ArrayLike<number>): Promise<string[]> {
    return (await this.#generate(inputIds, attentionMask)).texts;
  }

  async #generate(inputIds: Int32Array, attentionMask: ArrayLike<number>) {
    let ids: number[][];
    if (this.#binding) {
      this.#binding.setInputs(inputIds, attentionMask);
      await this.model.gpu.run(this.#binding.forwardOps, "eval.inputs");
      ids = await this.generator.generate({ attentionMask: [] }, { inputsOnGpu: true });
    } else {
      ids = await this.generator.generate({ inputIds, attentionMask });
    }
    const texts = ids.map((row) =>
      pyStrip(this.tokenizer.decode(row, { skipSpecialTokens: true }))
    );
    return { texts, ids };
  }

  /** Frees the generator and the binding. */
  destroy(): void {
    this.#binding?.destroy();
    this.generator.destroy();
  }
}
