/**
 * The choice between a kernel's vec4 and scalar variants (attention, the RMS norms): 4 floats
 * per load where the layout allows it, one otherwise.
 *
 * @module
 */

import { ShapeError } from "../gpu/errors.ts";

/** How a kernel reads rows: 4 floats per load (`"vec4"`) or one (`"scalar"`). */
export type Loads = "vec4" | "scalar";

/**
 * Floats per load: 1 when `loads` asks for scalar ones or the layout breaks vec4 (`misaligned`
 * names what does), else 4. Asking for "vec4" on a misaligned layout is refused with a
 * {@link ShapeError} naming what vec4 `needs` and what is not so.
 *
 * @example
 * ```ts
 * import { loadWidth } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const needs = "C to be a multiple of 4";
 * assert.equal(loadWidth("rms_norm", undefined, needs), 4);
 * assert.equal(loadWidth("rms_norm", undefined, needs, "C = 77"), 1);
 * assert.throws(() => loadWidth("rms_norm", "vec4", needs, "C = 77"), /C = 77 is not/);
 * ```
 */
export function loadWidth(
  label: string,
  loads: Loads | undefined,
  needs: string,
  misaligned?: string,
): 1 | 4 {
  if (loads === "scalar") return 1;
  if (misaligned === undefined) return 4;
  if (loads === "vec4") {
    throw new ShapeError(
      `${label}: loads "vec4" needs ${needs}; ${misaligned} is not: use loads "scalar"`,
    );
  }
  return 1;
}
