#!/usr/bin/env node
// Reference producer of the ioxhub partner contract (docs/partner-contract.md), written from that
// document alone: CSV -> one release (dataset_chunk events, then the release_manifest) -> signed ->
// Kafka. Usage: see README.md, or `node producer.mjs --help`.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import avro from 'avsc';
import { ed25519 } from '@noble/curves/ed25519.js';
import { blake3 } from '@noble/hashes/blake3.js';
import kafkajs from 'kafkajs';

const { Kafka, logLevel } = kafkajs;
const HERE = dirname(fileURLToPath(import.meta.url));
const CONTENT_TYPE = 'application/vnd.apache.avro+binary; framing=single-object';
const SIGNATURE_TAG = 'ioxhub-signature-v3';
const PKCS8_ED25519_PREFIX = '302e020100300506032b657004220420';
const PEM_LABEL = 'PRIVATE KEY';                // PEM PKCS#8, as `ioxhub keys generate` writes it

// ------------------------------------------------------------------------------------- schemas
// CRC-64-AVRO (the Avro specification's fingerprint) of a schema's Parsing Canonical Form.
const CRC64_TABLE = (() => {
  const empty = 0xc15d213aa4d7a795n;
  const table = [];
  for (let i = 0n; i < 256n; i++) {
    let fp = i;
    for (let j = 0; j < 8; j++) fp = (fp >> 1n) ^ (empty & -(fp & 1n));
    table.push(fp);
  }
  return { empty, table };
})();

export function crc64avro(text) {
  let fp = CRC64_TABLE.empty;
  for (const byte of Buffer.from(text, 'utf8')) {
    fp = (fp >> 8n) ^ CRC64_TABLE.table[Number((fp ^ BigInt(byte)) & 0xffn)];
  }
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE(fp & 0xffffffffffffffffn);
  return out;                                     // the 8 bytes as written after C3 01
}

export function loadSchema(schemasDir, name, version = 1) {
  const json = JSON.parse(readFileSync(join(schemasDir, name, `v${version}.avsc`), 'utf8'));
  // No logical types registered: avsc writes `"long"` for a timestamp-millis long, as the Parsing
  // Canonical Form must (Apache Avro for Python would write {"type":"long"}: a different fingerprint).
  const type = avro.Type.forSchema(json);
  const canonical = JSON.stringify(type.getSchema());
  return { name, type, canonical, fingerprint: crc64avro(canonical) };
}

function frame(schema, record) {
  return Buffer.concat([Buffer.from([0xc3, 0x01]), schema.fingerprint, schema.type.toBuffer(record)]);
}

// ------------------------------------------------------------------------------------- signing
export function loadPrivateKey(path) {
  const text = readFileSync(path);
  const pem = text.toString('utf8');
  if (pem.includes(`-----BEGIN ${PEM_LABEL}-----`)) {
    const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
    if (der.length !== 48 || der.subarray(0, 16).toString('hex') !== PKCS8_ED25519_PREFIX) {
      throw new Error(`${path}: not an unencrypted PKCS#8 Ed25519 private key`);
    }
    return der.subarray(16);
  }
  if (text.length === 32) return text;                            // raw 32-byte seed
  if (/^[0-9a-f]{64}\s*$/i.test(pem)) return Buffer.from(pem.trim(), 'hex');
  throw new Error(`${path}: expected a PEM PKCS#8 Ed25519 key, 32 raw bytes or 64 hex digits`);
}

function lengthPrefixed(parts) {
  return Buffer.concat(parts.flatMap((p) => {
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(p.length));
    return [len, p];
  }));
}

// The bytes a signature covers (contract 1.1): tag, topic, the seven identity headers in order, key id,
// BLAKE3-256 of the value; each preceded by its length as 8 bytes big-endian.
export function signedBytes(value, topic, headers, keyId) {
  const names = ['ce_specversion', 'ce_id', 'ce_source', 'ce_type', 'ce_time', 'content-type', 'ioxhub-schema'];
  return lengthPrefixed([Buffer.from(SIGNATURE_TAG), Buffer.from(topic), ...names.map((n) => Buffer.from(headers[n])),
    Buffer.from(keyId), Buffer.from(blake3(value))]);
}

export function ceTime(ms) {
  return new Date(ms).toISOString();              // 2026-01-01T00:00:00.000Z: RFC 3339, UTC, milliseconds
}

export function eventHeaders({ org, eventId, schema, producedAt, value, topic, keyId, seed }) {
  const headers = {
    ce_specversion: '1.0',
    ce_id: eventId,
    ce_source: `urn:ioxhub:org:${org}`,
    ce_type: `org.ioxhub.${schema.name}`,
    ce_time: ceTime(producedAt),
    'content-type': CONTENT_TYPE,
    'ioxhub-schema': schema.fingerprint.toString('hex'),
  };
  const signature = ed25519.sign(signedBytes(value, topic, headers, keyId), seed);
  return { ...headers, 'ioxhub-key-id': keyId, 'ioxhub-signature': Buffer.from(signature) };
}

// ------------------------------------------------------------------------------------- CSV -> release
function parseCsv(text) {
  // RFC 4180: quoted fields may hold commas, quotes ("") and newlines. Returns rows with their line.
  const rows = [];
  let row = [], field = '', quoted = false, line = 1, rowLine = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else { if (c === '\n') line++; field += c; }
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(field); field = ''; }
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field); field = '';
      if (row.length > 1 || row[0] !== '') rows.push({ line: rowLine, cells: row });
      row = []; line++; rowLine = line;
    } else field += c;
  }
  if (field !== '' || row.length) { row.push(field); rows.push({ line: rowLine, cells: row }); }
  return rows;
}

const sha256hex = (text) => createHash('sha256').update(text).digest('hex');

export function buildRelease({ csvPath, org, datasetId, releaseId, producedAt, chunkRows, schemas, title, licence }) {
  const text = readFileSync(csvPath, 'utf8');
  const [header, ...data] = parseCsv(text);
  const col = Object.fromEntries(header.cells.map((name, i) => [name.trim(), i]));
  for (const required of ['indicator', 'ref_area', 'period', 'value']) {
    if (!(required in col)) throw new Error(`${csvPath}: line 1: no column ${required}`);
  }
  releaseId = releaseId || sha256hex(`${org}/${datasetId}/`).slice(0, 8) + '-' + sha256hex(text).slice(0, 16);
  const file = basename(csvPath);
  const chunks = [];
  for (let start = 0; start < data.length; start += chunkRows) {
    const seq = chunks.length;
    const strings = [], index = new Map();
    const idx = (s) => {
      if (s === undefined || s === '') return -1;
      if (!index.has(s)) { index.set(s, strings.length); strings.push(s); }
      return index.get(s);
    };
    const c = { indicator: [], ref_area: [], counterpart_area: [], commodity: [], period: [], value: [],
      missing_values: [], unit: [], unit_mult: [], obs_status: [], source_file: [], source_line: [] };
    data.slice(start, start + chunkRows).forEach(({ line, cells }, i) => {
      const cell = (name) => (name in col ? (cells[col[name]] ?? '').trim() : '');
      for (const name of ['indicator', 'ref_area', 'counterpart_area', 'commodity', 'period', 'unit', 'obs_status']) {
        c[name].push(idx(cell(name)));
      }
      const raw = cell('value');
      const value = raw === '' ? NaN : Number(raw);
      if (raw !== '' && !Number.isFinite(value)) throw new Error(`${csvPath}: line ${line}: value ${JSON.stringify(raw)} is not a number`);
      c.value.push(Number.isFinite(value) ? value : 0);
      if (!Number.isFinite(value)) c.missing_values.push(i);
      c.unit_mult.push(cell('unit_mult') === '' ? 0 : parseInt(cell('unit_mult'), 10));
      c.source_file.push(idx(file));
      c.source_line.push(line);
    });
    const record = {
      event_id: sha256hex(`${org}/${datasetId}/${releaseId}/${seq}`), org, dataset_id: datasetId,
      release_id: releaseId, chunk_seq: seq, chunk_count: null, produced_at: producedAt, licence: licence ?? null,
      source_url: null, strings, ...c, attributes: [],
    };
    chunks.push({ record, value: frame(schemas.chunk, record), rows: c.indicator.length });
  }
  const checksum = createHash('sha256');
  for (const ch of chunks) checksum.update(ch.value.subarray(10));      // the Avro bodies, without the frame
  const manifestRecord = {
    event_id: sha256hex(`${org}/${datasetId}/${releaseId}/manifest`), org, dataset_id: datasetId,
    release_id: releaseId, chunk_count: chunks.length, observation_count: chunks.reduce((n, ch) => n + ch.rows, 0),
    checksum: `sha256:${checksum.digest('hex')}`, produced_at: producedAt, title: title ?? null,
    licence: licence ?? null, source_url: null, rejected_at_source: 0, unit_translations: {},
  };
  return { releaseId, chunks, manifest: { record: manifestRecord, value: frame(schemas.manifest, manifestRecord) } };
}

// ------------------------------------------------------------------------------------- publish
export async function publish({ brokers, org, datasetId, release, schemas, keyId, seed, producedAt }) {
  const topic = `ioxhub.${org.toLowerCase()}.datasets`;
  const key = `${org}/${datasetId}`;                   // one key: the whole release on one partition, in order
  const message = (schema, part) => ({
    key, value: part.value,
    headers: eventHeaders({ org, eventId: part.record.event_id, schema, producedAt, value: part.value, topic, keyId, seed }),
  });
  const kafka = new Kafka({ clientId: 'ioxhub-node-producer', brokers, logLevel: logLevel.WARN });
  // Not idempotent: tansu 0.6 answers kafkajs's InitProducerId v1 with an unknown server error (docs/
  // partner-contract.md). Retries may then write an event twice; its event id makes the copy a duplicate.
  const producer = kafka.producer({ idempotent: false, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages: release.chunks.map((ch) => message(schemas.chunk, ch)) });
    // Every chunk acknowledged before the manifest goes out.
    await producer.send({ topic, acks: -1, messages: [message(schemas.manifest, release.manifest)] });
  } finally {
    await producer.disconnect();
  }
  return { topic, key, chunks: release.chunks.length };
}

function parseArgs(argv) {
  const opts = { brokers: '127.0.0.1:19092', chunkRows: 1000, schemas: join(HERE, '..', '..', 'schemas') };
  const names = { '--csv': 'csv', '--org': 'org', '--dataset': 'dataset', '--key': 'key', '--key-id': 'keyId',
    '--brokers': 'brokers', '--release-id': 'releaseId', '--chunk-rows': 'chunkRows', '--schemas': 'schemas',
    '--produced-at': 'producedAt', '--title': 'title', '--licence': 'licence' };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--help') { opts.help = true; continue; }
    const name = names[argv[i]];
    if (!name || i + 1 >= argv.length) throw new Error(`unknown or incomplete option ${argv[i]} (see --help)`);
    opts[name] = argv[++i];
  }
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.help || !opts.csv || !opts.org || !opts.dataset || !opts.key || !opts.keyId) {
    console.log('usage: node producer.mjs --csv FILE --org ORG --dataset ID --key KEYFILE --key-id KID\n' +
      '         [--brokers host:port,...] [--release-id ID] [--chunk-rows 1000] [--schemas DIR]\n' +
      '         [--produced-at EPOCH_MS] [--title T] [--licence L]');
    process.exit(opts.help ? 0 : 2);
  }
  const schemas = { chunk: loadSchema(opts.schemas, 'dataset_chunk'), manifest: loadSchema(opts.schemas, 'release_manifest', 2) };
  const producedAt = opts.producedAt ? Number(opts.producedAt) : Date.now();
  const release = buildRelease({ csvPath: opts.csv, org: opts.org, datasetId: opts.dataset, releaseId: opts.releaseId,
    producedAt, chunkRows: Number(opts.chunkRows), schemas, title: opts.title, licence: opts.licence });
  const sent = await publish({ brokers: opts.brokers.split(','), org: opts.org, datasetId: opts.dataset, release,
    schemas, keyId: opts.keyId, seed: loadPrivateKey(opts.key), producedAt });
  console.log(JSON.stringify({ release_id: release.releaseId, topic: sent.topic, key: sent.key, chunks: sent.chunks,
    observations: release.manifest.record.observation_count, manifest_event_id: release.manifest.record.event_id }));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err) => { console.error(`error: ${err.message}`); process.exit(2); });
}
