// Load test of a running FastRec.Serving host with autocannon: POST /score at each connection count for a fixed time.
// usage: node loadtest.js URL CHECKPOINT_DIR ITEM_IDS_FILE SECONDS CONNECTIONS... (autocannon from $LOADTEST_MODULES)
'use strict';
const fs = require('fs');
const path = require('path');
const autocannon = require(path.join(process.env.LOADTEST_MODULES, 'autocannon'));

const [url, ckpt, idsFile, secondsArg, ...connArgs] = process.argv.slice(2);
const seconds = Number(secondsArg);
const connections = connArgs.map(Number);
if (!url || !ckpt || !idsFile || !(seconds > 0) || connections.length === 0 || connections.some(c => !(c >= 1)))
  throw new Error('usage: node loadtest.js URL CHECKPOINT_DIR ITEM_IDS_FILE SECONDS CONNECTIONS...');

// Request bodies: K random catalogue items as the history, one as the candidate, the dense features at their training
// means (the cost of a call does not depend on their values). A fixed-seed generator: the same bodies every run.
const info = JSON.parse(fs.readFileSync(path.join(ckpt, 'fastrec.json'), 'utf8'));
const names = info.features.names, means = info.features.mean, K = info.data.examples.context_size;
const ids = fs.readFileSync(idsFile, 'utf8').split('\n').map(s => s.trim()).filter(s => s.length > 0);
let state = 42;
const next = () => { state = (state * 1103515245 + 12345) % 2147483648; return state; };
const pick = () => ids[next() % ids.length];
const bodies = Array.from({ length: 512 }, () => JSON.stringify({
  history: Array.from({ length: K }, pick),
  candidate: pick(),
  dense: Object.fromEntries(names.map((n, i) => [n, means[i]])),
}));

function run(c, duration) {
  let i = 0;
  return autocannon({
    url: url + '/score', connections: c, duration, method: 'POST',
    headers: { 'content-type': 'application/json' },
    requests: [{ setupRequest: req => ({ ...req, body: bodies[i++ % bodies.length] }) }],
  });
}

(async () => {
  await run(8, 3);   // warm-up (JIT, workspaces), not reported
  const rows = [];
  for (const c of connections) {
    const r = await run(c, seconds);
    rows.push({
      connections: c, seconds, requests: r.requests.total, rps: r.requests.average,
      p50_ms: r.latency.p50, p99_ms: r.latency.p99, errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx,
    });
  }
  console.log(JSON.stringify({ bodies: bodies.length, history: K, dense: names, rows }, null, 1));
  console.log('\n| connections | requests/s | p50 latency | p99 latency | requests | errors (non-2xx, timeouts) |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows)
    console.log(`| ${r.connections} | ${r.rps.toFixed(0)} | ${r.p50_ms} ms | ${r.p99_ms} ms | ${r.requests} | ${r.errors} (${r.non2xx}, ${r.timeouts}) |`);
})().catch(e => { console.error(e); process.exit(1); });
