#!/usr/bin/env node
// bench/ort_bench.js: time one ONNX model on ONNX Runtime (onnxruntime-node, CPU EP) the way `edgeinfer bench`
// times it, and print the same JSON fields, for bench/compare-ort.
//
//   node ort_bench.js MODEL.onnx [--threads N] [--batch B] [--input FILE.npy] [--warmup W] [--iters N]
//                     [--seconds S] [--min-iters N] [--max-iters N]
//   node ort_bench.js --idle [--threads N]      the runtime loaded, no model: print peak RSS only
//
// Session: graphOptimizationLevel 'all', intraOpNumThreads N (default 1), interOpNumThreads 1, executionMode
// 'sequential'. Iteration policy (the same as edgeinfer bench): W + 1 untimed runs (default W = 3), then timed
// runs: exactly --iters N if given, else until at least --seconds S (default 3) have passed and at least
// --min-iters (default 10) runs are done, at most --max-iters (default 1000). Input: a float32 .npy (its shape
// must fit the model), else seeded random normal values in the model's input shape with the symbolic batch
// dimension set to B (default 1). Output: one JSON line with median_ms, p90_ms, p99_ms, min_ms, images_per_s,
// peak_rss_mb (the process's VmHWM), load_ms (InferenceSession.create), first_run_ms, iters, threads, batch.
'use strict';

const fs = require('fs');
const path = require('path');
const os = require('os');

function die(msg) {
  process.stderr.write(`ort_bench: ${msg}\n`);
  process.exit(1);
}

function cacheDir() {
  if (process.env.EI_CACHE) return process.env.EI_CACHE;
  const xdg = process.env.XDG_CACHE_HOME || path.join(process.env.HOME || os.homedir(), '.cache');
  return path.join(xdg, 'edgeinfer');
}

function loadOrt() {
  try {
    return require('onnxruntime-node');
  } catch (e) {
    if (e.code !== 'MODULE_NOT_FOUND') throw e;
  }
  const p = path.join(cacheDir(), 'npm', 'node_modules', 'onnxruntime-node');
  try {
    return require(p);
  } catch (e) {
    die(`cannot load onnxruntime-node (tried NODE_PATH and ${p}): ${e.message}; run scripts/npm-tools`);
  }
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
// The process's own peak RSS: VmHWM of /proc/self/status (getrusage's ru_maxrss would include the RSS of the
// process that forked us, kept across exec). Falls back to ru_maxrss elsewhere.
function peakRssMb() {
  try {
    const m = /^VmHWM:\s*(\d+)\s*kB/m.exec(fs.readFileSync('/proc/self/status', 'latin1'));
    if (m) return +m[1] / 1024;
  } catch (e) { /* not Linux */ }
  return process.resourceUsage().maxRSS / 1024; // kilobytes
}

// ---- input ---------------------------------------------------------------------------------------------------

// A little-endian float32 C-order .npy (what bench/compare-ort writes).
function readNpyF32(file) {
  let buf;
  try { buf = fs.readFileSync(file); } catch (e) { die(`cannot read ${file}: ${e.message}`); }
  if (buf.length < 10 || buf.toString('latin1', 1, 6) !== 'NUMPY') die(`${file}: not a .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + hlen;
  const header = buf.toString('latin1', major === 1 ? 10 : 12, start);
  if (!/'descr'\s*:\s*'<f4'/.test(header)) die(`${file}: only little-endian float32 .npy is supported`);
  if (/'fortran_order'\s*:\s*True/.test(header)) die(`${file}: fortran_order is not supported`);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!shape) die(`${file}: no shape in header`);
  const dims = shape[1].split(',').map(s => s.trim()).filter(s => s).map(s => parseInt(s, 10));
  const count = dims.reduce((a, b) => a * b, 1);
  if (buf.length - start < count * 4) die(`${file}: truncated data`);
  const data = new Float32Array(count);
  new Uint8Array(data.buffer).set(buf.subarray(start, start + count * 4));
  return { data, dims };
}

// Seeded normal values (xorshift32 + Box-Muller): deterministic, not the same numbers as edgeinfer's.
function randomNormal(count, seed) {
  const out = new Float32Array(count);
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return (s + 1) / 4294967297;
  };
  for (let i = 0; i < count; i += 2) {
    const r = Math.sqrt(-2 * Math.log(next())), t = 2 * Math.PI * next();
    out[i] = r * Math.cos(t);
    if (i + 1 < count) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

// ---- command line --------------------------------------------------------------------------------------------

function parseArgs(argv) {
  const a = { model: null, threads: 1, batch: 1, input: null, warmup: 3, iters: 0, seconds: 3, minIters: 10,
              maxIters: 1000, idle: false };
  const num = (s, v, min, isInt) => {
    const x = Number(v);
    if (!Number.isFinite(x) || x < min || (isInt && !Number.isInteger(x))) die(`${s}: bad value '${v}'`);
    return x;
  };
  for (let i = 0; i < argv.length; i++) {
    const s = argv[i];
    const next = () => { if (i + 1 >= argv.length) die(`${s} needs a value`); return argv[++i]; };
    if (s === '--threads') a.threads = num(s, next(), 1, true);
    else if (s === '--batch') a.batch = num(s, next(), 1, true);
    else if (s === '--input') a.input = next();
    else if (s === '--warmup') a.warmup = num(s, next(), 0, true);
    else if (s === '--iters') a.iters = num(s, next(), 1, true);
    else if (s === '--seconds') a.seconds = num(s, next(), 0, false);
    else if (s === '--min-iters') a.minIters = num(s, next(), 1, true);
    else if (s === '--max-iters') a.maxIters = num(s, next(), 1, true);
    else if (s === '--idle') a.idle = true;
    else if (s === '--json') { /* always JSON */ }
    else if (s === '-h' || s === '--help') {
      process.stdout.write('usage: node ort_bench.js MODEL.onnx [--threads N] [--batch B] [--input FILE.npy] ' +
                           '[--warmup W] [--iters N] [--seconds S] [--min-iters N] [--max-iters N]\n' +
                           '       node ort_bench.js --idle [--threads N]\n');
      process.exit(0);
    } else if (s.startsWith('--')) die(`unknown option ${s}`);
    else if (a.model) die(`more than one model given ('${a.model}', '${s}')`);
    else a.model = s;
  }
  if (!a.idle && !a.model) die('no model given');
  return a;
}

function pct(sorted, p) {
  const pos = p * (sorted.length - 1), i = Math.floor(pos), f = pos - i;
  return i + 1 < sorted.length ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[sorted.length - 1];
}

const r4 = x => Math.round(x * 1e4) / 1e4, r2 = x => Math.round(x * 100) / 100;

// ---- main ----------------------------------------------------------------------------------------------------

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const ort = loadOrt();
  if (a.idle) {
    process.stdout.write(JSON.stringify({ engine: 'onnxruntime', version: ort.env.versions?.common || null,
                                          idle: true, threads: a.threads, peak_rss_mb: r2(peakRssMb()) }) + '\n');
    return;
  }
  if (!fs.existsSync(a.model)) die(`model not found: ${a.model}`);
  const opts = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: a.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    logSeverityLevel: 3,
  };
  const t0 = nowMs();
  let session;
  try {
    session = await ort.InferenceSession.create(a.model, opts);
  } catch (e) {
    die(`${a.model}: session creation failed: ${e.message}`);
  }
  const loadMs = nowMs() - t0;
  if (session.inputNames.length !== 1) die(`${a.model}: ${session.inputNames.length} inputs (one expected)`);
  const name = session.inputNames[0];
  let data, dims;
  if (a.input) {
    ({ data, dims } = readNpyF32(a.input));
  } else {
    const meta = session.inputMetadata ? session.inputMetadata[0] : null;
    if (!meta || !meta.shape) die(`${a.model}: no input shape in the metadata; give --input`);
    dims = meta.shape.map((d, i) => (typeof d === 'number' && d > 0 ? d : i === 0 ? a.batch : 1));
    data = randomNormal(dims.reduce((x, y) => x * y, 1), 12345);
  }
  const feeds = { [name]: new ort.Tensor('float32', data, dims) };
  const batch = dims.length ? dims[0] : 1;
  const run = async () => {
    try { await session.run(feeds); } catch (e) { die(`${a.model}: run failed: ${e.message}`); }
  };

  const f0 = nowMs();
  await run();
  const firstMs = nowMs() - f0;
  for (let i = 0; i < a.warmup; i++) await run();
  const cap = a.iters || a.maxIters;
  const lat = [];
  const start = nowMs();
  while (lat.length < cap) {
    const r0 = nowMs();
    await run();
    lat.push(nowMs() - r0);
    if (!a.iters && lat.length >= a.minIters && nowMs() - start > a.seconds * 1000) break;
  }
  lat.sort((x, y) => x - y);
  const med = pct(lat, 0.5);
  const out = {
    model: a.model, engine: 'onnxruntime', threads: a.threads, batch, iters: lat.length,
    median_ms: r4(med), p90_ms: r4(pct(lat, 0.9)), p99_ms: r4(pct(lat, 0.99)), min_ms: r4(lat[0]),
    images_per_s: r2(batch * 1000 / med), peak_rss_mb: r2(peakRssMb()), load_ms: r2(loadMs),
    first_run_ms: r2(firstMs),
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  await session.release();
}

main().catch(e => die(e.stack || String(e)));
