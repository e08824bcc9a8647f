/**
 * Compiled kernels: a WGSL file of `kernels/` compiled once per set of baked constants, writable
 * inputs and reduction variant, and cached under the key `name[+subgroups]/rw(...){constants}`.
 *
 * **Subgroup variants.** A kernel whose source (snippets included) holds a block
 * `/*@subgroups ... @subgroups*\/` has two variants. As written it is the portable one: the
 * block is a WGSL comment, and the code between `//@tree{` and `//@tree}` (workgroup-memory
 * trees) is compiled. On a device that grants the `subgroups` feature (`Gpu.subgroups`), the
 * cache compiles {@link subgroupVariant} instead: the block's code is uncommented, the tree code
 * is dropped, and `enable subgroups;` is prepended where the WGSL compiler accepts it.
 *
 * @module
 */

import { type KernelInterface, parseKernelInterface } from "./wgsl.ts";
import { type KernelName, WGSL } from "./wgsl.generated.ts";

export type { KernelName };

/** Values of pipeline-overridable constants (`override` in WGSL); booleans become 0/1. */
export type Constants = Record<string, number | boolean>;

/** A compiled kernel variant. */
export interface CompiledKernel {
  /** Cache key: kernel name, variant and constants. */
  key: string;
  /** The pipeline. */
  pipeline: GPUComputePipeline;
  /** Its explicit bind group layout (group 0). */
  layout: GPUBindGroupLayout;
  /** The kernel's parsed interface. */
  iface: KernelInterface;
}

/** What the cache needs of its device: the device and an error-scope wrapper. */
export interface KernelHost {
  /** The WebGPU device pipelines are built on. */
  readonly device: GPUDevice;
  /** Runs `fn` inside validation and out-of-memory error scopes attributed to `context`. */
  checked<T>(context: string, fn: () => T): T;
  /**
   * Compile the subgroup variant of kernels that have one (the device has the `subgroups`
   * feature). Read at every {@link KernelCache.get}: ops built after a change use the new value.
   * @default {false}
   */
  readonly subgroups?: boolean;
  /**
   * Prepend `enable subgroups;` to subgroup variants. WGSL requires it; the naga of Deno 2.9
   * (wgpu 29) rejects it as not yet implemented and accepts subgroup built-ins without it.
   * @default {true}
   */
  readonly subgroupsDirective?: boolean;
}

const SG_BEGIN = "/*@subgroups";
const SG_END = "@subgroups*/";
const TREE_BEGIN = "//@tree{";
const TREE_END = "//@tree}";

/**
 * The subgroup variant of a kernel's source, or `undefined` when it has none (no
 * `/*@subgroups` block). Lines between a line `/*@subgroups` and a line `@subgroups*\/` are
 * kept (uncommented), lines from `//@tree{` to `//@tree}` are dropped, and with `directive`
 * the result starts with `enable subgroups;`. Each marker stands alone on its line; blocks do
 * not nest, and a subgroup block may not hold `/*` or `*\/` (WGSL block comments nest, so
 * either would change what the portable variant comments out).
 *
 * @param name The kernel's name, for error messages.
 * @param code The kernel's WGSL, snippets expanded.
 * @param directive Prepend `enable subgroups;`.
 * @returns The subgroup variant, or `undefined`.
 * @throws {Error} On unbalanced, nested or misplaced markers, naming the line.
 *
 * @example
 * ```ts
 * import { subgroupVariant } from "./kernel.ts";
 * import assert from "node:assert/strict";
 *
 * const code = [
 *   "/*@subgroups",
 *   "fn sum(v: f32) -> f32 { return subgroupAdd(v); }",
 *   "@subgroups*\/",
 *   "//@tree{",
 *   "fn sum(v: f32) -> f32 { return v; }",
 *   "//@tree}",
 *   "",
 * ].join("\n");
 * assert.equal(
 *   subgroupVariant("k", code, true),
 *   "enable subgroups;\nfn sum(v: f32) -> f32 { return subgroupAdd(v); }\n",
 * );
 * assert.equal(subgroupVariant("k", "fn main() {}", true), undefined);
 * ```
 */
export function subgroupVariant(
  name: string,
  code: string,
  directive: boolean,
): string | undefined {
  if (!code.includes(SG_BEGIN)) return undefined;
  const out: string[] = [];
  let state: "code" | "subgroups" | "tree" = "code";
  let opened = 0;
  code.split("\n").forEach((line, i) => {
    const at = `kernel ${name}, line ${i + 1} of its expanded source`;
    const marker = line.trim();
    const isMarker = marker === SG_BEGIN || marker === SG_END || marker === TREE_BEGIN ||
      marker === TREE_END;
    if (!isMarker && (line.includes(SG_BEGIN) || line.includes(TREE_BEGIN))) {
      throw new Error(`${at}: a subgroup or tree marker must stand alone on its line`);
    }
    const expect = (want: typeof state, next: typeof state) => {
      if (state !== want) {
        throw new Error(
          `${at}: "${marker}" inside ${state === "code" ? "no block" : `a ${state} block`}`,
        );
      }
      state = next;
    };
    if (marker === SG_BEGIN) return expect("code", "subgroups"), opened++;
    if (marker === SG_END) return expect("subgroups", "code");
    if (marker === TREE_BEGIN) return expect("code", "tree");
    if (marker === TREE_END) return expect("tree", "code");
    if (state === "subgroups" && (line.includes("/*") || line.includes("*/"))) {
      throw new Error(`${at}: a subgroup block may not hold "/*" or "*/"`);
    }
    if (state !== "tree") out.push(line);
  });
  if (state !== "code") {
    throw new Error(`kernel ${name}: a ${state} block is not closed`);
  }
  if (opened === 0) return undefined;
  return (directive ? "enable subgroups;\n" : "") + out.join("\n");
}

/** Compiles kernels on first use and caches them under `name + constants`. */
export class KernelCache {
  #cache = new Map<string, CompiledKernel>();
  #ifaces = new Map<string, KernelInterface>();
  #variants = new Map<string, string | undefined>();

  constructor(private readonly gpu: KernelHost) {}

  /** Number of compiled pipelines. */
  get size(): number {
    return this.#cache.size;
  }

  /** The parsed interface of a kernel (bindings, uniform fields, overrides). */
  iface(name: KernelName): KernelInterface {
    let iface = this.#ifaces.get(name);
    if (!iface) {
      const src = WGSL[name];
      if (src === undefined) {
        throw new Error(`unknown kernel "${name}": no kernels/${name}.wgsl was generated`);
      }
      iface = parseKernelInterface(name, src);
      this.#ifaces.set(name, iface);
    }
    return iface;
  }

  /**
   * Whether `name` has a subgroup variant (a `/*@subgroups` block in its source, snippets
   * included): on a device with subgroups in use, {@link KernelCache.get} compiles that one.
   */
  hasSubgroupVariant(name: KernelName): boolean {
    return this.#subgroupSource(name) !== undefined;
  }

  #subgroupSource(name: KernelName): string | undefined {
    if (!this.#variants.has(name)) {
      this.iface(name); // an unknown kernel raises here
      const directive = this.gpu.subgroupsDirective ?? true;
      this.#variants.set(name, subgroupVariant(name, WGSL[name], directive));
    }
    return this.#variants.get(name);
  }

  /**
   * The pipeline of `name` with `constants` baked in. The inputs named in `writable` are
   * declared `read_write`: needed when their buffer is also an output of the same dispatch
   * (different views of one arena), which WebGPU forbids for read-only bindings. Other inputs
   * stay read-only. When the device uses subgroups and the kernel has a subgroup variant, that
   * variant is compiled (key `name+subgroups...`).
   */
  get(
    name: KernelName,
    constants: Constants = {},
    writable: readonly string[] = [],
  ): CompiledKernel {
    const ckeys = Object.keys(constants).sort();
    const rw = [...writable].sort();
    const sgCode = this.gpu.subgroups ? this.#subgroupSource(name) : undefined;
    const key = `${name}${sgCode !== undefined ? "+subgroups" : ""}${
      rw.length ? `/rw(${rw.join(",")})` : ""
    }{${ckeys.map((k) => `${k}=${Number(constants[k])}`).join(",")}}`;
    const hit = this.#cache.get(key);
    if (hit) return hit;
    const iface = this.iface(name);
    for (const k of ckeys) {
      if (!iface.overrides.includes(k)) {
        throw new Error(
          `kernel ${name} has no override constant "${k}" (it has: ${
            iface.overrides.join(", ") || "none"
          })`,
        );
      }
    }
    let code: string = sgCode ?? WGSL[name];
    for (const b of rw) {
      const re = new RegExp(`var<\\s*storage\\s*,\\s*read\\s*>(\\s*${b}\\s*:)`);
      if (!re.test(code)) throw new Error(`kernel ${name} has no read-only binding "${b}"`);
      code = code.replace(re, "var<storage, read_write>$1");
    }
    const device = this.gpu.device;
    const compiled = this.gpu.checked(`compiling kernel ${key}`, () => {
      const module = device.createShaderModule({ label: name, code });
      const layout = device.createBindGroupLayout({
        label: key,
        entries: iface.bindings.map((b) => ({
          binding: b.index,
          visibility: GPUShaderStage.COMPUTE,
          buffer: {
            type: b.kind === "uniform"
              ? "uniform"
              : b.kind === "read" && !rw.includes(b.name)
              ? "read-only-storage"
              : "storage",
          },
        })),
      });
      const pipeline = device.createComputePipeline({
        label: key,
        layout: device.createPipelineLayout({ label: key, bindGroupLayouts: [layout] }),
        compute: {
          module,
          entryPoint: "main",
          constants: Object.fromEntries(ckeys.map((k) => [k, Number(constants[k])])),
        },
      });
      return { key, pipeline, layout, iface };
    });
    this.#cache.set(key, compiled);
    return compiled;
  }
}
