#!/usr/bin/env node
// tests/ort/ort_run.js: run an ONNX model on ONNX Runtime (onnxruntime-node, CPU EP) as the reference engine.
//
//   node ort_run.js MODEL.onnx OUTDIR [--threads N] [--input NAME=FILE.npy | --input FILE.npy]...
//                   [--save-optimized FILE] [--opt-level disabled|basic|extended|all] [--time]
//   node ort_run.js MODEL.onnx --info            print the inputs and outputs (name, type, shape) as JSON
//
// Session: CPU EP, graphOptimizationLevel 'all' (unless --opt-level), intraOpNumThreads N (default 1),
// interOpNumThreads 1, executionMode sequential. Every output is written as OUTDIR/<name>.npy, where characters
// outside [A-Za-z0-9._-] in the name are replaced by '_'. `--input FILE.npy` without NAME= feeds the next
// model input (in graph order) that has no value yet. .npy files are read and written here (format 1.0-3.0,
// C order, little or big endian): float32, float64, float16, int8, uint8, int16, uint16, int32, uint32, int64,
// uint64, bool. onnxruntime-node is found through NODE_PATH / normal resolution, else in the edgeinfer cache
// (${EI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgeinfer}/npm/node_modules, filled by scripts/npm-tools).
'use strict';

const fs = require('fs');
const path = require('path');
const os = require('os');

function die(msg) {
  process.stderr.write(`ort_run: ${msg}\n`);
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

// ---- .npy ----------------------------------------------------------------------------------------------------

// numpy type letter+size -> [ort type, TypedArray, element bytes]
const NPY_TYPES = {
  f4: ['float32', Float32Array, 4], f8: ['float64', Float64Array, 8], f2: ['float16', Uint16Array, 2],
  i1: ['int8', Int8Array, 1], u1: ['uint8', Uint8Array, 1], i2: ['int16', Int16Array, 2],
  u2: ['uint16', Uint16Array, 2], i4: ['int32', Int32Array, 4], u4: ['uint32', Uint32Array, 4],
  i8: ['int64', BigInt64Array, 8], u8: ['uint64', BigUint64Array, 8], b1: ['bool', Uint8Array, 1],
};
const ORT_TO_NPY = {};
for (const [k, v] of Object.entries(NPY_TYPES)) ORT_TO_NPY[v[0]] = k;

function parseNpyHeader(buf, file) {
  const magic = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(magic)) die(`${file}: not a .npy file`);
  const major = buf[6];
  let hlen, hstart;
  if (major === 1) { hlen = buf.readUInt16LE(8); hstart = 10; }
  else if (major === 2 || major === 3) {
    if (buf.length < 12) die(`${file}: truncated header`);
    hlen = buf.readUInt32LE(8); hstart = 12;
  } else die(`${file}: unsupported .npy version ${major}`);
  if (hstart + hlen > buf.length) die(`${file}: truncated header`);
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', hstart, hstart + hlen);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) die(`${file}: cannot parse header ${JSON.stringify(header)}`);
  if (fortran[1] === 'True') die(`${file}: fortran_order arrays are not supported`);
  const dims = shape[1].split(',').map(s => s.trim()).filter(s => s.length > 0).map(s => {
    if (!/^\d+L?$/.test(s)) die(`${file}: bad shape entry '${s}'`);
    return parseInt(s, 10);
  });
  return { descr: descr[1], dims, dataStart: hstart + hlen };
}

function readNpy(file) {
  let buf;
  try { buf = fs.readFileSync(file); } catch (e) { die(`cannot read ${file}: ${e.message}`); }
  const h = parseNpyHeader(buf, file);
  const m = /^([<>|=])([a-z])(\d+)$/.exec(h.descr);
  if (!m || !NPY_TYPES[m[2] + m[3]]) die(`${file}: unsupported dtype '${h.descr}'`);
  const [type, Arr, size] = NPY_TYPES[m[2] + m[3]];
  const count = h.dims.reduce((a, b) => a * b, 1);
  const nbytes = count * size;
  if (buf.length - h.dataStart < nbytes) die(`${file}: truncated data (need ${nbytes} bytes)`);
  // copy into an aligned buffer owned by the typed array
  const raw = new Uint8Array(nbytes);
  raw.set(buf.subarray(h.dataStart, h.dataStart + nbytes));
  const bigEndian = m[1] === '>' || (m[1] === '=' && os.endianness() === 'BE');
  if (bigEndian !== (os.endianness() === 'BE') && size > 1) {
    for (let i = 0; i < nbytes; i += size) raw.subarray(i, i + size).reverse();
  }
  const data = new Arr(raw.buffer, 0, count);
  return { type, data, dims: h.dims };
}

function npyBytes(type, data, dims) {
  const code = ORT_TO_NPY[type];
  if (!code) return null;
  const le = os.endianness() === 'LE';
  const descr = code === 'b1' || code[1] === '1' ? `|${code}` : `${le ? '<' : '>'}${code}`;
  const shape = dims.length === 0 ? '()' : dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(pre);
  pre.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), body]);
}

function writeFileAtomic(file, bytes) {
  const tmp = `${file}.tmp.${process.pid}`;
  fs.writeFileSync(tmp, bytes);
  fs.renameSync(tmp, file);
}

// ---- command line --------------------------------------------------------------------------------------------

function usage() {
  die('usage: node ort_run.js MODEL.onnx OUTDIR [--threads N] [--input NAME=FILE.npy]... ' +
      '[--save-optimized FILE] [--opt-level LEVEL] [--time]\n       node ort_run.js MODEL.onnx --info');
}

function parseArgs(argv) {
  const a = { pos: [], threads: 1, inputs: [], saveOptimized: null, optLevel: 'all', time: false, info: false };
  for (let i = 0; i < argv.length; i++) {
    const s = argv[i];
    const next = () => { if (i + 1 >= argv.length) die(`${s} needs a value`); return argv[++i]; };
    if (s === '--threads') {
      const v = next();
      if (!/^\d+$/.test(v) || +v < 1) die(`--threads: bad value '${v}'`);
      a.threads = +v;
    } else if (s === '--input') {
      const v = next();
      const eq = v.indexOf('=');
      // NAME=FILE unless the part before '=' looks like a path to an existing .npy (rare)
      if (eq > 0 && !fs.existsSync(v)) a.inputs.push({ name: v.slice(0, eq), file: v.slice(eq + 1) });
      else a.inputs.push({ name: null, file: v });
    } else if (s === '--save-optimized') a.saveOptimized = next();
    else if (s === '--opt-level') {
      a.optLevel = next();
      if (!['disabled', 'basic', 'extended', 'layout', 'all'].includes(a.optLevel)) die(`--opt-level: bad value`);
    } else if (s === '--time') a.time = true;
    else if (s === '--info') a.info = true;
    else if (s === '-h' || s === '--help') usage();
    else if (s.startsWith('--')) die(`unknown option ${s}`);
    else a.pos.push(s);
  }
  if (a.info ? a.pos.length !== 1 : a.pos.length !== 2) usage();
  return a;
}

function safeName(name) {
  const s = name.replace(/[^A-Za-z0-9._-]/g, '_');
  return s === '' || s === '.' || s === '..' ? `_${s}` : s;
}

function metaJson(m) {
  return m.isTensor ? { name: m.name, type: m.type, shape: m.shape } : { name: m.name, type: 'non-tensor' };
}

// ---- main ----------------------------------------------------------------------------------------------------

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const ort = loadOrt();
  const modelPath = args.pos[0];
  if (!fs.existsSync(modelPath)) die(`model not found: ${modelPath}`);

  const opts = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: args.optLevel,
    intraOpNumThreads: args.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    logSeverityLevel: 3,
  };
  if (args.saveOptimized) opts.optimizedModelFilePath = path.resolve(args.saveOptimized);

  const t0 = process.hrtime.bigint();
  let session;
  try {
    session = await ort.InferenceSession.create(modelPath, opts);
  } catch (e) {
    die(`${modelPath}: session creation failed: ${e.message}`);
  }
  const t1 = process.hrtime.bigint();

  if (args.info) {
    const info = {
      inputs: session.inputMetadata.map(metaJson),
      outputs: session.outputMetadata.map(metaJson),
    };
    process.stdout.write(JSON.stringify(info, null, 1) + '\n');
    return;
  }

  const feeds = {};
  for (const inp of args.inputs) {
    let name = inp.name;
    if (name === null) {
      name = session.inputNames.find(n => !(n in feeds));
      if (name === undefined) die(`too many inputs: ${inp.file} has no model input left to feed`);
    }
    if (!session.inputNames.includes(name)) {
      die(`model has no input '${name}' (inputs: ${session.inputNames.join(', ')})`);
    }
    if (name in feeds) die(`input '${name}' given twice`);
    const t = readNpy(inp.file);
    feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
  }
  const missing = session.inputNames.filter(n => !(n in feeds));
  if (missing.length) die(`missing inputs: ${missing.join(', ')}`);

  let results;
  try {
    results = await session.run(feeds);
  } catch (e) {
    die(`${modelPath}: run failed: ${e.message}`);
  }
  const t2 = process.hrtime.bigint();

  const outDir = args.pos[1];
  fs.mkdirSync(outDir, { recursive: true });
  const used = new Map();
  for (const name of session.outputNames) {
    const t = results[name];
    const file = safeName(name) + '.npy';
    if (used.has(file)) die(`outputs '${used.get(file)}' and '${name}' both map to ${file}`);
    used.set(file, name);
    const bytes = npyBytes(t.type, t.data, t.dims);
    if (!bytes) die(`output '${name}': type ${t.type} cannot be written as .npy`);
    writeFileAtomic(path.join(outDir, file), bytes);
  }
  if (args.time) {
    const ms = (a, b) => (Number(b - a) / 1e6).toFixed(1);
    process.stderr.write(`ort_run: ${path.basename(modelPath)}: create ${ms(t0, t1)} ms, run ${ms(t1, t2)} ms\n`);
  }
  await session.release();
}

main().catch(e => die(e.stack || String(e)));
