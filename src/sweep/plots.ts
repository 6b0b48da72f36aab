// Charts through Vega-Lite, rendered headless: the spec compiles to Vega, Vega
// renders SVG in Node, and resvg rasterises the SVG to PNG.
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { Resvg } from "@resvg/resvg-js";
import { writeFileAtomic } from "../io/atomic.js";

const CONFIG = { font: "DejaVu Sans, sans-serif", axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 11, titleFontSize: 12 },
  title: { fontSize: 14 }, header: { labelFontSize: 12, titleFontSize: 12 } };

/** Renders a Vega-Lite spec to `base.svg` and `base.png` (2× scale); returns both paths. */
export async function renderChart(spec: TopLevelSpec, base: string): Promise<string[]> {
  const view = new vega.View(vega.parse(compile({ ...spec, config: { ...CONFIG, ...spec.config } } as TopLevelSpec).spec), { renderer: "none" });
  const svg = await view.toSVG();
  view.finalize();
  const png = new Resvg(svg, { fitTo: { mode: "zoom", value: 2 }, background: "white", font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" } })
    .render().asPng();
  writeFileAtomic(`${base}.svg`, svg);
  writeFileAtomic(`${base}.png`, png);
  return [`${base}.svg`, `${base}.png`];
}
