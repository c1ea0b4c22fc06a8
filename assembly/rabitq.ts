// WASM SIMD kernels for RaBitQ (bit-plane inner products, extended codes). Raw-pointer style, as dense.ts.
// Each export has a JS twin of the same name in src/kernels/rabitq.ts.
