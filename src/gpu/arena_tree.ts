/**
 * Typed arenas: a model declares its buffers as a tree of plain objects and arrays whose leaves
 * are {@link TensorSpec}s (llm.c's `ActivationTensors`, with a shape comment on every field),
 * and gets back the same tree with a {@link Tensor} at every leaf, all views of one arena. A typo
 * in a buffer's name is then a type error, not a run-time lookup failure.
 *
 * Leaves are named by their path (`encoder.layers.3.attn.q`), in messages and GPU labels.
 *
 * @example
 * ```ts
 * import { allocTree, requestGpu, type Tensor } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * interface Acts {
 *   x: Tensor; // (B, C)
 *   layers: { h: Tensor }[];
 * }
 * const gpu = await requestGpu({ log: false });
 * const specs = { x: { shape: [2, 3] }, layers: [{ h: { shape: [4] } }, { h: { shape: [4] } }] };
 * const { arena, tensors } = allocTree<Acts>(gpu, "acts", specs); // one allocation
 * assert.equal(tensors.layers[1].h.describe(), "acts.layers.1.h(4) f32");
 * gpu.freeArena(arena);
 * gpu.destroy();
 * ```
 *
 * @module
 */

import { type Arena, arenaBytes, type Gpu } from "./device.ts";
import type { Tensor, TensorSpec } from "./tensor.ts";

/**
 * The spec tree of a tensor tree `T`: the same shape with a {@link TensorSpec} in place of every
 * tensor (optional subtrees stay optional).
 */
export type SpecTree<T> = T extends Tensor ? TensorSpec
  : T extends readonly (infer E)[] ? SpecTree<E>[]
  : T extends object ? { [K in keyof T]: SpecTree<T[K]> }
  : T;

function isSpec(x: unknown): x is TensorSpec {
  return typeof x === "object" && x !== null && Array.isArray((x as TensorSpec).shape);
}

/**
 * Every leaf of a spec tree, by path, in declaration order.
 *
 * @example
 * ```ts
 * import { flattenSpecs } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const specs = { x: { shape: [2, 3] }, layers: [{ h: { shape: [4] } }] };
 * assert.deepEqual(flattenSpecs(specs), { x: { shape: [2, 3] }, "layers.0.h": { shape: [4] } });
 * ```
 */
export function flattenSpecs(tree: unknown, prefix = ""): Record<string, TensorSpec> {
  const out: Record<string, TensorSpec> = {};
  const walk = (node: unknown, path: string) => {
    if (node === undefined) return;
    if (isSpec(node)) {
      out[path] = node;
      return;
    }
    if (typeof node !== "object" || node === null) {
      throw new TypeError(`arena tree: ${path || "the root"} is neither a tensor spec nor a tree`);
    }
    for (const [k, v] of Object.entries(node)) walk(v, path ? `${path}.${k}` : k);
  };
  walk(tree, prefix);
  return out;
}

/**
 * Bytes an arena of the tree's leaves takes (see `arenaBytes`), without allocating.
 *
 * @example
 * ```ts
 * import { treeBytes, VIEW_ALIGNMENT } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const specs = { x: { shape: [2, 3] }, layers: [{ h: { shape: [4] } }] };
 * assert.equal(treeBytes(specs), 2 * VIEW_ALIGNMENT); // each view rounded up to 256 bytes
 * ```
 */
export function treeBytes(tree: unknown): number {
  return arenaBytes(flattenSpecs(tree));
}

/**
 * Allocates every leaf of `specs` in one arena named `name` and returns the tensors in the
 * tree's shape `T`, plus the arena (to free it).
 */
export function allocTree<T>(
  gpu: Gpu,
  name: string,
  specs: SpecTree<T>,
): { arena: Arena<string>; tensors: T } {
  const arena = gpu.arena(name, flattenSpecs(specs));
  const build = (node: unknown, path: string): unknown => {
    if (node === undefined) return undefined;
    if (isSpec(node)) return arena.tensors[path];
    if (Array.isArray(node)) return node.map((v, i) => build(v, path ? `${path}.${i}` : `${i}`));
    return Object.fromEntries(
      Object.entries(node as object).map(([k, v]) => [k, build(v, path ? `${path}.${k}` : k)]),
    );
  };
  return { arena, tensors: build(specs, "") as T };
}
