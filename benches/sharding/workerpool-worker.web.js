// workerpool's dedicated worker (browsers, classic Web Worker), as its README shows.
importScripts('/node_modules/workerpool/dist/workerpool.min.js', './work.js');

workerpool.worker({ work: self.benchWork });
