/**
 * Parameter-efficient methods on a frozen T5: ADePT, DePT and prompt tuning behind one small
 * interface ({@link PeftMethod}), registered by name ({@link methodModule}).
 *
 * @module
 */

export * from "./adapter.ts";
export * from "./adept.ts";
export * from "./dept.ts";
export * from "./fold_export.ts";
export * from "./method.ts";
export * from "./prompt_method.ts";
export * from "./prompt_tuning.ts";
export * from "./registry.ts";
