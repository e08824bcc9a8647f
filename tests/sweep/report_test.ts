// Reports from run folders written by hand (no GPU): the best settings per task and method are
// those an independent brute force picks from the logs (generated scores, with ties), failures
// are listed with their output's last lines, suite means sit beside the published ones, and a
// folder that does not match its plan id is refused.
import assert from "node:assert/strict";
import { hostname } from "node:os";
import { join } from "node:path";
import { parse as parseCsv } from "csv-parse/sync";
import { sweepMain } from "../../src/sweep/cli.ts";
import { SweepError } from "../../src/sweep/errors.ts";
import { planSweep, runSettings, type SweepPlan } from "../../src/sweep/plan.ts";
import { DEPT_PUBLISHED, GLUE_TASKS, SUPERGLUE_TASKS } from "../../src/sweep/published.ts";
import { collectReport, reportCsv, reportMarkdown, reportSvg } from "../../src/sweep/report.ts";
import { parseSweep } from "../../src/sweep/sweep_file.ts";
import { withTempDir } from "../support/temp.ts";
import { Gen, writeFakeRun } from "./support.ts";

async function plan(doc: unknown, root: string): Promise<SweepPlan> {
  return await planSweep(parseSweep(doc, "grid.yaml"), { root });
}

Deno.test("the chosen settings are the brute force's: best mean validation over seeds, ties to the first planned (generated)", async () => {
  await withTempDir(async (root) => {
    const g = new Gen(11);
    for (let round = 0; round < 6; round++) {
      const dir = join(root, `r${round}`);
      const p = await plan(
        {
          axes: {
            task: ["rte", "cb"],
            method: ["adept", "dept"],
            lr: [0.3, 0.4, 0.5],
            seed: [1, 2],
          },
        },
        dir,
      );
      // coarse scores (multiples of 5) so that ties happen; now and then a run crashed
      const scores = new Map<string, { val: number[]; test: number; ok: boolean }>();
      for (const run of p.runs) {
        const val = Array.from({ length: 1 + g.int(3) }, () => 5 * g.int(4));
        const ok = g.int(8) !== 0;
        const test = 5 * g.int(20);
        scores.set(run.id, { val, test, ok });
        await writeFakeRun(run, { status: ok ? "completed" : "crashed", validation: val, test });
      }
      const report = await collectReport(p);
      // brute force
      for (const task of ["rte", "cb"]) {
        for (const method of ["adept", "dept"]) {
          let best: { lr: number; val: number; test: number; ids: string[] } | undefined;
          for (const lr of [0.3, 0.4, 0.5]) {
            const runs = p.runs.filter((r) =>
              r.values.task === task && r.values.method === method && r.values.lr === lr &&
              scores.get(r.id)!.ok
            );
            if (!runs.length) continue;
            const val = runs.reduce((a, r) => a + Math.max(...scores.get(r.id)!.val), 0) /
              runs.length;
            const test = runs.reduce((a, r) => a + scores.get(r.id)!.test, 0) / runs.length;
            if (!best || val > best.val) best = { lr, val, test, ids: runs.map((r) => r.id) };
          }
          const got = report.chosen.find((c) => c.task === task && c.method === method);
          if (!best) {
            assert.equal(got, undefined);
            continue;
          }
          assert.ok(got, `${task} ${method} has a result`);
          assert.equal(got.settings.lr, best.lr, `${task} ${method}: lr`);
          assert.equal(got.validation, best.val);
          assert.equal(got.test, best.test);
          assert.deepEqual(got.runs.map((r) => r.run.id), best.ids);
        }
      }
      // crashed runs are listed with their output, never dropped
      const md = reportMarkdown(report);
      for (const run of p.runs.filter((r) => !scores.get(r.id)!.ok)) {
        assert.ok(md.includes(`### ${run.name}: crashed`), `${run.name} is listed as crashed`);
      }
    }
  });
});

Deno.test("failures are data: crashed, diverged, killed, interrupted runs with their last lines; pending and running counted", async () => {
  await withTempDir(async (root) => {
    const p = await plan({ axes: { task: ["rte"], seed: [1, 2, 3, 4, 5, 6, 7] } }, root);
    const [ok, crashed, diverged, killed, interrupted, pending, running] = p.runs;
    await writeFakeRun(ok, { status: "completed", validation: [60, 70], test: 68 });
    await writeFakeRun(crashed, {
      status: "crashed",
      validation: [50],
      output: ["step 100/1000  loss 0.5", "error: GpuDeviceLostError: the device was lost (boom)"],
    });
    await writeFakeRun(diverged, {
      status: "diverged",
      validation: [40],
      output: ["[train] stopped at step 100: 10 steps in a row had a non-finite loss"],
    });
    await writeFakeRun(killed, { status: "pending" });
    await Deno.writeTextFile(
      join(killed.dir, "train.log"),
      "=== attempt 1 ===\nstep 40/1000  loss 2\n",
    );
    const dead = {
      host: hostname(),
      pid: 2 ** 22 + 7,
      attempt: 1,
      startedAt: "2026-01-01T00:00:00Z",
    };
    await Deno.writeTextFile(join(killed.dir, "running.lock"), JSON.stringify(dead));
    await writeFakeRun(interrupted, { status: "interrupted", validation: [55] });
    await writeFakeRun(pending, { status: "pending" });
    await writeFakeRun(running, { status: "pending" });
    const live = { ...dead, pid: Deno.pid };
    await Deno.writeTextFile(join(running.dir, "running.lock"), JSON.stringify(live));

    const report = await collectReport(p);
    assert.deepEqual(report.results.map((r) => r.state.status), [
      "completed",
      "crashed",
      "diverged",
      "killed",
      "interrupted",
      "pending",
      "running",
    ]);
    assert.equal(report.chosen.length, 1);
    assert.equal(report.chosen[0].test, 68);
    const md = reportMarkdown(report);
    assert.match(
      md,
      /7 runs in .*: 1 completed, 1 crashed, 1 diverged, 1 killed, 1 interrupted, 1 pending, 1 running\./,
    );
    assert.match(
      md,
      new RegExp(
        `### ${crashed.name}: crashed[\\s\\S]*GpuDeviceLostError: the device was lost \\(boom\\)`,
      ),
    );
    assert.match(md, new RegExp(`### ${diverged.name}: diverged[\\s\\S]*non-finite loss`));
    assert.match(
      md,
      new RegExp(
        `### ${killed.name}: killed[\\s\\S]*ended without recording an outcome[\\s\\S]*step 40/1000`,
      ),
    );
    assert.match(md, new RegExp(`### ${interrupted.name}: interrupted`));
    assert.match(
      md,
      new RegExp(
        `## Not finished\\n\\n- ${pending.name}: pending\\n- ${running.name}: running \\(host`,
      ),
    );
  });
});

Deno.test("suite means: ours over the tasks run, DePT's published beside them (85.9 and 76.5 over all)", async () => {
  await withTempDir(async (root) => {
    const all = [...GLUE_TASKS, ...SUPERGLUE_TASKS];
    const p = await plan({ axes: { task: all } }, root);
    const ours: Record<string, number> = {};
    for (const [i, run] of p.runs.entries()) {
      ours[run.config.task] = 50 + i;
      await writeFakeRun(run, { status: "completed", validation: [50], test: 50 + i });
    }
    const report = await collectReport(p);
    assert.deepEqual(report.tasks, all);
    const md = reportMarkdown(report);
    const row = (label: string) => md.split("\n").find((l) => l.startsWith(`| ${label}`))!;
    const cells = (label: string) => row(label).split("|").slice(2, -1).map((c) => c.trim());
    const mean = (ts: readonly string[]) => ts.reduce((a, t) => a + ours[t], 0) / ts.length;
    assert.deepEqual(cells("ADePT (ours)"), [
      ...all.map((t) => ours[t].toFixed(2)),
      mean(GLUE_TASKS).toFixed(2),
      mean(SUPERGLUE_TASKS).toFixed(2),
    ]);
    assert.deepEqual(cells("DePT (published)"), [
      ...all.map((t) => DEPT_PUBLISHED.scores[t].toFixed(2)),
      "85.90",
      "76.50",
    ]);
    assert.match(md, /\| method +\| +mnli \| +qqp \|.*\| GLUE mean \| SuperGLUE mean \|/);
  });
  await withTempDir(async (root) => {
    // a subset: means over the tasks present, said so; the published mean over the same tasks
    const p = await plan({ axes: { task: ["rte", "cola", "cb"] } }, root);
    for (const run of p.runs) {
      await writeFakeRun(run, { status: "completed", validation: [1], test: 70 });
    }
    const md = reportMarkdown(await collectReport(p));
    assert.match(md, /ADePT \(ours\): GLUE mean over 2 of 8 tasks/);
    const pub = md.split("\n").find((l) => l.startsWith("| DePT (published)"))!;
    const expected = ((DEPT_PUBLISHED.scores.rte + DEPT_PUBLISHED.scores.cola) / 2).toFixed(2);
    const pubCells = pub.split("|").slice(2, -1).map((c) => c.trim());
    const cb = DEPT_PUBLISHED.scores.cb.toFixed(2);
    // rte, cola, cb, GLUE mean (of rte and cola), SuperGLUE mean (of cb)
    assert.deepEqual(pubCells, [
      DEPT_PUBLISHED.scores.rte.toFixed(2),
      DEPT_PUBLISHED.scores.cola.toFixed(2),
      cb,
      expected,
      cb,
    ]);
  });
});

Deno.test("a folder whose settings or trainer config do not hash to its plan id is refused, naming the difference", async () => {
  await withTempDir(async (root) => {
    const p = await plan({ axes: { lr: [0.3, 0.4] } }, root);
    await writeFakeRun(p.runs[0], { status: "completed", validation: [1], test: 1 });
    await writeFakeRun(p.runs[1], { status: "completed", validation: [1], test: 1 });
    assert.equal((await collectReport(p)).chosen.length, 1);
    // the trainer ran another config in this folder
    const cfg = join(p.runs[1].dir, "config.json");
    const good = await Deno.readTextFile(cfg);
    await Deno.writeTextFile(cfg, JSON.stringify({ ...JSON.parse(good), lr: 0.5 }));
    await assert.rejects(
      collectReport(p),
      (e: unknown) =>
        e instanceof SweepError && e.message.includes(p.runs[1].dir) &&
        /not to its plan id .*lr: planned 0\.4, ran 0\.5/.test(e.message),
    );
    await Deno.writeTextFile(cfg, good);
    // settings of another run
    await Deno.writeTextFile(
      join(p.runs[1].dir, "settings.json"),
      JSON.stringify(runSettings(p.runs[0].config)),
    );
    await assert.rejects(collectReport(p), /does not match its plan id/);
    // and through the command line: status 2, one line
    await Deno.writeTextFile(`${root}/grid.yaml`, "axes:\n  lr: [0.3, 0.4]\n");
    const lines: string[] = [];
    const code = await sweepMain(["report", `${root}/grid.yaml`, "--root", root], {
      print: (l) => lines.push(l),
    });
    assert.equal(code, 2);
    assert.match(lines.join("\n"), /^error: .*does not match its plan id/);
  });
});

Deno.test("CSV, SVG and the report command agree with the runs' logs", async () => {
  await withTempDir(async (root) => {
    const doc = { axes: { task: ["rte", "cb"], method: ["adept", "pt"], lr: [0.3, 0.4] } };
    const p = await plan(doc, root);
    const g = new Gen(12);
    for (const run of p.runs) {
      await writeFakeRun(run, {
        status: "completed",
        validation: [g.int(100), g.int(100)],
        test: g.int(100),
      });
    }
    const report = await collectReport(p);
    const rows = parseCsv(reportCsv(report), { columns: true }) as Record<string, string>[];
    assert.equal(rows.length, p.runs.length);
    for (const [i, row] of rows.entries()) {
      const r = report.results[i];
      assert.equal(row.id, r.run.id);
      assert.equal(Number(row.validation), r.validation!.score);
      assert.equal(Number(row[`validation_${r.metric}`]), r.validation!.score);
      assert.equal(Number(row.test), r.test![r.metric]);
      assert.equal(Number(row[`test_${r.metric}`]), r.test![r.metric]);
      assert.equal(row.chosen === "true", report.chosen.some((c) => c.runs.includes(r)));
    }
    assert.equal(rows.filter((r) => r.chosen === "true").length, 4); // 2 tasks x 2 methods
    const svg = reportSvg(report);
    // bars: (rte, cb, GLUE mean, SuperGLUE mean) x (ADePT, prompt tuning, DePT published)
    assert.equal(svg.match(/<rect class="bar"/g)?.length, 4 * 3);
    await Deno.writeTextFile(
      `${root}/grid.yaml`,
      "axes:\n  task: [rte, cb]\n  method: [adept, pt]\n  lr: [0.3, 0.4]\n",
    );
    const lines: string[] = [];
    assert.equal(
      await sweepMain(["report", `${root}/grid.yaml`, "--root", root], {
        print: (l) => lines.push(l),
      }),
      0,
    );
    const same = await planSweep(parseSweep(doc, `${root}/grid.yaml`), { root });
    assert.equal(lines[0], reportMarkdown(await collectReport(same)));
    for (const f of ["report.md", "report.csv", "report.svg"]) {
      assert.ok((await Deno.stat(join(root, "report", f))).size > 0, `${f} is written`);
    }
    assert.equal(await Deno.readTextFile(join(root, "report", "report.csv")), reportCsv(report));
  });
});
