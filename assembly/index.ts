// Entry of the WASM kernel module: re-exports every kernel family.
export * from './dense';
