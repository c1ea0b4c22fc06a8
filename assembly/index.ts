// Entry of the WASM kernel module: re-exports every kernel family (one file each, with a JS twin
// of the same name under src/kernels/).
export * from './dense';
export * from './scalar';
export * from './pq';
export * from './rabitq';
export * from './graph';
export * from './sparse';
