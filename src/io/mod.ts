/**
 * Files and conventions below both the models and the data pipeline: Hugging Face Hub access
 * and the HF cache, the safetensors format, and the text-to-text label conventions.
 *
 * @module
 */

export * from "./files.ts";
export * from "./hub.ts";
export * from "./safetensors.ts";
export * from "./seq2seq.ts";
