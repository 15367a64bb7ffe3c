// workerpool's dedicated worker (Node), as its README shows: register the function, exec by name.
const workerpool = require('workerpool');
const benchWork = require('./work.js');

workerpool.worker({ work: benchWork });
