/**
 * A local stand-in for the Hugging Face Hub, answering the requests `@huggingface/hub` makes:
 *
 * | request | answer |
 * |---|---|
 * | `GET /api/{models,datasets}/{repo}/revision/{rev}` | info JSON with `sha` |
 * | `GET /api/{type}s/{repo}/tree/{rev}[/{path}]?recursive=&cursor=` | listing, paginated by `Link: <…>; rel="next"` |
 * | `POST /api/{type}s/{repo}/paths-info/{rev}` | `[{path, type, oid, size, lfs?, lastCommit?}]` |
 * | `GET/HEAD /[datasets/]{repo}/resolve/{rev}/{path}` | the file; `Range` gives 206 + `Content-Range`; LFS files redirect to `/cdn/<sha256>` with `X-Linked-ETag` |
 * | `HEAD /[datasets/]{repo}/raw/{rev}/{path}` | 200 or 404 |
 *
 * Errors carry `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`, `GatedRepo`)
 * and a JSON `{error}` body like the Hub. Every request is recorded.
 *
 * @module
 */

import { createHash } from "node:crypto";

/**
 * A fake repository served from memory.
 *
 * @example
 * ```ts ignore
 * const repo: MockRepo = { id: "org/tiny", files: { "config.json": "{}" }, token: "hf_x" };
 * ```
 */
export interface MockRepo {
  /** `name` or `namespace/name`. */
  id: string;
  /** @default {"model"} */
  type?: "model" | "dataset";
  /** HEAD commit of `main`. @default {"0123456789abcdef0123456789abcdef01234567"} */
  sha?: string;
  /** Other branches or tags → sha. */
  refs?: Record<string, string>;
  /** Files by repo-relative path. */
  files: Record<string, string | Uint8Array>;
  /** Which files are LFS. @default {.safetensors, .parquet, .bin, .arrow files} */
  lfs?: (path: string) => boolean;
  /** If set, every request must carry `Authorization: Bearer <token>`. */
  token?: string;
  /** With `token`: answer 403 `GatedRepo` instead of 401 when the token is missing or wrong. */
  gated?: boolean;
  /** `lastCommit.id` reported by paths-info (the Hub's last commit touching the file). */
  lastCommit?: string;
}

/**
 * A request the mock received.
 *
 * @example
 * ```ts ignore
 * assert.ok(hub.requests.every((r: RecordedRequest) => r.headers.authorization === "Bearer hf_x"));
 * ```
 */
export interface RecordedRequest {
  method: string;
  /** Path and query. */
  url: string;
  /** Lower-cased header names. */
  headers: Record<string, string>;
}

/**
 * Options of {@link startMockHub}.
 *
 * @example
 * ```ts ignore
 * startMockHub({ repos: [repo], pageSize: 2 }); // listings come in pages of 2
 * ```
 */
export interface MockHubOptions {
  repos: MockRepo[];
  /** Listing page size. @default {1000} */
  pageSize?: number;
}

/**
 * A running mock hub; close it (or `await using`) at the end of the test.
 *
 * @example
 * ```ts ignore
 * await using hub = startMockHub({ repos: [repo] });
 * hub.clear();
 * ```
 */
export interface MockHub extends AsyncDisposable {
  /** Base URL, `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Every request received, in order. */
  readonly requests: RecordedRequest[];
  /** Forgets the recorded requests. */
  clear(): void;
  close(): Promise<void>;
}

/**
 * Default sha of `main`.
 *
 * @example
 * ```ts ignore
 * assert.equal(snapshot.sha, MOCK_SHA);
 * ```
 */
export const MOCK_SHA = "0123456789abcdef0123456789abcdef01234567";

const enc = new TextEncoder();

function hex(algo: string, ...parts: Uint8Array[]): string {
  const h = createHash(algo);
  for (const p of parts) h.update(p);
  return h.digest("hex");
}

/**
 * git blob id of some content (the Hub's `oid` and ETag for non-LFS files).
 *
 * @example
 * ```ts ignore
 * gitOid(new TextEncoder().encode("hello")); // "b6fc4c620b67d95f953a5c1c1230aaab5db5a1b0"
 * ```
 */
export function gitOid(bytes: Uint8Array): string {
  return hex("sha1", enc.encode(`blob ${bytes.length}\0`), bytes);
}

/**
 * sha256 of some content (the LFS oid, and the blob name in the cache).
 *
 * @example
 * ```ts ignore
 * sha256(new Uint8Array()); // "e3b0c442..."
 * ```
 */
export function sha256(bytes: Uint8Array): string {
  return hex("sha256", bytes);
}

interface FileEntry {
  path: string;
  bytes: Uint8Array;
  oid: string;
  lfs?: { oid: string; size: number; pointerSize: number };
}

function json(body: unknown, init: ResponseInit = {}): Response {
  const headers = new Headers(init.headers);
  headers.set("content-type", "application/json; charset=utf-8");
  return new Response(JSON.stringify(body), { ...init, headers });
}

function hubError(status: number, code: string | undefined, error: string): Response {
  return json({ error }, { status, headers: code ? { "x-error-code": code } : {} });
}

function parseRange(h: string | null, size: number): [number, number] | "bad" | null {
  if (!h) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(h.trim());
  if (!m || (m[1] === "" && m[2] === "")) return "bad";
  let start: number, end: number;
  if (m[1] === "") {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  return start > end || start >= size ? "bad" : [start, end];
}

/** The "CDN" is this server under another host name (`localhost` instead of `127.0.0.1`). */
function cdnOrigin(url: URL): string {
  return `${url.protocol}//localhost:${url.port}`;
}

/** Serves `bytes` honouring Range (206 + Content-Range) and HEAD. */
function serveBytes(req: Request, bytes: Uint8Array, headers: Headers): Response {
  headers.set("accept-ranges", "bytes");
  headers.set("content-type", "application/octet-stream");
  const range = parseRange(req.headers.get("range"), bytes.length);
  if (range === "bad") {
    headers.set("content-range", `bytes */${bytes.length}`);
    return new Response(null, { status: 416, headers });
  }
  const body = bytes.slice(range ? range[0] : 0, range ? range[1] + 1 : bytes.length);
  if (range) headers.set("content-range", `bytes ${range[0]}-${range[1]}/${bytes.length}`);
  headers.set("content-length", String(body.length));
  return new Response(req.method === "HEAD" ? null : body, {
    status: range ? 206 : 200,
    headers,
  });
}

/**
 * Starts the mock on 127.0.0.1 with a free port.
 *
 * @example
 * ```ts ignore
 * await using hub = startMockHub({ repos: [{ id: "org/tiny", files: { "config.json": "{}" } }] });
 * // ... hubDownload("org/tiny", { endpoint: hub.url, cacheDir })
 * assert.equal(hub.requests.length, 4);
 * ```
 */
export function startMockHub(options: MockHubOptions): MockHub {
  const pageSize = options.pageSize ?? 1000;
  const repos = options.repos.map((r) => {
    const isLfs = r.lfs ?? ((p: string) => /\.(safetensors|parquet|bin|arrow)$/.test(p));
    const files = new Map<string, FileEntry>();
    for (const [path, content] of Object.entries(r.files)) {
      const bytes = typeof content === "string" ? enc.encode(content) : content;
      if (isLfs(path)) {
        const oid = sha256(bytes);
        const pointer = enc.encode(
          `version https://git-lfs.github.com/spec/v1\noid sha256:${oid}\nsize ${bytes.length}\n`,
        );
        files.set(path, {
          path,
          bytes,
          oid: gitOid(pointer),
          lfs: { oid, size: bytes.length, pointerSize: pointer.length },
        });
      } else files.set(path, { path, bytes, oid: gitOid(bytes) });
    }
    const type = r.type ?? "model";
    const sha = r.sha ?? MOCK_SHA;
    const refs: Record<string, string> = { main: sha, HEAD: sha, ...r.refs };
    return { ...r, type, sha, files, refs };
  });
  const blobsBySha = new Map<string, Uint8Array>();
  for (const r of repos) {
    for (const f of r.files.values()) if (f.lfs) blobsBySha.set(f.lfs.oid, f.bytes);
  }
  const requests: RecordedRequest[] = [];

  const entryJson = (f: FileEntry) => ({
    type: "file",
    oid: f.oid,
    size: f.bytes.length,
    path: f.path,
    ...(f.lfs ? { lfs: f.lfs } : {}),
  });

  const dirsOf = (paths: Iterable<string>) => {
    const dirs = new Set<string>();
    for (const p of paths) {
      const parts = p.split("/");
      for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
    }
    return dirs;
  };

  const handler = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const headers: Record<string, string> = {};
    req.headers.forEach((v, k) => headers[k] = v);
    requests.push({ method: req.method, url: url.pathname + url.search, headers });
    const segs = url.pathname.split("/").slice(1).map(decodeURIComponent);

    if (segs[0] === "cdn" && segs.length === 2) {
      const bytes = blobsBySha.get(segs[1]);
      if (!bytes) return hubError(404, undefined, "no such object");
      return serveBytes(req, bytes, new Headers({ etag: `"${segs[1]}"` }));
    }

    // Find the repo: /api/{type}s/{id}/…, /{id}/…, /datasets/{id}/…
    const api = segs[0] === "api";
    const rest = api ? segs.slice(1) : segs;
    let type: "model" | "dataset";
    let after: string[];
    if (api) {
      if (rest[0] !== "models" && rest[0] !== "datasets") return hubError(404, undefined, "?");
      type = rest[0] === "models" ? "model" : "dataset";
      after = rest.slice(1);
    } else if (rest[0] === "datasets") {
      type = "dataset";
      after = rest.slice(1);
    } else {
      type = "model";
      after = rest;
    }
    const repo = repos.find((r) =>
      r.type === type && after.slice(0, r.id.split("/").length).join("/") === r.id
    );
    const guess = after.slice(0, 2).join("/");
    if (!repo) return hubError(404, "RepoNotFound", `Repository not found: ${guess}`);
    if (repo.token && req.headers.get("authorization") !== `Bearer ${repo.token}`) {
      return repo.gated
        ? hubError(
          403,
          "GatedRepo",
          `Access to ${type} ${repo.id} is restricted. You must have access to it and be ` +
            "authenticated to access it. Please log in.",
        )
        : hubError(401, "RepoNotFound", "Invalid username or password.");
    }
    const [action, revRaw, ...pathParts] = after.slice(repo.id.split("/").length);
    const rev = revRaw;
    const sha = rev === undefined
      ? undefined
      : (repo.refs[rev] ?? (rev === repo.sha ? rev : undefined));

    if (api && action === "revision") {
      if (!sha) return hubError(404, "RevisionNotFound", `Invalid rev id: ${rev}`);
      return json({
        _id: `mock-${repo.id}`,
        id: repo.id,
        sha,
        private: !!repo.token,
        gated: repo.gated ? "manual" : false,
        downloads: 0,
        likes: 0,
        lastModified: "2025-01-01T00:00:00.000Z",
        siblings: [...repo.files.keys()].map((rfilename) => ({ rfilename })),
      });
    }
    if (api && action === "tree") {
      if (!sha) return hubError(404, "RevisionNotFound", `Invalid rev id: ${rev}`);
      const prefix = pathParts.join("/");
      const recursive = url.searchParams.get("recursive") === "true";
      const under = (p: string) => prefix === "" || p.startsWith(prefix + "/");
      const direct = (p: string) =>
        under(p) && (recursive || !p.slice(prefix ? prefix.length + 1 : 0).includes("/"));
      const files = [...repo.files.values()].filter((f) => direct(f.path));
      const dirs = [...dirsOf(repo.files.keys())].filter((d) => d !== prefix && direct(d));
      const all = [
        ...dirs.map((d) => ({ type: "directory", oid: gitOid(enc.encode(d)), size: 0, path: d })),
        ...files.map(entryJson),
      ].sort((a, b) => a.path < b.path ? -1 : 1);
      const cursor = Number(url.searchParams.get("cursor") ?? 0);
      const page = all.slice(cursor, cursor + pageSize);
      const h = new Headers();
      if (cursor + pageSize < all.length) {
        const next = new URL(url);
        next.searchParams.set("cursor", String(cursor + pageSize));
        h.set("link", `<${next.href}>; rel="next"`);
      }
      return json(page, { headers: h });
    }
    if (api && action === "paths-info" && req.method === "POST") {
      if (!sha) return hubError(404, "RevisionNotFound", `Invalid rev id: ${rev}`);
      const body = await req.json() as { paths?: string[]; expand?: boolean };
      const dirs = dirsOf(repo.files.keys());
      const out = [];
      for (const p of body.paths ?? []) {
        const f = repo.files.get(p);
        const commit = body.expand
          ? { lastCommit: { id: repo.lastCommit ?? sha, title: "edit", date: "2025-01-01" } }
          : {};
        if (f) out.push({ ...entryJson(f), ...commit });
        else if (dirs.has(p)) {
          out.push({ type: "directory", path: p, oid: "0".repeat(40), size: 0 });
        }
      }
      return json(out);
    }
    if (!api && (action === "resolve" || action === "raw")) {
      if (!sha) return hubError(404, "RevisionNotFound", `Invalid rev id: ${rev}`);
      const f = repo.files.get(pathParts.join("/"));
      if (!f) return hubError(404, "EntryNotFound", "Entry not found");
      const h = new Headers({ "x-repo-commit": sha });
      if (action === "resolve" && f.lfs) {
        h.set("x-linked-etag", `"${f.lfs.oid}"`);
        h.set("x-linked-size", String(f.lfs.size));
        // Another host, like the real CDN: clients must not forward the token there.
        h.set("location", `${cdnOrigin(url)}/cdn/${f.lfs.oid}`);
        return new Response(null, { status: 302, headers: h });
      }
      h.set("etag", `"${f.oid}"`);
      return serveBytes(req, f.bytes, h);
    }
    return hubError(404, undefined, `mock hub: no route for ${req.method} ${url.pathname}`);
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  const close = async () => {
    await server.shutdown();
  };
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    clear: () => void requests.splice(0),
    close,
    [Symbol.asyncDispose]: close,
  };
}
