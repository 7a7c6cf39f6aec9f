// In-browser verification of a receipt (docs/receipts.md §3), mirroring crates/receipt for
// the steps the console runs: the chain, the chain of validator-set changes (each certified by
// the set before it), the commit certificate's SM2 precommits against the set of the
// receipt's height (quorum > 2/3 of the power), the SM3 Merkle proofs of the transaction and
// its result under the header's roots, the signer's certificate as the transaction's sender and
// its SM2 signature, and the anchored digest against the dropped document.
//
// Deliberately absent, and said on the page: the signer's X.509 chain, its CRLs and the anchor
// proofs (step 4c, 4c'), and the check that each set change is explained by its causes (part of
// step 2s). `gmchain receipt verify` runs every step.

import { DEFAULT_USER_ID, equal, hex, sm2Verify, sm3, unhex } from './gm.js';
import {
  decodeCertificate, decodeHeader, decodeProof, decodeReceipt, decodeSignedTx, parseCertificate,
  pem, pemBlocks, precommitMessage, validatorSet, verifyInclusion,
} from './codec.js';

export class Failure extends Error {
  constructor(step, detail) {
    super(`${step}: ${detail}`);
    this.step = step;
    this.detail = detail;
  }
}

/**
 * Checks that `certificate` decides `header` under `set` (CommitCertificate::verify): its
 * height and block are the header's, its signers distinct members in ascending id order, each
 * precommit signature verifies, and their power is a quorum. Returns the signers' entries.
 */
export function checkCommit(chainId, header, certificate, set) {
  if (certificate.height !== header.height || !equal(certificate.block, header.hash)) {
    throw new Failure('certificate', 'the certificate is for another block or height');
  }
  let power = 0n;
  let last = null;
  const signers = [];
  for (const { id, signature } of certificate.signatures) {
    if (last && hex(last) >= hex(id)) throw new Failure('certificate', 'signers not in ascending order');
    last = id;
    const v = set.entries.find((e) => equal(e.id, id));
    if (!v) throw new Failure('certificate', `signer ${hex(id)} is not a validator of height ${header.height}`);
    const msg = precommitMessage(chainId, header.height, certificate.round, header.hash, id);
    if (!sm2Verify(v.key, DEFAULT_USER_ID, msg, signature)) {
      throw new Failure('certificate', `the precommit signature of ${v.cert.subject} does not verify`);
    }
    power += v.power;
    signers.push(v);
  }
  if (power < set.quorum) {
    throw new Failure('certificate', `power ${power} of ${set.total}, a quorum is ${set.quorum}`);
  }
  return signers;
}

const field = (obj, name, type) => {
  if (typeof obj[name] !== type) throw new Failure('file', `${name}: missing or not a ${type}`);
  return obj[name];
};

function hexField(obj, name, decode) {
  try {
    return decode(unhex(field(obj, name, 'string')));
  } catch (e) {
    if (e instanceof Failure) throw e;
    throw new Failure('file', `${name}: ${e.message}`);
  }
}

/**
 * Verifies receipt JSON `text` against `genesis` (codec.readGenesis) and, when given, the
 * document's SM3 `digest`. Returns {steps, result} where steps lists what was checked;
 * throws Failure naming the step that failed.
 */
export function verifyReceipt(text, genesis, digest) {
  const steps = [];
  let r;
  try {
    r = JSON.parse(text);
  } catch (e) {
    throw new Failure('file', `not JSON: ${e.message}`);
  }
  if (r.format !== 'gmchain-receipt') throw new Failure('file', 'not a gmchain receipt');
  if (r.version !== 2) throw new Failure('file', `version ${r.version}: the console verifies version 2; use gmchain receipt verify`);
  const header = hexField(r, 'header', decodeHeader);
  const certificate = hexField(r, 'certificate', decodeCertificate);
  const stx = hexField(r, 'tx', decodeSignedTx);
  const txProof = hexField(r, 'tx_proof', decodeProof);
  const receipt = hexField(r, 'receipt', decodeReceipt);
  const receiptProof = hexField(r, 'receipt_proof', decodeProof);
  const position = field(r, 'position', 'number');
  if (!Array.isArray(r.chain) || r.chain.length < 1) throw new Failure('signer', 'the file carries no signer certificate');

  // 1. Chain.
  if (header.chain_id !== genesis.chain_id || stx.tx.chain_id !== genesis.chain_id) {
    throw new Failure('chain', `the receipt is of chain ${header.chain_id}, the genesis file of ${genesis.chain_id}`);
  }
  steps.push('chain');

  // 2s. The validator sets from genesis to the receipt's height.
  let set = validatorSet(genesis.validators.map((v) => v.cert));
  const known = [...set.entries];
  let lastHeight = 0n;
  for (const [i, c] of (r.validator_changes || []).entries()) {
    const h = hexField(c, 'header', decodeHeader);
    const cert = hexField(c, 'certificate', decodeCertificate);
    const hh = BigInt(h.height);
    if (!h.v2 || hh <= lastHeight || hh >= BigInt(header.height)) {
      throw new Failure('validator set', `change ${i}: its block is not between the previous change and the receipt's`);
    }
    if (!equal(h.validator_set, set.hash)) throw new Failure('validator set', `change ${i}: its block names another set`);
    checkCommit(genesis.chain_id, h, cert, set);
    const next = validatorSet(c.validators.map((p) => pem(p, 'CERTIFICATE')));
    if (!equal(h.next_validator_set, next.hash) || equal(next.hash, set.hash)) {
      throw new Failure('validator set', `change ${i}: the carried set is not the block's next set`);
    }
    set = next;
    known.push(...next.entries);
    lastHeight = hh;
  }
  if (r.validator_changes) steps.push('validator set changes');

  // 2. The certificate.
  if (!header.v2) throw new Failure('certificate', 'a version-2 receipt needs a v2 header');
  if (!equal(header.validator_set, set.hash)) {
    throw new Failure('validator set', 'the header names a validator set the genesis file (and the carried changes) do not give');
  }
  const signers = checkCommit(genesis.chain_id, header, certificate, set);
  const proposer = known.find((v) => equal(v.id, header.proposer));
  if (!proposer) throw new Failure('certificate', 'the proposer is not a validator');
  steps.push('certificate');

  // 3. Inclusion and result.
  if (!verifyInclusion(header.tx_root, stx.entry_hash, position, header.tx_count, txProof)) {
    throw new Failure('tx proof', `the transaction is not at position ${position} under the header's tx_root`);
  }
  steps.push('tx proof');
  if (!verifyInclusion(header.receipts_root, receipt.hash, position, header.tx_count, receiptProof)) {
    throw new Failure('receipt proof', `the result is not at position ${position} under the header's receipts_root`);
  }
  steps.push('receipt proof');
  if (!equal(receipt.tx_id, stx.tx.id)) throw new Failure('result', 'the result is of another transaction');
  if (!receipt.status.success) throw new Failure('result', `the transaction failed: ${receipt.status.message}`);
  steps.push('result');

  // 4. Signer (the certificate as sender, and the signature; not its chain).
  const leafDer = pem(r.chain[0], 'CERTIFICATE');
  const s = stx.tx.sender;
  if (s.certificate ? !equal(s.certificate, leafDer) : !equal(s.registered, sm3(leafDer))) {
    throw new Failure('signer', 'the first certificate is not the transaction\'s sender');
  }
  const leaf = parseCertificate(leafDer);
  if (!sm2Verify(leaf.publicKey, stx.user_id, stx.tx.id, stx.signature)) {
    throw new Failure('signer', 'the transaction\'s SM2 signature does not verify with the signer\'s key');
  }
  steps.push('signature');

  // 5. Document.
  const anchored = stx.tx.contract === 'attestation' && stx.tx.method === 'anchor' && stx.tx.args[0]?.length === 32
    ? stx.tx.args[0]
    : null;
  if (digest) {
    if (!anchored) throw new Failure('document', 'the transaction is not an attestation');
    if (!equal(anchored, digest)) {
      throw new Failure('document', `the document's SM3 is ${hex(digest)}, the receipt anchors ${hex(anchored)}`);
    }
    steps.push('document');
  }
  return {
    steps,
    result: {
      tx_id: hex(stx.tx.id),
      height: header.height,
      block: hex(header.hash),
      timestamp_ms: header.timestamp,
      signer: leaf.subject,
      organisation: leaf.organisation,
      proposer: proposer.cert.subject,
      certified_by: signers.map((v) => v.cert.subject),
      set_changes: (r.validator_changes || []).length,
      call: `${stx.tx.contract}.${stx.tx.method}`,
      anchored: anchored ? hex(anchored) : null,
      intermediates: pemBlocks(r.chain.slice(1).join('\n'), 'CERTIFICATE').length,
    },
  };
}
