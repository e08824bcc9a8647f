/**
 * Hugging Face Hub access for models and datasets, with the standard HF cache layout.
 *
 * {@link hubDownload} takes a Hub repo id (`google-t5/t5-base`, `nyu-mll/glue` with
 * `repoType: "dataset"`, or `datasets/nyu-mll/glue`) or a local folder, and returns a
 * {@link HubSnapshot}: one folder holding every requested file.
 *
 * - **Cache layout** as Python `huggingface_hub` writes it, so both share one cache:
 *   `<cache>/models--org--name/{blobs/<etag>, snapshots/<sha>/<path> → ../../blobs/<etag>,
 *   refs/<revision>}` (datasets under `datasets--org--name`). The revision is resolved to a
 *   commit sha first and written to `refs/<revision>`, and every file is fetched at that sha,
 *   so all files of one download share one snapshot folder.
 * - **Environment**, as in Python: `HF_HUB_CACHE` > `HUGGINGFACE_HUB_CACHE` > `HF_HOME/hub` >
 *   `XDG_CACHE_HOME/huggingface/hub` > `~/.cache/huggingface/hub`; `HF_TOKEN` (then the token file
 *   `HF_TOKEN_PATH` or `HF_HOME/token`); `HF_ENDPOINT`; `HF_HUB_OFFLINE=1`, which serves
 *   everything from the cache without a single request. Options override the environment.
 * - **Safety**: file names from a listing, shard names and revision names that would resolve
 *   outside the snapshot or cache folder are refused.
 * - **Quiet**: the HTTP calls go through `@huggingface/hub` (`modelInfo`, `datasetInfo`,
 *   `listFiles`, `pathsInfo`, `downloadFile`, which also handles Xet-backed files), but the cache
 *   is written here rather than by its `downloadFileToCacheDir`/`snapshotDownload`, which log a
 *   `console.debug` line per file (and a `console.info` when symlinks are unavailable). Nothing
 *   in this module prints; pass `onProgress` to report progress yourself. If you call those two
 *   library functions directly, silence them with `console.debug = () => {}` around the call.
 *
 * Deno permissions: `--allow-net` (the Hub host), `--allow-env`, and unscoped `--allow-read
 * --allow-write` (Deno only creates symlinks with unscoped permissions; with scoped ones, files are
 * copied into the snapshot instead, doubling disk use).
 *
 * @example Download a model's weights and config (needs the network)
 * ```ts ignore
 * import { hubDownload } from "@adept/trainer";
 *
 * const snap = await hubDownload("google-t5/t5-small", {
 *   files: ["config.json", "tokenizer.json"],
 *   patterns: ["*.safetensors", "*.safetensors.index.json"],
 * });
 * console.log(snap.dir, snap.files); // .../models--google-t5--t5-small/snapshots/<sha>
 * ```
 *
 * @module
 */

import {
  datasetInfo,
  downloadFile,
  fileDownloadInfo,
  HubApiError,
  listFiles,
  modelInfo,
  pathsInfo,
} from "@huggingface/hub";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";

/** The Hub's default address. */
export const DEFAULT_ENDPOINT = "https://huggingface.co";

/** Kinds of repositories this module downloads. */
export type RepoType = "model" | "dataset";

/** What went wrong, for callers that branch on it. */
export type HubErrorKind =
  /** The repository, revision or file does not exist. */
  | "not_found"
  /** 401/403: private or gated repository, missing or rejected token. */
  | "unauthorized"
  /** The Hub could not be reached. */
  | "network"
  /** Offline mode (or a network failure) and the files are not in the cache. */
  | "offline_miss"
  /** A file, shard or revision name would resolve outside its folder. */
  | "unsafe_path"
  /** A bad argument or setting (repo id, token format, endpoint). */
  | "invalid"
  /** Anything else: unexpected HTTP status, bad response, disk error. */
  | "failed";

/**
 * The error every function of this module throws. The message says what was asked for, what
 * went wrong and how to fix it (for example: set `HF_TOKEN`, or `HF_HUB_OFFLINE=1` to use the
 * cache).
 *
 * @example Offline, a file that is not in the cache
 * ```ts
 * import { hubDownload, HubError } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const cacheDir = await Deno.makeTempDir(); // an empty HF cache
 * await assert.rejects(
 *   hubDownload("google-t5/t5-small", { files: ["config.json"], cacheDir, offline: true }),
 *   (e) => e instanceof HubError && e.kind === "offline_miss" && /HF_HUB_OFFLINE/.test(e.message),
 * );
 * await Deno.remove(cacheDir, { recursive: true });
 * ```
 */
export class HubError extends Error {
  /** The category of the failure. */
  readonly kind: HubErrorKind;
  /** The HTTP status, when the Hub answered with an error. */
  readonly status?: number;
  /** An error of `kind`; `options.status` records the HTTP status. */
  constructor(kind: HubErrorKind, message: string, options?: ErrorOptions & { status?: number }) {
    super(message, options);
    this.name = "HubError";
    this.kind = kind;
    this.status = options?.status;
  }
}

/** Progress of one file's download. */
export interface HubProgress {
  /** Repo-relative file name. */
  file: string;
  /** Bytes written so far. */
  loaded: number;
  /** Total bytes of the file. */
  total: number;
}

/** Settings shared by every call; each defaults to the matching environment variable. */
export interface HubOptions {
  /**
   * Kind of repository. A repo id written `datasets/org/name` implies `"dataset"`.
   * @default {"model"}
   */
  repoType?: RepoType;
  /**
   * Branch, tag or 40-hex commit sha.
   * @default {"main"}
   */
  revision?: string;
  /**
   * The HF hub cache folder.
   * @default {HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub}
   */
  cacheDir?: string;
  /**
   * Access token (must start with `hf_`); `false` sends none.
   * @default {HF_TOKEN, else the token file HF_TOKEN_PATH or $HF_HOME/token}
   */
  token?: string | false;
  /**
   * The Hub's base URL (a mirror, or a local server in tests).
   * @default {HF_ENDPOINT, else "https://huggingface.co"}
   */
  endpoint?: string;
  /**
   * Serve everything from the cache without any request.
   * @default {HF_HUB_OFFLINE is 1, ON, YES or TRUE}
   */
  offline?: boolean;
  /**
   * Where `HF_*` variables are read from.
   * @default {Deno.env}
   */
  env?: Readonly<Record<string, string | undefined>>;
  /**
   * The fetch used for every request (proxies, tests).
   * @default {globalThis.fetch}
   */
  fetch?: typeof fetch;
  /**
   * How many files download at once.
   * @default {4}
   */
  concurrency?: number;
  /** Called as bytes arrive (at most once per received chunk). */
  onProgress?: (progress: HubProgress) => void;
}

/**
 * Options of {@link hubDownload}: which files to fetch, plus {@link HubOptions}.
 */
export interface HubDownloadOptions extends HubOptions {
  /** Exact repo-relative file names (for example `config.json`, `sst2/train.parquet`). */
  files?: readonly string[];
  /**
   * Glob patterns over the repo's files, with Python `fnmatch` rules as `huggingface_hub`'s
   * `allow_patterns` uses them: `*` matches any characters including `/`, `?` one character,
   * `[abc]`/`[!abc]` a set; a pattern ending in `/` matches everything below that folder.
   * With neither `files` nor `patterns`, every file of the repo is fetched.
   */
  patterns?: readonly string[];
}

/**
 * Resolved settings, see {@link hubSettings}.
 */
export interface HubSettings {
  /** The cache folder (absolute). */
  cacheDir: string;
  /** The Hub's base URL, without a trailing slash. */
  endpoint: string;
  /** The access token, if any. */
  token?: string;
  /** Where the token came from (`"token option"`, `"HF_TOKEN"`, a file path), for messages. */
  tokenSource?: string;
  /** Whether no request may be made. */
  offline: boolean;
}

/** The files of one download, all in one folder. */
export interface HubSnapshot {
  /** The folder holding the files: a cache snapshot (`.../snapshots/<sha>`) or a local folder. */
  readonly dir: string;
  /** Where the files came from: a local folder, the cache only (no request), or the Hub. */
  readonly source: "local" | "cache" | "hub";
  /** The repo id (or the local folder as given). */
  readonly repo: string;
  /** The repo type. */
  readonly repoType: RepoType;
  /** The commit sha of the snapshot (undefined for local folders). */
  readonly sha?: string;
  /** Repo-relative names of the selected files, sorted. */
  readonly files: readonly string[];
  /** The files that were downloaded by this call. */
  readonly downloaded: readonly string[];
  /** Absolute path of a file in `dir`; refuses names that would leave it. */
  path(file: string): string;
}

const SHA_RE = /^[0-9a-f]{40}$/;
const TRUE_VALUES = new Set(["1", "ON", "YES", "TRUE"]);

function envReader(env: Readonly<Record<string, string | undefined>> | undefined) {
  return (name: string): string | undefined => {
    const v = env ? env[name] : Deno.env.get(name);
    return v === "" ? undefined : v;
  };
}

function expandUser(path: string, get: (n: string) => string | undefined): string {
  if (path !== "~" && !path.startsWith("~/")) return path;
  const home = get("HOME") ?? get("USERPROFILE");
  if (!home) {
    throw new HubError(
      "invalid",
      `Cannot expand "${path}": HOME is not set. Set HF_HOME or HF_HUB_CACHE, or pass cacheDir.`,
    );
  }
  return join(home, path.slice(1));
}

function cacheDirFromEnv(get: (n: string) => string | undefined): string {
  const explicit = get("HF_HUB_CACHE") ?? get("HUGGINGFACE_HUB_CACHE");
  if (explicit) return expandUser(explicit, get);
  return join(hfHome(get), "hub");
}

function hfHome(get: (n: string) => string | undefined): string {
  const home = get("HF_HOME");
  if (home) return expandUser(home, get);
  const xdg = get("XDG_CACHE_HOME");
  return join(xdg ? expandUser(xdg, get) : expandUser("~/.cache", get), "huggingface");
}

/**
 * Resolves the cache folder, endpoint, token and offline flag from options and the environment,
 * with the precedence of Python `huggingface_hub`. Reads the token file if no token is set.
 *
 * @example
 * ```ts
 * import { hubSettings } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const s = hubSettings({ env: { HF_HOME: "/data/hf", HF_HUB_OFFLINE: "1" } });
 * assert.equal(s.cacheDir, "/data/hf/hub");
 * assert.equal(s.offline, true);
 * const env = { HF_HUB_CACHE: "/c", HF_ENDPOINT: "https://hf-mirror.com/" };
 * const mirror = hubSettings({ env });
 * assert.equal(mirror.endpoint, "https://hf-mirror.com"); // trailing slash dropped
 * ```
 */
export function hubSettings(options: HubOptions = {}): HubSettings {
  const get = envReader(options.env);
  const cacheDir = resolve(
    options.cacheDir !== undefined ? expandUser(options.cacheDir, get) : cacheDirFromEnv(get),
  );
  const rawEndpoint = options.endpoint ?? get("HF_ENDPOINT") ?? DEFAULT_ENDPOINT;
  const endpoint = rawEndpoint.replace(/\/+$/, "");
  let url: URL | undefined;
  try {
    url = new URL(endpoint);
  } catch { /* reported below */ }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw new HubError(
      "invalid",
      `The Hub endpoint "${rawEndpoint}" (${
        options.endpoint !== undefined ? "endpoint option" : "HF_ENDPOINT"
      }) is not an http(s) URL such as ${DEFAULT_ENDPOINT}.`,
    );
  }
  const offline = options.offline ??
    TRUE_VALUES.has((get("HF_HUB_OFFLINE") ?? "").trim().toUpperCase());
  let token: string | undefined, tokenSource: string | undefined;
  if (options.token === false) {
    // explicitly none
  } else if (options.token !== undefined) {
    [token, tokenSource] = [options.token, "the token option"];
  } else if (get("HF_TOKEN") ?? get("HUGGING_FACE_HUB_TOKEN")) {
    tokenSource = get("HF_TOKEN") ? "HF_TOKEN" : "HUGGING_FACE_HUB_TOKEN";
    token = get(tokenSource);
  } else {
    const file = get("HF_TOKEN_PATH") ? expandUser(get("HF_TOKEN_PATH")!, get) : tokenFile(get);
    if (file) {
      try {
        const t = Deno.readTextFileSync(file).trim();
        if (t) [token, tokenSource] = [t, file];
      } catch {
        // no token file (or no permission to read it): anonymous access
      }
    }
  }
  if (token !== undefined) {
    token = token.trim();
    if (!token.startsWith("hf_")) {
      throw new HubError(
        "invalid",
        `The access token from ${tokenSource} does not start with "hf_" (it starts with "${
          token.slice(0, 3)
        }…", ${token.length} characters). Hub tokens look like hf_xxxxxxxx; create one at ` +
          `${DEFAULT_ENDPOINT}/settings/tokens, or unset it for anonymous access.`,
      );
    }
  }
  return { cacheDir, endpoint, token, tokenSource, offline };
}

function tokenFile(get: (n: string) => string | undefined): string | undefined {
  try {
    return join(hfHome(get), "token");
  } catch {
    return undefined;
  }
}

/**
 * Refuses names that are absolute, contain `..`/empty/`.` segments, backslashes, drive letters
 * or NUL, then joins them onto `root` (and checks the result is inside it).
 *
 * @example
 * ```ts
 * import { HubError, safeJoin } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(safeJoin("/cache/snap", "sst2/train.parquet"), "/cache/snap/sst2/train.parquet");
 * assert.throws(() => safeJoin("/cache/snap", "../../etc/passwd"), HubError);
 * ```
 */
export function safeJoin(root: string, name: string, what = "file name"): string {
  const bad = typeof name !== "string" || name === "" || name.includes("\0") ||
    name.includes("\\") || isAbsolute(name) || /^[a-zA-Z]:/.test(name) ||
    name.split("/").some((s) => s === ".." || s === "." || s === "");
  const out = bad ? "" : join(root, name);
  const rel = relative(root, out);
  if (bad || rel === "" || rel.startsWith("..") || isAbsolute(rel)) {
    throw new HubError(
      "unsafe_path",
      `Refusing ${what} ${JSON.stringify(name)}: it is not a plain relative path inside ${root} ` +
        "(absolute paths, '..', '.', empty segments and backslashes are not allowed).",
    );
  }
  return out;
}

/**
 * Whether a repo-relative path matches a pattern, with Python `fnmatch` semantics (`*` also
 * matches `/`); a pattern ending in `/` matches everything below that folder.
 *
 * @example
 * ```ts
 * import { matchesPattern } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(matchesPattern("sst2/train-00000-of-00001.parquet", "sst2/*.parquet"), true);
 * assert.equal(matchesPattern("a/b/c.parquet", "*.parquet"), true); // `*` also matches `/`
 * assert.equal(matchesPattern("model.safetensors", "*.bin"), false);
 * ```
 */
export function matchesPattern(path: string, pattern: string): boolean {
  if (pattern.endsWith("/")) pattern += "*";
  let re = "^";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "*") re += ".*";
    else if (c === "?") re += ".";
    else if (c === "[") {
      const close = pattern.indexOf("]", i + 2);
      if (close < 0) re += "\\[";
      else {
        let body = pattern.slice(i + 1, close);
        const negate = body.startsWith("!");
        if (negate) body = body.slice(1);
        re += `[${negate ? "^" : ""}${body.replace(/[\\\]^]/g, "\\$&")}]`;
        i = close;
      }
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(re + "$", "s").test(path);
}

/** A parsed, validated repo id. */
interface RepoRef {
  id: string;
  type: RepoType;
}

const PART_RE = /^[A-Za-z0-9_](?:[\w.-]*[A-Za-z0-9_])?$/;

function parseRepoId(input: string, type: RepoType | undefined): RepoRef {
  let id = input;
  let t = type;
  if (id.startsWith("datasets/")) {
    if (t === "model") {
      throw new HubError("invalid", `"${input}" names a dataset but repoType is "model".`);
    }
    id = id.slice("datasets/".length);
    t = "dataset";
  }
  const parts = id.split("/");
  const ok = parts.length <= 2 && parts.every((p) => PART_RE.test(p)) &&
    parts[parts.length - 1].length <= 96 && !id.includes("--") && !id.includes("..");
  if (!ok) {
    throw new HubError(
      "invalid",
      `"${input}" is neither an existing local folder nor a valid Hub repo id ("name" or ` +
        `"namespace/name": letters, digits, "-", "_", "."; no "--" or "..").`,
    );
  }
  return { id, type: t ?? "model" };
}

/**
 * The cache folder of a repo: `<cacheDir>/models--org--name` (or `datasets--…`).
 *
 * @example
 * ```ts
 * import { repoCacheDir } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(repoCacheDir("/c", "nyu-mll/glue", "dataset"), "/c/datasets--nyu-mll--glue");
 * assert.equal(repoCacheDir("/c", "google-t5/t5-small"), "/c/models--google-t5--t5-small");
 * ```
 */
export function repoCacheDir(cacheDir: string, repo: string, repoType: RepoType = "model"): string {
  const r = parseRepoId(repo, repoType);
  return join(cacheDir, `${r.type}s--${r.id.split("/").join("--")}`);
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return null;
    throw e;
  }
}

/** Repo-relative names of every file below `root` (following symlinked files, not folders). */
async function walkFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, prefix: string) => {
    for await (const e of Deno.readDir(dir)) {
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      if (e.isDirectory) await walk(join(dir, e.name), rel);
      else if (e.isFile) out.push(rel);
      else if (e.isSymlink && (await statOrNull(join(dir, e.name)))?.isFile) out.push(rel);
    }
  };
  await walk(root, "");
  return out.sort();
}

function makeSnapshot(
  fields: Omit<HubSnapshot, "path" | "files" | "downloaded"> & {
    files: string[];
    downloaded?: string[];
  },
): HubSnapshot {
  const files = Object.freeze([...new Set(fields.files)].sort());
  const downloaded = Object.freeze([...(fields.downloaded ?? [])].sort());
  const dir = fields.dir;
  return Object.freeze({
    ...fields,
    files,
    downloaded,
    path: (file: string) => safeJoin(dir, file),
  });
}

function selectLocal(
  all: string[],
  files: readonly string[] | undefined,
  patterns: readonly string[] | undefined,
): { selected: string[]; missing: string[] } {
  const have = new Set(all);
  const missing = (files ?? []).filter((f) => !have.has(f));
  let selected: string[];
  if (!files?.length && !patterns?.length) selected = all;
  else {
    selected = (files ?? []).filter((f) => have.has(f));
    if (patterns?.length) {
      selected.push(...all.filter((f) => patterns.some((p) => matchesPattern(f, p))));
    }
  }
  return { selected, missing };
}

function describeRequest(files?: readonly string[], patterns?: readonly string[]): string {
  const parts = [];
  if (files?.length) parts.push(`files ${files.map((f) => JSON.stringify(f)).join(", ")}`);
  if (patterns?.length) {
    parts.push(`patterns ${patterns.map((p) => JSON.stringify(p)).join(", ")}`);
  }
  return parts.length ? parts.join(" and ") : "all files";
}

async function fromLocalFolder(
  input: string,
  dir: string,
  options: HubDownloadOptions,
): Promise<HubSnapshot> {
  for (const f of options.files ?? []) safeJoin(dir, f);
  const { selected, missing } = selectLocal(await walkFiles(dir), options.files, options.patterns);
  if (missing.length) {
    throw new HubError(
      "not_found",
      `The local folder ${dir} has no ${missing.map((f) => JSON.stringify(f)).join(", ")}.`,
    );
  }
  if (options.patterns?.length && selected.length === 0) {
    throw new HubError(
      "not_found",
      `No file in the local folder ${dir} matches ${describeRequest(undefined, options.patterns)}.`,
    );
  }
  return makeSnapshot({
    dir,
    source: "local",
    repo: input,
    repoType: options.repoType ?? "model",
    files: selected,
  });
}

/** Serves a request from the cache alone; `why` explains why the Hub is not asked. */
async function fromCache(
  repo: RepoRef,
  revision: string,
  settings: HubSettings,
  options: HubDownloadOptions,
  why: string,
  cause?: unknown,
): Promise<HubSnapshot> {
  const repoDir = repoCacheDir(settings.cacheDir, repo.id, repo.type);
  const label = `${repo.type} ${repo.id} at revision "${revision}"`;
  const fix =
    `Run once with network access (without HF_HUB_OFFLINE) to download it into ${settings.cacheDir}.`;
  let sha = revision;
  if (!SHA_RE.test(revision)) {
    const refPath = safeJoin(join(repoDir, "refs"), revision, "revision name");
    let ref: string;
    try {
      ref = (await Deno.readTextFile(refPath)).trim();
    } catch {
      throw new HubError(
        "offline_miss",
        `${why}, and ${label} is not in the cache (no ${refPath}). ${fix}`,
        { cause },
      );
    }
    if (!SHA_RE.test(ref)) {
      throw new HubError(
        "offline_miss",
        `${why}, and the cached ref ${refPath} does not hold a commit sha (${
          JSON.stringify(ref.slice(0, 60))
        }). Delete it and run once with network access.`,
        { cause },
      );
    }
    sha = ref;
  }
  const dir = join(repoDir, "snapshots", sha);
  for (const f of options.files ?? []) safeJoin(dir, f);
  const all = (await statOrNull(dir))?.isDirectory ? await walkFiles(dir) : [];
  const { selected, missing } = selectLocal(all, options.files, options.patterns);
  if (missing.length || selected.length === 0) {
    const what = missing.length
      ? missing.map((f) => JSON.stringify(f)).join(", ")
      : `any file matching ${describeRequest(undefined, options.patterns)}`;
    throw new HubError(
      "offline_miss",
      `${why}, and ${what} of ${label} (commit ${sha}) is not in the cache ${dir}. ${fix}`,
      { cause },
    );
  }
  return makeSnapshot({
    dir,
    source: "cache",
    repo: repo.id,
    repoType: repo.type,
    sha,
    files: selected,
  });
}

/** Context for error messages. */
interface Ctx {
  repo: RepoRef;
  revision: string;
  settings: HubSettings;
}

function repoLabel(ctx: Ctx): string {
  return `${ctx.repo.type} repository "${ctx.repo.id}"`;
}

/** Turns anything thrown while talking to the Hub into a {@link HubError}. */
function explain(e: unknown, ctx: Ctx, doing: string): HubError {
  if (e instanceof HubError) return e;
  const { settings } = ctx;
  if (e instanceof HubApiError) {
    const status = e.statusCode;
    const detail = e.message.replace(/\. URL: .*$/s, "");
    const tokenNote = settings.token
      ? `A token from ${settings.tokenSource} was sent; check that it is valid and its account ` +
        "has access to this repository."
      : "No token was sent: set HF_TOKEN to a token with read access " +
        `(${DEFAULT_ENDPOINT}/settings/tokens), or pass the token option.`;
    if (status === 404) {
      const hint = ctx.repo.type === "model"
        ? ' If it is a dataset, pass repoType: "dataset" (or write "datasets/<id>").'
        : "";
      return new HubError(
        "not_found",
        `${repoLabel(ctx)} (revision "${ctx.revision}") was not found on ${settings.endpoint} ` +
          `while ${doing} (HTTP 404: ${detail}). Check the repo id, the revision and the file ` +
          `names.${hint}`,
        { cause: e, status },
      );
    }
    if (status === 401) {
      return new HubError(
        "unauthorized",
        `${settings.endpoint} refused access to ${repoLabel(ctx)} while ${doing} (HTTP 401: ` +
          `${detail}). It may be private or gated, or may not exist. ${tokenNote}`,
        { cause: e, status },
      );
    }
    if (status === 403) {
      return new HubError(
        "unauthorized",
        `${settings.endpoint} denied access to ${repoLabel(ctx)} while ${doing} (HTTP 403: ` +
          `${detail}). If it is gated, accept its conditions at ${settings.endpoint}/${
            ctx.repo.type === "dataset" ? "datasets/" : ""
          }${ctx.repo.id} with an account whose token you use. ${tokenNote}`,
        { cause: e, status },
      );
    }
    return new HubError(
      "failed",
      `${settings.endpoint} answered HTTP ${status} while ${doing} for ${
        repoLabel(ctx)
      }: ${detail}`,
      { cause: e, status },
    );
  }
  const msg = e instanceof Error ? e.message : String(e);
  return new HubError("failed", `${doing} for ${repoLabel(ctx)} failed: ${msg}`, { cause: e });
}

/**
 * Wraps fetch: network failures become {@link HubError} "network" naming the cache and
 * `HF_HUB_OFFLINE`; bodies of `Range: bytes=0-0` probes (which the library never reads) are
 * consumed so no connection or resource leaks.
 */
function wrapFetch(base: typeof fetch, settings: HubSettings): typeof fetch {
  return async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    let resp: Response;
    try {
      resp = await base(input, init);
    } catch (e) {
      const url = input instanceof Request ? input.url : String(input);
      throw new HubError(
        "network",
        `Could not reach the Hub at ${settings.endpoint} (${
          e instanceof Error ? e.message : String(e)
        }; request ${url}). To use files already in the cache ${settings.cacheDir}, set ` +
          "HF_HUB_OFFLINE=1 (or pass offline: true); set HF_ENDPOINT if you use a mirror.",
        { cause: e },
      );
    }
    const range = new Headers(init?.headers ?? (input instanceof Request ? input.headers : {}))
      .get("range");
    if (range !== "bytes=0-0" || resp.body === null) return resp;
    const length = Number(resp.headers.get("content-length") ?? NaN);
    const small = resp.status === 206 || !resp.ok || (Number.isFinite(length) && length <= 1 << 16);
    let body: ArrayBuffer | null = null;
    if (small) body = await resp.arrayBuffer();
    else await resp.body.cancel();
    const copy = new Response(body, {
      status: resp.status,
      statusText: resp.statusText,
      headers: resp.headers,
    });
    Object.defineProperty(copy, "url", { value: resp.url });
    return copy;
  };
}

/** A listing entry we may download. */
interface RemoteFile {
  path: string;
  size: number;
  etag: string;
}

function etagOf(
  e: { path: string; oid?: string; lfs?: { oid: string }; xetHash?: string },
  ctx: Ctx,
): string {
  const etag = e.lfs?.oid ?? e.xetHash ?? e.oid;
  if (!etag || !/^[A-Za-z0-9_-]{1,128}$/.test(etag)) {
    throw new HubError(
      "failed",
      `The Hub listed ${JSON.stringify(e.path)} of ${repoLabel(ctx)} with an unusable ` +
        `blob id ${JSON.stringify(etag)}.`,
    );
  }
  return etag;
}

async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (next < items.length && failed === undefined) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker));
  if (failed !== undefined) throw failed;
}

async function writeTextAtomic(path: string, text: string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path);
}

/** Points `pointer` at `blob` with a relative symlink, or copies it where symlinks fail. */
async function linkBlob(blob: string, pointer: string): Promise<void> {
  await Deno.mkdir(dirname(pointer), { recursive: true });
  await Deno.remove(pointer).catch(() => {});
  try {
    await Deno.symlink(relative(dirname(pointer), blob), pointer);
  } catch (e) {
    // Another process linked it first: fine.
    if (e instanceof Deno.errors.AlreadyExists && (await statOrNull(pointer))?.isFile) return;
    const tmp = `${pointer}.${crypto.randomUUID().slice(0, 8)}.incomplete`;
    await Deno.copyFile(blob, tmp);
    await Deno.rename(tmp, pointer);
  }
}

async function downloadOne(
  file: RemoteFile,
  repoDir: string,
  snapshotDir: string,
  sha: string,
  ctx: Ctx,
  fetcher: typeof fetch,
  onProgress: HubOptions["onProgress"],
): Promise<void> {
  const pointer = safeJoin(snapshotDir, file.path);
  const blob = join(repoDir, "blobs", file.etag);
  const have = await statOrNull(blob);
  if (have?.isFile && have.size === file.size) {
    await linkBlob(blob, pointer);
    return;
  }
  await Deno.mkdir(dirname(blob), { recursive: true });
  const doing = `downloading ${JSON.stringify(file.path)}`;
  const tmp = `${blob}.${crypto.randomUUID().slice(0, 8)}.incomplete`;
  let out: Deno.FsFile | undefined;
  try {
    out = await Deno.open(tmp, { write: true, createNew: true });
    const stream = await openDownload(file, sha, ctx, fetcher, doing);
    let loaded = 0;
    const reader = stream.getReader();
    try {
      while (true) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (e) {
          throw e instanceof HubError ? e : new HubError(
            "network",
            `The download broke off while ${doing} from ${ctx.settings.endpoint} (${
              e instanceof Error ? e.message : String(e)
            }). Try again; to use files already in the cache ${ctx.settings.cacheDir}, set ` +
              "HF_HUB_OFFLINE=1.",
            { cause: e },
          );
        }
        if (chunk.done) break;
        let done = 0;
        while (done < chunk.value.length) done += await out.write(chunk.value.subarray(done));
        loaded += chunk.value.length;
        onProgress?.({ file: file.path, loaded, total: file.size });
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
    out.close();
    out = undefined;
    if (loaded !== file.size) {
      throw new HubError(
        "failed",
        `Downloading ${JSON.stringify(file.path)} of ${repoLabel(ctx)} gave ${loaded} bytes, ` +
          `but the Hub lists ${file.size}; the transfer was cut short. Try again.`,
      );
    }
    await Deno.rename(tmp, blob);
  } catch (e) {
    if (out) {
      try {
        out.close();
      } catch { /* closed */ }
    }
    await Deno.remove(tmp).catch(() => {});
    throw e instanceof HubError ? e : explain(e, ctx, doing);
  }
  await linkBlob(blob, pointer);
}

/**
 * Starts the body download of one file. Plain and LFS files are fetched here (so HTTP errors keep
 * their status); Xet-backed files go through the library's Xet reconstruction.
 */
async function openDownload(
  file: RemoteFile,
  sha: string,
  ctx: Ctx,
  fetcher: typeof fetch,
  doing: string,
): Promise<ReadableStream<Uint8Array>> {
  const { settings } = ctx;
  const params = {
    repo: { type: ctx.repo.type, name: ctx.repo.id },
    path: file.path,
    revision: sha,
    hubUrl: settings.endpoint,
    fetch: fetcher,
    accessToken: settings.token,
  };
  try {
    const info = await fileDownloadInfo(params);
    if (!info) {
      throw new HubError(
        "not_found",
        `${JSON.stringify(file.path)} is not in ${repoLabel(ctx)} at commit ${sha} ` +
          `(${settings.endpoint}).`,
      );
    }
    if (info.xet) {
      const blob = await downloadFile({ ...params, downloadInfo: info });
      if (!blob) throw new HubError("not_found", `${JSON.stringify(file.path)} vanished.`);
      return blob.stream() as ReadableStream<Uint8Array>;
    }
    const resp = await fetcher(info.url, {
      headers: settings.token ? { Authorization: `Bearer ${settings.token}` } : {},
    });
    if (!resp.ok || !resp.body) {
      let message = await resp.text().catch(() => "");
      try {
        const j = JSON.parse(message);
        message = j.error ?? j.message ?? message;
      } catch { /* not JSON */ }
      throw new HubApiError(resp.url, resp.status, undefined, message || resp.statusText);
    }
    return resp.body;
  } catch (e) {
    throw explain(e, ctx, doing);
  }
}

/**
 * Fetches files of a Hub repo into the HF cache (or finds them in a local folder) and returns
 * the folder that holds them.
 *
 * - A `repoOrPath` that exists as a folder is used as is: no request, no cache.
 * - Otherwise it is a repo id. The revision is resolved to a commit sha (one request; none if it
 *   already is a sha) and written to `refs/<revision>`; files missing from
 *   `snapshots/<sha>/` are downloaded at that sha. Files already there cost no request, so a
 *   second call makes exactly one (the revision) or, with `patterns`, two (plus the listing).
 * - Offline (`HF_HUB_OFFLINE=1` or `offline: true`) makes no request at all: it reads
 *   `refs/<revision>` and the snapshot, and throws a {@link HubError} "offline_miss" naming
 *   what is missing. When the Hub cannot be reached, the cache is used the same way if it holds
 *   everything; otherwise the error names the network failure, the cache and `HF_HUB_OFFLINE`.
 *
 * @example (needs the network, or the files in the cache)
 * ```ts ignore
 * import { hubDownload } from "@adept/trainer";
 *
 * const glue = await hubDownload("nyu-mll/glue", {
 *   repoType: "dataset",
 *   patterns: ["sst2/*.parquet"],
 * });
 * for (const f of glue.files) console.log(glue.path(f));
 * ```
 */
export async function hubDownload(
  repoOrPath: string,
  options: HubDownloadOptions = {},
): Promise<HubSnapshot> {
  // A local folder needs no settings: a bad token or endpoint must not stop it.
  const localPath = expandUser(repoOrPath, envReader(options.env));
  const local = await statOrNull(localPath);
  if (local) {
    if (!local.isDirectory) {
      throw new HubError(
        "invalid",
        `${repoOrPath} is a file; pass the folder that holds it, or a Hub repo id.`,
      );
    }
    return await fromLocalFolder(repoOrPath, resolve(localPath), options);
  }
  const settings = hubSettings(options);
  if (/^(\.|~|\/)/.test(repoOrPath) || repoOrPath.includes("\\")) {
    throw new HubError("not_found", `The local folder ${repoOrPath} does not exist.`);
  }
  const repo = parseRepoId(repoOrPath, options.repoType);
  const revision = options.revision ?? "main";
  const ctx: Ctx = { repo, revision, settings };
  const repoDir = repoCacheDir(settings.cacheDir, repo.id, repo.type);
  safeJoin(join(repoDir, "refs"), revision, "revision name");
  for (const f of options.files ?? []) safeJoin(repoDir, f);

  if (settings.offline) {
    return await fromCache(
      repo,
      revision,
      settings,
      options,
      "Offline mode is on (HF_HUB_OFFLINE or the offline option)",
    );
  }

  const fetcher = wrapFetch(options.fetch ?? fetch, settings);
  const common = {
    hubUrl: settings.endpoint,
    fetch: fetcher,
    accessToken: settings.token,
  };
  let sha: string;
  if (SHA_RE.test(revision)) sha = revision;
  else {
    let info: { sha?: unknown };
    try {
      info = repo.type === "dataset"
        ? await datasetInfo({ ...common, name: repo.id, revision, additionalFields: ["sha"] })
        : await modelInfo({ ...common, name: repo.id, revision, additionalFields: ["sha"] });
    } catch (e) {
      if (e instanceof HubError && e.kind === "network") {
        try {
          return await fromCache(repo, revision, settings, options, e.message, e);
        } catch {
          throw e;
        }
      }
      throw explain(e, ctx, `resolving revision "${revision}"`);
    }
    if (typeof info.sha !== "string" || !SHA_RE.test(info.sha)) {
      throw new HubError(
        "failed",
        `${settings.endpoint} returned no valid commit sha for ${repoLabel(ctx)} at revision ` +
          `"${revision}" (got ${JSON.stringify(info.sha)}).`,
      );
    }
    sha = info.sha;
    await writeTextAtomic(safeJoin(join(repoDir, "refs"), revision, "revision name"), sha);
  }
  const snapshotDir = join(repoDir, "snapshots", sha);

  // Decide which files to fetch.
  const explicit = [...new Set(options.files ?? [])];
  const patterns = options.patterns ?? [];
  let wanted: RemoteFile[] = [];
  let selected: string[];
  if (patterns.length === 0 && explicit.length > 0) {
    const missing: string[] = [];
    for (const f of explicit) {
      if (!(await statOrNull(safeJoin(snapshotDir, f)))?.isFile) missing.push(f);
    }
    if (missing.length) {
      let infos: {
        path: string;
        type: string;
        size: number;
        oid?: string;
        lfs?: { oid: string; size: number };
        xetHash?: string;
      }[];
      try {
        infos = await pathsInfo({
          ...common,
          repo: { type: repo.type, name: repo.id },
          paths: missing,
          revision: sha,
        });
      } catch (e) {
        throw explain(e, ctx, `looking up ${describeRequest(missing)}`);
      }
      const byPath = new Map(infos.map((i) => [i.path, i]));
      for (const f of missing) {
        const i = byPath.get(f);
        if (!i || i.type !== "file") {
          throw new HubError(
            "not_found",
            `${JSON.stringify(f)} is not ${i ? "a file" : "present"} in ${repoLabel(ctx)} at ` +
              `revision "${revision}" (commit ${sha}) on ${settings.endpoint}.`,
          );
        }
        wanted.push({ path: f, size: i.lfs?.size ?? i.size, etag: etagOf(i, ctx) });
      }
    }
    selected = explicit;
  } else {
    const listed: RemoteFile[] = [];
    try {
      for await (
        const e of listFiles({
          ...common,
          repo: { type: repo.type, name: repo.id },
          recursive: true,
          revision: sha,
        })
      ) {
        if (e.type !== "file") continue;
        safeJoin(snapshotDir, e.path, "file name from the Hub listing");
        listed.push({ path: e.path, size: e.lfs?.size ?? e.size, etag: etagOf(e, ctx) });
      }
    } catch (e) {
      throw explain(e, ctx, "listing files");
    }
    const names = new Set(listed.map((l) => l.path));
    const absent = explicit.filter((f) => !names.has(f));
    if (absent.length) {
      throw new HubError(
        "not_found",
        `${absent.map((f) => JSON.stringify(f)).join(", ")} ${absent.length > 1 ? "are" : "is"} ` +
          `not in ${repoLabel(ctx)} at revision "${revision}" (commit ${sha}).`,
      );
    }
    const chosen = listed.filter((l) =>
      explicit.includes(l.path) || patterns.length === 0 && explicit.length === 0 ||
      patterns.some((p) => matchesPattern(l.path, p))
    );
    if (chosen.length === 0) {
      const some = listed.slice(0, 20).map((l) => l.path).join(", ");
      throw new HubError(
        "not_found",
        `No file of ${repoLabel(ctx)} at commit ${sha} matches ${
          describeRequest(undefined, patterns)
        }. Its files: ${some || "(none)"}${listed.length > 20 ? ", …" : ""}.`,
      );
    }
    selected = chosen.map((c) => c.path);
    for (const c of chosen) {
      if (!(await statOrNull(safeJoin(snapshotDir, c.path)))?.isFile) wanted.push(c);
    }
  }
  wanted = wanted.sort((a, b) => a.path < b.path ? -1 : 1);
  await pool(
    wanted,
    options.concurrency ?? 4,
    (f) => downloadOne(f, repoDir, snapshotDir, sha, ctx, fetcher, options.onProgress),
  );
  return makeSnapshot({
    dir: snapshotDir,
    source: "hub",
    repo: repo.id,
    repoType: repo.type,
    sha,
    files: selected,
    downloaded: wanted.map((w) => w.path),
  });
}

/**
 * Fetches one file (see {@link hubDownload}) and returns its absolute path.
 *
 * @example (needs the network, or the file in the cache)
 * ```ts ignore
 * import { hubFile } from "@adept/trainer";
 * const config = JSON.parse(await Deno.readTextFile(await hubFile("google-t5/t5-small", "config.json")));
 * ```
 */
export async function hubFile(
  repoOrPath: string,
  file: string,
  options: HubOptions = {},
): Promise<string> {
  const snap = await hubDownload(repoOrPath, { ...options, files: [file] });
  return snap.path(file);
}
