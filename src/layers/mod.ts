/**
 * Layers: launchers of the WGSL kernels, forward and backward, with float64 CPU references.
 *
 * @module
 */

export * from "./matmul.ts";
export * from "./fill.ts";
