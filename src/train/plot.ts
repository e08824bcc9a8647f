/**
 * Dependency-free SVG line charts of a run (training loss, validation metric against steps),
 * rewritten during the run so they can be opened while it trains.
 *
 * @module
 */

/** One line of a chart. */
export interface Series {
  /** Legend text. */
  name: string;
  /** (x, y) points in x order; non-finite y values are skipped. */
  points: readonly (readonly [number, number])[];
  /** Stroke colour. @default {a palette colour} */
  color?: string;
}

/** A chart's content. */
export interface LineChart {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  /** Pixel size. @default {[720, 360]} */
  size?: readonly [number, number];
}

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"];

/**
 * Tick values at a "nice" spacing (1, 2 or 5 × 10^k) covering [lo, hi].
 *
 * @example
 * ```ts
 * import { niceTicks } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
 * assert.deepEqual(niceTicks(3, 97), [20, 40, 60, 80]);
 * ```
 */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Number(v.toPrecision(12)));
  }
  return out;
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function fmt(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(1) : Number(v.toPrecision(4)).toString();
}

/** Where {@link chartFrame} draws. */
export interface ChartFrame {
  /** Pixel width and height. */
  size: readonly [number, number];
  /** The title, centred at the top. */
  title: string;
  /** The plot area's margins: left and right (pixels). */
  pad: { readonly left: number; readonly right: number };
  /** The y range: grid lines and labels at its nice ticks. */
  y0: number;
  y1: number;
  /** A y value's pixel row. */
  py: (y: number) => number;
}

/**
 * The opening parts of a chart's SVG document: the root element, a white background, the title
 * and the horizontal grid lines with their labels (shared by the line charts here and the bar
 * charts of sweep reports). The caller adds its marks and `</svg>`.
 *
 * @example
 * ```ts
 * import { chartFrame } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const parts = chartFrame({
 *   size: [400, 200],
 *   title: "scores",
 *   pad: { left: 40, right: 10 },
 *   y0: 0,
 *   y1: 100,
 *   py: (y) => 180 - y * 1.6,
 * });
 * assert.match(parts[0], /^<svg .*width="400" height="200"/);
 * assert.equal(parts.filter((p) => p.startsWith("<line")).length, 6); // 0, 20, ..., 100
 * ```
 */
export function chartFrame(f: ChartFrame): string[] {
  const [W, H] = f.size, { left, right } = f.pad;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
    `font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(f.title)}</text>`,
  ];
  for (const t of niceTicks(f.y0, f.y1)) {
    const y = f.py(t).toFixed(1);
    parts.push(
      `<line x1="${left}" x2="${W - right}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`,
      `<text x="${left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${
        fmt(t)
      }</text>`,
    );
  }
  return parts;
}

/**
 * Renders a line chart as a standalone SVG document.
 *
 * @example
 * ```ts
 * import { lineChartSvg } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const svg = lineChartSvg({
 *   title: "training loss",
 *   xLabel: "step",
 *   yLabel: "loss",
 *   series: [{ name: "train", points: [[1, 3], [2, 2], [3, 1.5]] }],
 * });
 * assert.ok(svg.startsWith("<svg") && svg.includes("<polyline"));
 * ```
 */
export function lineChartSvg(chart: LineChart): string {
  const [W, H] = chart.size ?? [720, 360];
  const pad = { left: 64, right: 16, top: 36, bottom: 48 };
  const pts = chart.series.flatMap((s) => s.points.filter(([, y]) => Number.isFinite(y)));
  let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
  if (!pts.length) [x0, x1, y0, y1] = [0, 1, 0, 1];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) [y0, y1] = [y0 - 1, y1 + 1];
  const yPad = (y1 - y0) * 0.05;
  y0 -= yPad;
  y1 += yPad;
  const px = (x: number) => pad.left + (x - x0) / (x1 - x0) * (W - pad.left - pad.right);
  const py = (y: number) => H - pad.bottom - (y - y0) / (y1 - y0) * (H - pad.top - pad.bottom);
  const parts = chartFrame({ size: [W, H], title: chart.title, pad, y0, y1, py });
  for (const t of niceTicks(x0, x1)) {
    const x = px(t).toFixed(1);
    parts.push(
      `<line x1="${x}" x2="${x}" y1="${H - pad.bottom}" y2="${H - pad.bottom + 4}" stroke="#333"/>`,
      `<text x="${x}" y="${H - pad.bottom + 18}" text-anchor="middle">${fmt(t)}</text>`,
    );
  }
  parts.push(
    `<line x1="${pad.left}" x2="${W - pad.right}" y1="${H - pad.bottom}" y2="${
      H - pad.bottom
    }" stroke="#333"/>`,
    `<line x1="${pad.left}" x2="${pad.left}" y1="${pad.top}" y2="${
      H - pad.bottom
    }" stroke="#333"/>`,
    `<text x="${(pad.left + W - pad.right) / 2}" y="${H - 8}" text-anchor="middle">${
      esc(chart.xLabel)
    }</text>`,
    `<text x="14" y="${
      (pad.top + H - pad.bottom) / 2
    }" text-anchor="middle" transform="rotate(-90 14 ${(pad.top + H - pad.bottom) / 2})">${
      esc(chart.yLabel)
    }</text>`,
  );
  chart.series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    const coords = s.points.filter(([, y]) => Number.isFinite(y)).map(([x, y]) =>
      `${px(x).toFixed(1)},${py(y).toFixed(1)}`
    );
    if (coords.length === 1) {
      const [cx, cy] = coords[0].split(",");
      parts.push(`<circle cx="${cx}" cy="${cy}" r="3" fill="${color}"/>`);
    } else if (coords.length > 1) {
      parts.push(
        `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${coords.join(" ")}"/>`,
      );
    }
    const ly = pad.top + 4 + i * 16;
    parts.push(
      `<line x1="${W - pad.right - 110}" x2="${W - pad.right - 90}" y1="${ly}" y2="${ly}" ` +
        `stroke="${color}" stroke-width="2"/>`,
      `<text x="${W - pad.right - 86}" y="${ly}" dominant-baseline="middle">${esc(s.name)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}
