/**
 * Layers: launchers of the WGSL kernels, forward and backward, with float64 CPU references.
 *
 * @module
 */

export * from "./activation.ts";
export * from "./attention.ts";
export * from "./cross_entropy.ts";
export * from "./dropout.ts";
export * from "./elementwise.ts";
export * from "./embedding.ts";
export * from "./fill.ts";
export * from "./loads.ts";
export * from "./matmul.ts";
export * from "./prompt_embed.ts";
export * from "./reduce.ts";
export * from "./rms_norm.ts";
export * from "./softmax.ts";
