/**
 * `train(config)`: the paper's recipe end to end (docs/method.md). Loads the frozen model, the
 * tokenizer and the task's splits; trains the method with one submit per step; evaluates on the
 * validation split every `evalEvery` steps (greedy generation, the task's metrics) and keeps the
 * best parameters; checkpoints every `saveEvery` steps and on SIGINT / SIGTERM; at the end
 * restores the best parameters and scores them on the test split: that score is the run's
 * result. Everything lands in the run folder (`config.json`, `log.jsonl`, `loss.svg`,
 * `validation.svg`, `checkpoint.safetensors`, `best/` adapter, `summary.json`).
 *
 * @module
 */

import { join, resolve } from "node:path";
import { Batcher } from "../data/batching.ts";
import { prepareTask, type TokenizedTask } from "../data/cache.ts";
import { Mt19937 } from "../data/mt19937.ts";
import { resolveTask } from "../data/task_file.ts";
import type { Task } from "../data/tasks.ts";
import { loadTokenizer, type TextTokenizer } from "../data/tokenizer.ts";
import { type Gpu, requestGpu } from "../gpu/device.ts";
import { writeFileAtomic } from "../io/files.ts";
import type { HubOptions } from "../io/hub.ts";
import { loadT5, type T5Model } from "../model/t5.ts";
import "../peft/registry.ts";
import { type MethodConfig, methodModule, PeftError, type PeftMethod } from "../peft/method.ts";
import { readAdapter, saveAdapter } from "../peft/adapter.ts";
import { hasCheckpoint, readCheckpoint, writeCheckpoint } from "./checkpoint.ts";
import { type TrainConfig, TrainConfigError } from "./config.ts";
import { type EvalResult, Evaluator } from "./evaluate.ts";
import { type EvalRecord, formatDuration, RunLog } from "./run_log.ts";
import { TrainStep } from "./step.ts";

/** Options of {@link train} besides the config. */
export interface TrainOptions {
  /** The device. @default {requestGpu()} */
  gpu?: Gpu;
  /** Hub settings for the model, tokenizer and dataset downloads. */
  hub?: HubOptions;
  /** Where messages go. @default {console.log} */
  print?: (line: string) => void;
  /** A progress bar (terminals) instead of plain lines. @default {Deno.stdout.isTerminal()} */
  bar?: boolean;
  /** Checkpoint and stop on SIGINT / SIGTERM (the CLI sets it). @default {false} */
  handleSignals?: boolean;
  /** Stops the run at the next step boundary, with a checkpoint. */
  signal?: AbortSignal;
  /** Score the best parameters on the test split at the end. @default {true} */
  test?: boolean;
}

/** What a run gives back (also written as `summary.json`). */
export interface TrainResult {
  /** The run folder. */
  runDir: string;
  /** `completed`, `interrupted` (a signal; resume with `--resume`), or `diverged`. */
  status: "completed" | "interrupted" | "diverged";
  /** Steps done. */
  steps: number;
  /** The best validation evaluation. */
  best?: { step: number; score: number; metrics: Record<string, number> };
  /** The test scores of the best parameters (the run's result). */
  test?: Record<string, number>;
  /** The task's first metric (which selects the best step). */
  metric: string;
  /** Training seconds (resumed runs include the earlier part). */
  seconds: number;
  /** Source + target tokens trained per second. */
  tokensPerSecond: number;
  /** Peak GPU memory allocated by the run, in bytes. */
  peakGpuBytes: number;
  /** Steps skipped for a non-finite loss or gradient. */
  skippedSteps: number;
  /** Trainable parameters. */
  parameters: number;
}

/**
 * A pause after every step, from `ADEPT_TEST_STEP_DELAY_MS`: the tests that interrupt a training
 * subprocess use it so that the interruption lands mid-run however fast the machine is.
 */
const STEP_DELAY_MS = (() => {
  try {
    return Number(Deno.env.get("ADEPT_TEST_STEP_DELAY_MS") ?? 0) || 0;
  } catch {
    return 0; // no --allow-env
  }
})();

/** The settings a resumed run must share with its checkpoint. */
const IDENTITY: (keyof TrainConfig)[] = [
  "model",
  "task",
  "method",
  "promptLength",
  "rank",
  "lr",
  "lrOffset",
  "steps",
  "warmup",
  "batchSize",
  "maxSourceLength",
  "seed",
  "dropout",
  "promptInit",
  "promptInitText",
];

/** The method settings a run config carries, for the registry's `resolve`. */
function methodOverrides(c: TrainConfig): Record<string, unknown> {
  return {
    promptLength: c.promptLength,
    rank: c.rank,
    promptInit: c.promptInit,
    promptInitText: c.promptInitText,
  };
}

/**
 * Checks what can be checked without loading anything: the method and its settings, the task.
 * Returns the method config and the task.
 *
 * @example
 * ```ts
 * import { PAPER_DEFAULTS, planRun, TrainConfigError } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const { methodConfig, task } = await planRun({ ...PAPER_DEFAULTS, task: "cb", method: "dept" });
 * assert.equal(methodConfig.promptLength, 60);
 * assert.equal(task.name, "cb");
 * // refused before anything is loaded: prompt tuning has no rank
 * await assert.rejects(planRun({ ...PAPER_DEFAULTS, method: "pt", rank: 8 }), TrainConfigError);
 * ```
 */
export async function planRun(c: TrainConfig): Promise<{ methodConfig: MethodConfig; task: Task }> {
  let methodConfig: MethodConfig;
  try {
    const mod = methodModule(c.method);
    const overrides = methodOverrides(c);
    if (mod.name === "prompt_tuning" && c.rank !== undefined) {
      throw new PeftError(`--rank ${c.rank} does not apply to prompt tuning (it has no offset)`);
    }
    if (mod.name === "prompt_tuning") delete overrides.rank;
    if (mod.name === "dept") {
      (overrides as Record<string, unknown>).maxSourceLength = c.maxSourceLength;
    }
    methodConfig = mod.resolve(overrides);
  } catch (e) {
    if (e instanceof PeftError) throw new TrainConfigError(`--method ${c.method}: ${e.message}`);
    throw e;
  }
  const task = await resolveTask(c.task);
  return { methodConfig, task };
}

/**
 * Refuses a resume whose settings differ from the checkpoint's, naming every difference.
 *
 * @example
 * ```ts
 * import { checkResume, PAPER_DEFAULTS } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const saved = { ...PAPER_DEFAULTS, out: "runs/rte" }; // the checkpoint's settings
 * checkResume(saved, { ...saved, evalEvery: 500 }, "runs/rte"); // evaluation may change
 * assert.throws(() => checkResume(saved, { ...saved, lr: 0.1 }, "runs/rte"), /lr: checkpoint 0.3/);
 * ```
 */
export function checkResume(saved: TrainConfig, now: TrainConfig, dir: string): void {
  const diffs = IDENTITY.filter((k) => JSON.stringify(saved[k]) !== JSON.stringify(now[k])).map(
    (k) => `${k}: checkpoint ${JSON.stringify(saved[k])}, now ${JSON.stringify(now[k])}`,
  );
  if (diffs.length) {
    throw new TrainConfigError(
      `cannot resume ${dir}: the run was made with other settings (${diffs.join("; ")}). ` +
        "Resume with the run's own settings (omit these flags) or start a new run in another --out",
    );
  }
}

/** Everything loaded for a run. */
interface Loaded {
  gpu: Gpu;
  model: T5Model;
  tokenizer: TextTokenizer;
  data: TokenizedTask;
  method: PeftMethod;
}

async function load(
  c: TrainConfig,
  methodConfig: MethodConfig,
  task: Task,
  o: TrainOptions,
  print: (l: string) => void,
): Promise<Loaded> {
  const gpu = o.gpu ?? await requestGpu({ log: print });
  const tokenizer = await loadTokenizer(c.model, o.hub);
  const model = await loadT5(gpu, c.model, { ...o.hub, weightDtype: c.weightDtype });
  const data = await prepareTask(task, tokenizer, {
    ...o.hub,
    sourceLength: c.maxSourceLength,
    onMessage: print,
  });
  const M = methodConfig.promptLength;
  const n = model.config.nPositions;
  if (n !== undefined && M + data.sourceLength > n) {
    throw new TrainConfigError(
      `--prompt-length ${M} plus --max-source-length ${data.sourceLength} = ${
        M + data.sourceLength
      } exceeds the model's n_positions ${n}; shorten one of them`,
    );
  }
  const method = await methodModule(c.method).create(model, methodConfig as never, {
    rng: new Mt19937(c.seed),
    initTextIds: methodConfig.promptInit === "text"
      ? tokenizer.encode(methodConfig.promptInitText)
      : undefined,
  });
  return { gpu, model, tokenizer, data, method };
}

/**
 * Trains a method on a task (see the module doc) and returns the run's result.
 *
 * @example A few steps on the demo's tiny T5
 * ```ts
 * import { DEMO_PRESET, train } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const out = await Deno.makeTempDir();
 * const result = await train(
 *   { ...DEMO_PRESET, out, steps: 4, warmup: 1, batchSize: 8, evalEvery: 4, evalLimit: 8 },
 *   { print: () => {}, bar: false },
 * );
 * assert.equal(result.status, "completed");
 * assert.equal(result.best?.step, 4); // validated at step 4, saved in best/
 * assert.ok(result.test && "accuracy" in result.test); // the best step on the test split
 * assert.ok((await Deno.stat(`${out}/best/adapter_config.json`)).isFile);
 * await Deno.remove(out, { recursive: true });
 * ```
 *
 * @example The paper's recipe (needs the network: downloads T5-base, its tokenizer and GLUE)
 * ```ts ignore
 * import { PAPER_DEFAULTS, train } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const result = await train({ ...PAPER_DEFAULTS, task: "rte", out: "runs/rte-adept" });
 * assert.equal(result.status, "completed");
 * console.log(result.test); // { accuracy: ... } of the best validation step
 * ```
 */
export async function train(config: TrainConfig, options: TrainOptions = {}): Promise<TrainResult> {
  const print = options.print ?? ((l: string) => console.log(l));
  const c = config;
  const dir = resolve(c.out);
  const { methodConfig, task } = await planRun(c);
  const resumeFrom = c.resume
    ? await readCheckpoint(dir).catch((e) => {
      throw new TrainConfigError(
        `--resume: no checkpoint to resume in ${dir} (${(e as Error).message}); start the run ` +
          "without --resume",
      );
    })
    : undefined;
  if (resumeFrom) checkResume(resumeFrom.config, c, dir);
  else if (await hasCheckpoint(dir)) {
    throw new TrainConfigError(
      `the run folder ${dir} already holds a run; continue it with --resume or choose another --out`,
    );
  }
  const L = await load(c, methodConfig, task, options, print);
  const { gpu, model, tokenizer, data, method } = L;
  const metric = task.metrics[0];
  const S = data.sourceLength, T = data.targetLength;
  const logEvery = Math.min(c.logEvery, c.steps);
  const step = new TrainStep(model, method, {
    batch: c.batchSize,
    sourceLength: S,
    targetLength: T,
    lrs: { prompt: c.lr, offset: c.lrOffset },
    warmup: c.warmup,
    steps: c.steps,
    seed: c.seed,
    dropoutRate: c.dropout,
    historySlots: logEvery,
  });
  const evaluator = new Evaluator(model, method, tokenizer, {
    batchSize: c.evalBatchSize ?? c.batchSize,
    sourceLength: S,
  });
  const batcher = new Batcher(data.train, {
    batchSize: c.batchSize,
    seed: c.seed,
    padId: model.config.padTokenId,
    eosId: model.config.eosTokenId,
    decoderStartId: model.config.decoderStartTokenId,
  });
  print(
    `[train] ${methodModule(c.method).title} on ${task.name} with ${c.model}: ` +
      `${method.parameterCount.toLocaleString("en-US")} trainable parameters (${
        method.tensors.map((t) => `${t.name} ${t.param.shape.join("x")}`).join(", ")
      }); ${data.train.size} train / ${data.validation.size} validation / ${data.test.size} test ` +
      `examples; batch ${c.batchSize} x (${method.promptLength} + ${S} source, ${T} target) tokens`,
  );

  // State, fresh or restored.
  let done = 0, skipped = 0, skippedInARow = 0, tokens = 0, prevElapsed = 0;
  let best: TrainResult["best"];
  let bestState: Record<string, Float32Array> | undefined;
  const bestDir = join(dir, "best");
  if (resumeFrom) {
    const st = resumeFrom.state;
    const params: Record<string, Float32Array> = {};
    const moments: Record<string, Float32Array> = {};
    for (const [k, v] of Object.entries(resumeFrom.tensors)) {
      if (k.startsWith("param.")) params[k.slice(6)] = v;
      else if (k.startsWith("m.") || k.startsWith("v.")) moments[k] = v;
    }
    method.writeState(params, join(dir, "checkpoint.safetensors"));
    step.writeMoments(moments);
    done = st.step;
    skipped = st.skipped;
    skippedInARow = st.skippedInARow;
    tokens = st.tokens;
    prevElapsed = st.elapsedSeconds;
    best = st.best;
    // The losses of the steps since the last log line, back into the ring slots they occupied.
    const hist = resumeFrom.tensors.history ?? new Float32Array(0);
    const ring = new Float32Array(2 * logEvery);
    for (let i = 0; i < hist.length / 2; i++) {
      const s = done - hist.length / 2 + 1 + i;
      ring.set(hist.subarray(2 * i, 2 * i + 2), (s % logEvery) * 2);
    }
    gpu.write(step.guard.history, ring);
    step.guard.restore(skipped, skippedInARow, done);
    if (best) bestState = (await readAdapter(bestDir)).tensors;
    batcher.seek(done);
    print(`[train] resuming ${dir} at step ${done} of ${c.steps}`);
  } else {
    await Deno.mkdir(dir, { recursive: true });
    await writeFileAtomic(
      join(dir, "config.json"),
      JSON.stringify(
        {
          ...c,
          method: methodConfig.method,
          methodConfig,
          sourceLength: S,
          targetLength: T,
          parameters: method.parameterCount,
          tokenizer: tokenizer.hash,
          deno: Deno.version.deno,
          adapter: gpu.adapter.description,
        },
        null,
        2,
      ) + "\n",
    );
  }
  const log = await RunLog.open(
    dir,
    { steps: c.steps, metric, bar: options.bar, print },
    resumeFrom ? done : undefined,
  );

  let stopReason: string | undefined;
  const stop = (why: string) => () => stopReason ??= why;
  const onInt = stop("SIGINT"), onTerm = stop("SIGTERM");
  if (options.handleSignals) {
    Deno.addSignalListener("SIGINT", onInt);
    Deno.addSignalListener("SIGTERM", onTerm);
  }
  options.signal?.addEventListener("abort", stop("abort"));

  let peak = gpu.allocatedBytes;
  const t0 = performance.now();
  let intervalStart = performance.now(), intervalTokens = 0, lastLogged = done;
  const elapsed = () => prevElapsed + (performance.now() - t0) / 1000;

  const checkpoint = async () => {
    const stats = await step.stats(done, done - lastLogged);
    const hist = new Float32Array(2 * stats.history.length);
    stats.history.forEach((h, i) => hist.set([h.loss, h.gradNorm], 2 * i));
    const params = await method.readState();
    const tensors: Record<string, Float32Array> = { history: hist };
    for (const [k, v] of Object.entries(params)) tensors[`param.${k}`] = v;
    Object.assign(tensors, await step.readMoments());
    await writeCheckpoint(dir, {
      config: c,
      state: {
        step: done,
        skipped: stats.skipped,
        skippedInARow: stats.skippedInARow,
        best,
        elapsedSeconds: elapsed(),
        tokens,
        dropoutStep: done,
        dataPosition: done,
        schedulerPosition: done,
      },
      tensors,
    });
  };

  const evaluate = async (split: "validation" | "test"): Promise<EvalResult> => {
    const r = await evaluator.evaluate(data[split], task, c.evalLimit);
    let isBest = false;
    if (split === "validation" && (!best || r.score > best.score)) {
      isBest = true;
      best = { step: done, score: r.score, metrics: r.metrics };
      bestState = await method.readState();
      await saveAdapter(bestDir, method, {
        baseModel: c.model,
        baseModelRevision: model.revision,
        dModel: model.config.dModel,
        vocabSize: model.config.vocabSize,
        numHeads: model.config.numHeads,
        numLayers: model.config.numLayers,
        tokenizerHash: tokenizer.hash,
        task: c.task,
        sourceLength: S,
        targetLength: T,
        step: done,
        metrics: r.metrics,
      });
    }
    const rec: EvalRecord = {
      type: "eval",
      step: done,
      split,
      metrics: r.metrics,
      score: r.score,
      best: isBest,
      examples: r.examples,
      seconds: r.seconds,
      tokensPerSecond: r.generatedTokens / Math.max(r.seconds, 1e-9),
    };
    await log.write(rec);
    return r;
  };

  log.start(done);
  let status: TrainResult["status"] = "completed";
  try {
    while (done < c.steps) {
      const t = done + 1;
      const b = batcher.next();
      let n = 0;
      for (let i = 0; i < b.attentionMask.length; i++) n += b.attentionMask[i];
      for (let i = 0; i < b.labels.length; i++) n += b.labels[i] >= 0 ? 1 : 0;
      await step.run(b, t);
      if (STEP_DELAY_MS > 0) await new Promise((r) => setTimeout(r, STEP_DELAY_MS));
      done = t;
      tokens += n;
      intervalTokens += n;
      if (done % logEvery === 0 || done === c.steps) {
        const stats = await step.stats(done, done - lastLogged);
        const applied = stats.history.filter((h) =>
          Number.isFinite(h.loss) && Number.isFinite(h.gradNorm)
        );
        const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / Math.max(1, xs.length);
        const lr = step.learningRates(done);
        const secs = (performance.now() - intervalStart) / 1000;
        await log.write({
          type: "train",
          step: done,
          loss: mean(applied.map((h) => h.loss)),
          lastLoss: stats.history.at(-1)!.loss,
          gradNorm: mean(applied.map((h) => h.gradNorm)),
          lrPrompt: lr.prompt,
          lrOffset: lr.offset,
          tokensPerSecond: intervalTokens / Math.max(secs, 1e-9),
          skipped: stats.skipped,
          skippedInInterval: stats.skipped - skipped,
          elapsed: elapsed(),
        });
        skipped = stats.skipped;
        skippedInARow = stats.skippedInARow;
        lastLogged = done;
        intervalStart = performance.now();
        intervalTokens = 0;
        peak = Math.max(peak, gpu.allocatedBytes);
        if (skippedInARow >= c.maxSkippedSteps) {
          status = "diverged";
          await checkpoint();
          log.note(
            `[train] stopped at step ${done}: ${skippedInARow} steps in a row had a non-finite ` +
              `loss or gradient (skipped, parameters untouched). The checkpoint in ${dir} holds ` +
              "the last good parameters; lower --lr / --lr-offset and resume, or start again.",
          );
          break;
        }
      }
      if (done % c.evalEvery === 0 || done === c.steps) await evaluate("validation");
      if (done % c.saveEvery === 0 || done === c.steps) await checkpoint();
      if (stopReason) {
        if (done % c.saveEvery !== 0 && done !== c.steps) await checkpoint();
        status = "interrupted";
        log.note(
          `[train] ${stopReason}: stopped at step ${done} with a checkpoint; continue with ` +
            `--resume --out ${c.out}`,
        );
        break;
      }
    }
    let test: Record<string, number> | undefined;
    if (status === "completed" && (options.test ?? true) && bestState) {
      method.writeState(bestState);
      test = (await evaluate("test")).metrics;
    }
    peak = Math.max(peak, gpu.allocatedBytes);
    const seconds = elapsed();
    const result: TrainResult = {
      runDir: dir,
      status,
      steps: done,
      best,
      test,
      metric,
      seconds,
      tokensPerSecond: tokens / Math.max(seconds, 1e-9),
      peakGpuBytes: peak,
      skippedSteps: skipped,
      parameters: method.parameterCount,
    };
    await writeFileAtomic(join(dir, "summary.json"), JSON.stringify(result, null, 2) + "\n");
    log.close();
    print(summaryTable(result));
    return result;
  } finally {
    log.close();
    if (options.handleSignals) {
      Deno.removeSignalListener("SIGINT", onInt);
      Deno.removeSignalListener("SIGTERM", onTerm);
    }
    evaluator.destroy();
    step.destroy();
    method.destroy();
    model.destroy();
    if (!options.gpu) gpu.destroy();
  }
}

/**
 * The end-of-run table.
 *
 * @example
 * ```ts
 * import { summaryTable } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const table = summaryTable({
 *   runDir: "runs/demo/adept",
 *   status: "completed",
 *   steps: 400,
 *   best: { step: 400, score: 98.5, metrics: { accuracy: 98.5 } },
 *   test: { accuracy: 98.4 },
 *   metric: "accuracy",
 *   seconds: 96,
 *   tokensPerSecond: 5000,
 *   peakGpuBytes: 12 * 2 ** 20,
 *   skippedSteps: 0,
 *   parameters: 3536,
 * });
 * assert.match(table, /test \(best step\) +accuracy 98\.40/);
 * assert.match(table, /peak GPU memory +12\.0 MiB/);
 * ```
 */
export function summaryTable(r: TrainResult): string {
  const fmt = (m?: Record<string, number>) =>
    m ? Object.entries(m).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ") : "-";
  const rows: [string, string][] = [
    ["status", r.status],
    ["steps", String(r.steps)],
    ["best step", r.best ? String(r.best.step) : "-"],
    ["validation", fmt(r.best?.metrics)],
    ["test (best step)", fmt(r.test)],
    ["time", formatDuration(r.seconds)],
    ["tokens/s", r.tokensPerSecond.toFixed(0)],
    ["peak GPU memory", `${(r.peakGpuBytes / 2 ** 20).toFixed(1)} MiB`],
    ["skipped steps", String(r.skippedSteps)],
    ["trainable parameters", r.parameters.toLocaleString("en-US")],
    ["run folder", r.runDir],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join("\n");
}
