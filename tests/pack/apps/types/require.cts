// The CommonJS side under node16/nodenext: `import x = require()` and named imports in a .cts file.
import edgebus = require('edgebus');
import { Bus } from 'edgebus';

declare const console: { log(...args: unknown[]): void };

const bus = new Bus();
const got: string[] = [];
bus.subscribe<string>('greetings.*', (text, msg) => got.push(`${msg.topic} ${text}`));
bus.publish('greetings.cjs', 'hello');
console.log(JSON.stringify({ got, sameClass: edgebus.Bus === Bus }));
