/**
 * The error of the sweep commands: a sweep file, a flag or a run folder was refused. The message
 * names the file (or flag), the offending value and the fix; the command line prints it alone
 * and exits with status 2.
 *
 * @module
 */

/**
 * A sweep file, a sweep flag or a run folder was refused; the message says what and how to fix
 * it.
 *
 * @example
 * ```ts
 * import { parseSweep, SweepError } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.throws(
 *   () => parseSweep({ axes: { lr: [] } }, "grid.yaml"),
 *   (e) => e instanceof SweepError && /grid\.yaml: axes\.lr is empty/.test(e.message),
 * );
 * ```
 */
export class SweepError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SweepError";
  }
}
