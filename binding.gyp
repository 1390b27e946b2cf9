{
  "variables": {
    "granq_portable%": "<!(node -p \"process.env.GRANQ_PORTABLE === '1' ? 1 : 0\")",
    "granq_asan%": "<!(node -p \"process.env.GRANQ_ASAN === '1' ? 1 : 0\")"
  },
  "targets": [
    {
      "target_name": "granq_native",
      "sources": [
        "native/addon.cc",
        "native/alloc.cc",
        "native/pool.cc",
        "native/gemm.cc",
        "native/conv2d.cc",
        "native/conv2d-direct.cc",
        "native/conv2d-depthwise.cc",
        "native/batchnorm.cc",
        "native/eltwise.cc",
        "native/reduce.cc",
        "native/pool2d.cc",
        "native/loss.cc",
        "native/optim.cc",
        "native/quant.cc",
        "native/qgemm.cc",
        "native/qconv.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_ADDON_API_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL"],
      "cflags!": ["-fno-exceptions", "-O2", "-O1", "-O0"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-O2", "-O1", "-O0"],
      # -Wno-psabi: batchnorm.cc passes 64-byte GCC vectors between its own inline functions (no ABI crosses a
      # file), which GCC notes on builds without AVX-512 (GRANQ_PORTABLE=1, older CPUs).
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-fno-math-errno", "-Wall", "-Wno-unused-parameter", "-Wno-psabi"],
      "ldflags": ["-pthread"],
      "conditions": [
        ["granq_portable==1", { "cflags_cc": ["-march=x86-64-v2"] }, { "cflags_cc": ["-march=native"] }],
        ["granq_asan==1", {
          "cflags_cc": ["-fsanitize=address", "-fno-omit-frame-pointer", "-g"],
          "ldflags": ["-fsanitize=address"]
        }]
      ]
    }
  ]
}
