// The canonical encodings the console reads (docs/formats.md), the IDs and hashes over them
// (§4), RFC 9162 inclusion proofs with SM3 (§6), a small DER walker for the parts of an X.509
// certificate the console shows (subject, validity, the SM2 public key: no chain validation),
// and the genesis hash (docs/execution.md §2.3). Every decoder consumes its whole input and
// throws an Error naming the field on anything else.

import { ascii, concat, equal, hex, sm3, sm3Parts, unhex } from './gm.js';

const MAX_TXS_PER_BLOCK = 10000;
const MAX_PROOF_LEN = 64;

export const DOMAIN = {
  tx: ascii('GMCHAIN-TX-V1\0'),
  headerV1: ascii('GMCHAIN-HEADER-V1\0'),
  headerV2: ascii('GMCHAIN-HEADER-V2\0'),
  validators: ascii('GMCHAIN-VALIDATORS-V1\0'),
  certificate: ascii('GMCHAIN-CERTIFICATE-V1\0'),
  receipt: ascii('GMCHAIN-RECEIPT-V1\0'),
  signedTx: ascii('GMCHAIN-SIGNED-TX-V1\0'),
  vote: ascii('GMCHAIN-VOTE-V1\0'),
  genesis: ascii('GMCHAIN-GENESIS-V1\0'),
};

const TAG = {
  transaction: 0x01, signedTx: 0x02, header: 0x03, block: 0x04, receipt: 0x05, proof: 0x06,
  validatorSet: 0x08, vote: 0x09, certificate: 0x0d, headerV2: 0x0e,
};

export class Reader {
  constructor(bytes) {
    this.b = bytes;
    this.o = 0;
  }
  need(n, field) {
    if (this.o + n > this.b.length) throw new Error(`${field}: truncated`);
  }
  u8(field) {
    this.need(1, field);
    return this.b[this.o++];
  }
  u32(field) {
    this.need(4, field);
    const v = ((this.b[this.o] << 24) >>> 0) + (this.b[this.o + 1] << 16) + (this.b[this.o + 2] << 8) + this.b[this.o + 3];
    this.o += 4;
    return v;
  }
  /** A u64 as a decimal string (exact). */
  u64(field) {
    this.need(8, field);
    const v = BigInt('0x' + hex(this.b.subarray(this.o, this.o + 8)));
    this.o += 8;
    return v.toString();
  }
  fixed(n, field) {
    this.need(n, field);
    const v = this.b.subarray(this.o, this.o + n);
    this.o += n;
    return v;
  }
  bytes(field, max) {
    const n = this.u32(field);
    if (max !== undefined && n > max) throw new Error(`${field}: ${n} bytes, at most ${max}`);
    return this.fixed(n, field);
  }
  text(field, max) {
    return new TextDecoder('utf-8', { fatal: true }).decode(this.bytes(field, max));
  }
  header(field, tag, versions = [1]) {
    const v = this.u8(field);
    if (!versions.includes(v)) throw new Error(`${field}: version ${v}`);
    const t = this.u8(field);
    const tags = Array.isArray(tag) ? tag : [tag];
    if (!tags.includes(t)) throw new Error(`${field}: type tag ${t}`);
    return { version: v, tag: t };
  }
  end(field) {
    if (this.o !== this.b.length) throw new Error(`${field}: trailing bytes`);
  }
}

class Writer {
  constructor() {
    this.parts = [];
  }
  u8(v) {
    this.parts.push(new Uint8Array([v]));
  }
  u32(v) {
    this.parts.push(new Uint8Array([(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]));
  }
  u64(v) {
    this.parts.push(unhex(BigInt(v).toString(16).padStart(16, '0')));
  }
  fixed(b) {
    this.parts.push(b);
  }
  bytes(b) {
    this.u32(b.length);
    this.fixed(b);
  }
  done() {
    return concat(...this.parts);
  }
}

const utf8 = (b) => new TextDecoder('utf-8', { fatal: true }).decode(b);

function readHeader(r) {
  const start = r.o;
  const { tag } = r.header('header', [TAG.header, TAG.headerV2]);
  const h = {
    v2: tag === TAG.headerV2,
    chain_id: utf8(r.bytes('header.chain_id', 64)),
    height: r.u64('header.height'),
    tx_count: r.u32('header.tx_count'),
    parent: r.fixed(32, 'header.parent'),
    tx_root: r.fixed(32, 'header.tx_root'),
    state_root: r.fixed(32, 'header.state_root'),
    receipts_root: r.fixed(32, 'header.receipts_root'),
    timestamp: r.u64('header.timestamp'),
    proposer: r.fixed(32, 'header.proposer'),
  };
  if (h.tx_count > MAX_TXS_PER_BLOCK) throw new Error('header.tx_count: above the limit');
  if (h.v2) {
    h.validator_set = r.fixed(32, 'header.validator_set');
    h.next_validator_set = r.fixed(32, 'header.next_validator_set');
    h.last_commit = r.fixed(32, 'header.last_commit');
  }
  h.bytes = r.b.subarray(start, r.o);
  h.hash = sm3Parts(h.v2 ? DOMAIN.headerV2 : DOMAIN.headerV1, h.bytes);
  return h;
}

export function decodeHeader(bytes) {
  const r = new Reader(bytes);
  const h = readHeader(r);
  r.end('header');
  return h;
}

function readTransaction(r) {
  const start = r.o;
  const { version } = r.header('tx', TAG.transaction, [1, 2]);
  const tx = {
    version,
    chain_id: utf8(r.bytes('tx.chain_id', 64)),
    salt: r.fixed(16, 'tx.salt'),
    expiry: r.u64('tx.expiry'),
  };
  if (version === 2) tx.fuel_limit = r.u64('tx.fuel_limit');
  const sender = r.u8('tx.sender');
  if (sender === 1) tx.sender = { certificate: r.bytes('tx.sender.certificate', 8192) };
  else if (sender === 2) tx.sender = { registered: r.fixed(32, 'tx.sender.registered') };
  else throw new Error(`tx.sender: unknown variant ${sender}`);
  tx.contract = utf8(r.bytes('tx.call.contract', 64));
  tx.method = utf8(r.bytes('tx.call.method', 64));
  const n = r.u32('tx.call.args');
  if (n > 32) throw new Error('tx.call.args: more than 32');
  tx.args = [];
  for (let i = 0; i < n; i++) tx.args.push(r.bytes('tx.call.args[]', 65536));
  tx.bytes = r.b.subarray(start, r.o);
  tx.id = sm3Parts(DOMAIN.tx, tx.bytes);
  return tx;
}

function readSignedTx(r) {
  const start = r.o;
  r.header('signed_tx', TAG.signedTx);
  const tx = readTransaction(r);
  const signature = r.bytes('signed_tx.signature', 72);
  const userId = r.bytes('signed_tx.signer_user_id', 256);
  const bytes = r.b.subarray(start, r.o);
  return { tx, signature, user_id: userId, bytes, entry_hash: sm3Parts(DOMAIN.signedTx, bytes) };
}

export function decodeSignedTx(bytes) {
  const r = new Reader(bytes);
  const s = readSignedTx(r);
  r.end('signed_tx');
  return s;
}

export function decodeBlock(bytes) {
  const r = new Reader(bytes);
  r.header('block', TAG.block);
  const header = readHeader(r);
  const n = r.u32('block.txs');
  if (n !== header.tx_count) throw new Error('block.txs: count differs from header.tx_count');
  const txs = [];
  for (let i = 0; i < n; i++) txs.push(decodeSignedTx(r.bytes('block.txs[]', 131072)));
  r.end('block');
  return { header, txs };
}

export function decodeReceipt(bytes) {
  const r = new Reader(bytes);
  const { version } = r.header('receipt', TAG.receipt, [1, 2]);
  const rc = { version, tx_id: r.fixed(32, 'receipt.tx_id') };
  const status = r.u8('receipt.status');
  if (status === 0) rc.status = { success: true };
  else if (status === 1) rc.status = { success: false, code: r.u32('receipt.status.code'), message: r.text('receipt.status.message', 1024) };
  else throw new Error(`receipt.status: unknown variant ${status}`);
  if (version === 2) rc.fuel_used = r.u64('receipt.fuel_used');
  const n = r.u32('receipt.events');
  if (n > 64) throw new Error('receipt.events: more than 64');
  rc.events = [];
  for (let i = 0; i < n; i++) {
    const e = { contract: utf8(r.bytes('event.contract', 80)), name: utf8(r.bytes('event.name', 64)), topics: [] };
    if (version === 2) {
      const t = r.u32('event.topics');
      if (t > 4) throw new Error('event.topics: more than 4');
      for (let j = 0; j < t; j++) e.topics.push(r.bytes('event.topics[]', 64));
    }
    e.data = r.bytes('event.data', 16384);
    rc.events.push(e);
  }
  if (version === 2) rc.output = r.bytes('receipt.output', 65536);
  r.end('receipt');
  rc.hash = sm3Parts(DOMAIN.receipt, bytes);
  return rc;
}

export function decodeProof(bytes) {
  const r = new Reader(bytes);
  r.header('proof', TAG.proof);
  const n = r.u32('proof.path');
  if (n > MAX_PROOF_LEN) throw new Error('proof.path: too long');
  const path = [];
  for (let i = 0; i < n; i++) path.push(r.fixed(32, 'proof.path[]'));
  r.end('proof');
  return path;
}

export function decodeCertificate(bytes) {
  const r = new Reader(bytes);
  r.header('certificate', TAG.certificate);
  const c = { height: r.u64('certificate.height'), round: r.u32('certificate.round'), block: r.fixed(32, 'certificate.block'), signatures: [] };
  const n = r.u32('certificate.signatures');
  if (n > 256) throw new Error('certificate.signatures: more than 256');
  for (let i = 0; i < n; i++) c.signatures.push({ id: r.fixed(32, 'certificate.id'), signature: r.bytes('certificate.signature', 72) });
  r.end('certificate');
  return c;
}

/** The bytes a validator signs for its precommit of `block` (docs/formats.md §3). */
export function precommitMessage(chainId, height, round, block, validator) {
  const w = new Writer();
  w.fixed(DOMAIN.vote);
  w.u8(1);
  w.u8(TAG.vote);
  w.bytes(ascii(chainId));
  w.u64(height);
  w.u32(round);
  w.u8(2); // precommit
  w.u8(1);
  w.fixed(block);
  w.fixed(validator);
  return w.done();
}

const cmp = (a, b) => {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
};
export const compareBytes = cmp;

/**
 * A validator set from certificates (DER), power 1 each (genesis and governance validators):
 * entries {id, key, power, cert} in ascending id order, its quorum and its hash.
 */
export function validatorSet(certs) {
  const entries = certs.map((der) => {
    const c = parseCertificate(der);
    return { id: sm3(der), key: c.publicKey, power: 1n, cert: c };
  });
  entries.sort((a, b) => cmp(a.id, b.id));
  for (let i = 1; i < entries.length; i++) {
    if (equal(entries[i - 1].id, entries[i].id)) throw new Error('validator set: duplicate validator');
  }
  const w = new Writer();
  w.u8(1);
  w.u8(TAG.validatorSet);
  w.u32(entries.length);
  let total = 0n;
  for (const e of entries) {
    w.fixed(e.id);
    w.fixed(e.key);
    w.u64(e.power);
    total += e.power;
  }
  return { entries, total, quorum: (total * 2n) / 3n + 1n, hash: sm3Parts(DOMAIN.validators, w.done()) };
}

// RFC 6962 §2.1 with SM3.
export const leafHash = (entry) => sm3Parts(new Uint8Array([0]), entry);
const nodeHash = (l, r) => sm3Parts(new Uint8Array([1]), l, r);

/** MTH over the entries (each a 32-byte entry hash). */
export function merkleRoot(entries) {
  if (entries.length === 0) return sm3(new Uint8Array(0));
  if (entries.length === 1) return leafHash(entries[0]);
  let k = 1;
  while (k * 2 < entries.length) k *= 2;
  return nodeHash(merkleRoot(entries.slice(0, k)), merkleRoot(entries.slice(k)));
}

/** RFC 9162 §2.1.3.2: whether `path` proves `entry` at `index` in a tree of `size` under `root`. */
export function verifyInclusion(root, entry, index, size, path) {
  // Positions and sizes are u32 in the formats: anything else is not a proof (review 19).
  const u32 = (v) => Number.isSafeInteger(v) && v >= 0 && v <= 0xffffffff;
  if (!u32(index) || !u32(size) || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leafHash(entry);
  for (const p of path) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(r, root);
}

// --- DER and X.509 (read only what is shown; nothing here validates a certificate) ---

function derNode(b, o) {
  if (o + 2 > b.length) throw new Error('DER: truncated');
  const tag = b[o];
  let len = b[o + 1];
  let h = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || o + 2 + n > b.length) throw new Error('DER: bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[o + 2 + i];
    h += n;
  }
  if (o + h + len > b.length) throw new Error('DER: truncated');
  return { tag, start: o, body: o + h, end: o + h + len, bytes: b.subarray(o + h, o + h + len) };
}

function derChildren(b, node) {
  const out = [];
  let o = node.body;
  while (o < node.end) {
    const c = derNode(b, o);
    out.push(c);
    o = c.end;
  }
  return out;
}

function oid(bytes) {
  const parts = [Math.floor(bytes[0] / 40), bytes[0] % 40];
  let v = 0;
  for (let i = 1; i < bytes.length; i++) {
    v = v * 128 + (bytes[i] & 0x7f);
    if (!(bytes[i] & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

const ATTR = { '2.5.4.3': 'CN', '2.5.4.6': 'C', '2.5.4.7': 'L', '2.5.4.8': 'ST', '2.5.4.10': 'O', '2.5.4.11': 'OU', '2.5.4.5': 'serialNumber' };

function name(b, node) {
  const rdns = [];
  const fields = {};
  for (const set of derChildren(b, node)) {
    for (const atv of derChildren(b, set)) {
      const [t, v] = derChildren(b, atv);
      const key = ATTR[oid(t.bytes)] || oid(t.bytes);
      const text = v.tag === 0x1e
        ? String.fromCharCode(...Array.from({ length: v.bytes.length / 2 }, (_, i) => (v.bytes[2 * i] << 8) | v.bytes[2 * i + 1]))
        : new TextDecoder().decode(v.bytes);
      rdns.push(`${key}=${text}`);
      if (!(key in fields)) fields[key] = text;
    }
  }
  // RFC 4514 order (the last RDN first), as pki's subject() prints it.
  return { text: rdns.reverse().join(','), fields };
}

function time(b, node) {
  const s = new TextDecoder().decode(node.bytes);
  const full = node.tag === 0x17 ? (Number(s.slice(0, 2)) >= 50 ? '19' : '20') + s : s;
  return Date.UTC(+full.slice(0, 4), +full.slice(4, 6) - 1, +full.slice(6, 8), +full.slice(8, 10), +full.slice(10, 12), +full.slice(12, 14)) / 1000;
}

/**
 * Reads an X.509 certificate's subject, issuer, serial, validity and SM2 public key (the
 * SubjectPublicKeyInfo's point). Does not check its signature, issuer, dates or extensions.
 */
export function parseCertificate(der) {
  const top = derNode(der, 0);
  if (top.tag !== 0x30 || top.end !== der.length) throw new Error('certificate: not a DER SEQUENCE');
  const [tbs] = derChildren(der, top);
  let f = derChildren(der, tbs);
  if (f[0].tag === 0xa0) f = f.slice(1);
  const [serial, , issuer, validity, subject, spki] = f;
  const [nb, na] = derChildren(der, validity);
  const [alg, bits] = derChildren(der, spki);
  const algs = derChildren(der, alg).map((x) => oid(x.bytes));
  if (bits.tag !== 0x03 || bits.bytes[0] !== 0) throw new Error('certificate: public key is not a BIT STRING');
  const key = bits.bytes.subarray(1);
  if (key.length !== 65 || key[0] !== 4) throw new Error('certificate: not an uncompressed EC point');
  const sub = name(der, subject);
  return {
    subject: sub.text,
    organisation: sub.fields.O || '',
    commonName: sub.fields.CN || '',
    issuer: name(der, issuer).text,
    serial: hex(serial.bytes),
    notBefore: time(der, nb),
    notAfter: time(der, na),
    sm2: algs.includes('1.2.156.10197.1.301'),
    publicKey: key,
  };
}

/** The DER of every PEM block of `label` in `text`. */
export function pemBlocks(text, label) {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  const out = [];
  for (const m of text.matchAll(re)) {
    const bin = atob(m[1].replace(/[\r\n\s]/g, ''));
    out.push(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  }
  return out;
}

export function pem(text, label) {
  const blocks = pemBlocks(text, label);
  if (blocks.length !== 1) throw new Error(`expected one PEM ${label}`);
  return blocks[0];
}

// --- The genesis file (docs/execution.md §2) ---

const POLICY = /^(majority|all|at-least:([0-9]+))$/;

/**
 * Reads a genesis file's JSON text: chain ID, organisations (CA certificates), validators,
 * and `hash`, the genesis hash `gmchain node init` prints (SM3 over the canonical encoding,
 * §2.3, not over the JSON text).
 */
export function readGenesis(text) {
  const g = JSON.parse(text);
  const format = g.format === undefined ? 1 : g.format;
  if (![1, 2, 3].includes(format)) throw new Error(`genesis: format ${format}`);
  const p = g.params || {};
  const params = {
    expiry_window: p.expiry_window ?? 100,
    max_txs_per_block: p.max_txs_per_block ?? 2000,
    max_tx_size: p.max_tx_size ?? 131072,
    max_fuel_per_tx: p.max_fuel_per_tx ?? 100000000,
    max_fuel_per_block: p.max_fuel_per_block ?? 2000000000,
  };
  const orgs = g.organisations.map((o) => ({
    name: o.name,
    ca: pem(o.ca_cert, 'CERTIFICATE'),
    crl: pem(o.crl, 'X509 CRL'),
    sponsors: o.sponsors || [],
  }));
  const validators = g.validators.map((v) => ({ name: v.name, cert: pem(v.cert, 'CERTIFICATE') }));
  const w = new Writer();
  w.u8(format);
  w.bytes(ascii(g.chain_id));
  w.u64(g.timestamp_ms);
  if (format !== 1) w.u8(g.test_chain ? 1 : 0);
  w.u64(params.expiry_window);
  w.u32(params.max_txs_per_block);
  w.u64(params.max_tx_size);
  if (format >= 3) {
    w.u64(params.max_fuel_per_tx);
    w.u64(params.max_fuel_per_block);
  }
  w.u32(orgs.length);
  for (const o of orgs) {
    w.bytes(ascii(o.name));
    w.bytes(o.ca);
    w.bytes(o.crl);
    if (format !== 1) {
      w.u32(o.sponsors.length);
      for (const s of o.sponsors) w.bytes(ascii(s));
    }
  }
  w.u32(validators.length);
  for (const v of validators) {
    w.bytes(ascii(v.name));
    w.bytes(v.cert);
  }
  const gov = Object.entries(g.governance || {}).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  if (gov.length > 0 || g.supervision) {
    w.u32(gov.length);
    for (const [kind, text] of gov) {
      const m = POLICY.exec(text);
      if (!m) throw new Error(`genesis: governance.${kind}: policy ${text}`);
      w.bytes(ascii(kind));
      w.bytes(ascii(m[2] !== undefined ? `at-least:${Number(m[2])}` : m[1]));
    }
  }
  if (g.supervision) {
    w.u8(1);
    w.bytes(ascii(g.supervision.supervisor));
    w.bytes(ascii(g.supervision.freeze_policy || 'supervisor'));
    const escrow = (g.supervision.escrow || []).map((e) => pem(e, 'CERTIFICATE'));
    w.u32(escrow.length);
    for (const c of escrow) w.bytes(c);
  }
  return {
    format,
    chain_id: g.chain_id,
    timestamp_ms: g.timestamp_ms,
    test_chain: !!g.test_chain,
    params,
    organisations: orgs,
    validators,
    supervision: g.supervision || null,
    hash: sm3Parts(DOMAIN.genesis, w.done()),
  };
}

export { hex, unhex, equal, concat };
