// Node's `stream` classes, for qlobber's VisitorStream/RestorerStream in the page: they only need to
// exist when the module loads (it derives from them); the benchmark never constructs them.
class Unavailable {
  constructor() {
    throw new Error('Node streams are not available in the benchmark page');
  }
}

export class Readable extends Unavailable {}
export class Writable extends Unavailable {}
export class Transform extends Unavailable {}

export default { Readable, Writable, Transform };
