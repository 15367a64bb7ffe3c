// How the page loads the WebAssembly module: `init()` with nothing to configure.
import { init } from 'edgebus';

export const start = () => init();
