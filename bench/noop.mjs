// The no-op TypeScript-style handler of the chain benchmark (plain ESM, so no
// tsx transform is involved: the benchmark measures Gantry, not the loader).
export async function noop() {}
