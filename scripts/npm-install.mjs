// npm's install step for randmask. In a checkout of the repository
// scripts/setup.sh builds the addon once it has chosen a libtorch, so npm must
// not build it first (a binding.gyp alone makes npm run `node-gyp rebuild`);
// as an installed package (no .git beside it) the addon is built here.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

if (!existsSync(new URL("../.git", import.meta.url))) {
  execFileSync("npx", ["node-gyp", "rebuild"], { stdio: "inherit" });
}
