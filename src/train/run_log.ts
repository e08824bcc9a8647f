/**
 * What a run leaves and shows while it trains: `log.jsonl` (one JSON line per logged step and
 * per evaluation), SVG plots of the training loss and the validation metric rewritten at every
 * record, and a progress display: a bar on a terminal, plain lines otherwise (CI logs).
 *
 * @module
 */

import { join } from "node:path";
import cliProgress from "cli-progress";
import { writeFileAtomic } from "../io/files.ts";
import { lineChartSvg } from "./plot.ts";

/** A logged training interval. */
export interface TrainRecord {
  type: "train";
  /** The last step of the interval. */
  step: number;
  /** Mean loss over the interval's applied steps. */
  loss: number;
  /** Loss of the last step. */
  lastLoss: number;
  /** Mean gradient norm (before clipping) over the interval. */
  gradNorm: number;
  /** Learning rates at the last step. */
  lrPrompt: number;
  lrOffset: number;
  /** Source + target tokens per second over the interval. */
  tokensPerSecond: number;
  /** Steps skipped (non-finite) in all so far and in this interval. */
  skipped: number;
  skippedInInterval: number;
  /** Seconds since the run started (resumed runs count their earlier time). */
  elapsed: number;
}

/** A logged evaluation. */
export interface EvalRecord {
  type: "eval";
  step: number;
  split: "validation" | "test";
  metrics: Record<string, number>;
  /** The first metric. */
  score: number;
  /** Whether this is the best validation score so far. */
  best: boolean;
  examples: number;
  seconds: number;
  /** Generated tokens per second. */
  tokensPerSecond: number;
}

/** A line of `log.jsonl`. */
export type LogRecord = TrainRecord | EvalRecord;

/**
 * Reads the records of a `log.jsonl` (none when it does not exist).
 *
 * @example
 * ```ts
 * import { readLog } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * assert.deepEqual(await readLog(`${dir}/log.jsonl`), []); // no run yet
 * const line = { type: "train", step: 50, loss: 1.25, lastLoss: 1.2, gradNorm: 0.8 };
 * await Deno.writeTextFile(`${dir}/log.jsonl`, JSON.stringify(line) + "\n");
 * assert.equal((await readLog(`${dir}/log.jsonl`))[0].step, 50);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readLog(path: string): Promise<LogRecord[]> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as LogRecord);
}

/**
 * Formats seconds as `1h02m`, `3m05s` or `12s`.
 *
 * @example
 * ```ts
 * import { formatDuration } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatDuration(3725), "1h02m");
 * assert.equal(formatDuration(185), "3m05s");
 * assert.equal(formatDuration(12.4), "12s");
 * ```
 */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return "?";
  s = Math.round(s);
  if (s >= 3600) {
    return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`;
  }
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

/** Options of {@link RunLog}. */
export interface RunLogOptions {
  /** Total steps (for the bar and the ETA). */
  steps: number;
  /** The metric that selects checkpoints (plot label). */
  metric: string;
  /** A bar on a terminal; plain lines when false. @default {Deno.stdout.isTerminal()} */
  bar?: boolean;
  /** Where plain lines go. @default {console.log} */
  print?: (line: string) => void;
}

/**
 * The log file, the plots and the progress display of a run folder.
 *
 * @example
 * ```ts
 * import { readLog, RunLog } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir(); // a run folder
 * const lines: string[] = [];
 * const print = (l: string) => lines.push(l);
 * const log = await RunLog.open(dir, { steps: 100, metric: "accuracy", bar: false, print });
 * log.start(0);
 * await log.write({
 *   type: "train",
 *   step: 50,
 *   loss: 1.25,
 *   lastLoss: 1.2,
 *   gradNorm: 0.8,
 *   lrPrompt: 0.3,
 *   lrOffset: 1e-4,
 *   tokensPerSecond: 900,
 *   skipped: 0,
 *   skippedInInterval: 0,
 *   elapsed: 10,
 * });
 * log.close();
 * assert.match(lines[0], /^step 50\/100  loss 1\.2500/); // plain lines, as in CI logs
 * assert.equal((await readLog(`${dir}/log.jsonl`)).length, 1);
 * assert.ok((await Deno.stat(`${dir}/loss.svg`)).isFile); // rewritten at every record
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class RunLog {
  readonly path: string;
  readonly #records: LogRecord[];
  readonly #print: (line: string) => void;
  readonly #bar?: cliProgress.SingleBar;
  readonly #opts: RunLogOptions;
  #file?: Deno.FsFile;
  #lastVal = "";

  private constructor(readonly dir: string, records: LogRecord[], options: RunLogOptions) {
    this.path = join(dir, "log.jsonl");
    this.#records = records;
    this.#opts = options;
    this.#print = options.print ?? ((l) => console.log(l));
    const bar = options.bar ?? Deno.stdout.isTerminal();
    if (bar) {
      this.#bar = new cliProgress.SingleBar({
        format:
          "{bar} {value}/{total} | loss {loss} | lr {lr} | {tps} tok/s | ETA {eta_formatted} | val {val}",
        hideCursor: true,
        clearOnComplete: false,
      }, cliProgress.Presets.shades_classic);
    }
  }

  /**
   * Opens the log of a run folder. Records after `keepUpTo` (a resumed run's checkpoint step)
   * are dropped: the resumed run logs those steps again.
   */
  static async open(dir: string, options: RunLogOptions, keepUpTo?: number): Promise<RunLog> {
    await Deno.mkdir(dir, { recursive: true });
    let records = await readLog(join(dir, "log.jsonl"));
    if (keepUpTo !== undefined) {
      records = records.filter((r) =>
        r.step <= keepUpTo && !(r.type === "eval" && r.split === "test")
      );
    } else records = [];
    await writeFileAtomic(
      join(dir, "log.jsonl"),
      records.map((r) => JSON.stringify(r) + "\n").join(""),
    );
    const log = new RunLog(dir, records, options);
    log.#file = await Deno.open(log.path, { append: true });
    return log;
  }

  /** The records so far. */
  get records(): readonly LogRecord[] {
    return this.#records;
  }

  /** Starts the progress display at `step`. */
  start(step: number): void {
    this.#bar?.start(this.#opts.steps, step, { loss: "-", lr: "-", tps: "-", val: "-" });
  }

  /** Appends a record, updates the display and rewrites the plots. */
  async write(r: LogRecord): Promise<void> {
    this.#records.push(r);
    await this.#file!.write(new TextEncoder().encode(JSON.stringify(r) + "\n"));
    if (r.type === "train") {
      const lr = `${r.lrPrompt.toExponential(1)}/${r.lrOffset.toExponential(1)}`;
      const eta = (this.#opts.steps - r.step) * (r.elapsed / Math.max(1, r.step));
      if (this.#bar) {
        this.#bar.update(r.step, {
          loss: r.loss.toFixed(4),
          lr,
          tps: r.tokensPerSecond.toFixed(0),
          val: this.#lastVal || "-",
        });
      } else {
        this.#print(
          `step ${r.step}/${this.#opts.steps}  loss ${r.loss.toFixed(4)}  grad norm ${
            r.gradNorm.toFixed(3)
          }  lr ${lr}  ${r.tokensPerSecond.toFixed(0)} tok/s  ETA ${formatDuration(eta)}${
            r.skippedInInterval ? `  skipped ${r.skippedInInterval} non-finite step(s)` : ""
          }${this.#lastVal ? `  val ${this.#lastVal}` : ""}`,
        );
      }
    } else {
      const s = `${r.split} ${this.#opts.metric} ${r.score.toFixed(2)}${r.best ? " (best)" : ""}`;
      if (r.split === "validation") this.#lastVal = r.score.toFixed(2);
      if (this.#bar) this.#bar.update(r.step, { val: this.#lastVal });
      else {this.#print(
          `step ${r.step}: ${s} on ${r.examples} examples in ${r.seconds.toFixed(1)} s`,
        );}
    }
    await this.writePlots();
  }

  /** Prints a line above the bar (or plainly). */
  note(line: string): void {
    if (this.#bar) {
      this.#bar.stop();
      this.#print(line);
      this.#bar.start(this.#opts.steps, this.#records.at(-1)?.step ?? 0);
    } else this.#print(line);
  }

  /** Rewrites `loss.svg` and `validation.svg` from the records. */
  async writePlots(): Promise<void> {
    const train = this.#records.filter((r): r is TrainRecord => r.type === "train");
    const val = this.#records.filter((r): r is EvalRecord =>
      r.type === "eval" && r.split === "validation"
    );
    await writeFileAtomic(
      join(this.dir, "loss.svg"),
      lineChartSvg({
        title: "training loss",
        xLabel: "step",
        yLabel: "loss",
        series: [{ name: "train", points: train.map((r) => [r.step, r.loss]) }],
      }),
      { fsync: false },
    );
    await writeFileAtomic(
      join(this.dir, "validation.svg"),
      lineChartSvg({
        title: `validation ${this.#opts.metric}`,
        xLabel: "step",
        yLabel: this.#opts.metric,
        series: [{ name: "validation", points: val.map((r) => [r.step, r.score]) }],
      }),
      { fsync: false },
    );
  }

  /** Stops the display and closes the file. */
  close(): void {
    this.#bar?.stop();
    this.#file?.close();
    this.#file = undefined;
  }
}
