// How the package's objects print (`console.log`, util.inspect, JSON.stringify): their public
// state, not their private fields and the core's raw pointers.

/** Node's hook for util.inspect (and console.log), a registered symbol: no import of node:util. */
export const INSPECT = Symbol.for('nodejs.util.inspect.custom');

/** `Name { a: 1, b: 'x' }`, as Node prints a class instance, for the public `fields`. */
export function inspected(name, fields, options, inspect) {
  return `${name} ${typeof inspect === 'function' ? inspect(fields, options) : JSON.stringify(fields)}`;
}
