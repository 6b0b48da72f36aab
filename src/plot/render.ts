// Charts through Vega-Lite, rendered headless: the spec compiles to Vega, Vega
// renders SVG in Node (its "none" renderer needs no canvas), and resvg
// rasterises the SVG to PNG. The libraries are imported on first use, so
// commands that draw nothing do not pay their load time.
import type { TopLevelSpec } from "vega-lite";
import { writeFileAtomic } from "../io/atomic.js";

// labelLimit 0: legend labels in full (Vega cuts them at 160 px, and series labels such as
// "random-mask (dtype=bfloat16)" differ only at the end).
const CONFIG = { font: "DejaVu Sans, sans-serif", axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 0 },
  title: { fontSize: 14 }, header: { labelFontSize: 12, titleFontSize: 12 } };

/** The SVG text of a Vega-Lite spec. */
export async function chartSvg(spec: TopLevelSpec): Promise<string> {
  const [vega, { compile }] = await Promise.all([import("vega"), import("vega-lite")]);
  const view = new vega.View(vega.parse(compile({ ...spec, config: { ...CONFIG, ...spec.config } } as TopLevelSpec).spec), { renderer: "none" });
  try { return await view.toSVG(); } finally { view.finalize(); }
}

/** A Vega-Lite spec as SVG text and a PNG at 2× scale. */
export async function chartImages(spec: TopLevelSpec): Promise<{ svg: string; png: Buffer }> {
  const svg = await chartSvg(spec);
  const { Resvg } = await import("@resvg/resvg-js");
  const png = new Resvg(svg, { fitTo: { mode: "zoom", value: 2 }, background: "white", font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" } })
    .render().asPng();
  return { svg, png };
}

/** Renders a Vega-Lite spec to `base.svg` and `base.png` (2× scale), each written atomically; returns both paths. */
export async function renderChart(spec: TopLevelSpec, base: string): Promise<string[]> {
  const { svg, png } = await chartImages(spec);
  writeFileAtomic(`${base}.svg`, svg);
  writeFileAtomic(`${base}.png`, png);
  return [`${base}.svg`, `${base}.png`];
}
