/**
 * Reading the interface of a WGSL kernel: its bindings and its uniform struct.
 *
 * Kernels follow one convention (see `kernels/README.md`): every resource sits in
 * `@group(0)`, the uniform block (if any) is a struct of 4-byte scalars bound as `params`,
 * and the entry point is `main`.
 *
 * @module
 */

/** How a binding is declared in WGSL. */
export type BindingKind = "uniform" | "read" | "read_write";

/** One `@group(0) @binding(i)` declaration. */
export interface BindingInfo {
  /** Binding index. */
  index: number;
  /** Variable name in the WGSL source. */
  name: string;
  /** Address space and access mode. */
  kind: BindingKind;
}

/** One scalar field of the uniform struct. */
export interface ParamField {
  /** Field name. */
  name: string;
  /** Scalar type. */
  type: "u32" | "i32" | "f32";
}

/** The parsed interface of a kernel. */
export interface KernelInterface {
  /** Bindings sorted by index. */
  bindings: BindingInfo[];
  /** Fields of the uniform struct, in declaration order (empty without uniforms). */
  params: ParamField[];
  /** Names of the pipeline-overridable constants (`override X: T = ...;`). */
  overrides: string[];
}

const BINDING_RE =
  /@group\(\s*0\s*\)\s*@binding\(\s*(\d+)\s*\)\s*var<\s*(uniform|storage\s*(?:,\s*(read|read_write))?)\s*>\s*(\w+)\s*:\s*(\w+)/g;

/** Parses the bindings, the uniform struct and the overrides of a WGSL kernel. */
export function parseKernelInterface(name: string, source: string): KernelInterface {
  const code = source.replace(/\/\/[^\n]*/g, "");
  const bindings: BindingInfo[] = [];
  let paramsType: string | undefined;
  for (const m of code.matchAll(BINDING_RE)) {
    const [, idx, space, access, varName, type] = m;
    const kind: BindingKind = space.startsWith("uniform")
      ? "uniform"
      : access === "read_write"
      ? "read_write"
      : "read";
    if (kind === "uniform") {
      if (varName !== "params") {
        throw new Error(
          `kernel ${name}: the uniform binding must be named "params", not "${varName}"`,
        );
      }
      paramsType = type;
    }
    bindings.push({ index: Number(idx), name: varName, kind });
  }
  bindings.sort((a, b) => a.index - b.index);
  for (let i = 0; i < bindings.length; i++) {
    if (bindings[i].index !== i) {
      throw new Error(
        `kernel ${name}: binding indices must be 0..${bindings.length - 1} without gaps`,
      );
    }
  }
  const params: ParamField[] = [];
  if (paramsType) {
    const sm = new RegExp(`struct\\s+${paramsType}\\s*\\{([^}]*)\\}`).exec(code);
    if (!sm) throw new Error(`kernel ${name}: struct ${paramsType} not found`);
    for (const field of sm[1].split(",")) {
      const f = field.trim();
      if (!f) continue;
      const fm = /^(\w+)\s*:\s*(\w+)$/.exec(f);
      if (!fm || !["u32", "i32", "f32"].includes(fm[2])) {
        throw new Error(
          `kernel ${name}: uniform field "${f}" must be a 4-byte scalar (u32, i32 or f32)`,
        );
      }
      params.push({ name: fm[1], type: fm[2] as ParamField["type"] });
    }
  }
  const overrides = [...code.matchAll(/\boverride\s+(\w+)/g)].map((m) => m[1]);
  return { bindings, params, overrides };
}
