/**
 * A dependency-free SVG grouped bar chart: one group per category (a task, a mean), one bar per
 * series (a method, a published baseline), with the value above each bar. The report's
 * `report.svg`.
 *
 * @module
 */

import { chartFrame } from "../train/plot.ts";

/** A grouped bar chart's content. */
export interface BarChart {
  title: string;
  yLabel: string;
  /** The groups, left to right. */
  categories: readonly string[];
  /** One bar per category each; a missing (undefined or non-finite) value draws no bar. */
  series: readonly { name: string; values: readonly (number | undefined)[]; color?: string }[];
  /** Pixel height. @default {400} */
  height?: number;
}

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

const esc = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/**
 * Renders a grouped bar chart as a standalone SVG document (the width grows with the bars).
 *
 * @example
 * ```ts
 * import { barChartSvg } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const svg = barChartSvg({
 *   title: "test scores",
 *   yLabel: "score",
 *   categories: ["rte", "cb"],
 *   series: [
 *     { name: "ADePT", values: [79.9, 94.6] },
 *     { name: "DePT (published)", values: [79.14, 92.86] },
 *   ],
 * });
 * assert.ok(svg.startsWith("<svg"));
 * assert.equal(svg.match(/<rect class="bar"/g)?.length, 4);
 * assert.ok(svg.includes(">94.6<"));
 * ```
 */
export function barChartSvg(chart: BarChart): string {
  const H = chart.height ?? 400;
  const nS = Math.max(1, chart.series.length), nC = Math.max(1, chart.categories.length);
  const bar = 18, gap = 24;
  const pad = { left: 64, right: 16, top: 40 + 16 * nS, bottom: 56 };
  const groupW = nS * bar + gap;
  const W = Math.max(360, pad.left + pad.right + nC * groupW);
  const vals = chart.series.flatMap((s) => s.values.filter((v): v is number => Number.isFinite(v)));
  const y0 = Math.min(0, ...vals), y1 = Math.max(1, ...vals) * 1.08;
  const py = (y: number) => H - pad.bottom - (y - y0) / (y1 - y0) * (H - pad.top - pad.bottom);
  const parts = chartFrame({ size: [W, H], title: chart.title, pad, y0, y1, py });
  const base = py(Math.max(y0, 0)).toFixed(1);
  chart.categories.forEach((c, i) => {
    const gx = pad.left + gap / 2 + i * groupW;
    chart.series.forEach((s, j) => {
      const v = s.values[i];
      if (v === undefined || !Number.isFinite(v)) return;
      const x = gx + j * bar, top = Math.min(py(v), py(0)), h = Math.abs(py(v) - py(0));
      const color = s.color ?? PALETTE[j % PALETTE.length];
      parts.push(
        `<rect class="bar" x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${bar - 2}" ` +
          `height="${h.toFixed(1)}" fill="${color}"><title>${
            esc(`${s.name}, ${c}: ${v}`)
          }</title></rect>`,
        `<text x="${(x + (bar - 2) / 2).toFixed(1)}" y="${(top - 3).toFixed(1)}" ` +
          `text-anchor="middle" font-size="9">${Number(v.toFixed(1))}</text>`,
      );
    });
    parts.push(
      `<text x="${(gx + nS * bar / 2).toFixed(1)}" y="${H - pad.bottom + 16}" ` +
        `text-anchor="middle">${esc(c)}</text>`,
    );
  });
  parts.push(
    `<line x1="${pad.left}" x2="${W - pad.right}" y1="${base}" y2="${base}" stroke="#333"/>`,
    `<line x1="${pad.left}" x2="${pad.left}" y1="${pad.top}" y2="${
      H - pad.bottom
    }" stroke="#333"/>`,
    `<text x="14" y="${(pad.top + H - pad.bottom) / 2}" text-anchor="middle" ` +
      `transform="rotate(-90 14 ${(pad.top + H - pad.bottom) / 2})">${esc(chart.yLabel)}</text>`,
  );
  chart.series.forEach((s, j) => {
    const y = 34 + j * 16, color = s.color ?? PALETTE[j % PALETTE.length];
    parts.push(
      `<rect x="${pad.left}" y="${y - 5}" width="12" height="10" fill="${color}"/>`,
      `<text x="${pad.left + 18}" y="${y}" dominant-baseline="middle">${esc(s.name)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}
