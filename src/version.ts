// randmask's version, from package.json (recorded in adapters and run records), and where the package lies.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) dir = dirname(dir);
  return dir;
}

/** The installed package's folder (holds data/ and models/ that ship with it). */
export const PACKAGE_ROOT = findPackageRoot();
export const RANDMASK_VERSION: string = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")).version;
