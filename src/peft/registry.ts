/**
 * The built-in methods, registered once: `adept`, `dept` and `prompt_tuning` (alias `pt`).
 * Import this module (or `mod.ts`) before looking a method up by name.
 *
 * @module
 */

import { ADEPT } from "./adept.ts";
import { DEPT } from "./dept.ts";
import { type MethodModule, registerMethod } from "./method.ts";
import { PROMPT_TUNING } from "./prompt_tuning.ts";

registerMethod(ADEPT as unknown as MethodModule);
registerMethod(DEPT as unknown as MethodModule);
registerMethod(PROMPT_TUNING as unknown as MethodModule, ["pt"]);

export { ADEPT, DEPT, PROMPT_TUNING };
