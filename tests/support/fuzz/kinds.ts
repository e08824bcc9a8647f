/**
 * Every fuzz kind by name (child.ts runs one), and the kind of non-regular files given to each
 * loader.
 *
 * @module
 */

import { join } from "node:path";
import { loadTaskFile } from "../../../src/data/task_file.ts";
import { readTable } from "../../../src/data/datasets.ts";
import { loadTokenizer } from "../../../src/data/tokenizer.ts";
import { openSafetensors } from "../../../src/io/safetensors.ts";
import { loadT5Config } from "../../../src/model/t5_config.ts";
import { makeFifo } from "../subprocess.ts";
import type { FuzzCase, FuzzKind, Rng } from "./harness.ts";
import { WrongResult } from "./harness.ts";
import { safetensorsKind, shardsKind } from "./kinds_io.ts";
import { cacheKind, parquetKind, taskKind, textKind, tokenizerKind } from "./kinds_data.ts";
import { configKind } from "./kinds_model.ts";

const FIXTURES = new URL("../../fixtures/", import.meta.url).pathname;

/** What each file name is loaded with. */
const LOADERS: Record<string, (path: string) => Promise<unknown>> = {
  "model.safetensors": (p) => openSafetensors(p).then((r) => r.close()),
  "model.safetensors.index.json": (p) => openSafetensors(p).then((r) => r.close()),
  "config.json": (p) => loadT5Config(p),
  "tokenizer.json": (p) => loadTokenizer(p),
  "train.jsonl": (p) => readTable(p),
  "train.csv": (p) => readTable(p),
  "train.parquet": (p) => readTable(p),
  "task.json": (p) => loadTaskFile(p),
};

/** Each loader given a named pipe, a folder, a device, and symlinks to them and to a real file. */
const nonRegularKind: FuzzKind = {
  cases(_rng: Rng, count: number): Promise<FuzzCase[]> {
    const real: Record<string, string> = {
      "model.safetensors": join(FIXTURES, "t5/tiny-t5-v1_0/model.safetensors"),
      "config.json": join(FIXTURES, "t5/tiny-t5-v1_0/config.json"),
      "tokenizer.json": join(FIXTURES, "tokenizers/t5/tokenizer.json"),
      "train.parquet": join(FIXTURES, "datasets/rows_snappy.parquet"),
      "task.json": new URL("../../../tasks/default/task.json", import.meta.url).pathname,
    };
    const out: FuzzCase[] = [];
    const kinds = ["fifo", "folder", "device", "link to fifo", "link to file"] as const;
    for (const name of Object.keys(LOADERS)) {
      for (const k of kinds) {
        if (k === "link to file" && !real[name]) continue;
        out.push({
          gen: `${name} as a ${k}`,
          async write(dir) {
            const p = join(dir, name);
            if (k === "fifo") await makeFifo(p);
            else if (k === "folder") await Deno.mkdir(p);
            else if (k === "device") await Deno.symlink("/dev/zero", p);
            else if (k === "link to fifo") {
              await makeFifo(join(dir, "pipe"));
              await Deno.symlink(join(dir, "pipe"), p);
            } else await Deno.symlink(real[name], p);
            return p;
          },
        });
      }
    }
    return Promise.resolve(out.slice(0, count));
  },
  async load(path: string) {
    const name = path.split("/").at(-1)!;
    const st = await Deno.lstat(path);
    const target = st.isSymlink ? await Deno.readLink(path) : "";
    await LOADERS[name](path);
    if (!(st.isSymlink && !target.startsWith("/dev/") && !target.endsWith("/pipe"))) {
      throw new WrongResult(`${name}: a file that is not regular was read`);
    }
  },
};

/** The kinds, by the name child.ts takes. */
export const KINDS: Record<string, FuzzKind> = {
  safetensors: safetensorsKind,
  shards: shardsKind,
  config: configKind,
  tokenizer: tokenizerKind,
  cache: cacheKind,
  parquet: parquetKind,
  text: textKind,
  task: taskKind,
  nonregular: nonRegularKind,
};
