/**
 * A minimal schema check of Kubernetes manifests, for the fields `sweep k8s` emits: the
 * batch/v1 Job (with its pod template) and the v1 ConfigMap, written from the Kubernetes API
 * reference (the OpenAPI definitions io.k8s.api.batch.v1.Job, JobSpec, core.v1.PodTemplateSpec,
 * PodSpec, Container, EnvVar, ResourceRequirements, VolumeMount, Volume,
 * PersistentVolumeClaimVolumeSource, ConfigMapVolumeSource, ConfigMap and meta.v1.ObjectMeta:
 * their field names, types, formats and required fields), plus the API server's validation
 * rules those fields are subject to. It is strict as `kubectl apply --validate=strict` is: a
 * field the schema does not know is an error. No network: nothing is fetched.
 *
 * @module
 */

/** A schema node: a subset of OpenAPI v3 / JSON Schema. */
export type Schema =
  | { type: "string"; enum?: readonly string[]; pattern?: RegExp; maxLength?: number }
  | { type: "integer"; format: "int32" | "int64"; minimum?: number }
  | { type: "boolean" }
  | { type: "quantity" } // x-kubernetes-int-or-string with the quantity format
  | { type: "array"; items: Schema; minItems?: number }
  | { type: "map"; values: Schema; keyPattern?: RegExp } // additionalProperties
  | { type: "object"; properties: Record<string, Schema>; required?: readonly string[] }
  | { ref: string };

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const CONFIGMAP_KEY = /^[-._a-zA-Z0-9]+$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const RESOURCE_NAME = /^([a-z0-9.-]+\/)?[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$/;

const str: Schema = { type: "string" };
const int32: Schema = { type: "integer", format: "int32", minimum: 0 };
const labels: Schema = {
  type: "map",
  values: { type: "string", pattern: LABEL_VALUE, maxLength: 63 },
  keyPattern: LABEL_KEY,
};

/** The definitions, by the OpenAPI names they stand for. */
export const DEFINITIONS: Record<string, Schema> = {
  "meta.v1.ObjectMeta": {
    type: "object",
    properties: {
      name: { type: "string", pattern: DNS_SUBDOMAIN, maxLength: 253 },
      generateName: str,
      namespace: { type: "string", pattern: DNS_LABEL, maxLength: 63 },
      labels,
      annotations: { type: "map", values: str },
    },
  },
  "batch.v1.Job": {
    type: "object",
    properties: {
      apiVersion: { type: "string", enum: ["batch/v1"] },
      kind: { type: "string", enum: ["Job"] },
      metadata: { ref: "meta.v1.ObjectMeta" },
      spec: { ref: "batch.v1.JobSpec" },
    },
    required: ["apiVersion", "kind", "metadata", "spec"],
  },
  "batch.v1.JobSpec": {
    type: "object",
    properties: {
      activeDeadlineSeconds: { type: "integer", format: "int64", minimum: 1 },
      backoffLimit: int32,
      backoffLimitPerIndex: int32,
      maxFailedIndexes: int32,
      completionMode: { type: "string", enum: ["NonIndexed", "Indexed"] },
      completions: int32,
      parallelism: int32,
      suspend: { type: "boolean" },
      ttlSecondsAfterFinished: int32,
      template: { ref: "core.v1.PodTemplateSpec" },
    },
    required: ["template"],
  },
  "core.v1.PodTemplateSpec": {
    type: "object",
    properties: { metadata: { ref: "meta.v1.ObjectMeta" }, spec: { ref: "core.v1.PodSpec" } },
  },
  "core.v1.PodSpec": {
    type: "object",
    properties: {
      containers: { type: "array", items: { ref: "core.v1.Container" }, minItems: 1 },
      restartPolicy: { type: "string", enum: ["Always", "OnFailure", "Never"] },
      volumes: { type: "array", items: { ref: "core.v1.Volume" } },
      nodeSelector: { type: "map", values: str },
      serviceAccountName: str,
    },
    required: ["containers"],
  },
  "core.v1.Container": {
    type: "object",
    properties: {
      name: { type: "string", pattern: DNS_LABEL, maxLength: 63 },
      image: str,
      command: { type: "array", items: str },
      args: { type: "array", items: str },
      workingDir: str,
      env: { type: "array", items: { ref: "core.v1.EnvVar" } },
      resources: { ref: "core.v1.ResourceRequirements" },
      volumeMounts: { type: "array", items: { ref: "core.v1.VolumeMount" } },
    },
    required: ["name"],
  },
  "core.v1.EnvVar": {
    type: "object",
    properties: { name: { type: "string", pattern: ENV_NAME }, value: str },
    required: ["name"],
  },
  "core.v1.ResourceRequirements": {
    type: "object",
    properties: {
      limits: { type: "map", values: { type: "quantity" }, keyPattern: RESOURCE_NAME },
      requests: { type: "map", values: { type: "quantity" }, keyPattern: RESOURCE_NAME },
    },
  },
  "core.v1.VolumeMount": {
    type: "object",
    properties: {
      name: str,
      mountPath: { type: "string", pattern: /^\// },
      readOnly: { type: "boolean" },
      subPath: str,
    },
    required: ["name", "mountPath"],
  },
  "core.v1.Volume": {
    type: "object",
    properties: {
      name: { type: "string", pattern: DNS_LABEL, maxLength: 63 },
      persistentVolumeClaim: {
        type: "object",
        properties: {
          claimName: { type: "string", pattern: DNS_SUBDOMAIN },
          readOnly: { type: "boolean" },
        },
        required: ["claimName"],
      },
      configMap: {
        type: "object",
        properties: {
          name: { type: "string", pattern: DNS_SUBDOMAIN },
          defaultMode: int32,
          optional: { type: "boolean" },
        },
      },
      emptyDir: { type: "object", properties: { medium: str, sizeLimit: { type: "quantity" } } },
    },
    required: ["name"],
  },
  "core.v1.ConfigMap": {
    type: "object",
    properties: {
      apiVersion: { type: "string", enum: ["v1"] },
      kind: { type: "string", enum: ["ConfigMap"] },
      metadata: { ref: "meta.v1.ObjectMeta" },
      data: { type: "map", values: str, keyPattern: CONFIGMAP_KEY },
      immutable: { type: "boolean" },
    },
    required: ["apiVersion", "kind", "metadata"],
  },
};

const QUANTITY = /^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?[0-9]+)?$/;

/** Checks `value` against `schema`; returns every problem as `path: what`. */
export function checkSchema(value: unknown, schema: Schema, path = "$"): string[] {
  if ("ref" in schema) return checkSchema(value, DEFINITIONS[schema.ref], path);
  const bad = (what: string) => [`${path}: ${what}, got ${JSON.stringify(value)}`];
  switch (schema.type) {
    case "string": {
      if (typeof value !== "string") return bad("expected a string");
      if (schema.enum && !schema.enum.includes(value)) {
        return bad(`expected one of ${schema.enum.join(", ")}`);
      }
      if (schema.maxLength !== undefined && value.length > schema.maxLength) {
        return bad(`longer than ${schema.maxLength}`);
      }
      if (schema.pattern && !schema.pattern.test(value)) {
        return bad(`does not match ${schema.pattern}`);
      }
      return [];
    }
    case "integer": {
      if (typeof value !== "number" || !Number.isInteger(value)) return bad("expected an integer");
      const max = schema.format === "int32" ? 2 ** 31 - 1 : Number.MAX_SAFE_INTEGER;
      if (value > max || value < (schema.minimum ?? -max)) {
        return bad(`out of range for ${schema.format}`);
      }
      return [];
    }
    case "boolean":
      return typeof value === "boolean" ? [] : bad("expected a boolean");
    case "quantity":
      return (typeof value === "number" && Number.isFinite(value)) ||
          (typeof value === "string" && QUANTITY.test(value))
        ? []
        : bad("expected a quantity (int-or-string), e.g. 4, 500m, 32Gi");
    case "array": {
      if (!Array.isArray(value)) return bad("expected a list");
      if (schema.minItems && value.length < schema.minItems) {
        return bad(`expected at least ${schema.minItems} items`);
      }
      return value.flatMap((v, i) => checkSchema(v, schema.items, `${path}[${i}]`));
    }
    case "map": {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        return bad("expected a mapping");
      }
      return Object.entries(value).flatMap(([k, v]) => [
        ...(schema.keyPattern && !schema.keyPattern.test(k)
          ? [`${path}: key ${JSON.stringify(k)} does not match ${schema.keyPattern}`]
          : []),
        ...checkSchema(v, schema.values, `${path}.${k}`),
      ]);
    }
    case "object": {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        return bad("expected an object");
      }
      const o = value as Record<string, unknown>;
      const problems: string[] = [];
      for (const r of schema.required ?? []) {
        if (!(r in o)) problems.push(`${path}: missing required field "${r}"`);
      }
      for (const [k, v] of Object.entries(o)) {
        const s = schema.properties[k];
        if (!s) problems.push(`${path}: unknown field "${k}"`);
        else problems.push(...checkSchema(v, s, `${path}.${k}`));
      }
      return problems;
    }
  }
}

/**
 * The API server's validation of a Job beyond the schema: an Indexed Job needs `completions`
 * (at most 100,000); `backoffLimitPerIndex` needs `completionMode: Indexed` and
 * `restartPolicy: Never`; a Job's pods restart `Never` or `OnFailure`; `parallelism` and
 * `completions` are not negative; container names are unique; every volume mount names a volume;
 * volume names are unique; a Job name is a DNS label of at most 63 characters.
 */
export function checkJobRules(job: Record<string, unknown>): string[] {
  const p: string[] = [];
  // deno-lint-ignore no-explicit-any
  const spec = job.spec as any;
  // deno-lint-ignore no-explicit-any
  const name = (job.metadata as any)?.name;
  if (typeof name !== "string" || !DNS_LABEL.test(name) || name.length > 63) {
    p.push(
      `metadata.name ${
        JSON.stringify(name)
      }: a Job name must be a DNS label of at most 63 characters`,
    );
  }
  if (spec?.completionMode === "Indexed") {
    if (typeof spec.completions !== "number") {
      p.push("spec.completions: required when completionMode is Indexed");
    } else if (spec.completions > 100_000) {
      p.push("spec.completions: at most 100000 for an Indexed Job");
    }
  }
  if (spec?.backoffLimitPerIndex !== undefined) {
    if (spec.completionMode !== "Indexed") {
      p.push("spec.backoffLimitPerIndex: requires completionMode Indexed");
    }
    if (spec.template?.spec?.restartPolicy !== "Never") {
      p.push("spec.backoffLimitPerIndex: requires restartPolicy Never");
    }
  }
  const pod = spec?.template?.spec;
  if (!["Never", "OnFailure"].includes(pod?.restartPolicy)) {
    p.push(
      `spec.template.spec.restartPolicy ${
        JSON.stringify(pod?.restartPolicy)
      }: a Job's pods restart Never or OnFailure`,
    );
  }
  const containers: { name: string; volumeMounts?: { name: string }[] }[] = pod?.containers ?? [];
  if (new Set(containers.map((c) => c.name)).size !== containers.length) {
    p.push("container names must be unique");
  }
  const volumes: string[] = (pod?.volumes ?? []).map((v: { name: string }) => v.name);
  if (new Set(volumes).size !== volumes.length) p.push("volume names must be unique");
  for (const c of containers) {
    for (const m of c.volumeMounts ?? []) {
      if (!volumes.includes(m.name)) {
        p.push(`container ${c.name}: volumeMount ${m.name} names no volume`);
      }
    }
  }
  return p;
}

/** Every problem of a Job manifest: schema and rules. */
export function checkJob(job: unknown): string[] {
  const s = checkSchema(job, { ref: "batch.v1.Job" });
  return s.length ? s : checkJobRules(job as Record<string, unknown>);
}

/** Every problem of a ConfigMap manifest (data under 1 MiB in all). */
export function checkConfigMap(cm: unknown): string[] {
  const s = checkSchema(cm, { ref: "core.v1.ConfigMap" });
  if (s.length) return s;
  const data = (cm as { data?: Record<string, string> }).data ?? {};
  const size = Object.entries(data).reduce(
    (a, [k, v]) => a + k.length + new TextEncoder().encode(v).length,
    0,
  );
  return size > 1024 * 1024 ? [`data: ${size} bytes, over the 1 MiB limit of a ConfigMap`] : [];
}
