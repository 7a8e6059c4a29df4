// Load test of a running FastRec.Serving host with autocannon: POST /score or POST /recommend at each connection count
// for a fixed time.
// usage: node loadtest.js URL score CHECKPOINT_DIR ITEM_IDS_FILE SECONDS CONNECTIONS...
//        node loadtest.js URL recommend BODIES_FILE SECONDS CONNECTIONS...
//   BODIES_FILE: request bodies, one JSON object per line (blank lines skipped), sent in turn.
// (autocannon from $LOADTEST_MODULES)
'use strict';
const fs = require('fs');
const path = require('path');
const autocannon = require(path.join(process.env.LOADTEST_MODULES, 'autocannon'));

const USAGE = 'usage: node loadtest.js URL score CHECKPOINT_DIR ITEM_IDS_FILE SECONDS CONNECTIONS...\n' +
              '       node loadtest.js URL recommend BODIES_FILE SECONDS CONNECTIONS...';
const [url, endpoint, ...rest] = process.argv.slice(2);
if (!url || (endpoint !== 'score' && endpoint !== 'recommend')) throw new Error(USAGE);
const sources = endpoint === 'score' ? rest.splice(0, 2) : rest.splice(0, 1);
const [secondsArg, ...connArgs] = rest;
const seconds = Number(secondsArg);
const connections = connArgs.map(Number);
if (sources.some(s => !s) || !(seconds > 0) || connections.length === 0 || connections.some(c => !(c >= 1)))
  throw new Error(USAGE);

// /score bodies: K random catalogue items as the history, one as the candidate, the dense features at their training
// means (the cost of a call does not depend on their values). A fixed-seed generator: the same bodies every run.
function scoreBodies(ckpt, idsFile) {
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
  return { bodies, describe: { history: K, dense: names } };
}

// /recommend bodies: the file's lines, each checked to be a JSON object (a typo fails here, not as 400s under load).
function recommendBodies(file) {
  const bodies = fs.readFileSync(file, 'utf8').split('\n').map(s => s.trim()).filter(s => s.length > 0).map((line, i) => {
    const o = JSON.parse(line);
    if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new Error(`${file}:${i + 1}: not a JSON object`);
    return JSON.stringify(o);
  });
  if (bodies.length === 0) throw new Error(`${file}: no request bodies`);
  return { bodies, describe: { file } };
}

const { bodies, describe } = endpoint === 'score' ? scoreBodies(...sources) : recommendBodies(sources[0]);

function run(c, duration) {
  let i = 0;
  return autocannon({
    url: `${url}/${endpoint}`, connections: c, duration, method: 'POST',
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
  console.log(JSON.stringify({ endpoint: `POST /${endpoint}`, bodies: bodies.length, ...describe, rows }, null, 1));
  console.log('\n| connections | requests/s | p50 latency | p99 latency | requests | errors (non-2xx, timeouts) |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows)
    console.log(`| ${r.connections} | ${r.rps.toFixed(0)} | ${r.p50_ms} ms | ${r.p99_ms} ms | ${r.requests} | ${r.errors} (${r.non2xx}, ${r.timeouts}) |`);
  if (rows.some(r => r.non2xx > 0)) { console.error('some requests were not answered 2xx: check the bodies against the host (curl one)'); process.exit(1); }
})().catch(e => { console.error(e); process.exit(1); });
