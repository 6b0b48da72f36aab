// A dependency-free SVG line chart, for training curves in run folders.

export interface Series { name: string; points: [number, number][]; color: string }

export function lineChartSvg(title: string, xLabel: string, series: Series[], width = 640, height = 360): string {
  const pts = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const pad = { l: 60, r: 20, t: 36, b: 44 };
  if (pts.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><text x="20" y="30">${esc(title)}: no data</text></svg>`;
  const [x0, x1] = extent(pts.map((p) => p[0]));
  const [y0, y1] = extent(pts.map((p) => p[1]));
  const sx = (x: number) => pad.l + ((x - x0) / (x1 - x0 || 1)) * (width - pad.l - pad.r);
  const sy = (y: number) => height - pad.b - ((y - y0) / (y1 - y0 || 1)) * (height - pad.t - pad.b);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => y0 + f * (y1 - y0));
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    `<line x1="${pad.l}" y1="${height - pad.b}" x2="${width - pad.r}" y2="${height - pad.b}" stroke="#444"/>`,
    `<line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${height - pad.b}" stroke="#444"/>`,
    ...ticks.map((t) => `<text x="${pad.l - 6}" y="${sy(t) + 4}" text-anchor="end">${fmt(t)}</text>` +
      `<line x1="${pad.l}" y1="${sy(t)}" x2="${width - pad.r}" y2="${sy(t)}" stroke="#eee"/>`),
    `<text x="${pad.l}" y="${height - pad.b + 16}">${fmt(x0)}</text>`,
    `<text x="${width - pad.r}" y="${height - pad.b + 16}" text-anchor="end">${fmt(x1)}</text>`,
    `<text x="${width / 2}" y="${height - 8}" text-anchor="middle">${esc(xLabel)}</text>`,
  ];
  series.forEach((s, i) => {
    const good = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (good.length) parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.5" points="${good.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ")}"/>`);
    parts.push(`<text x="${width - pad.r - 4}" y="${pad.t + 14 * (i + 1)}" text-anchor="end" fill="${s.color}">${esc(s.name)}</text>`);
  });
  parts.push("</svg>");
  return parts.join("\n");
}

function extent(v: number[]): [number, number] { return [Math.min(...v), Math.max(...v)]; }
function fmt(v: number): string { return Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(1) : v.toFixed(3).replace(/\.?0+$/, ""); }
function esc(s: string): string { return s.replace(/&/g, "&amp;").replace(/</g, "&lt;"); }
