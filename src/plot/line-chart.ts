// Line charts of training curves (loss by step, accuracy by epoch or LR) as
// Vega-Lite specs, one line per series; rendered by ./render.ts.
import type { TopLevelSpec } from "vega-lite";

export interface Series { name: string; points: [number, number][] }

export interface LineChartOptions {
  title: string;
  xTitle: string;
  yTitle: string;
  /** Log-scaled x axis (e.g. learning rate). */
  xLog?: boolean;
  /** Draw a point at each datum (sparse series: epochs, LR grids). */
  points?: boolean;
}

/** A Vega-Lite line chart of the series (non-finite points dropped), legend by series name in the given order. */
export function lineChartSpec(series: Series[], o: LineChartOptions): TopLevelSpec {
  const values = series.flatMap((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).map(([x, y]) => ({ series: s.name, x, y })));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: o.title, width: 520, height: 300, background: "white",
    data: { values },
    mark: { type: "line", point: o.points === true, strokeWidth: 1.5 },
    encoding: {
      x: { field: "x", type: "quantitative", title: o.xTitle, scale: o.xLog ? { type: "log" } : { zero: false } },
      y: { field: "y", type: "quantitative", title: o.yTitle, scale: { zero: false } },
      color: { field: "series", type: "nominal", title: null, sort: series.map((s) => s.name), legend: { orient: "top-right" } },
    },
  } as TopLevelSpec;
}
