//! The whole-chain walk against a chain whose validator set changed: the chain of
//! `consensus-revoked-validator-excluded` (D's validator revoked on the chain, the set without
//! it from the next height), served block by block as a node serves it. The walk must follow
//! the change through the certified header that announced it, and refuse a node that lists
//! other members for the announced set, or none.

use std::cell::RefCell;

use super::ledger::ledger_chain;
use super::*;
use crate::checks::validators::{Built, built_chain};
use crypto::{RandomSource, Signer};
use crypto_sm::SoftwareProvider;
use crypto_sm::rng::SeededRandom;
use std::sync::Arc;
use storage::MemBackend;
use types::{Encode, Height};

/// What the node answers GetValidators with.
#[derive(Clone, Copy, PartialEq)]
enum Lists {
    /// The ledger's set at that height.
    Truth,
    /// The set of the height before (the revoked validator still in it).
    Previous,
    /// An error (a node that does not serve GetValidators).
    Nothing,
}

struct Served {
    chain: Built,
    lists: Lists,
    signer: crypto_sm::SoftSigner,
    rng: SeededRandom,
    asked: RefCell<Vec<u64>>,
}

impl Served {
    fn new(lists: Lists) -> Served {
        let rng = Arc::new(SeededRandom::new(3));
        Served {
            chain: built_chain().unwrap(),
            lists,
            signer: SoftwareProvider::new(rng).generate().unwrap(),
            rng: SeededRandom::new(4),
            asked: RefCell::new(Vec::new()),
        }
    }

    fn ledger(&self) -> &::ledger::Ledger<MemBackend> {
        &self.chain.ledger
    }
}

fn unsupported(what: &str) -> ProbeError {
    ProbeError::Unsupported { what: what.into() }
}

impl NodeProbe for Served {
    fn identity(&self) -> NodeIdentity {
        NodeIdentity::default()
    }
    fn genesis_json(&self) -> &[u8] {
        self.chain.genesis_json.as_bytes()
    }
    fn certificate(&self) -> &[u8] {
        &[]
    }
    fn signer(&self) -> &dyn Signer {
        &self.signer
    }
    fn random(&self) -> &dyn RandomSource {
        &self.rng
    }
    fn now_unix(&self) -> u64 {
        0
    }
    fn status(&self) -> Result<NodeStatus, ProbeError> {
        let head = self.ledger().head();
        let block0 = self.ledger().store().header(Height(0)).unwrap().unwrap();
        Ok(NodeStatus {
            chain_id: head.header.chain_id.as_str().to_string(),
            height: head.tip.height.0,
            tip_hash: head.header.hash().as_bytes().to_vec(),
            genesis_hash: block0.hash().as_bytes().to_vec(),
            ..NodeStatus::default()
        })
    }
    fn submit(&self, _: &[u8]) -> Result<Submission, ProbeError> {
        Err(unsupported("SubmitTransaction"))
    }
    fn transaction(&self, _: &[u8; 32]) -> Result<Option<TxAt>, ProbeError> {
        Err(unsupported("GetTransaction"))
    }
    fn block(&self, height: u64) -> Result<BlockBytes, ProbeError> {
        let s = self.ledger().store();
        let block = s.block(Height(height)).unwrap().unwrap();
        let certificate = s
            .certificate(Height(height))
            .unwrap()
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        Ok(BlockBytes {
            block: block.to_bytes(),
            certificate,
        })
    }
    fn receipt_json(&self, _: &[u8; 32]) -> Result<String, ProbeError> {
        Err(unsupported("GetReceiptProof"))
    }
    fn validators(&self, height: u64) -> Result<Vec<ValidatorBytes>, ProbeError> {
        self.asked.borrow_mut().push(height);
        let at = match self.lists {
            Lists::Truth => height,
            Lists::Previous => height - 1,
            Lists::Nothing => return Err(unsupported("GetValidators")),
        };
        let c = &self.chain;
        let members = c
            .validators
            .iter()
            .filter(|v| at < c.changed_from.0 || v.fingerprint() != c.revoked.fingerprint());
        Ok(members
            .map(|v| ValidatorBytes {
                certificate: v.der().to_vec(),
                power: 1,
            })
            .collect())
    }
}

fn certificates_case(out: &[crate::checks::Evidence]) -> &crate::checks::Evidence {
    out.iter()
        .find(|e| {
            e.case
                .starts_with("every block above 0 has a commit certificate")
        })
        .expect("the certificates case")
}

#[test]
fn the_walk_follows_a_set_change_announced_by_a_certified_header() {
    let node = Served::new(Lists::Truth);
    // The fake node serves the ledger's own sets (else this test proves nothing).
    for h in 1..=node.ledger().head().tip.height.0 {
        let listed = node.validators(h).unwrap();
        assert_eq!(
            listed.len(),
            node.ledger().validator_set(Height(h)).len(),
            "height {h}"
        );
    }
    node.asked.borrow_mut().clear();
    let out = ledger_chain(&node);
    for e in &out {
        assert!(e.pass, "{}: {}", e.case, e.detail);
    }
    let from = node.chain.changed_from.0;
    let case = certificates_case(&out);
    assert!(
        case.detail.ends_with(&format!(
            "; 1 validator-set change(s) followed, from height(s) {from}"
        )),
        "{}",
        case.detail
    );
    // Asked once, for the height whose set the certified header announced.
    assert_eq!(*node.asked.borrow(), vec![from]);
}

#[test]
fn a_node_listing_other_members_for_the_announced_set_fails_the_walk() {
    let node = Served::new(Lists::Previous);
    let out = ledger_chain(&node);
    let case = certificates_case(&out);
    assert!(!case.pass, "{}", case.detail);
    let from = node.chain.changed_from.0;
    assert!(
        case.detail.contains(&format!(
            "for height {from}, but the 4 validator(s) the node lists for it hash to"
        )),
        "{}",
        case.detail
    );
}

#[test]
fn a_node_that_does_not_list_the_announced_set_fails_the_walk() {
    let node = Served::new(Lists::Nothing);
    let out = ledger_chain(&node);
    let case = certificates_case(&out);
    assert!(!case.pass, "{}", case.detail);
    assert!(
        case.detail.contains("its members could not be read"),
        "{}",
        case.detail
    );
    // Every other property of the chain still holds.
    for e in out.iter().filter(|e| !std::ptr::eq(*e, case)) {
        assert!(e.pass, "{}: {}", e.case, e.detail);
    }
}
