#!/usr/bin/env node
// Checks this producer against the contract's test vectors (schemas/vectors/): fingerprints, framing,
// signed bytes, signatures and the records of the complete release. Exit 0 when all match.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { eventHeaders, loadSchema, signedBytes } from './producer.mjs';

const schemasDir = process.argv[2] || new URL('../../schemas', import.meta.url).pathname;
const vectors = join(schemasDir, 'vectors');
const read = (name) => readFileSync(join(vectors, name), 'utf8');
const schemas = { dataset_chunk: loadSchema(schemasDir, 'dataset_chunk'), release_manifest: loadSchema(schemasDir, 'release_manifest', 2),
  policy_update: loadSchema(schemasDir, 'policy_update') };
// dataset_chunk v2 (extra dimensions, actions, commodity classification): the vectors' chunks that carry them
const chunkV2 = loadSchema(schemasDir, 'dataset_chunk', 2);

for (const v of JSON.parse(read('fingerprints.json'))) {
  if (!(v.schema in schemas)) continue;
  const version = loadSchema(schemasDir, v.schema, v.version);
  assert.equal(version.canonical, v.parsing_canonical_form, `${v.schema} v${v.version}: canonical form`);
  assert.equal(version.fingerprint.toString('hex'), v.fingerprint_hex, `${v.schema} v${v.version}: fingerprint`);
}
const framing = JSON.parse(read('framing.json'));
const body = schemas.policy_update.type.toBuffer(framing.event);
assert.equal(body.toString('hex'), framing.avro_body_hex, 'framing: Avro body');

const sigs = JSON.parse(read('signatures.json'));
const v11 = sigs.cases.find((c) => c.contract === '1.1');
const headers = Object.fromEntries(v11.headers);
const value = Buffer.from(v11.value_hex, 'hex');
assert.equal(signedBytes(value, v11.topic, headers, v11.key_id).toString('hex'), v11.signed_bytes_hex, 'signed bytes');
const seed = Buffer.from(sigs.private_seeds_hex[v11.key_id], 'hex');

let records = 0;
for (const line of read('release.jsonl').split('\n').filter(Boolean)) {
  const r = JSON.parse(line);
  const v2 = r.value_hex.startsWith('c301' + chunkV2.fingerprint.toString('hex'));
  const schema = 'chunk_seq' in r.event ? (v2 ? chunkV2 : schemas.dataset_chunk) : schemas.release_manifest;
  const framed = Buffer.concat([Buffer.from([0xc3, 0x01]), schema.fingerprint, schema.type.toBuffer(r.event)]);
  assert.equal(framed.toString('hex'), r.value_hex, `release record ${records}: value`);
  const [org, datasetId] = Buffer.from(r.key_hex, 'hex').toString().split('/');
  const ours = eventHeaders({ org, eventId: r.event.event_id, schema, producedAt: r.event.produced_at, value: framed,
    topic: r.topic, keyId: v11.key_id, seed });
  const theirs = Object.fromEntries(r.headers.map(([k, hex]) => [k, Buffer.from(hex, 'hex')]));
  assert.equal(datasetId, r.event.dataset_id);
  for (const [k, v] of Object.entries(ours)) assert.equal(Buffer.from(v).toString('hex'), theirs[k].toString('hex'), `header ${k}`);
  records++;
}
console.log(`vectors: fingerprints, framing, signed bytes and ${records} release records match`);
