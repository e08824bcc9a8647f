/**
 * The published numbers a sweep's report shows beside its own, and the task suites its means
 * cover.
 *
 * Where they come from: docs/method.md, "Numbers to reproduce" (the project's specification,
 * copied from /work/shared/METHOD.md, "Published numbers to reproduce"): DePT (ICLR 2024) on
 * T5-base, scored on the test splits the paper defines (the split rules in docs/method.md),
 * checked against DePT's released checkpoints. ADePT's paper reports higher GLUE and SuperGLUE
 * means than these but no per-task figures here, so only DePT's are listed. Kept as a module
 * (not a JSON file) so that the package reads no files at run time.
 *
 * @module
 */

/** The GLUE tasks of the paper's tables, in their column order. */
export const GLUE_TASKS: readonly string[] = [
  "mnli",
  "qqp",
  "qnli",
  "sst2",
  "stsb",
  "mrpc",
  "rte",
  "cola",
];

/** The SuperGLUE tasks of the paper's tables, in their column order. */
export const SUPERGLUE_TASKS: readonly string[] = ["multirc", "boolq", "wic", "wsc", "cb"];

/** Published test scores of one method. */
export interface PublishedResult {
  /** The method's name in tables. */
  method: string;
  /** Where the numbers come from. */
  source: string;
  /** Test score per task (0-100), by the project's task names. */
  scores: Readonly<Record<string, number>>;
  /** The published means (rounded as published). */
  means: { glue: number; superglue: number };
}

/** DePT on T5-base (docs/method.md, "Numbers to reproduce"). */
export const DEPT_PUBLISHED: PublishedResult = {
  method: "DePT",
  source: "DePT (ICLR 2024), T5-base, its released checkpoints; docs/method.md",
  scores: {
    mnli: 84.99,
    qqp: 90.38,
    qnli: 93.19,
    sst2: 94.15,
    stsb: 90.77,
    mrpc: 90.69,
    rte: 79.14,
    cola: 63.79,
    multirc: 74.3,
    boolq: 79.33,
    wic: 68.65,
    wsc: 67.31,
    cb: 92.86,
  },
  means: { glue: 85.9, superglue: 76.5 },
};
