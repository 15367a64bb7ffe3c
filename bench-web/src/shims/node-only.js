// workerpool's browser build names Node's `worker_threads`, `os` and `child_process` in code that
// runs only when it detects Node; in the page those names resolve to this empty module instead of
// Vite's browser-external stub (which warns at build time). Nothing in the page reads from it.
export default {};
