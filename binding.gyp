{
  "targets": [{
    "target_name": "randmask_native",
    "sources": [
      "native/src/addon.cc",
      "native/src/tensor_ops.cc",
      "native/src/autograd_ops.cc",
      "native/src/sparse_delta_linear.cc",
      "native/src/optim.cc",
      "native/src/cpu_allocator.cc",
      "native/src/frozen_ops.cc",
      "native/src/checkpoint.cc"
    ],
    "include_dirs": [
      "<!(node -p \"require('node-addon-api').include_dir\")",
      "<!@(node scripts/find-libtorch.mjs include)"
    ],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "<!@(node scripts/find-libtorch.mjs defines)"],
    "cflags!": ["-fno-exceptions", "-fno-rtti"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
    "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-frtti", "-Wno-unused-parameter", "-Wno-deprecated-declarations"],
    "libraries": ["<!@(node scripts/find-libtorch.mjs libs)"]
  }]
}
