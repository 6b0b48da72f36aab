// Renders a Vega-Lite spec to SVG headless (vega's "none" renderer needs no canvas).
// vega is imported on first use, so commands that draw nothing do not pay its load time.
import type { TopLevelSpec } from "vega-lite";

export async function vegaLiteSvg(spec: TopLevelSpec): Promise<string> {
  const [vega, { compile }] = await Promise.all([import("vega"), import("vega-lite")]);
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try { return await view.toSVG(); } finally { view.finalize(); }
}
