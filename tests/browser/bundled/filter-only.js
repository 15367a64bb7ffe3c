// A bundled app using only IdempotenceFilter: no shard worker may be emitted for it.
/* global window */
import { init, IdempotenceFilter } from 'edgebus';

window.run = async () => {
  await init();
  const filter = new IdempotenceFilter({ maxIds: 100 });
  return [filter.check('order-1'), filter.check('order-1'), filter.check('order-2')];
};
window.appReady = true;
