// The part of Node's `util` that qlobber needs in the page: `inherits` (Node's own semantics). Its
// matcher uses nothing else from Node; the page does not use its stream classes.
export function inherits(ctor, superCtor) {
  Object.defineProperty(ctor, 'super_', { value: superCtor, writable: true, configurable: true });
  Object.setPrototypeOf(ctor.prototype, superCtor.prototype);
}

export default { inherits };
