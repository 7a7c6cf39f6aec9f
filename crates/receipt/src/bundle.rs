//! The receipt bundle: built by a node from a committed block, verified offline by anyone.

use crate::error::{BuildProblem, ReceiptError};
use crypto::Digest;
use crypto_sm::sm3::sm3;
use pki::{
    Certificate, Consortium, ConsortiumAnchor, Crl, Role, Sponsorship, TrustAnchor, UnixTime,
};
use types::merkle::{self, InclusionProof};
use types::{
    Block, BlockHash, BlockHeader, BlockSeal, ChainId, CommitCertificate, Height, Receipt, Sender,
    SignedTx, Status, TxId, ValidatorEntry, ValidatorSet,
};

/// What proves the block final: a v1 chain's seal (the single validator's signature over the
/// header's hash) or a v2 chain's commit certificate (a quorum of precommits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finality {
    /// A version-1 receipt: the proposer's seal.
    Seal(BlockSeal),
    /// A version-2 receipt: the block's commit certificate.
    Certificate(CommitCertificate),
}

impl Finality {
    /// The block hash it finalises.
    pub fn block_hash(&self) -> BlockHash {
        match self {
            Finality::Seal(s) => s.block_hash,
            Finality::Certificate(c) => c.block,
        }
    }
}

impl TrustContext {
    /// The validator set the genesis file gives: each validator's certificate fingerprint and
    /// key, power 1 (as `execution::Genesis::validator_set`).
    pub fn validator_set(&self) -> Result<ValidatorSet, types::ValidatorSetError> {
        set_of(&self.validators)
    }
}

/// A change of the validator set between genesis and a receipt's block, certified by the set
/// before it: the last block that set decided, whose header names the next set
/// (`next_validator_set`), with its commit certificate and the new set's certificates, and
/// the transactions that caused the change (a governance vote, a CRL update), each with its
/// block's header, certificate and inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetChange {
    /// The last block of the set before the change.
    pub header: BlockHeader,
    /// Its commit certificate, by the set before.
    pub certificate: CommitCertificate,
    /// The node-signing certificates of the set after the change.
    pub validators: Vec<Certificate>,
    /// The transactions that caused it.
    pub causes: Vec<Cause>,
}

/// A transaction that caused a validator-set change, proven in its block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// The header of the block that holds it.
    pub header: BlockHeader,
    /// That block's commit certificate.
    pub certificate: CommitCertificate,
    /// Its index in the block.
    pub position: u32,
    /// The transaction.
    pub tx: SignedTx,
    /// The audit path of its entry hash under `header.tx_root`.
    pub tx_proof: InclusionProof,
}

/// The trust anchor of a founding organisation that the chain's governance registered after
/// genesis (`org-register`), proven in the state of the receipt's block: the organisation's
/// record as the chain stores it (`identity/org/<name>`, docs/execution.md §3), which carries
/// its root CA certificate, and the Merkle proof of that value under the certified header's
/// `state_root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorProof {
    /// The organisation record (the state value).
    pub record: Vec<u8>,
    /// Its proof under the receipt header's `state_root`.
    pub proof: state::Proof,
}

/// What a verifier needs of an organisation record: the format of the `execution` crate's
/// `OrgRecord` (version 1, tag 0x81: name, CA certificate DER, registration height, sponsor
/// name, empty for a founding organisation, removal height, 0 for none, former CAs).
struct OrgAnchor {
    name: String,
    ca: Certificate,
    registered_at: u64,
    sponsor: String,
    removed_at: u64,
}

/// The record tag of an organisation (`execution`'s records).
const ORG_RECORD_TAG: u8 = 0x81;
/// The longest organisation name of a record, in bytes.
const MAX_ORG_NAME_BYTES: usize = 256;
/// The most former CAs a record keeps.
const MAX_FORMER_CAS: usize = 8;

fn decode_org_record(bytes: &[u8]) -> Result<OrgAnchor, String> {
    use types::codec::Reader;
    let text = |b: &[u8], what: &str| {
        String::from_utf8(b.to_vec()).map_err(|_| format!("the record's {what} is not UTF-8"))
    };
    let e = |e: types::DecodeError| format!("the organisation record does not decode: {e}");
    let mut r = Reader::new(bytes);
    r.header("org.header", ORG_RECORD_TAG).map_err(e)?;
    let name = text(r.bytes("org.name", MAX_ORG_NAME_BYTES).map_err(e)?, "name")?;
    let ca = Certificate::from_der(r.bytes("org.ca_cert", pki::MAX_CERT_LEN).map_err(e)?)
        .map_err(|x| format!("the record's CA certificate: {x}"))?;
    let registered_at = r.u64("org.registered_at").map_err(e)?;
    let sponsor = text(
        r.bytes("org.sponsor", MAX_ORG_NAME_BYTES).map_err(e)?,
        "sponsor",
    )?;
    let removed_at = r.u64("org.removed_at").map_err(e)?;
    let n = r.len("org.former_cas", MAX_FORMER_CAS).map_err(e)?;
    for _ in 0..n {
        r.bytes("org.former_cas", pki::MAX_CERT_LEN).map_err(e)?;
    }
    r.finish().map_err(e)?;
    Ok(OrgAnchor {
        name,
        ca,
        registered_at,
        sponsor,
        removed_at,
    })
}

/// The state key of organisation `name`'s record.
pub fn org_record_key(name: &str) -> Vec<u8> {
    let mut k = b"identity/org/".to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// The set of validators given by their certificates, power 1 (as the chain's rule makes it).
fn set_of(validators: &[Certificate]) -> Result<ValidatorSet, types::ValidatorSetError> {
    ValidatorSet::new(
        validators
            .iter()
            .map(|c| ValidatorEntry {
                id: c.fingerprint(),
                public_key: c.public_key(),
                power: 1,
            })
            .collect(),
    )
}

/// The contract and method of a document anchoring: `args[0]` is the document's SM3 digest,
/// `args[1]` its kind, `args[2]` metadata, `args[3]` a pointer to where it is kept.
pub const ATTESTATION_CONTRACT: &str = "attestation";
/// See [`ATTESTATION_CONTRACT`].
pub const ATTESTATION_METHOD: &str = "anchor";

/// What a verifier trusts, all of it from the chain's genesis file.
#[derive(Debug, Clone)]
pub struct TrustContext {
    /// The chain's ID.
    pub chain_id: ChainId,
    /// The validators' signing certificates: a seal counts only if made by one of them. They
    /// are trusted as listed (no chain validation, no revocation).
    pub validators: Vec<Certificate>,
    /// The consortium: the founding organisations' CA certificates, the only trust anchors of
    /// signers' certificate chains, and the organisations each sponsors. The node admits
    /// signers with the same [`Consortium::validate`], so it never commits a transaction whose
    /// receipt this verifier would refuse.
    pub consortium: Consortium,
}

/// Everything needed to check, offline, that a transaction was committed and succeeded: the
/// transaction, its Merkle path to the header, its result and that result's path, the header,
/// the block seal, and the signer's certificate chain with the CRLs to judge it.
///
/// A bundle is only data: construct it with [`ReceiptBundle::build`] or
/// [`ReceiptBundle::from_json`], and believe it only after [`ReceiptBundle::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptBundle {
    /// The signed transaction.
    pub tx: SignedTx,
    /// Its index in the block (0-based), in the transactions tree and the receipts tree alike.
    pub position: u32,
    /// The audit path of the transaction's entry hash under `header.tx_root`.
    pub tx_proof: InclusionProof,
    /// The transaction's execution result.
    pub receipt: Receipt,
    /// The audit path of the receipt hash under `header.receipts_root`.
    pub receipt_proof: InclusionProof,
    /// The header of the block that holds the transaction.
    pub header: BlockHeader,
    /// What proves the block final: the commit certificate (v2) or the seal (v1).
    pub finality: Finality,
    /// The signer's certificate first, then intermediates (not the trust anchor).
    pub chain: Vec<Certificate>,
    /// The CRLs recorded on chain at that height for each issuer in the chain.
    pub crls: Vec<Crl>,
    /// The validator-set changes from genesis to the block, in height order (v2; empty when
    /// the genesis set decided the block).
    pub set_changes: Vec<SetChange>,
    /// The anchor of the signer's chain when it is a founding organisation registered by
    /// governance after genesis, proven in the block's state (v2; empty when the chain ends
    /// at a genesis CA).
    pub anchor_proofs: Vec<AnchorProof>,
}

/// A receipt that passed every check of [`ReceiptBundle::verify`]; nothing else constructs one
/// (it is `#[non_exhaustive]`, so no struct literal outside this crate).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedReceipt {
    /// The transaction's ID.
    pub tx_id: TxId,
    /// The height of the block that holds it.
    pub height: Height,
    /// That block's hash.
    pub block_hash: BlockHash,
    /// The block's timestamp as its proposer stated it, in ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// The signer's certificate subject (RFC 4514).
    pub signer_subject: String,
    /// The organisation (O) of the signer's certificate, as its validated chain certifies it.
    pub organisation: String,
    /// The subject of the validator that proposed (v2) or sealed (v1) the block.
    pub validator: String,
    /// The subjects of the validators whose precommits are in the certificate (v2; for a v1
    /// receipt, the sealing validator).
    pub certified_by: Vec<String>,
    /// The validator-set changes the receipt followed from genesis: the first height each new
    /// set decided.
    pub set_changes: Vec<Height>,
    /// The call, `contract.method` (`attestation.anchor` for a document anchoring).
    pub call: String,
    /// The anchored document's SM3 digest, when a document was given and matched.
    pub document_digest: Option<Digest>,
    /// The digest the transaction anchors (`args[0]` of `attestation.anchor`), whether or not
    /// a document was given; `None` for any other call.
    pub anchored_digest: Option<Digest>,
    /// The fuel the transaction used (a version 2 receipt); `None` for a version 1 receipt.
    pub fuel_used: Option<u64>,
    /// The call's output (a WASM contract's return data; empty for the built-ins).
    pub output: Vec<u8>,
    /// The events the transaction emitted, with their topics, as the verified receipt holds
    /// them: the receipt's hash is in the block's receipts root, which the certified header
    /// commits to, so each event is proven as emitted by that transaction in that block.
    pub events: Vec<types::Event>,
}

/// A header with what certifies it: its commit certificate and the validator-set changes from
/// genesis to it (each certified by the set before), as a receipt carries them. An audit
/// report carries one for each height whose state root it proves values under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifiedHeader {
    /// The header.
    pub header: BlockHeader,
    /// Its commit certificate.
    pub certificate: CommitCertificate,
    /// The validator-set changes from genesis to the header's block, in height order.
    pub set_changes: Vec<SetChange>,
}

impl CertifiedHeader {
    /// Checks that the header is of the trusted chain and that its certificate is a quorum of
    /// the validator set of its height, followed from the genesis set through the set changes.
    /// Returns the proposer's subject and the signers' subjects.
    pub fn verify(&self, trust: &TrustContext) -> Result<(String, Vec<String>), ReceiptError> {
        if self.header.chain_id != trust.chain_id {
            return Err(ReceiptError::WrongChain {
                part: "header",
                found: self.header.chain_id.to_string(),
                expected: trust.chain_id.to_string(),
            });
        }
        Certified {
            header: &self.header,
            set_changes: &self.set_changes,
        }
        .check_certificate(&self.certificate, trust)
    }
}

/// A header and the set changes before it, borrowed: what step 2 of a receipt's verification
/// and [`CertifiedHeader::verify`] share.
struct Certified<'a> {
    header: &'a BlockHeader,
    set_changes: &'a [SetChange],
}

impl Certified<'_> {
    /// Step 2 (v2): returns the proposer's subject and the signers' subjects.
    fn check_certificate(
        &self,
        cert: &CommitCertificate,
        trust: &TrustContext,
    ) -> Result<(String, Vec<String>), ReceiptError> {
        let Some(links) = self.header.consensus else {
            return Err(ReceiptError::FinalityFormat {
                header_version: 1,
                finality: "commit certificate",
                expected: 2,
            });
        };
        let genesis = trust
            .validator_set()
            .map_err(|_| ReceiptError::ValidatorSet {
                header: links.validator_set,
                genesis: Digest([0; 32]),
            })?;
        let (changes, known) = self.follow_set_changes(&genesis, trust)?;
        let set = set_at(&genesis, &changes, self.header.height);
        if links.validator_set != set.hash() {
            return Err(ReceiptError::ValidatorSet {
                header: links.validator_set,
                genesis: set.hash(),
            });
        }
        cert.verify(
            &trust.chain_id,
            self.header.height,
            &self.header.hash(),
            set,
        )
        .map_err(|reason| ReceiptError::Certificate { reason })?;
        let subject = |id: &Digest| {
            known
                .iter()
                .find(|v| v.fingerprint() == *id)
                .map(Certificate::subject)
        };
        let proposer = subject(&self.header.proposer).ok_or(ReceiptError::Certificate {
            reason: types::CertificateError::UnknownSigner {
                id: self.header.proposer,
                height: self.header.height,
            },
        })?;
        let signers = cert
            .signatures
            .iter()
            .filter_map(|(id, _)| subject(id))
            .collect();
        Ok((proposer, signers))
    }

    /// Step 2 (v2, before the block's certificate): follows the validator-set changes from
    /// the genesis set, each certified by the set before it, and returns the sets with the
    /// first height each decides, and every validator certificate met (genesis first).
    fn follow_set_changes(
        &self,
        genesis: &ValidatorSet,
        trust: &TrustContext,
    ) -> Result<(SetsFrom, Vec<Certificate>), ReceiptError> {
        let mut sets: Vec<(Height, ValidatorSet)> = Vec::new();
        let mut known = trust.validators.clone();
        let mut last = Height(0);
        for (index, change) in self.set_changes.iter().enumerate() {
            let bad = |reason: String| ReceiptError::SetChange { index, reason };
            let h = change.header.height;
            if h <= last || h >= self.header.height {
                return Err(bad(format!(
                    "its block {} is not after the previous change's ({}) and before the receipt's block {}",
                    h.0, last.0, self.header.height.0
                )));
            }
            last = h;
            let before = set_at(genesis, &sets, h).clone();
            let links = change
                .header
                .consensus
                .ok_or_else(|| bad("its header is version 1".into()))?;
            if links.validator_set != before.hash() {
                return Err(bad(format!(
                    "its block names validator set {}, not the set {} that the chain had then",
                    links.validator_set,
                    before.hash()
                )));
            }
            change
                .certificate
                .verify(&trust.chain_id, h, &change.header.hash(), &before)
                .map_err(|e| bad(format!("its block's certificate: {e}")))?;
            let after = set_of(&change.validators).map_err(|e| bad(format!("the new set: {e}")))?;
            if links.next_validator_set != after.hash() || after.hash() == before.hash() {
                return Err(bad(format!(
                    "its block names {} as the next set, not the carried set {} (or the set did not change)",
                    links.next_validator_set,
                    after.hash()
                )));
            }
            for (i, cause) in change.causes.iter().enumerate() {
                let ch = cause.header.height;
                let at = set_at(genesis, &sets, ch);
                let certified = ch <= h
                    && cause.header.chain_id == trust.chain_id
                    && cause.header.consensus.map(|l| l.validator_set) == Some(at.hash())
                    && cause
                        .certificate
                        .verify(&trust.chain_id, ch, &cause.header.hash(), at)
                        .is_ok();
                if !certified {
                    return Err(bad(format!(
                        "cause {i}: its block {} is not certified by the set of that height",
                        ch.0
                    )));
                }
                merkle::verify(
                    &cause.header.tx_root,
                    cause.tx.entry_hash().as_bytes(),
                    u64::from(cause.position),
                    u64::from(cause.header.tx_count),
                    &cause.tx_proof,
                )
                .map_err(|p| {
                    bad(format!(
                        "cause {i}: the transaction is not in its block: {p}"
                    ))
                })?;
            }
            bind_causes(change, &before, &after, &known).map_err(bad)?;
            known.extend(change.validators.iter().cloned());
            sets.push((h.next().unwrap_or(h), after));
        }
        Ok((sets, known))
    }
}

impl ReceiptBundle {
    /// Builds the receipt of the transaction at `position` of `block`, whose receipts are
    /// `receipts` (one per transaction, in block order), finalised by `finality`, signed by the holder
    /// of `chain[0]` (then intermediates), with the issuers' CRLs `crls`.
    ///
    /// Computes both inclusion proofs from the block, and refuses inputs that disagree with
    /// the header (tx count, roots), a receipt for another transaction, or a seal over another
    /// block: a node never hands out a receipt it knows to be false. It does not check
    /// signatures or certificates; [`ReceiptBundle::verify`] does.
    pub fn build(
        block: &Block,
        receipts: &[Receipt],
        position: u32,
        finality: Finality,
        chain: Vec<Certificate>,
        crls: Vec<Crl>,
    ) -> Result<ReceiptBundle, ReceiptError> {
        let build = |problem| ReceiptError::Build { problem };
        let header = &block.header;
        let count = block.txs.len();
        if usize::try_from(header.tx_count).ok() != Some(count) {
            return Err(build(BuildProblem::TxCount {
                declared: header.tx_count,
                count,
            }));
        }
        if receipts.len() != count {
            return Err(build(BuildProblem::ReceiptCount {
                receipts: receipts.len(),
                txs: count,
            }));
        }
        let out_of_range = || build(BuildProblem::PositionOutOfRange { position, count });
        let index = usize::try_from(position).map_err(|_| out_of_range())?;
        let (Some(tx), Some(receipt)) = (block.txs.get(index), receipts.get(index)) else {
            return Err(out_of_range());
        };
        // The leaves exactly as Block::tx_root and types::receipts_root make them: the leaf
        // hash of each 32-byte entry.
        let tx_leaves: Vec<Digest> = block
            .txs
            .iter()
            .map(|t| merkle::leaf_hash(t.entry_hash().as_bytes()))
            .collect();
        let receipt_leaves: Vec<Digest> = receipts
            .iter()
            .map(|r| merkle::leaf_hash(r.receipt_hash().as_bytes()))
            .collect();
        if merkle::root_of_leaf_hashes(&tx_leaves) != header.tx_root {
            return Err(build(BuildProblem::TxRoot));
        }
        if merkle::root_of_leaf_hashes(&receipt_leaves) != header.receipts_root {
            return Err(build(BuildProblem::ReceiptsRoot));
        }
        if receipt.tx_id != tx.tx_id() {
            return Err(build(BuildProblem::ReceiptForOtherTx {
                receipt_tx: receipt.tx_id,
                tx: tx.tx_id(),
            }));
        }
        let block_hash = header.hash();
        if finality.block_hash() != block_hash {
            return Err(build(BuildProblem::SealForOtherBlock {
                sealed: finality.block_hash(),
                block: block_hash,
            }));
        }
        let tx_proof = merkle::prove(&tx_leaves, index).ok_or_else(out_of_range)?;
        let receipt_proof = merkle::prove(&receipt_leaves, index).ok_or_else(out_of_range)?;
        Ok(ReceiptBundle {
            tx: tx.clone(),
            position,
            tx_proof,
            receipt: receipt.clone(),
            receipt_proof,
            header: header.clone(),
            finality,
            chain,
            crls,
            set_changes: Vec::new(),
            anchor_proofs: Vec::new(),
        })
    }

    /// Verifies the receipt against `trust` (the genesis file) alone, and, if `document` is
    /// given, that the transaction anchored exactly that document. The checks, in order
    /// (docs/receipts.md §3), each with its own error:
    ///
    /// 1. the header and the transaction are for `trust.chain_id`;
    /// 2. finality: for a v2 header, the header names the genesis validator set and its
    ///    commit certificate is a quorum of that set's precommits for the header's hash, and
    ///    the proposer is a genesis validator; for a v1 header, the seal's signer is a genesis
    ///    validator, its signature verifies with that validator's key, it is over the header's
    ///    hash, and its signer is the header's proposer;
    /// 3. the transaction's entry hash is at `position` under `header.tx_root`, and the
    ///    receipt's hash at `position` under `header.receipts_root`, both in a tree of
    ///    `header.tx_count` leaves; the receipt is for this transaction and succeeded;
    /// 4. the first certificate is the transaction's sender, its chain validates to a genesis
    ///    CA, or to the CA of an anchor proof (an organisation record proven under the
    ///    certified header's `state_root`: founding, registered before the block, not removed
    ///    before it), at the block's time with the bundle's CRLs, and the transaction's
    ///    signature verifies with its key;
    /// 5. with a document: the call is `attestation.anchor` and `args[0]` is SM3(document).
    pub fn verify(
        &self,
        trust: &TrustContext,
        document: Option<&[u8]>,
    ) -> Result<VerifiedReceipt, ReceiptError> {
        // 1. Chain.
        for (part, found) in [
            ("header", &self.header.chain_id),
            ("transaction", &self.tx.tx.chain_id),
        ] {
            if *found != trust.chain_id {
                return Err(ReceiptError::WrongChain {
                    part,
                    found: found.to_string(),
                    expected: trust.chain_id.to_string(),
                });
            }
        }

        // 2. Finality.
        let (validator, certified_by) = match &self.finality {
            Finality::Seal(seal) => {
                let v = self.check_seal(seal, trust)?;
                (v.subject(), vec![v.subject()])
            }
            Finality::Certificate(cert) => Certified {
                header: &self.header,
                set_changes: &self.set_changes,
            }
            .check_certificate(cert, trust)?,
        };

        // 3. Inclusion and result.
        let tx_id = self.tx.tx_id();
        let size = u64::from(self.header.tx_count);
        let index = u64::from(self.position);
        merkle::verify(
            &self.header.tx_root,
            self.tx.entry_hash().as_bytes(),
            index,
            size,
            &self.tx_proof,
        )
        .map_err(|problem| ReceiptError::TxNotInBlock {
            position: self.position,
            tx_count: self.header.tx_count,
            problem,
        })?;
        merkle::verify(
            &self.header.receipts_root,
            self.receipt.receipt_hash().as_bytes(),
            index,
            size,
            &self.receipt_proof,
        )
        .map_err(|problem| ReceiptError::ResultNotInBlock {
            position: self.position,
            tx_count: self.header.tx_count,
            problem,
        })?;
        if self.receipt.tx_id != tx_id {
            return Err(ReceiptError::ResultOtherTx {
                receipt_tx: self.receipt.tx_id,
                tx: tx_id,
            });
        }
        if let Status::Failed { code, message } = &self.receipt.status {
            return Err(ReceiptError::NotSuccessful {
                code: *code,
                message: message.clone(),
            });
        }

        // 4. Signer.
        let (leaf, organisation) = self.check_signer(trust)?;

        // 5. Document.
        let call = &self.tx.tx.call;
        let anchored_digest = anchored_digest(call);
        let document_digest = match document {
            None => None,
            Some(doc) => {
                let Some(anchored) = anchored_digest else {
                    return Err(ReceiptError::NotAnAttestation {
                        contract: call.contract.clone(),
                        method: call.method.clone(),
                    });
                };
                let digest = sm3(doc);
                if digest != anchored {
                    return Err(ReceiptError::DocumentMismatch {
                        anchored,
                        document: digest,
                    });
                }
                Some(digest)
            }
        };

        Ok(VerifiedReceipt {
            tx_id,
            height: self.header.height,
            block_hash: self.finality.block_hash(),
            timestamp_ms: self.header.timestamp.0,
            signer_subject: leaf.subject(),
            organisation,
            validator,
            certified_by,
            set_changes: self
                .set_changes
                .iter()
                .map(|c| c.header.height.next().unwrap_or(c.header.height))
                .collect(),
            call: format!("{}.{}", call.contract, call.method),
            document_digest,
            anchored_digest,
            fuel_used: self.receipt.fuel_used,
            output: self.receipt.output.clone(),
            events: self.receipt.events.clone(),
        })
    }

    /// Step 2 (v1): returns the validator whose seal covers this header.
    fn check_seal<'t>(
        &self,
        seal: &BlockSeal,
        trust: &'t TrustContext,
    ) -> Result<&'t Certificate, ReceiptError> {
        if self.header.consensus.is_some() {
            return Err(ReceiptError::FinalityFormat {
                header_version: 2,
                finality: "seal",
                expected: 1,
            });
        }
        // A seal is one validator's signature: final only on a chain whose genesis names one
        // validator. Against a consortium's genesis, one validator's seal proves nothing.
        if trust.validators.len() != 1 {
            return Err(ReceiptError::SealOnConsortium {
                validators: trust.validators.len(),
            });
        }
        let validator = trust
            .validators
            .iter()
            .find(|v| v.fingerprint() == seal.signer)
            .ok_or(ReceiptError::SealUnknownValidator {
                signer: seal.signer,
            })?;
        seal.verify(&validator.public_key())
            .map_err(|reason| ReceiptError::SealSignature {
                validator: validator.subject(),
                reason,
            })?;
        let header_hash = self.header.hash();
        if seal.block_hash != header_hash {
            return Err(ReceiptError::SealOtherBlock {
                sealed: seal.block_hash,
                header: header_hash,
            });
        }
        // Only now is the header known to be the sealed one, so a mismatch here is a validator
        // sealing a block another proposed, not an altered header.
        if seal.signer != self.header.proposer {
            return Err(ReceiptError::SealNotProposer {
                signer: seal.signer,
                proposer: self.header.proposer,
            });
        }
        Ok(validator)
    }

    /// Step 4: returns the validated signer certificate and its organisation.
    fn check_signer(&self, trust: &TrustContext) -> Result<(&Certificate, String), ReceiptError> {
        let (leaf, intermediates) = self
            .chain
            .split_first()
            .ok_or(ReceiptError::SignerMissing)?;
        let matches = match &self.tx.tx.sender {
            Sender::Certificate(der) => der.as_slice() == leaf.der(),
            Sender::Registered(id) => *id == leaf.fingerprint(),
        };
        if !matches {
            let sender = match &self.tx.tx.sender {
                Sender::Certificate(der) => sm3(der),
                Sender::Registered(id) => *id,
            };
            return Err(ReceiptError::SignerMismatch {
                sender,
                certificate: leaf.fingerprint(),
            });
        }
        // The chain is judged at the block's own time: a receipt stays valid after the
        // certificate expires, and a CRL issued after the block cannot revoke it retroactively.
        let at = UnixTime(self.header.timestamp.0 / 1000);
        // A certificate without a gmchain role is validated as a user's, which fails with
        // CERT_WRONG_ROLE naming the role it lacks.
        let intended = leaf.role().unwrap_or(Role::User);
        let proven;
        let consortium = if self.anchor_proofs.is_empty() {
            &trust.consortium
        } else {
            proven = self.proven_anchors(trust)?;
            &proven
        };
        let validated = consortium
            .validate(leaf, intermediates, &self.crls, at, intended)
            .map_err(|reason| ReceiptError::SignerChain {
                subject: leaf.subject(),
                at,
                reason: Box::new(reason),
            })?;
        self.tx
            .verify_signature(&leaf.public_key())
            .map_err(|reason| ReceiptError::TxSignature {
                subject: leaf.subject(),
                reason,
            })?;
        Ok((leaf, validated.organisation().to_string()))
    }
}

impl ReceiptBundle {
    /// Step 4, before the signer's chain: the genesis consortium with the anchor of each
    /// anchor proof, once its record is proven under the header's `state_root` (certified in
    /// step 2) and shows a founding organisation registered before the block and not removed
    /// before it, whose CA names it. Such an anchor sponsors only its own organisation.
    fn proven_anchors(&self, trust: &TrustContext) -> Result<Consortium, ReceiptError> {
        let height = self.header.height.0;
        let mut entries = trust.consortium.entries();
        for (index, a) in self.anchor_proofs.iter().enumerate() {
            let bad = |reason: String| ReceiptError::AnchorProof { index, reason };
            let org = decode_org_record(&a.record).map_err(bad)?;
            state::verify_proof(
                self.header.state_root,
                &org_record_key(&org.name),
                Some(&a.record),
                &a.proof,
            )
            .map_err(|e| {
                bad(format!(
                    "the record of {:?} is not in the state of block {height} (its proof does not verify under the header's state_root: {e})",
                    org.name
                ))
            })?;
            if !org.sponsor.is_empty() {
                return Err(bad(format!(
                    "{:?} is not a founding organisation (sponsored by {:?}): its CA is no anchor",
                    org.name, org.sponsor
                )));
            }
            if org.registered_at >= height {
                return Err(bad(format!(
                    "{:?} was registered at height {}, not before the receipt's block {height}",
                    org.name, org.registered_at
                )));
            }
            if org.removed_at != 0 && org.removed_at < height {
                return Err(bad(format!(
                    "{:?} was removed at height {}, before the receipt's block {height}",
                    org.name, org.removed_at
                )));
            }
            if org.ca.organisation().as_deref() != Some(org.name.as_str()) {
                return Err(bad(format!(
                    "the record's CA does not name the organisation {:?}",
                    org.name
                )));
            }
            if !trust.consortium.is_anchor(&org.ca) {
                entries.push(ConsortiumAnchor {
                    anchor: TrustAnchor::new(org.ca),
                    sponsors: Sponsorship::Listed(Vec::new()),
                });
            }
        }
        Consortium::new(entries).map_err(|e| ReceiptError::AnchorProof {
            index: 0,
            reason: format!("the proven anchors are not usable: {e}"),
        })
    }
}

/// Returns `args[0]` of an `attestation.anchor` call, if it is a 32-byte digest.
fn anchored_digest(call: &types::Call) -> Option<Digest> {
    if call.contract != ATTESTATION_CONTRACT || call.method != ATTESTATION_METHOD {
        return None;
    }
    let first = call.args.first()?;
    <[u8; 32]>::try_from(first.as_slice()).ok().map(Digest)
}

/// Validator sets, each with the first height it decides, in height order.
type SetsFrom = Vec<(Height, ValidatorSet)>;

/// The set of `height`: the last of `changes` (first heights ascending) that starts at or
/// before it, else `genesis`.
fn set_at<'a>(
    genesis: &'a ValidatorSet,
    changes: &'a [(Height, ValidatorSet)],
    height: Height,
) -> &'a ValidatorSet {
    changes
        .iter()
        .rev()
        .find(|(from, _)| *from <= height)
        .map_or(genesis, |(_, s)| s)
}

/// Checks that the causes a change carries explain it: each cause is a governance proposal
/// (or the yes vote that executed one carried beside it) whose change is this set difference
/// and takes effect at the change's height, or an identity transaction that suspended or
/// revoked a removed validator (a CRL listing its serial, or, for a revoked organisation CA,
/// a CRL of another CA while a removed validator's organisation is on it), or that
/// deregistered its organisation; and every validator added or removed is explained by one.
fn bind_causes(
    change: &SetChange,
    before: &ValidatorSet,
    after: &ValidatorSet,
    known: &[Certificate],
) -> Result<(), String> {
    if change.causes.is_empty() {
        return Err("it carries no cause".into());
    }
    let added: Vec<Digest> = after
        .validators()
        .iter()
        .map(|v| v.id)
        .filter(|id| before.get(id).is_none())
        .collect();
    let removed: Vec<Digest> = before
        .validators()
        .iter()
        .map(|v| v.id)
        .filter(|id| after.get(id).is_none())
        .collect();
    let cert_of = |id: &Digest| known.iter().find(|c| c.fingerprint() == *id);
    let effective = change.header.height.0.saturating_add(1);
    let mut explained: Vec<Digest> = Vec::new();
    let proposals: Vec<TxId> = change
        .causes
        .iter()
        .filter(|c| c.tx.tx.call.contract == "governance" && c.tx.tx.call.method == "propose")
        .map(|c| c.tx.tx_id())
        .collect();
    for (i, cause) in change.causes.iter().enumerate() {
        let call = &cause.tx.tx.call;
        let arg = |k: usize| call.args.get(k).map(Vec::as_slice).unwrap_or_default();
        let u64_arg = |k: usize| <[u8; 8]>::try_from(arg(k)).ok().map(u64::from_be_bytes);
        let digest_arg = |k: usize| <[u8; 32]>::try_from(arg(k)).ok().map(Digest);
        let unbound = || {
            format!(
                "cause {i} ({}.{}) does not explain this change",
                call.contract, call.method
            )
        };
        match (call.contract.as_str(), call.method.as_str()) {
            ("governance", "propose") => {
                if u64_arg(2) != Some(effective) {
                    return Err(format!(
                        "cause {i}: the proposal takes effect at height {:?}, the change at {effective}",
                        u64_arg(2)
                    ));
                }
                let cert_id =
                    |k: usize| Certificate::from_der(arg(k)).ok().map(|c| c.fingerprint());
                let ok = match arg(0) {
                    b"validator-add" => cert_id(4)
                        .filter(|id| added.contains(id))
                        .map(|id| vec![id]),
                    b"validator-remove" => digest_arg(3)
                        .filter(|id| removed.contains(id))
                        .map(|id| vec![id]),
                    b"validator-rotate" => match (digest_arg(3), cert_id(4)) {
                        (Some(old), Some(new))
                            if removed.contains(&old) && added.contains(&new) =>
                        {
                            Some(vec![old, new])
                        }
                        _ => None,
                    },
                    _ => None,
                };
                explained.extend(ok.ok_or_else(unbound)?);
            }
            ("governance", "vote") => {
                let proposal = digest_arg(0).map(TxId);
                if arg(1) != b"yes" || !proposal.is_some_and(|p| proposals.contains(&p)) {
                    return Err(unbound());
                }
            }
            ("identity", "suspend") => {
                let id = digest_arg(0)
                    .filter(|id| removed.contains(id))
                    .ok_or_else(unbound)?;
                explained.push(id);
            }
            ("identity", "update_crl") => {
                let crl = Crl::from_der(arg(0)).map_err(|_| unbound())?;
                let direct: Vec<Digest> = removed
                    .iter()
                    .filter(|id| cert_of(id).is_some_and(|c| crl.find(&c.serial()).is_some()))
                    .copied()
                    .collect();
                if !direct.is_empty() {
                    explained.extend(direct);
                } else if !crl.revoked().is_empty() && !removed.is_empty() {
                    // A revoked organisation CA (not in the receipt): the CRL revokes
                    // something and a validator left; weaker, said so in docs/receipts.md.
                    explained.extend(removed.iter().copied());
                } else {
                    return Err(unbound());
                }
            }
            ("identity", "deregister_org" | "replace_ca") => {
                let name = String::from_utf8_lossy(arg(0)).into_owned();
                let ca_org = Certificate::from_der(arg(0))
                    .ok()
                    .and_then(|c| c.organisation());
                let org = ca_org.unwrap_or(name);
                let hit: Vec<Digest> = removed
                    .iter()
                    .filter(|id| {
                        cert_of(id)
                            .is_some_and(|c| c.organisation().as_deref() == Some(org.as_str()))
                    })
                    .copied()
                    .collect();
                if hit.is_empty() {
                    return Err(unbound());
                }
                explained.extend(hit);
            }
            _ => return Err(unbound()),
        }
    }
    if let Some(id) = added
        .iter()
        .chain(&removed)
        .find(|id| !explained.contains(id))
    {
        return Err(format!("no cause explains validator {id}"));
    }
    Ok(())
}
