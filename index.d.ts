// The package's public types, emitted by `tsc` from src/ into dist/.
export * from './dist/index.js'
