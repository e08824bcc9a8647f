/**
 * `sweep k8s`: the Kubernetes equivalent of the Slurm job array, printed (never applied): a
 * ConfigMap holding each run's settings and an Indexed Job (batch/v1, `completionMode:
 * Indexed`) whose pod of index i runs run i through `deno task sweep exec` in the project's
 * image, on a shared volume (a PersistentVolumeClaim) holding the run root. A failed pod is
 * retried per index (`backoffLimitPerIndex`) and resumes from its checkpoint.
 *
 * @module
 */

import { stringify } from "yaml";
import { runSettings } from "./plan.ts";
import type { PlannedRun, SweepPlan } from "./plan.ts";
import { SweepError } from "./errors.ts";

/** The image, resources and volumes of the Job. */
export interface K8sOptions {
  /** A container image holding this project (at `workdir`), Deno on PATH and a Vulkan driver. */
  image: string;
  /** The Job's name (a DNS label). @default {"adept-<sweep name>"} */
  name?: string;
  /** `metadata.namespace`. */
  namespace?: string;
  /** Pods at once (`parallelism`). @default {the number of runs} */
  parallel?: number;
  /** GPUs per pod (`nvidia.com/gpu`). @default {1} */
  gpus?: number;
  /** CPUs requested per pod. @default {"4"} */
  cpus?: string;
  /** Memory requested per pod (e.g. `32Gi`). */
  memory?: string;
  /** The PersistentVolumeClaim holding the run root. @default {"<name>-runs"} */
  pvc?: string;
  /** Where the claim is mounted: the run root in the pods. @default {"/runs"} */
  mountPath?: string;
  /** The project's folder in the image. @default {"/app"} */
  workdir?: string;
  /** Retries of each index. @default {2} */
  retries?: number;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$/;

/**
 * The ConfigMap and the Indexed Job of `runs` (see the module doc), as objects.
 *
 * @example
 * ```ts
 * import { k8sManifests, parseSweep, planSweep } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const plan = await planSweep(parseSweep({ axes: { task: ["rte", "cb"] } }, "glue.yaml"));
 * const [settings, job] = k8sManifests(plan, plan.runs, { image: "registry.example/adept:1" });
 * assert.equal(job.kind, "Job");
 * const spec = job.spec as Record<string, unknown>;
 * assert.equal(spec.completionMode, "Indexed");
 * assert.equal(spec.completions, 2);
 * assert.deepEqual(Object.keys(settings.data as object), plan.runs.map((r) => `${r.name}.json`));
 * ```
 */
export function k8sManifests(
  plan: SweepPlan,
  runs: readonly PlannedRun[],
  options: K8sOptions,
): [Record<string, unknown>, Record<string, unknown>] {
  if (runs.length === 0) throw new SweepError("no runs to put in a Job");
  if (!options.image || /\s/.test(options.image)) {
    throw new SweepError(
      `--image ${JSON.stringify(options.image ?? "")}: give the container image that holds ` +
        "this project (with Deno and a Vulkan driver), e.g. --image registry.example/adept:1",
    );
  }
  const name = options.name ??
    `adept-${plan.spec.name.toLowerCase().replace(/[^a-z0-9-]+/g, "-")}`.slice(0, 52)
      .replace(/-+$/, "");
  if (!DNS_LABEL.test(name) || name.length > 52) {
    throw new SweepError(
      `--name ${JSON.stringify(name)}: a Job name is a DNS label of at most 52 characters ` +
        "(lower-case letters, digits, '-'; Kubernetes adds the pod suffix)",
    );
  }
  const gpus = options.gpus ?? 1;
  if (!Number.isInteger(gpus) || gpus < 0) {
    throw new SweepError(`--gpus ${gpus}: expected 0 or more`);
  }
  const parallel = options.parallel ?? runs.length;
  if (!Number.isInteger(parallel) || parallel < 1) {
    throw new SweepError(`--parallel ${parallel}: expected a whole number of pods >= 1`);
  }
  const cpus = options.cpus ?? "4";
  for (const [flag, v] of [["--cpus", cpus], ["--memory", options.memory]] as const) {
    if (v !== undefined && !QUANTITY.test(v)) {
      throw new SweepError(
        `${flag} ${JSON.stringify(v)}: expected a Kubernetes quantity, e.g. 4, 500m, 32Gi`,
      );
    }
  }
  const mount = options.mountPath ?? "/runs";
  const workdir = options.workdir ?? "/app";
  const pvc = options.pvc ?? `${name}-runs`;
  const meta = (n: string) => ({
    name: n,
    ...(options.namespace ? { namespace: options.namespace } : {}),
    labels: { "app.kubernetes.io/name": "adept-sweep", "adept/sweep": name },
  });
  const data: Record<string, string> = {};
  for (const r of runs) {
    data[`${r.name}.json`] = JSON.stringify(runSettings(r.config), null, 2) + "\n";
  }
  const configMap = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: meta(`${name}-settings`),
    data,
  };
  const script = [
    "set -euo pipefail",
    `RUNS=(${runs.map((r) => r.name).join(" ")})`,
    'RUN="${RUNS[$JOB_COMPLETION_INDEX]}"',
    `DIR="${mount}/$RUN"`,
    'mkdir -p "$DIR"',
    'if [ ! -f "$DIR/settings.json" ]; then',
    `  cp "/etc/adept-sweep/$RUN.json" "$DIR/.settings.json.tmp"`,
    `  mv "$DIR/.settings.json.tmp" "$DIR/settings.json"`,
    "fi",
    `exec deno run -A --config ${workdir}/deno.json ${workdir}/tasks/sweep.ts exec "$DIR"`,
  ].join("\n");
  const resources: Record<string, Record<string, string>> = {
    requests: { cpu: cpus, ...(options.memory ? { memory: options.memory } : {}) },
  };
  if (gpus > 0) resources.limits = { "nvidia.com/gpu": String(gpus) };
  const job = {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: meta(name),
    spec: {
      completionMode: "Indexed",
      completions: runs.length,
      parallelism: Math.min(parallel, runs.length),
      backoffLimitPerIndex: options.retries ?? 2,
      template: {
        metadata: { labels: { "adept/sweep": name } },
        spec: {
          restartPolicy: "Never",
          containers: [{
            name: "train",
            image: options.image,
            workingDir: workdir,
            command: ["/bin/bash", "-c", script],
            env: [
              { name: "HF_HOME", value: `${mount}/.cache/huggingface` },
              { name: "XDG_RUNTIME_DIR", value: "/tmp" },
              { name: "NO_COLOR", value: "1" },
            ],
            resources,
            volumeMounts: [
              { name: "runs", mountPath: mount },
              { name: "settings", mountPath: "/etc/adept-sweep", readOnly: true },
            ],
          }],
          volumes: [
            { name: "runs", persistentVolumeClaim: { claimName: pvc } },
            { name: "settings", configMap: { name: `${name}-settings` } },
          ],
        },
      },
    },
  };
  return [configMap, job];
}

/**
 * The manifests as one YAML stream (documents separated by `---`), ready for `kubectl apply -f -`.
 *
 * @example
 * ```ts
 * import { manifestsYaml } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const text = manifestsYaml([{ kind: "ConfigMap" }, { kind: "Job" }]);
 * assert.equal(text, "kind: ConfigMap\n---\nkind: Job\n");
 * ```
 */
export function manifestsYaml(manifests: readonly Record<string, unknown>[]): string {
  return manifests.map((m) => stringify(m, { lineWidth: 0 })).join("---\n");
}
