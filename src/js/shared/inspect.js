// How the package's objects print (`console.log`, util.inspect, JSON.stringify): their public
// state (`toJSON()`), not their private fields and the core's raw pointers.
//
// The hook is put on a class's prototype by its constructor, the first time it runs, rather than
// written in the class body: a computed key (`[Symbol.for(…)]() {…}`) in a class body is something
// bundlers cannot prove free of side effects, so every class holding one would stay in every app,
// used or not.

/** Node's hook for util.inspect (and console.log), a registered symbol: no import of node:util. */
const INSPECT = Symbol.for('nodejs.util.inspect.custom');

/** Gives `cls` (once) the util.inspect hook printing `Name { …toJSON() }`, as Node prints a class instance. */
export function printsAs(cls, name) {
  const proto = cls.prototype;
  if (Object.prototype.hasOwnProperty.call(proto, INSPECT)) return;
  Object.defineProperty(proto, INSPECT, {
    value(depth, options, inspect) {
      const fields = this.toJSON();
      return `${name} ${typeof inspect === 'function' ? inspect(fields, options) : JSON.stringify(fields)}`;
    },
    writable: true,
    configurable: true,
  });
}
