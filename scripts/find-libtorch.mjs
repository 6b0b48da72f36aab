#!/usr/bin/env node
// Locates a libtorch for binding.gyp. Order: $LIBTORCH (an unpacked libtorch
// distribution), a Python PyTorch >= 2.0 ($PYTHON, python3, /usr/bin/python3),
// then Debian/Ubuntu system paths (libtorch-dev).
// Usage: node scripts/find-libtorch.mjs include|libdir|libs|defines|describe
import { existsSync, readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";

function fromPrefix(prefix, source) {
  const include = [join(prefix, "include"), join(prefix, "include/torch/csrc/api/include")];
  const libdir = join(prefix, "lib");
  if (!existsSync(join(include[1], "torch/torch.h"))) return null;
  if (!existsSync(join(libdir, "libtorch.so")) && !existsSync(join(libdir, "libtorch_cpu.so"))) return null;
  return { source, include, libdir, abi: abiFromCmake(prefix), version: headerVersion(include[1]) };
}

function headerVersion(apiInclude) {
  const f = join(apiInclude, "torch/version.h");
  if (!existsSync(f)) return null;
  const text = readFileSync(f, "utf8");
  const part = (name) => new RegExp(`define TORCH_VERSION_${name} (\\d+)`).exec(text)?.[1];
  return ["MAJOR", "MINOR", "PATCH"].map(part).join(".");
}

function abiFromCmake(prefix) {
  for (const p of ["share/cmake/Torch/TorchConfig.cmake", "lib/cmake/Torch/TorchConfig.cmake"]) {
    const f = join(prefix, p);
    if (!existsSync(f)) continue;
    const m = /_GLIBCXX_USE_CXX11_ABI=([01])/.exec(readFileSync(f, "utf8"));
    if (m) return m[1];
  }
  return null;
}

// Why each earlier choice was passed over, for `describe`.
const passedOver = [];

function fromPython() {
  for (const py of [process.env.PYTHON, "python3", "/usr/bin/python3"].filter(Boolean)) {
    let out;
    try {
      out = execFileSync(py, ["-c",
        "import torch,os;print(os.path.dirname(torch.__file__));print(int(torch._C._GLIBCXX_USE_CXX11_ABI));print(torch.__version__)"],
        { stdio: ["ignore", "pipe", "ignore"], timeout: 60000 }).toString().trim().split("\n");
    } catch {
      passedOver.push(`${py}: no importable torch`);
      continue;
    }
    const [dir, abi, version] = out;
    if (Number(version.split(".")[0]) < 2) { passedOver.push(`${py}: torch ${version} < 2.0`); continue; }
    const found = fromPrefix(dir, `python (${py})`);
    if (found) return { ...found, abi, version };
    passedOver.push(`${py}: torch ${version} ships no C++ headers`);
  }
  return null;
}

function fromSystem() {
  const include = ["/usr/include", "/usr/include/torch/csrc/api/include"];
  for (const libdir of ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib"]) {
    if (existsSync(join(include[1], "torch/torch.h")) && existsSync(join(libdir, "libtorch.so")))
      return { source: "system", include, libdir, abi: "1", version: headerVersion(include[1]) };
  }
  return null;
}

function find() {
  if (process.env.LIBTORCH) {
    const found = fromPrefix(process.env.LIBTORCH, "LIBTORCH");
    if (!found) fail(`LIBTORCH=${process.env.LIBTORCH} has no include/torch/csrc/api/include/torch/torch.h and lib/libtorch.so`);
    return found;
  }
  passedOver.push("LIBTORCH unset");
  return fromPython() ?? fromSystem() ??
    fail("libtorch not found. Install it with `sudo apt-get install -y libtorch-dev libopenblas0-openmp` " +
      "(Debian/Ubuntu), or `pip install torch`, or set LIBTORCH to an unpacked libtorch distribution.");
}

function fail(msg) {
  process.stderr.write(`randmask: ${msg}\n`);
  process.exit(1);
}

const t = find();
const hasCuda = existsSync(join(t.libdir, "libtorch_cuda.so"));
const what = process.argv[2];
if (what === "include") console.log(t.include.join(" "));
else if (what === "libdir") console.log(t.libdir);
else if (what === "libs") {
  const libs = [`-L${t.libdir}`, `-Wl,-rpath,${t.libdir}`, "-Wl,--no-as-needed", "-ltorch", "-ltorch_cpu", "-lc10"];
  if (hasCuda) libs.push("-ltorch_cuda", "-lc10_cuda");
  libs.push("-Wl,--as-needed");
  console.log(libs.join(" "));
} else if (what === "defines") console.log(t.abi === null ? "" : `_GLIBCXX_USE_CXX11_ABI=${t.abi}`);
else console.log(JSON.stringify({ ...t, cuda: hasCuda, passedOver }));
