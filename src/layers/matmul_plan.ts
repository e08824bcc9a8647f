/**
 * How a matrix product is tiled: the output tile, the split of K, and the kernel options, chosen
 * per shape from a small table. A choice measured on the adapter (`tuneMatmuls` in `matmul.ts`)
 * is kept per {@link Gpu} and can be saved to a JSON file keyed by the adapter's name; shapes
 * never measured get {@link matmulHeuristic}'s choice.
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { ShapeError } from "../gpu/errors.ts";
import { type KernelName, WGSL } from "../gpu/wgsl.generated.ts";
import { writeFileAtomic } from "../io/files.ts";

/**
 * The output tiles of the matmul kernels, rows x columns, with the workgroup's threads along
 * columns (x) and rows (y); each thread computes an 8 x 8 block.
 */
export const MATMUL_TILES = {
  "128x128": { wgX: 16, wgY: 16 },
  "64x64": { wgX: 8, wgY: 8 },
  "32x32": { wgX: 4, wgY: 4 },
  /** Few rows (decoder products at a few target tokens, the LM head). */
  "16x128": { wgX: 16, wgY: 2 },
  /** Few columns (a low-rank weight's gradient). */
  "128x16": { wgX: 2, wgY: 16 },
} as const;

/** A tile of {@link MATMUL_TILES}. */
export type MatmulTile = keyof typeof MATMUL_TILES;

/** How one product runs. */
export interface MatmulConfig {
  /** The output tile computed by one workgroup. */
  tile: MatmulTile;
  /**
   * K is cut into this many chunks, multiplied by separate workgroups into a scratch buffer and
   * added in a fixed order by a second kernel (deterministic, no atomics). 1: no split.
   * @default {1}
   */
  splitK?: number;
  /** Pad each k-row of workgroup memory by one vec4 (bank conflicts). @default {false} */
  pad?: boolean;
  /** Double-buffer the k-tiles (one barrier per tile). @default {false} */
  doubleBuffer?: boolean;
  /**
   * No workgroup memory and no barrier: each thread reads its rows and columns straight from
   * the operands (kernels/matmul_direct.wgsl), for CPU adapters, where a barrier saves and
   * restores every live register and workgroup memory costs as much per load as the operands.
   * Needs the vec4 layout and f32 B; otherwise the tiled kernel runs. `pad` and `doubleBuffer`
   * do not apply. @default {false}
   */
  direct?: boolean;
}

/** What a tiling choice depends on: the sizes, the batch, the layouts and B's element type. */
export interface MatmulShape {
  /** Rows of C. */
  m: number;
  /** Columns of C. */
  n: number;
  /** The contracted dimension. */
  k: number;
  /** Batch entries. @default {1} */
  batch?: number;
  /** @default {false} */
  transA?: boolean;
  /** @default {false} */
  transB?: boolean;
  /** Whether both operands allow vec4 loads (`matmul` rather than `matmul_scalar`). */
  vec4?: boolean;
  /** B's element type. @default {"f32"} */
  bDtype?: "f32" | "f16";
}

/**
 * The table key of a shape: `m x n x k, batch, transposes, loads, B dtype`.
 *
 * @example
 * ```ts
 * import { matmulShapeKey } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const key = matmulShapeKey({ m: 16, n: 512, k: 2048, transB: true, vec4: true });
 * assert.equal(key, "16x512x2048 b1 nt v4 f32");
 * ```
 */
export function matmulShapeKey(s: MatmulShape): string {
  return `${s.m}x${s.n}x${s.k} b${s.batch ?? 1} ${s.transA ? "t" : "n"}${s.transB ? "t" : "n"} ` +
    `${s.vec4 ? "v4" : "s"} ${s.bDtype ?? "f32"}`;
}

/** Largest split-K scratch one product may use (the partial sums), in bytes. */
export const SPLIT_K_SCRATCH_BYTES = 64 * 2 ** 20;

/** The splits of K a product may use. */
export const SPLIT_K_FACTORS = [1, 2, 4, 8, 16, 32] as const;

/**
 * Workgroups of a tiled product (before any split of K).
 *
 * @example
 * ```ts
 * import { matmulWorkgroups } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(matmulWorkgroups({ m: 16, n: 512, k: 64 }, "16x128"), 4);
 * assert.equal(matmulWorkgroups({ m: 16, n: 512, k: 64, batch: 3 }, "64x64"), 24);
 * ```
 */
export function matmulWorkgroups(s: MatmulShape, tile: MatmulTile): number {
  const { wgX, wgY } = MATMUL_TILES[tile];
  return Math.ceil(s.n / (8 * wgX)) * Math.ceil(s.m / (8 * wgY)) * (s.batch ?? 1);
}

/**
 * Bytes of workgroup memory a configuration needs (16 k-rows of vec4 groups of A and B, times
 * two when double-buffered).
 *
 * @example
 * ```ts
 * import { matmulWorkgroupBytes } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(matmulWorkgroupBytes({ tile: "64x64" }), 8192);
 * // 33,792 bytes: more than the 32 KiB many devices allow
 * assert.equal(matmulWorkgroupBytes({ tile: "128x128", pad: true, doubleBuffer: true }), 33792);
 * ```
 */
export function matmulWorkgroupBytes(c: MatmulConfig): number {
  if (c.direct) return 0;
  const { wgX, wgY } = MATMUL_TILES[c.tile];
  const pad = c.pad ? 1 : 0;
  return 16 * 16 * (2 * wgX + pad + 2 * wgY + pad) * (c.doubleBuffer ? 2 : 1);
}

/** What the heuristic knows of the device. */
export interface MatmulDevice {
  /** A CPU implementation (lavapipe): one workgroup per core at a time. */
  software: boolean;
  /** CPU cores (software adapters). @default {navigator.hardwareConcurrency} */
  cores?: number;
  /** The device's `maxStorageBufferBindingSize`. @default {134217728} */
  maxBinding?: number;
}

/**
 * The split-K factors a product may use: each chunk at least 128 of K, and the partial sums
 * within {@link SPLIT_K_SCRATCH_BYTES} and `maxBinding`.
 *
 * @example
 * ```ts
 * import { allowedSplits } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(allowedSplits({ m: 16, n: 512, k: 600 }), [1, 2, 4]);
 * assert.deepEqual(allowedSplits({ m: 4096, n: 4096, k: 65536 }), [1]); // 64 MiB per split
 * ```
 */
export function allowedSplits(s: MatmulShape, maxBinding = 2 ** 27): number[] {
  const cap = Math.min(SPLIT_K_SCRATCH_BYTES, maxBinding);
  return SPLIT_K_FACTORS.filter((f) =>
    f === 1 || (s.k >= 128 * f && 4 * f * s.m * s.n * (s.batch ?? 1) <= cap)
  );
}

/**
 * The choice for a shape never measured. Few rows (at most 16) take 16 x 128 tiles, few columns
 * 128 x 16, large products 128 x 128 where they still make enough workgroups, the rest 64 x 64.
 * When the tiles are fewer than the device runs at once (256 workgroups on a GPU, one per core on
 * a CPU adapter), K is split until they are, each chunk keeping at least 128 of K.
 *
 * A CPU adapter (`software`) takes, for the others, the tile of least estimated work (padding to
 * whole tiles and the copy to workgroup memory counted) among those that give every core a
 * workgroup, and the kernel without barriers (`direct`) where it exists (vec4 layout, f32 B).
 *
 * Measured on lavapipe (2 cores): 16 x 128 tiles multiply 16 rows 3x faster than 64 x 64;
 * splitting K gains nothing there once every core has a workgroup.
 *
 * @example
 * ```ts
 * import { matmulHeuristic } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * // The LM head's input gradient at 16 decoder rows: (16, 32128) · (32128, 512)
 * const gpu = { software: false };
 * assert.deepEqual(matmulHeuristic({ m: 16, n: 512, k: 32128 }, gpu), {
 *   tile: "16x128",
 *   splitK: 32,
 * });
 * assert.deepEqual(matmulHeuristic({ m: 512, n: 512, k: 512 }, gpu), { tile: "64x64", splitK: 4 });
 * assert.deepEqual(matmulHeuristic({ m: 4096, n: 4096, k: 4096 }, gpu), {
 *   tile: "128x128",
 *   splitK: 1,
 * });
 * ```
 */
export function matmulHeuristic(s: MatmulShape, device: MatmulDevice): MatmulConfig {
  const target = device.software
    ? Math.max(1, device.cores ?? globalThis.navigator?.hardwareConcurrency ?? 2)
    : 256;
  let tile: MatmulTile;
  if (s.m <= 16 && s.n > 16) tile = "16x128";
  else if (s.n <= 16 && s.m > 16) tile = "128x16";
  else if (device.software) tile = cheapestTile(s, target);
  else if (s.m >= 128 && s.n >= 128 && matmulWorkgroups(s, "128x128") >= target) {
    tile = "128x128";
  } else tile = "64x64";
  const wgs = matmulWorkgroups(s, tile);
  // CPU adapters: the product without barriers where its kernel exists (vec4 layout, f32 B)
  const direct = device.software && !!s.vec4 && (s.bDtype ?? "f32") === "f32";
  let splitK = 1;
  if (wgs === 0) return direct ? { tile, splitK, direct } : { tile, splitK };
  for (const f of allowedSplits(s, device.maxBinding)) {
    if (wgs * splitK >= target) break;
    splitK = f;
  }
  return direct ? { tile, splitK, direct } : { tile, splitK };
}

/**
 * A CPU adapter's tile: the least estimated work among the tiles that still give every core a
 * workgroup (all tiles when none does). The work is the padded product (whole tiles) times the
 * loads per multiply-add of a thread's 8x8 block: 4 vec4 loads per k, plus the tile's copy to
 * workgroup memory, 64 (TM + TN) / (TM · TN) floats per thread and k, loaded and stored as
 * vec4. On lavapipe this picks 64x64 over 128x128 for (672, 192) (measured 3.7 against 4.7 ms:
 * 128x128 pads 672 rows to 768 and 192 columns to 256). The direct kernel copies nothing, but
 * small workgroups cost it alike (a workgroup's fixed cost spread over fewer threads): measured
 * on lavapipe, the same model ranks its tiles for the tiny T5 step's products within 15 % of the
 * best (64x64 for 672 rows: 2.2 ms against 3.1 for 32x32).
 */
function cheapestTile(s: MatmulShape, target: number): MatmulTile {
  const tiles = Object.keys(MATMUL_TILES) as MatmulTile[];
  const cost = (t: MatmulTile) => {
    const { wgX, wgY } = MATMUL_TILES[t];
    const [tm, tn] = [8 * wgY, 8 * wgX];
    const padded = Math.ceil(s.m / tm) * tm * Math.ceil(s.n / tn) * tn;
    return padded * (4 + 32 * (tm + tn) / (tm * tn));
  };
  const enough = tiles.filter((t) => matmulWorkgroups(s, t) >= target);
  const pool = enough.length ? enough : tiles;
  // ties go to the earlier (larger) tile
  return pool.reduce((best, t) => (cost(t) < cost(best) ? t : best));
}

/** What one {@link Gpu} knows: measured choices and the shapes its launchers were asked for. */
interface PlanState {
  measured: Map<string, MatmulConfig>;
  seen: Map<string, MatmulShape>;
}

const STATES = new WeakMap<Gpu, PlanState>();

function state(gpu: Gpu): PlanState {
  let s = STATES.get(gpu);
  if (!s) {
    s = { measured: new Map(), seen: new Map() };
    STATES.set(gpu, s);
  }
  return s;
}

/**
 * The configuration `matmul` uses for a shape on `gpu`: the measured one if any
 * ({@link setMatmulConfig}, `tuneMatmuls`, {@link loadMatmulTuning}), else the heuristic's.
 * Records the shape (see {@link matmulShapes}).
 *
 * @example
 * ```ts
 * import { matmulConfig, requestGpu, setMatmulConfig } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const shape = { m: 16, n: 512, k: 2048, vec4: true };
 * assert.equal(matmulConfig(gpu, shape).tile, "16x128"); // the heuristic
 * setMatmulConfig(gpu, shape, { tile: "64x64", splitK: 2 }); // as a measurement would
 * assert.deepEqual(matmulConfig(gpu, shape), { tile: "64x64", splitK: 2 });
 * gpu.destroy();
 * ```
 */
export function matmulConfig(gpu: Gpu, shape: MatmulShape): MatmulConfig {
  const st = state(gpu);
  const key = matmulShapeKey(shape);
  if (!st.seen.has(key)) st.seen.set(key, { ...shape });
  return st.measured.get(key) ??
    matmulHeuristic(shape, {
      software: gpu.adapter.software,
      maxBinding: gpu.limits.maxStorageBufferBindingSize,
    });
}

/**
 * Checks a configuration against the device (tile name, split factor, workgroup memory);
 * throws a {@link ShapeError} saying what is wrong.
 *
 * @example
 * ```ts
 * import { checkMatmulConfig, requestGpu, ShapeError } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * checkMatmulConfig(gpu, { tile: "16x128", splitK: 8 }); // fine
 * assert.throws(() => checkMatmulConfig(gpu, { tile: "64x64", splitK: 1.5 }), ShapeError);
 * gpu.destroy();
 * ```
 */
export function checkMatmulConfig(gpu: Gpu, c: MatmulConfig, label = "matmul"): void {
  if (!(c.tile in MATMUL_TILES)) {
    throw new ShapeError(
      `${label}: unknown tile "${c.tile}"; tiles: ${Object.keys(MATMUL_TILES).join(", ")}`,
    );
  }
  const s = c.splitK ?? 1;
  if (!Number.isInteger(s) || s < 1) {
    throw new ShapeError(`${label}: splitK must be a positive integer, got ${s}`);
  }
  const bytes = matmulWorkgroupBytes(c);
  if (bytes > gpu.limits.maxComputeWorkgroupStorageSize) {
    throw new ShapeError(
      `${label}: tile ${c.tile}${c.pad ? " padded" : ""}${
        c.doubleBuffer ? " double-buffered" : ""
      } ` +
        `needs ${bytes} bytes of workgroup memory, more than the device's ` +
        `${gpu.limits.maxComputeWorkgroupStorageSize}`,
    );
  }
}

/**
 * Sets the configuration `matmul` uses for a shape on `gpu` (ops built later use it), as
 * `tuneMatmuls` does with the fastest it measured.
 *
 * @example
 * ```ts
 * import { matmul, requestGpu, setMatmulConfig } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const [a, b, c] = [gpu.tensor("a", [8, 512]), gpu.tensor("b", [512, 8]), gpu.tensor("c", [8, 8])];
 * setMatmulConfig(gpu, { m: 8, n: 8, k: 512, batch: 1, vec4: true }, { tile: "32x32", splitK: 4 });
 * const op = matmul(gpu, { a, b, out: c });
 * assert.deepEqual(op.dispatches.map((d) => d.kernel), ["matmul", "matmul_reduce"]);
 * gpu.destroy();
 * ```
 */
export function setMatmulConfig(gpu: Gpu, shape: MatmulShape, config: MatmulConfig): void {
  checkMatmulConfig(gpu, config);
  state(gpu).measured.set(matmulShapeKey(shape), { ...config });
}

/**
 * The measured configurations of `gpu`, by {@link matmulShapeKey}.
 *
 * @example
 * ```ts
 * import { matmulTuning, requestGpu, setMatmulConfig } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * assert.deepEqual(matmulTuning(gpu), {});
 * setMatmulConfig(gpu, { m: 8, n: 8, k: 8 }, { tile: "32x32" });
 * assert.deepEqual(matmulTuning(gpu), { "8x8x8 b1 nn s f32": { tile: "32x32" } });
 * gpu.destroy();
 * ```
 */
export function matmulTuning(gpu: Gpu): Record<string, MatmulConfig> {
  return Object.fromEntries(state(gpu).measured);
}

/**
 * The shapes `matmul` was asked for on `gpu` (every launcher call records its shape), with
 * whether each was measured: build a session once, tune these, then build it again.
 *
 * @example
 * ```ts
 * import { matmul, matmulShapes, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const [x, w, y] = [gpu.tensor("x", [2, 3, 8]), gpu.tensor("w", [4, 8]), gpu.tensor("y", [2, 3, 4])];
 * matmul(gpu, { a: x, b: w, out: y, transB: true }); // (B, S, C) · (F, C)ᵀ: B·S = 6 rows
 * const [{ shape, measured }] = matmulShapes(gpu);
 * assert.deepEqual([shape.m, shape.n, shape.k, shape.transB, measured], [6, 4, 8, true, false]);
 * gpu.destroy();
 * ```
 */
export function matmulShapes(gpu: Gpu): { shape: MatmulShape; measured: boolean }[] {
  const st = state(gpu);
  return [...st.seen].map(([key, shape]) => ({ shape, measured: st.measured.has(key) }));
}

/**
 * A short hash of the matmul kernels' sources: measurements of other kernels do not apply.
 *
 * @example
 * ```ts
 * import { matmulKernelsHash } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.match(matmulKernelsHash(), /^[0-9a-f]{8}$/);
 * ```
 */
export function matmulKernelsHash(): string {
  let h = 0x811c9dc5;
  const names = ["matmul", "matmul_scalar", "matmul_f16", "matmul_scalar_f16", "matmul_direct"];
  for (const name of names as KernelName[]) {
    const src = WGSL[name];
    for (let i = 0; i < src.length; i++) h = Math.imul(h ^ src.charCodeAt(i), 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}

/**
 * Where measured choices are kept by default: `matmul-tuning/<adapter>.json` in the user's cache
 * folder (`$XDG_CACHE_HOME/adept-trainer`, else `~/.cache/adept-trainer`).
 *
 * @example
 * ```ts
 * import { matmulTuningPath, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * // e.g. ~/.cache/adept-trainer/matmul-tuning/llvmpipe-llvm-15.0.6-256-bits.json
 * assert.match(matmulTuningPath(gpu), /\/adept-trainer\/matmul-tuning\/[a-z0-9.-]+\.json$/);
 * gpu.destroy();
 * ```
 */
export function matmulTuningPath(gpu: Gpu): string {
  const env = (k: string) => {
    try {
      return Deno.env.get(k);
    } catch {
      return undefined;
    }
  };
  const base = env("XDG_CACHE_HOME") ?? `${env("HOME") ?? "."}/.cache`;
  const name = gpu.adapter.description.toLowerCase().replace(/[^a-z0-9.]+/g, "-")
    .replace(/^-+|-+$/g, "") || "adapter";
  return `${base}/adept-trainer/matmul-tuning/${name}.json`;
}

interface TuningFile {
  adapter: string;
  kernels: string;
  configs: Record<string, MatmulConfig>;
}

/**
 * Saves the measured choices of `gpu` as JSON (the adapter's name, the kernels' hash and the
 * configurations by shape key). Returns the path.
 *
 * @example
 * ```ts
 * import { requestGpu, saveMatmulTuning, setMatmulConfig } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * setMatmulConfig(gpu, { m: 16, n: 64, k: 1024 }, { tile: "16x128", splitK: 2 });
 * const path = await saveMatmulTuning(gpu, `${await Deno.makeTempDir()}/tuning.json`);
 * const saved = JSON.parse(await Deno.readTextFile(path));
 * assert.equal(saved.adapter, gpu.adapter.description);
 * assert.deepEqual(saved.configs, { "16x64x1024 b1 nn s f32": { tile: "16x128", splitK: 2 } });
 * gpu.destroy();
 * ```
 */
export async function saveMatmulTuning(
  gpu: Gpu,
  path: string = matmulTuningPath(gpu),
): Promise<string> {
  const file: TuningFile = {
    adapter: gpu.adapter.description,
    kernels: matmulKernelsHash(),
    configs: matmulTuning(gpu),
  };
  await writeFileAtomic(path, JSON.stringify(file, null, 1) + "\n", { fsync: false });
  return path;
}

/**
 * Loads choices saved by {@link saveMatmulTuning} into `gpu`'s table. A missing file, one of
 * another adapter or of other kernels loads nothing; returns the number of choices loaded.
 *
 * @example
 * ```ts
 * import { loadMatmulTuning, requestGpu, saveMatmulTuning, setMatmulConfig } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const path = `${await Deno.makeTempDir()}/tuning.json`;
 * assert.equal(await loadMatmulTuning(gpu, path), 0); // nothing saved yet
 * setMatmulConfig(gpu, { m: 64, n: 64, k: 4096 }, { tile: "32x32", splitK: 4 });
 * await saveMatmulTuning(gpu, path);
 * const other = await requestGpu({ log: false });
 * assert.equal(await loadMatmulTuning(other, path), 1);
 * gpu.destroy();
 * other.destroy();
 * ```
 */
export async function loadMatmulTuning(
  gpu: Gpu,
  path: string = matmulTuningPath(gpu),
): Promise<number> {
  let file: TuningFile;
  try {
    file = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw new Error(`matmul tuning file ${path}: ${(e as Error).message}`, { cause: e });
  }
  if (file.adapter !== gpu.adapter.description || file.kernels !== matmulKernelsHash()) return 0;
  const st = state(gpu);
  let n = 0;
  for (const [key, c] of Object.entries(file.configs ?? {})) {
    try {
      checkMatmulConfig(gpu, c);
    } catch {
      continue; // a configuration this device cannot run
    }
    st.measured.set(key, c);
    n++;
  }
  return n;
}
