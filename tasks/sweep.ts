/**
 * `deno task sweep`: plan, run (here, N at a time), submit (Slurm job array, Kubernetes
 * Indexed Job) and report a grid of training runs from a sweep file. `--help` lists the
 * commands and flags. A thin wrapper over `sweepMain` (src/sweep/).
 *
 * Exit status: 0 when done, 1 when runs crashed, 2 for a refused file or flag, 130 when stopped
 * by a signal (run it again to continue).
 *
 * @module
 */

import { sweepMain } from "../src/sweep/cli.ts";

Deno.exit(await sweepMain(Deno.args));
