// Node module hooks that load `.wasm` imports the way workerd (wrangler's CompiledWasm rule) does:
// the default export is a compiled WebAssembly.Module. Lets the package's workerd entry run in Node.
export async function load(url, context, nextLoad) {
  if (url.endsWith('.wasm')) {
    return {
      format: 'module',
      shortCircuit: true,
      source: `import { readFileSync } from 'node:fs';\nexport default new WebAssembly.Module(readFileSync(new URL(${JSON.stringify(url)})));\n`,
    };
  }
  return nextLoad(url, context);
}
