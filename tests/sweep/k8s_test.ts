// `sweep k8s`: the printed manifests are a valid v1 ConfigMap and batch/v1 Indexed Job (checked
// against a schema of the fields emitted and the API server's Job rules, tests/sweep/k8s_schema.ts)
// for generated sweeps and flags; the checker rejects generated broken manifests; pod i runs
// run i, whose settings hash to its id.
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { sweepMain } from "../../src/sweep/cli.ts";
import { planSweep, runId } from "../../src/sweep/plan.ts";
import { parseSweep } from "../../src/sweep/sweep_file.ts";
import { withTempDir } from "../support/temp.ts";
import { checkConfigMap, checkJob } from "./k8s_schema.ts";
import { Gen } from "./support.ts";

// deno-lint-ignore no-explicit-any
type Job = any; // a manifest, mutated freely

async function k8s(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const code = await sweepMain(["k8s", ...args], { print: (l) => lines.push(l) });
  return { code, out: lines.join("\n") };
}

Deno.test("the printed ConfigMap and Indexed Job pass the batch/v1 schema and Job rules (generated)", async () => {
  await withTempDir(async (dir) => {
    const g = new Gen(21);
    for (let i = 0; i < 8; i++) {
      const axes = {
        task: g.sample(["rte", "cb", "wic", "boolq"], 1 + g.int(3)),
        lr: g.sample([0.3, 0.4, 0.5], 1 + g.int(2)),
        seed: g.sample([1, 2, 3], 1 + g.int(2)),
      };
      const file = `${dir}/grid${i}.json`;
      await Deno.writeTextFile(file, JSON.stringify({ name: `Grid_${i}`, axes }));
      const args = [file, "--root", `${dir}/nowhere${i}`, "--image", "registry.example/adept:1.0"];
      if (g.int(2)) args.push("--gpus", String(g.int(3)));
      if (g.int(2)) args.push("--parallel", String(1 + g.int(4)));
      if (g.int(2)) args.push("--memory", g.pick(["32Gi", "16000Mi", "8G"]));
      if (g.int(2)) args.push("--cpus", g.pick(["4", "500m", "2.5"]));
      if (g.int(2)) args.push("--namespace", "ml-team");
      if (g.int(2)) args.push("--pvc", "shared-runs");
      const { code, out } = await k8s(args);
      assert.equal(code, 0, out);
      const docs = parseAllDocuments(out).map((d) => d.toJS());
      assert.equal(docs.length, 2);
      const [cm, job] = docs;
      assert.deepEqual(checkConfigMap(cm), [], "the ConfigMap is valid");
      assert.deepEqual(checkJob(job), [], "the Job is valid");
      const plan = await planSweep(parseSweep({ name: `Grid_${i}`, axes }, file));
      assert.equal(job.spec.completionMode, "Indexed");
      assert.equal(job.spec.completions, plan.runs.length);
      assert.ok(job.spec.parallelism >= 1 && job.spec.parallelism <= plan.runs.length);
      assert.equal(job.metadata.name, `adept-grid-${i}`);
      // pod i runs run i: the RUNS array of the script, in plan order
      const script: string = job.spec.template.spec.containers[0].command[2];
      const runs = /RUNS=\(([^)]*)\)/.exec(script)![1].split(" ");
      assert.deepEqual(runs, plan.runs.map((r) => r.name));
      assert.match(script, /RUN="\$\{RUNS\[\$JOB_COMPLETION_INDEX\]\}"/);
      assert.match(script, /tasks\/sweep\.ts exec "\$DIR"$/);
      const syntax = await new Deno.Command("bash", { args: ["-n", "-c", script] }).output();
      assert.ok(syntax.success, "the pod's script is valid bash");
      // each run's settings, as the ConfigMap holds them, hash to its id
      for (const r of plan.runs) assert.equal(runId(JSON.parse(cm.data[`${r.name}.json`])), r.id);
      const gpus = job.spec.template.spec.containers[0].resources.limits?.["nvidia.com/gpu"];
      const asked = args.includes("--gpus") ? args[args.indexOf("--gpus") + 1] : "1";
      assert.equal(gpus ?? "0", asked);
    }
  });
});

Deno.test("the schema check rejects generated broken Jobs: unknown fields, wrong types, missing fields, broken rules", async () => {
  const plan = await planSweep(parseSweep({ axes: { seed: [1, 2] } }, "g.yaml"), { root: "/r" });
  const { k8sManifests } = await import("../../src/sweep/k8s.ts");
  const [, job] = k8sManifests(plan, plan.runs, { image: "img:1" });
  assert.deepEqual(checkJob(job), []);
  // every object and leaf of the manifest, by path
  const objects: (string | number)[][] = [], leaves: (string | number)[][] = [];
  const walk = (v: unknown, path: (string | number)[]) => {
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (typeof v === "object" && v !== null) {
      objects.push(path);
      for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
    } else leaves.push(path);
  };
  walk(job, []);
  const at = (root: unknown, path: (string | number)[]) =>
    // deno-lint-ignore no-explicit-any
    path.reduce((o: any, k) => o[k], root);
  const g = new Gen(22);
  // maps (labels, resources) take any key: unknown fields only make sense in typed objects
  const typed = objects.filter((p) => !["labels", "limits", "requests"].includes(String(p.at(-1))));
  for (let i = 0; i < 40; i++) {
    const copy = structuredClone(job);
    const kind = g.int(3);
    if (kind === 0) {
      const p = g.pick(typed);
      at(copy, p)[`x${g.word()}`] = 1;
    } else if (kind === 1) {
      const p = g.pick(leaves);
      const parent = at(copy, p.slice(0, -1));
      const v = parent[p.at(-1)!];
      parent[p.at(-1)!] = typeof v === "string" ? 42 : typeof v === "number" ? "42x" : "yes";
    } else {
      const required = [
        ["apiVersion"],
        ["spec", "template"],
        ["spec", "template", "spec", "containers", 0, "name"],
        ["spec", "template", "spec", "containers", 0, "volumeMounts", 0, "mountPath"],
        ["spec", "template", "spec", "volumes", 0, "persistentVolumeClaim", "claimName"],
      ];
      const p = g.pick(required);
      delete at(copy, p.slice(0, -1))[p.at(-1)!];
    }
    assert.notDeepEqual(checkJob(copy), [], `mutation ${kind} should be rejected`);
  }
  // the API server's rules
  const rules: [string, (j: Job) => void, RegExp][] = [
    [
      "NonIndexed with backoffLimitPerIndex",
      (j: Job) => j.spec.completionMode = "NonIndexed",
      /requires completionMode Indexed/,
    ],
    [
      "restartPolicy Always",
      (j: Job) => j.spec.template.spec.restartPolicy = "Always",
      /restart Never or OnFailure/,
    ],
    ["Indexed without completions", (j: Job) => delete j.spec.completions, /completions: required/],
    ["a mount of no volume", (j: Job) => j.spec.template.spec.volumes.pop(), /names no volume/],
    ["a long name", (j: Job) => j.metadata.name = "a".repeat(64), /at most 63/],
  ];
  for (const [what, mutate, re] of rules) {
    const copy = structuredClone(job);
    mutate(copy);
    assert.match(checkJob(copy).join("\n"), re, what);
  }
});

Deno.test("sweep k8s refuses a missing image and bad quantities, naming the flag", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/g.yaml`, "axes:\n  seed: [1]\n");
    const f = [`${dir}/g.yaml`, "--root", `${dir}/r`];
    for (
      const [args, re] of [
        [f, /--image "": give the container image/],
        [
          [...f, "--image", "i:1", "--cpus", "four"],
          /--cpus "four": expected a Kubernetes quantity/,
        ],
        [[...f, "--image", "i:1", "--memory", "lots"], /--memory "lots"/],
        [
          [...f, "--image", "i:1", "--name", "Bad_Name"],
          /--name "Bad_Name": a Job name is a DNS label/,
        ],
        [[...f, "--image", "i:1", "--gpus=-1"], /--gpus "-1": expected a whole number >= 0/],
      ] as const
    ) {
      const { code, out } = await k8s([...args]);
      assert.equal(code, 2, args.join(" "));
      assert.match(out, re);
    }
  });
});
