// The platform, where the code runs: Node (the CLI, tests, the bench) or a browser page or worker. Code that must
// behave differently in Node (file paths instead of URLs, onnxruntime-node instead of onnxruntime-web) asks here.

/** Node (not a browser or a worker): directories are paths there, and ONNX Runtime is onnxruntime-node. */
export function isNode(): boolean {
  return typeof process !== 'undefined' && process.release?.name === 'node';
}
