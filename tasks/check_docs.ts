/**
 * `deno task doc`: type-checks and runs the `@example` blocks of the library's JSDoc
 * (`deno test --doc`), with the package imported by its name, as its users import it.
 *
 * Usage: `deno task doc [paths...] [-- deno test flags...]`. Without paths it covers
 * {@link DOC_TEST_PATHS}. Like `deno task test`, it runs with every permission and in parallel;
 * the examples that touch the GPU need a WebGPU adapter (lavapipe will do).
 *
 * Why a generated config: `deno test --doc` adds to every example an import of _all_ the
 * exports of the module the example sits in, used or not (denoland/deno#26900, open in Deno
 * 2.9), and `noUnusedLocals`, which deno.json sets for the real code, rejects that import. The
 * examples are therefore checked under a config generated here from deno.json at run time:
 * the same import map and compiler options, with `noUnusedLocals` off, plus the package's own
 * name mapped to its entry point (the `exports` of deno.json). The real code is still checked
 * with `noUnusedLocals` by `deno check`, and the two configs cannot drift apart. A copy of
 * the repository's lock file pins the same versions.
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** The folders and files whose examples `deno task doc` runs when given no paths. */
export const DOC_TEST_PATHS: readonly string[] = ["mod.ts", "src/", "tasks/"];

/** The subset of deno.json this task reads. */
interface DenoJson {
  name?: string;
  exports?: string | Record<string, string>;
  imports?: Record<string, string>;
  compilerOptions?: Record<string, unknown>;
}

/**
 * The config the examples are checked and run under: deno.json's import map and compiler
 * options with `noUnusedLocals` off, and the package name mapped to its entry point.
 *
 * @param denoJson The parsed deno.json.
 * @param root The folder deno.json is in (absolute).
 * @returns The config, ready to be written as JSON anywhere.
 *
 * @example
 * ```ts
 * import { docTestConfig } from "./check_docs.ts";
 * import assert from "node:assert/strict";
 *
 * const config = docTestConfig({
 *   name: "@me/pkg",
 *   exports: { ".": "./mod.ts" },
 *   imports: { "hyparquet": "npm:hyparquet@1.31.5" },
 *   compilerOptions: { strict: true, noUnusedLocals: true },
 * }, "/repo");
 * assert.deepEqual(config, {
 *   imports: { "hyparquet": "npm:hyparquet@1.31.5", "@me/pkg": "file:///repo/mod.ts" },
 *   compilerOptions: { strict: true, noUnusedLocals: false },
 * });
 * ```
 */
export function docTestConfig(
  denoJson: DenoJson,
  root: string,
): { imports: Record<string, string>; compilerOptions: Record<string, unknown> } {
  const imports = { ...denoJson.imports };
  const entry = typeof denoJson.exports === "string" ? denoJson.exports : denoJson.exports?.["."];
  if (denoJson.name && entry) imports[denoJson.name] = pathToFileURL(resolve(root, entry)).href;
  return {
    imports,
    compilerOptions: { ...denoJson.compilerOptions, noUnusedLocals: false },
  };
}

async function main(args: string[]): Promise<number> {
  const root = dirname(dirname(fileURLToPath(import.meta.url)));
  const dash = args.indexOf("--");
  const paths = dash < 0 ? args : args.slice(0, dash);
  const flags = dash < 0 ? [] : args.slice(dash + 1);
  const denoJson = JSON.parse(await Deno.readTextFile(join(root, "deno.json"))) as DenoJson;
  const dir = await Deno.makeTempDir({ prefix: "adept_doc_test_" });
  try {
    const config = join(dir, "deno.json");
    await Deno.writeTextFile(config, JSON.stringify(docTestConfig(denoJson, root), null, 2));
    // A copy of the lock file beside the config: the same pinned versions, and the repository's
    // lock file untouched (the generated config adds a link entry to it).
    await Deno.copyFile(join(root, "deno.lock"), join(dir, "deno.lock")).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
    const { code } = await new Deno.Command(Deno.execPath(), {
      args: [
        "test",
        "--doc",
        "--allow-all",
        "--parallel",
        `--config=${config}`,
        ...flags,
        ...(paths.length ? paths : DOC_TEST_PATHS),
      ],
      cwd: root,
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    return code;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
