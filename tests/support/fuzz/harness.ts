/**
 * The fuzz suites' shared parts: what a kind of input is (how its malformed variants are made,
 * how one is loaded and its result checked), the seeded mutators (byte flips, truncations,
 * structured JSON mutations), and what a refusal must look like.
 *
 * Each kind runs in a child process (child.ts) with a deadline, so that a hang or a crash fails
 * the test (naming the case) instead of stopping the test runner.
 *
 * @module
 */

import { Rng } from "../../numeric.ts";

export { Rng };

/** One malformed input: which generator made it, and how to write it. */
export interface FuzzCase {
  /** The generator (class of mutation), e.g. "byte flip" or "json: model.vocab". */
  gen: string;
  /** Writes the input's files into `dir` (empty, fresh) and returns the path to load. */
  write(dir: string): Promise<string>;
}

/** A kind of input the loaders read. */
export interface FuzzKind {
  /** Builds `count` seeded cases. */
  cases(rng: Rng, count: number): Promise<FuzzCase[]>;
  /**
   * Loads a case and checks that what came back is right; throws a {@link WrongResult} when
   * it is not. Any other throw is a refusal, judged by the parent.
   */
  load(path: string): Promise<void>;
}

/** A loader returned something it should not have (silent garbage). */
export class WrongResult extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WrongResult";
  }
}

/** What the child reports per case. */
export interface CaseReport {
  i: number;
  gen: string;
  outcome: "ok" | "refused" | "wrong";
  name?: string;
  message?: string;
  ms: number;
}

/** Library internals a message must not quote: they say nothing about the file. */
export const INTERNAL_PHRASES = [
  /Cannot read properties of/,
  /is not iterable/,
  /is not a function/,
  /Invalid typed array length/,
  /Array buffer allocation failed/,
  /Offset is outside the bounds/,
  /Maximum call stack/,
  /\[object Object\]/,
  /\bNaN\b/,
  /Invalid array length/,
  /is not defined/,
];

// ---------------------------------------------------------------------------------------------
// Mutators

/** An integer in [0, n). */
export function pick(rng: Rng, n: number): number {
  return Math.floor(rng.next() * n);
}

/** One of the items. */
export function oneOf<T>(rng: Rng, items: readonly T[]): T {
  return items[pick(rng, items.length)];
}

/** A copy with 1 to `most` bytes in [from, to) XORed with random non-zero masks. */
export function flipBytes(rng: Rng, bytes: Uint8Array, most = 3, from = 0, to = bytes.length) {
  const out = bytes.slice();
  const k = 1 + pick(rng, most);
  for (let i = 0; i < k; i++) out[from + pick(rng, to - from)] ^= 1 + pick(rng, 255);
  return out;
}

/** A copy cut at a random point (or, sometimes, with random bytes appended). */
export function truncate(rng: Rng, bytes: Uint8Array): Uint8Array {
  if (rng.next() < 0.15) {
    const extra = new Uint8Array(1 + pick(rng, 16)).map(() => pick(rng, 256));
    const out = new Uint8Array(bytes.length + extra.length);
    out.set(bytes);
    out.set(extra, bytes.length);
    return out;
  }
  return bytes.slice(0, pick(rng, bytes.length));
}

/** Values that break assumptions: wrong types, extremes, empties. */
const ODD_VALUES: readonly unknown[] = [
  null,
  -1,
  0,
  1.5,
  -0.5,
  1e9,
  1e308,
  2 ** 31,
  2 ** 32,
  2 ** 53 + 2,
  "",
  "x",
  "1",
  true,
  false,
  [],
  [1],
  ["a", "b", "c"],
  {},
  { type: "Foo" },
];

type Json = unknown;

/** The path to a random node: at each level stop with probability `stop`, else go deeper. */
function randomPath(rng: Rng, root: Json, stop = 0.3): (string | number)[] {
  const path: (string | number)[] = [];
  let node = root;
  for (let depth = 0; depth < 12; depth++) {
    if (depth > 0 && rng.next() < stop) break;
    if (Array.isArray(node) && node.length) {
      const i = pick(rng, node.length);
      path.push(i);
      node = node[i];
    } else if (node && typeof node === "object" && Object.keys(node).length) {
      const keys = Object.keys(node);
      const k = keys[pick(rng, keys.length)];
      path.push(k);
      node = (node as Record<string, Json>)[k];
    } else break;
  }
  return path;
}

/**
 * A structured mutation of parsed JSON (in place on a copy): at a random node (or one of
 * `focus`, paths that matter most), delete it, replace it with an odd value, empty it, duplicate
 * or swap elements, or change a number or a string a little. Returns the copy and a label.
 */
export function mutateJson(
  rng: Rng,
  value: Json,
  focus: readonly (string | number)[][] = [],
): { json: Json; label: string } {
  const json = structuredClone(value);
  let path: (string | number)[];
  if (focus.length && rng.next() < 0.6) {
    path = [...oneOf(rng, focus)];
    let node: Json = json;
    for (const p of path) node = (node as Record<string | number, Json>)?.[p];
    // Sometimes go further down from the focus.
    if (node && typeof node === "object" && rng.next() < 0.5) path.push(...randomPath(rng, node));
  } else {
    path = randomPath(rng, json);
  }
  if (path.length === 0) return { json: oneOf(rng, ODD_VALUES), label: "json: the root" };
  const parent = path.slice(0, -1).reduce(
    (n: Json, p) => (n as Record<string | number, Json>)?.[p],
    json,
  ) as Record<string | number, Json> | undefined;
  const key = path.at(-1)!;
  const label = `json: ${path.map(String).join(".").replace(/\.\d+(?=\.|$)/g, "[i]")}`;
  if (!parent || typeof parent !== "object") return { json, label };
  const old = parent[key];
  const r = pick(rng, 8);
  if (r === 0) {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key];
  } else if (r <= 3) {
    parent[key] = oneOf(rng, ODD_VALUES);
  } else if (r === 4 && Array.isArray(old)) {
    parent[key] = rng.next() < 0.5 ? [] : [...old, ...old.slice(0, 1 + pick(rng, 3))];
  } else if (r === 4 && old && typeof old === "object") {
    parent[key] = {};
  } else if (typeof old === "number") {
    parent[key] = oneOf(rng, [
      old + 1,
      old - 1,
      -old,
      old * 2 ** 20,
      old + 0.5,
      Math.floor(old / 2),
    ]);
  } else if (typeof old === "string") {
    parent[key] = oneOf(rng, [
      "",
      old.slice(1),
      old + old,
      old.slice(0, old.length >> 1),
      old.toUpperCase(),
    ]);
  } else if (Array.isArray(parent) && parent.length > 1) {
    const j = pick(rng, parent.length);
    [parent[key as number], parent[j]] = [parent[j], parent[key as number]];
  } else {
    parent[key] = oneOf(rng, ODD_VALUES);
  }
  return { json, label };
}

/** Writes bytes (or text) to `dir/name` and returns the path. */
export async function put(dir: string, name: string, data: Uint8Array | string): Promise<string> {
  const path = `${dir}/${name}`;
  if (typeof data === "string") await Deno.writeTextFile(path, data);
  else await Deno.writeFile(path, data);
  return path;
}

/**
 * A mixture of generators: `count` cases drawn by weight, each made by its generator's function.
 */
export async function mixture(
  rng: Rng,
  count: number,
  gens: readonly [weight: number, make: (rng: Rng) => FuzzCase | Promise<FuzzCase>][],
): Promise<FuzzCase[]> {
  const total = gens.reduce((s, [w]) => s + w, 0);
  const out: FuzzCase[] = [];
  for (let i = 0; i < count; i++) {
    let x = rng.next() * total;
    const g = gens.find(([w]) => (x -= w) < 0) ?? gens[gens.length - 1];
    out.push(await g[1](rng));
  }
  return out;
}
