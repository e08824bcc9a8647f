/**
 * Optimizers: AdamW with PyTorch's semantics and global gradient-norm clipping.
 *
 * @module
 */

export * from "./adamw.ts";
