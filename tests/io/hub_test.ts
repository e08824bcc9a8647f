import assert from "node:assert/strict";
import { join } from "node:path";
import {
  hubDownload,
  type HubDownloadOptions,
  HubError,
  type HubErrorKind,
  hubFile,
  hubSettings,
  matchesPattern,
  repoCacheDir,
  safeJoin,
} from "../../src/io/hub.ts";
import { openSafetensors, writeSafetensors } from "../../src/io/safetensors.ts";
import {
  gitOid,
  MOCK_SHA,
  type MockHub,
  type MockHubOptions,
  type MockRepo,
  sha256,
  startMockHub,
} from "../support/mock_hub.ts";

const LAST_COMMIT = "fedcba9876543210fedcba9876543210fedcba98";
const enc = new TextEncoder();

async function tinySafetensors(): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir();
  try {
    const p = join(dir, "m.safetensors");
    await writeSafetensors(p, {
      "shared.weight": { shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) },
    });
    return await Deno.readFile(p);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const WEIGHTS = await tinySafetensors();

function tinyModel(extra: Partial<MockRepo> = {}): MockRepo {
  return {
    id: "org/tiny-t5",
    lastCommit: LAST_COMMIT,
    files: {
      "config.json": '{"d_model": 8}',
      "model.safetensors": WEIGHTS,
      "sub/dir/notes.txt": "hello",
      ".gitattributes": "*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
    },
    ...extra,
  };
}

function glue(): MockRepo {
  return {
    id: "nyu-mll/glue",
    type: "dataset",
    sha: "1111111111111111111111111111111111111111",
    files: {
      "README.md": "# GLUE",
      "sst2/train-00000-of-00001.parquet": enc.encode("PAR1 sst2 train PAR1"),
      "sst2/validation-00000-of-00001.parquet": enc.encode("PAR1 sst2 validation PAR1"),
      "cola/train-00000-of-00001.parquet": enc.encode("PAR1 cola PAR1"),
    },
  };
}

interface Env {
  hub: MockHub;
  cache: string;
  /** Options pointing at the mock and the temp cache through the environment only. */
  opts: (extra?: HubDownloadOptions, env?: Record<string, string>) => HubDownloadOptions;
}

async function withHub(options: MockHubOptions, fn: (e: Env) => Promise<void>): Promise<void> {
  const cache = await Deno.makeTempDir({ prefix: "hub_test_" });
  await using hub = startMockHub(options);
  try {
    await fn({
      hub,
      cache,
      opts: (extra = {}, env = {}) => ({
        ...extra,
        env: { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.url, ...env },
      }),
    });
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
}

async function rejectsKind(p: Promise<unknown>, kind: HubErrorKind, ...needles: string[]) {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof HubError, `expected HubError, got ${e}`);
    assert.equal(e.kind, kind, e.message);
    for (const n of needles) {
      assert.ok(e.message.includes(n), `message ${JSON.stringify(e.message)} lacks ${n}`);
    }
    return e;
  }
  assert.fail(`expected a HubError of kind ${kind}`);
}

async function listTree(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, prefix: string) => {
    for await (const e of Deno.readDir(dir)) {
      const rel = prefix + e.name;
      out.push(rel + (e.isDirectory ? "/" : ""));
      if (e.isDirectory) await walk(join(dir, e.name), rel + "/");
    }
  };
  await walk(root, "");
  return out.sort();
}

const FILES = ["config.json", "model.safetensors", "sub/dir/notes.txt"];

// ---------------------------------------------------------------------------------------------

Deno.test("hubDownload() fills the HF cache: blobs, refs/main and snapshots/<HEAD sha> symlinks", async () => {
  await withHub({ repos: [tinyModel()] }, async ({ hub, cache, opts }) => {
    const snap = await hubDownload("org/tiny-t5", opts({ files: FILES }));
    const repoDir = join(cache, "models--org--tiny-t5");
    assert.equal(snap.dir, join(repoDir, "snapshots", MOCK_SHA));
    assert.equal(snap.source, "hub");
    assert.equal(snap.sha, MOCK_SHA);
    assert.deepEqual(snap.files, FILES);
    assert.deepEqual(snap.downloaded, FILES);
    // refs/main holds the HEAD sha, exactly, like Python writes it.
    assert.equal(await Deno.readTextFile(join(repoDir, "refs", "main")), MOCK_SHA);
    // One snapshot folder, named after HEAD, not after paths-info's lastCommit.
    const configBlob = gitOid(enc.encode('{"d_model": 8}'));
    const notesBlob = gitOid(enc.encode("hello"));
    const weightsBlob = sha256(WEIGHTS);
    assert.deepEqual(
      await listTree(repoDir),
      [
        "blobs/",
        `blobs/${configBlob}`,
        `blobs/${notesBlob}`,
        `blobs/${weightsBlob}`,
        "refs/",
        "refs/main",
        "snapshots/",
        `snapshots/${MOCK_SHA}/`,
        `snapshots/${MOCK_SHA}/config.json`,
        `snapshots/${MOCK_SHA}/model.safetensors`,
        `snapshots/${MOCK_SHA}/sub/`,
        `snapshots/${MOCK_SHA}/sub/dir/`,
        `snapshots/${MOCK_SHA}/sub/dir/notes.txt`,
      ].sort(),
    );
    assert.equal(await Deno.readLink(snap.path("config.json")), `../../blobs/${configBlob}`);
    assert.equal(
      await Deno.readLink(snap.path("sub/dir/notes.txt")),
      `../../../../blobs/${notesBlob}`,
    );
    assert.equal(await Deno.readTextFile(snap.path("sub/dir/notes.txt")), "hello");
    using st = await openSafetensors(snap.path("model.safetensors"));
    assert.deepEqual(await st.readFloat("shared.weight"), Float32Array.of(1, 2, 3, 4));
    // Every file was fetched at the resolved sha, never at "main".
    const resolves = hub.requests.filter((r) => r.url.includes("/resolve/"));
    assert.ok(resolves.length >= 3);
    assert.ok(resolves.every((r) => r.url.includes(`/resolve/${MOCK_SHA}/`)), "fetched at the sha");
    assert.match(hub.requests[0].url, /^\/api\/models\/org\/tiny-t5\/revision\/main\?/);
  });
});

Deno.test("a second hubDownload() is served from the cache: only the revision is asked", async () => {
  await withHub({ repos: [tinyModel()] }, async ({ hub, opts }) => {
    const first = await hubDownload("org/tiny-t5", opts({ files: FILES }));
    hub.clear();
    const again = await hubDownload("org/tiny-t5", opts({ files: FILES }));
    assert.equal(again.dir, first.dir);
    assert.deepEqual(again.downloaded, []);
    assert.deepEqual(hub.requests.map((r) => r.url.split("?")[0]), [
      "/api/models/org/tiny-t5/revision/main",
    ]);
    hub.clear();
    const bySha = await hubDownload("org/tiny-t5", opts({ files: FILES, revision: MOCK_SHA }));
    assert.equal(bySha.dir, first.dir);
    assert.equal(hub.requests.length, 0, "a sha revision with cached files needs no request");
  });
});

Deno.test("HF_HUB_OFFLINE=1 serves cached files without a single request", async () => {
  await withHub({ repos: [tinyModel()] }, async ({ hub, opts }) => {
    const online = await hubDownload("org/tiny-t5", opts({ files: FILES }));
    hub.clear();
    for (const value of ["1", "ON", "yes", "True"]) {
      const offline = await hubDownload(
        "org/tiny-t5",
        opts({ files: FILES }, { HF_HUB_OFFLINE: value }),
      );
      assert.equal(offline.dir, online.dir);
      assert.equal(offline.source, "cache");
      assert.deepEqual(offline.files, FILES);
    }
    const json = await hubDownload(
      "org/tiny-t5",
      opts({ patterns: ["*.json", "sub/"] }, { HF_HUB_OFFLINE: "1" }),
    );
    assert.deepEqual(json.files, ["config.json", "sub/dir/notes.txt"]);
    const viaOption = await hubFile("org/tiny-t5", "config.json", { ...opts(), offline: true });
    assert.equal(viaOption, online.path("config.json"));
    assert.equal(hub.requests.length, 0);
  });
});

Deno.test("offline, a file or repo missing from the cache fails clearly, without any request", async () => {
  await withHub({ repos: [tinyModel()] }, async ({ hub, cache, opts }) => {
    await hubDownload("org/tiny-t5", opts({ files: ["config.json"] }));
    hub.clear();
    const off = { HF_HUB_OFFLINE: "1" };
    await rejectsKind(
      hubDownload("org/tiny-t5", opts({ files: ["config.json", "model.safetensors"] }, off)),
      "offline_miss",
      '"model.safetensors"',
      "HF_HUB_OFFLINE",
      join(cache, "models--org--tiny-t5", "snapshots", MOCK_SHA),
    );
    await rejectsKind(
      hubDownload("org/other", opts({ files: ["config.json"] }, off)),
      "offline_miss",
      "org/other",
      join(cache, "models--org--other", "refs", "main"),
      "without HF_HUB_OFFLINE",
    );
    await rejectsKind(
      hubDownload("org/tiny-t5", opts({ patterns: ["*.bin"] }, off)),
      "offline_miss",
      '"*.bin"',
    );
    assert.equal(hub.requests.length, 0);
  });
});

Deno.test("HF_TOKEN is sent as a Bearer token to the Hub, and not to the CDN it redirects to", async () => {
  const repo = tinyModel({ token: "hf_secret" });
  await withHub({ repos: [repo] }, async ({ hub, opts }) => {
    await hubDownload("org/tiny-t5", opts({ files: FILES }, { HF_TOKEN: "hf_secret" }));
    const cdn = hub.requests.filter((r) => r.url.startsWith("/cdn/"));
    const api = hub.requests.filter((r) => !r.url.startsWith("/cdn/"));
    assert.ok(api.length >= 5 && cdn.length >= 1);
    for (const r of api) {
      assert.equal(r.headers.authorization, "Bearer hf_secret", `${r.method} ${r.url}`);
    }
    // LFS files redirect to another host (the CDN): the token must not follow.
    for (const r of cdn) assert.equal(r.headers.authorization, undefined, `${r.method} ${r.url}`);
  });
});

Deno.test("a private repo without a token is a 401 that points at HF_TOKEN; gated is a 403", async () => {
  await withHub({
    repos: [tinyModel({ token: "hf_secret" }), {
      ...tinyModel(),
      id: "org/gated",
      token: "hf_x",
      gated: true,
    }],
  }, async ({ opts }) => {
    const e = await rejectsKind(
      hubDownload("org/tiny-t5", opts({ files: ["config.json"] })),
      "unauthorized",
      "HTTP 401",
      "org/tiny-t5",
      "No token was sent: set HF_TOKEN",
    );
    assert.equal(e.status, 401);
    await rejectsKind(
      hubDownload("org/tiny-t5", opts({ files: ["config.json"] }, { HF_TOKEN: "hf_wrong" })),
      "unauthorized",
      "A token from HF_TOKEN was sent",
    );
    await rejectsKind(
      hubDownload("org/gated", opts({ files: ["config.json"] })),
      "unauthorized",
      "HTTP 403",
      "gated",
      "/org/gated",
    );
  });
});

Deno.test("a token that does not start with hf_ is refused before any request", async () => {
  await withHub({ repos: [tinyModel()] }, async ({ hub, opts }) => {
    const e = await rejectsKind(
      hubDownload("org/tiny-t5", opts({ files: ["config.json"] }, { HF_TOKEN: "abcdef-secret" })),
      "invalid",
      "HF_TOKEN",
      '"hf_"',
    );
    assert.ok(!e.message.includes("abcdef-secret"), "the token itself is not printed");
    await rejectsKind(
      hubDownload("org/tiny-t5", { ...opts({ files: ["config.json"] }), token: "nope" }),
      "invalid",
      "the token option",
    );
    assert.equal(hub.requests.length, 0);
  });
});

Deno.test("HF_ENDPOINT chooses the hub, and the endpoint option overrides it", async () => {
  await withHub({ repos: [tinyModel()] }, async ({ hub, cache }) => {
    const env = { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.url + "/" };
    const a = await hubDownload("org/tiny-t5", { env, files: ["config.json"] });
    assert.equal(a.source, "hub");
    const n = hub.requests.length;
    assert.ok(n > 0);
    assert.ok(hub.requests.every((r) => !r.url.startsWith("//")), "trailing slash trimmed");
    const deadEnv = { HF_HUB_CACHE: cache, HF_ENDPOINT: "http://127.0.0.1:9" };
    await hubDownload("org/tiny-t5", { env: deadEnv, endpoint: hub.url, files: ["config.json"] });
    assert.equal(hub.requests.length, n + 1);
    await rejectsKind(
      hubDownload("org/tiny-t5", { env: { ...env, HF_ENDPOINT: "ftp://x" }, files: ["a"] }),
      "invalid",
      "HF_ENDPOINT",
    );
  });
});

Deno.test("hubSettings() resolves the cache like Python: HF_HUB_CACHE > HF_HOME/hub > ~/.cache", () => {
  const home = { HOME: "/home/u" };
  assert.equal(hubSettings({ env: home }).cacheDir, "/home/u/.cache/huggingface/hub");
  assert.equal(
    hubSettings({ env: { ...home, XDG_CACHE_HOME: "/xdg" } }).cacheDir,
    "/xdg/huggingface/hub",
  );
  assert.equal(hubSettings({ env: { ...home, HF_HOME: "/hf" } }).cacheDir, "/hf/hub");
  assert.equal(hubSettings({ env: { ...home, HF_HOME: "~/hf" } }).cacheDir, "/home/u/hf/hub");
  assert.equal(
    hubSettings({ env: { ...home, HF_HOME: "/hf", HUGGINGFACE_HUB_CACHE: "/old" } }).cacheDir,
    "/old",
  );
  assert.equal(
    hubSettings({ env: { HF_HOME: "/hf", HUGGINGFACE_HUB_CACHE: "/old", HF_HUB_CACHE: "/c" } })
      .cacheDir,
    "/c",
  );
  assert.equal(hubSettings({ env: { HF_HUB_CACHE: "/c" }, cacheDir: "/opt" }).cacheDir, "/opt");
  const s = hubSettings({ env: { HF_HUB_CACHE: "/c" } });
  assert.equal(s.endpoint, "https://huggingface.co");
  assert.equal(s.offline, false);
  assert.equal(s.token, undefined);
  assert.equal(hubSettings({ env: { HF_HUB_OFFLINE: "0" }, cacheDir: "/c" }).offline, false);
  assert.equal(
    hubSettings({ env: { HF_HUB_OFFLINE: "1" }, offline: false, cacheDir: "/c" }).offline,
    false,
  );
  assert.equal(
    hubSettings({ env: { HF_TOKEN: "hf_a" }, token: false, cacheDir: "/c" }).token,
    undefined,
  );
});

Deno.test("hubSettings() reads the token file under HF_HOME when HF_TOKEN is unset", async () => {
  const home = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(home, "token"), "hf_fromfile\n");
    const s = hubSettings({ env: { HF_HOME: home } });
    assert.equal(s.token, "hf_fromfile");
    assert.equal(s.tokenSource, join(home, "token"));
    assert.equal(hubSettings({ env: { HF_HOME: home, HF_TOKEN: "hf_env" } }).token, "hf_env");
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("names from a Hub listing that would leave the snapshot are refused; nothing escapes", async () => {
  for (const evil of ["../evil.txt", "/abs/evil.txt", "a/../../evil.txt", "a\\..\\..\\evil.txt"]) {
    const repo: MockRepo = { id: "org/evil", files: { "ok.txt": "ok", [evil]: "pwned" } };
    await withHub({ repos: [repo] }, async ({ cache, opts }) => {
      await rejectsKind(
        hubDownload("org/evil", opts({ patterns: ["*"] })),
        "unsafe_path",
        JSON.stringify(evil),
        "file name from the Hub listing",
      );
      const everything = await listTree(cache);
      assert.ok(!everything.some((p) => p.endsWith("evil.txt")), everything.join("\n"));
    });
  }
});

Deno.test("unsafe file and revision names are refused before any request", async () => {
  await withHub({ repos: [tinyModel()] }, async ({ hub, opts }) => {
    for (const f of ["../config.json", "/etc/passwd", "sub/./x", "C:/x", ""]) {
      await rejectsKind(hubDownload("org/tiny-t5", opts({ files: [f] })), "unsafe_path");
    }
    await rejectsKind(
      hubDownload("org/tiny-t5", opts({ files: ["config.json"], revision: "../../x" })),
      "unsafe_path",
      "revision name",
    );
    assert.throws(() => safeJoin("/snap", "a/../../b"), HubError);
    assert.equal(safeJoin("/snap", "a/b.txt"), "/snap/a/b.txt");
    assert.equal(hub.requests.length, 0);
  });
});

Deno.test("a local folder is used directly: no request, no cache", async () => {
  await withHub({ repos: [tinyModel()] }, async ({ hub, opts }) => {
    const dir = await Deno.makeTempDir({ prefix: "hub_local_" });
    try {
      await Deno.writeTextFile(join(dir, "config.json"), "{}");
      // Hub settings do not matter for a local folder, even broken ones.
      const broken = { HF_TOKEN: "not-a-token", HF_ENDPOINT: "ftp://x" };
      assert.equal((await hubDownload(dir, opts({}, broken))).source, "local");
      await Deno.mkdir(join(dir, "sst2"));
      await Deno.writeTextFile(join(dir, "sst2", "train.parquet"), "x");
      const snap = await hubDownload(dir, opts({ files: ["config.json"], patterns: ["sst2/*"] }));
      assert.equal(snap.source, "local");
      assert.equal(snap.dir, dir);
      assert.deepEqual(snap.files, ["config.json", "sst2/train.parquet"]);
      assert.equal(snap.sha, undefined);
      assert.equal(await hubFile(dir, "config.json", opts()), join(dir, "config.json"));
      await rejectsKind(
        hubDownload(dir, opts({ files: ["tokenizer.json"] })),
        "not_found",
        dir,
        '"tokenizer.json"',
      );
      await rejectsKind(
        hubDownload(join(dir, "config.json"), opts()),
        "invalid",
        "is a file",
      );
      await rejectsKind(hubDownload("./no/such/folder", opts()), "not_found", "does not exist");
      assert.equal(hub.requests.length, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("dataset repos land in datasets--org--name; glob patterns select over a paginated listing", async () => {
  await withHub({ repos: [glue()], pageSize: 2 }, async ({ hub, cache, opts }) => {
    const snap = await hubDownload(
      "nyu-mll/glue",
      opts({ repoType: "dataset", patterns: ["sst2/*.parquet"] }),
    );
    const sha = "1111111111111111111111111111111111111111";
    assert.equal(snap.dir, join(cache, "datasets--nyu-mll--glue", "snapshots", sha));
    assert.equal(snap.repoType, "dataset");
    assert.deepEqual(snap.files, [
      "sst2/train-00000-of-00001.parquet",
      "sst2/validation-00000-of-00001.parquet",
    ]);
    assert.equal(
      await Deno.readTextFile(snap.path("sst2/validation-00000-of-00001.parquet")),
      "PAR1 sst2 validation PAR1",
    );
    assert.equal(
      await Deno.readTextFile(join(cache, "datasets--nyu-mll--glue", "refs", "main")),
      sha,
    );
    const pages = hub.requests.filter((r) => r.url.includes("/tree/"));
    assert.ok(pages.length >= 3, `listing was paginated (${pages.length} pages)`);
    assert.ok(hub.requests.some((r) => r.url.startsWith("/datasets/nyu-mll/glue/resolve/")));
    // The "datasets/" prefix means the same repo; everything is cached now.
    hub.clear();
    const again = await hubDownload("datasets/nyu-mll/glue", opts({ files: ["README.md"] }));
    assert.equal(again.dir, snap.dir);
    assert.deepEqual(again.downloaded, ["README.md"]);
    assert.equal(
      repoCacheDir(cache, "nyu-mll/glue", "dataset"),
      join(cache, "datasets--nyu-mll--glue"),
    );
  });
});

Deno.test("an unknown repo, revision, file or pattern is a not_found error naming it", async () => {
  await withHub({ repos: [tinyModel(), glue()] }, async ({ opts }) => {
    const e = await rejectsKind(
      hubDownload("org/nope", opts({ files: ["config.json"] })),
      "not_found",
      "org/nope",
      "HTTP 404",
      'repoType: "dataset"',
    );
    assert.equal(e.status, 404);
    await rejectsKind(
      hubDownload("nyu-mll/glue", opts({ files: ["README.md"] })),
      "not_found",
      "model repository",
    );
    await rejectsKind(
      hubDownload("org/tiny-t5", opts({ files: ["config.json"], revision: "v9" })),
      "not_found",
      '"v9"',
    );
    await rejectsKind(
      hubDownload("org/tiny-t5", opts({ files: ["tokenizer.json"] })),
      "not_found",
      '"tokenizer.json"',
    );
    await rejectsKind(
      hubDownload("org/tiny-t5", opts({ patterns: ["*.bin"] })),
      "not_found",
      '"*.bin"',
      "config.json",
    );
    await rejectsKind(hubDownload("org/a/b", opts()), "invalid", "repo id");
    await rejectsKind(hubDownload("org--x/y", opts()), "invalid", "repo id");
  });
});

Deno.test("an unreachable hub is a network error naming HF_HUB_OFFLINE; a full cache still serves", async () => {
  await withHub({ repos: [tinyModel()] }, async ({ cache }) => {
    const dead = startMockHub({ repos: [] });
    await dead.close();
    const env = { HF_HUB_CACHE: cache, HF_ENDPOINT: dead.url };
    await rejectsKind(
      hubDownload("org/tiny-t5", { env, files: ["config.json"] }),
      "network",
      dead.url,
      "HF_HUB_OFFLINE=1",
      cache,
    );
  });
  await withHub({ repos: [tinyModel()] }, async ({ hub, opts }) => {
    await hubDownload("org/tiny-t5", opts({ files: ["config.json"] }));
    await hub.close();
    const snap = await hubDownload("org/tiny-t5", opts({ files: ["config.json"] }));
    assert.equal(snap.source, "cache");
    await rejectsKind(
      hubDownload("org/tiny-t5", opts({ files: ["model.safetensors"] })),
      "network",
      "HF_HUB_OFFLINE",
    );
  });
});

Deno.test("downloads print nothing and report progress per file", async () => {
  await withHub({ repos: [tinyModel()] }, async ({ opts }) => {
    const printed: unknown[] = [];
    const saved = { debug: console.debug, info: console.info, log: console.log };
    console.debug = console.info = console.log = (...a: unknown[]) => void printed.push(a);
    const last = new Map<string, [number, number]>();
    try {
      await hubDownload("org/tiny-t5", {
        ...opts({ patterns: ["*"] }),
        concurrency: 2,
        onProgress: (p) => last.set(p.file, [p.loaded, p.total]),
      });
    } finally {
      Object.assign(console, saved);
    }
    assert.deepEqual(printed, []);
    assert.deepEqual(last.get("model.safetensors"), [WEIGHTS.length, WEIGHTS.length]);
    assert.equal(last.size, 4);
  });
});

Deno.test("matchesPattern() follows Python fnmatch as huggingface_hub uses it", () => {
  const yes: [string, string][] = [
    ["model.safetensors", "*.safetensors"],
    ["sub/model.safetensors", "*.safetensors"],
    ["sst2/train-00000-of-00001.parquet", "sst2/*.parquet"],
    ["sst2/a/b.parquet", "sst2/*"],
    ["sst2/a/b.parquet", "sst2/"],
    ["model-00001-of-00002.safetensors", "model-0000?-of-*.safetensors"],
    ["a.json", "[ab].json"],
    ["c.json", "[!ab].json"],
    ["x+y(1).txt", "x+y(1).txt"],
  ];
  for (const [p, g] of yes) assert.ok(matchesPattern(p, g), `${p} ~ ${g}`);
  const no: [string, string][] = [
    ["model.bin", "*.safetensors"],
    ["cola/train.parquet", "sst2/*.parquet"],
    ["a.json", "[!ab].json"],
    ["xsst2/a", "sst2/"],
  ];
  for (const [p, g] of no) assert.ok(!matchesPattern(p, g), `${p} !~ ${g}`);
});

Deno.test("the mock hub answers Range requests with 206 and Content-Range, and HEAD", async () => {
  await using hub = startMockHub({ repos: [tinyModel()] });
  const url = `${hub.url}/org/tiny-t5/resolve/main/config.json`;
  const cases: [string, number, string | null, string][] = [
    ["bytes=0-0", 206, "bytes 0-0/14", "{"],
    ["bytes=2-", 206, "bytes 2-13/14", 'd_model": 8}'],
    ["bytes=-2", 206, "bytes 12-13/14", "8}"],
    ["bytes=20-30", 416, "bytes */14", ""],
  ];
  for (const [range, status, contentRange, body] of cases) {
    const r = await fetch(url, { headers: { range } });
    assert.equal(r.status, status, range);
    assert.equal(r.headers.get("content-range"), contentRange);
    assert.equal(await r.text(), body);
  }
  const head = await fetch(url, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("etag"), `"${gitOid(enc.encode('{"d_model": 8}'))}"`);
  await head.body?.cancel();
  const lfs = await fetch(`${hub.url}/org/tiny-t5/resolve/main/model.safetensors`, {
    redirect: "manual",
  });
  assert.equal(lfs.status, 302);
  assert.equal(lfs.headers.get("x-linked-etag"), `"${sha256(WEIGHTS)}"`);
  await lfs.body?.cancel();
  assert.deepEqual(hub.requests.map((r) => r.method), ["GET", "GET", "GET", "GET", "HEAD", "GET"]);
});
