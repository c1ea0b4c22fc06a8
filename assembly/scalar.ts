// WASM SIMD kernels for scalar quantization codes (SQ8/SQ4, LVQ, binary asymmetric). Raw-pointer style, as dense.ts.
// Each export has a JS twin of the same name in src/kernels/scalar.ts.
