// Which folders `randmask report` may write into: new or empty ones, and its own earlier reports (marked by a
// file listing what they wrote). Apart from report.ts so that checking --out does not load Vega and resvg.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { outputFolderFault } from "../io/output-folder.js";

/**
 * The file that marks a folder as one `writeReport` wrote, listing the files it wrote there: a report may
 * replace an earlier one (and remove its figures that no longer apply), never write into another folder's files.
 */
export const REPORT_MARKER = ".randmask-report.json";

/** The files an earlier report in `out` wrote (plain names in `out`), or null when `out` holds no report marker. */
export function earlierReport(out: string): string[] | null {
  let m: unknown;
  try { m = JSON.parse(readFileSync(join(out, REPORT_MARKER), "utf8")); } catch { return null; }
  const files = (m as { kind?: unknown; files?: unknown })?.kind === "randmask-report" ? (m as { files: unknown }).files : null;
  return Array.isArray(files) ? files.filter((f): f is string => typeof f === "string" && f === basename(f) && !["", ".", "..", REPORT_MARKER].includes(f)) : null;
}

/**
 * Why `out` cannot take a report, or null when it can: absent, an empty folder, or a folder holding an
 * earlier report (its marker file). Reads the file system only.
 */
export function reportFolderFault(out: string): { kind: "file" | "foreign"; text: string } | null {
  const f = outputFolderFault(out);
  if (f) return { kind: "file", text: f.text };
  if (!existsSync(out) || readdirSync(out).length === 0 || earlierReport(out) !== null) return null;
  return { kind: "foreign", text: `holds files and is not a report folder (no ${REPORT_MARKER} there)` };
}
