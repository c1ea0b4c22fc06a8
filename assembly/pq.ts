// WASM SIMD kernels for product quantization (lookup-table scans, 4-bit fast-scan). Raw-pointer style, as dense.ts.
// Each export has a JS twin of the same name in src/kernels/pq.ts.
