/**
 * ADePT trainer: parameter-efficient fine-tuning of frozen language models on WebGPU.
 *
 * @module
 */

export * from "./src/gpu/mod.ts";
export * from "./src/layers/mod.ts";
