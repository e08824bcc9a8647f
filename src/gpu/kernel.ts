/**
 * Compiled kernels: a WGSL file of `kernels/` compiled once per set of baked constants and
 * writable inputs, and cached under the key `name/rw(...){constants}`.
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
}

/** Compiles kernels on first use and caches them under `name + constants`. */
export class KernelCache {
  #cache = new Map<string, CompiledKernel>();
  #ifaces = new Map<string, KernelInterface>();

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
   * The pipeline of `name` with `constants` baked in. The inputs named in `writable` are
   * declared `read_write`: needed when their buffer is also an output of the same dispatch
   * (different views of one arena), which WebGPU forbids for read-only bindings. Other inputs
   * stay read-only.
   */
  get(
    name: KernelName,
    constants: Constants = {},
    writable: readonly string[] = [],
  ): CompiledKernel {
    const ckeys = Object.keys(constants).sort();
    const rw = [...writable].sort();
    const key = `${name}${rw.length ? `/rw(${rw.join(",")})` : ""}{${
      ckeys.map((k) => `${k}=${Number(constants[k])}`).join(",")
    }}`;
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
    let code: string = WGSL[name];
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
