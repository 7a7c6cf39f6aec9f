//! `node-contract-deterministic` against a fake node serving hand-built blocks: one holds a
//! call to a deployed contract, each certificate signed by as many of four genesis validators
//! as the test says. The check passes with three signers, fails with one (the certificate
//! does not verify), fails on a one-validator chain and on a chain with no contract call.

use super::determinism::{contract_deterministic, enough_signers};
use super::*;
use crate::checks::Evidence;
use crate::checks::validators::{certificate, four_validators};
use crypto::{RandomSource, Signer, UserId};
use crypto_sm::rng::SeededRandom;
use crypto_sm::{SoftSigner, SoftwareProvider};
use pki::Certificate;
use std::sync::Arc;
use types::{Call, Encode, Height, Sender, SignedTx, Transaction};

const CONTRACT: &str = "conf-0000abcd";

struct Fake {
    genesis: String,
    block0: Block,
    validators: Vec<(SoftSigner, Certificate)>,
    /// How many validators sign each certificate.
    signers: usize,
    tip: u64,
    /// The height of the block holding the contract call, if any.
    call_at: Option<u64>,
    /// A block holding a built-in call with a fuel limit (never a contract call).
    builtin_at: Option<u64>,
    key: SoftSigner,
    rng: SeededRandom,
}

impl Fake {
    fn new(genesis: String, validators: Vec<(SoftSigner, Certificate)>, signers: usize) -> Fake {
        let g = execution::Genesis::from_json(genesis.as_bytes()).unwrap();
        let block0 = g.build(&state::MemStore::new()).unwrap().block;
        let rng = Arc::new(SeededRandom::new(14));
        Fake {
            genesis,
            block0,
            validators,
            signers,
            tip: 5,
            call_at: Some(3),
            builtin_at: Some(4),
            key: SoftwareProvider::new(rng).generate().unwrap(),
            rng: SeededRandom::new(15),
        }
    }

    fn four(signers: usize) -> Fake {
        let (genesis, validators) = four_validators().unwrap();
        Fake::new(genesis, validators, signers)
    }

    fn tx(&self, contract: &str, salt: u8) -> SignedTx {
        let body = Transaction {
            chain_id: self.block0.header.chain_id.clone(),
            salt: [salt; 16],
            expiry: Height(100),
            fuel_limit: Some(1_000_000),
            sender: Sender::Registered(crypto::Digest([7; 32])),
            call: Call {
                contract: contract.into(),
                method: "inc".into(),
                args: Vec::new(),
            },
        };
        SignedTx::sign(body, &self.key, &UserId::default()).unwrap()
    }

    fn at(&self, h: u64) -> (Block, Vec<u8>) {
        if h == 0 {
            return (self.block0.clone(), Vec::new());
        }
        let mut b = self.block0.clone();
        b.header.height = Height(h);
        b.txs = if self.call_at == Some(h) {
            vec![self.tx(CONTRACT, 1)]
        } else if self.builtin_at == Some(h) {
            vec![self.tx("governance", 2)]
        } else {
            Vec::new()
        };
        b.header.tx_count = b.txs.len() as u32;
        b.header.tx_root = b.tx_root();
        let signers: Vec<&(SoftSigner, Certificate)> =
            self.validators.iter().take(self.signers).collect();
        let cert = certificate(&signers, Height(h), b.header.hash()).unwrap();
        (b, cert.to_bytes())
    }
}

impl NodeProbe for Fake {
    fn allow_writes(&self) -> bool {
        false
    }
    fn admin(&self) -> Option<Party<'_>> {
        None
    }
    fn ca(&self) -> Option<Party<'_>> {
        None
    }
    fn progress(&self, _: &str) {}
    fn identity(&self) -> NodeIdentity {
        NodeIdentity::default()
    }
    fn genesis_json(&self) -> &[u8] {
        self.genesis.as_bytes()
    }
    fn certificate(&self) -> &[u8] {
        &[]
    }
    fn signer(&self) -> &dyn Signer {
        &self.key
    }
    fn random(&self) -> &dyn RandomSource {
        &self.rng
    }
    fn now_unix(&self) -> u64 {
        0
    }
    fn status(&self) -> Result<NodeStatus, ProbeError> {
        Ok(NodeStatus {
            chain_id: self.block0.header.chain_id.as_str().to_string(),
            height: self.tip,
            tip_hash: self.at(self.tip).0.header.hash().as_bytes().to_vec(),
            genesis_hash: self.block0.header.hash().as_bytes().to_vec(),
            ..NodeStatus::default()
        })
    }
    fn submit(&self, _: &[u8]) -> Result<Submission, ProbeError> {
        panic!("the check must not write")
    }
    fn transaction(&self, _: &[u8; 32]) -> Result<Option<TxAt>, ProbeError> {
        Ok(None)
    }
    fn block(&self, height: u64) -> Result<BlockBytes, ProbeError> {
        let (b, certificate) = self.at(height);
        Ok(BlockBytes {
            block: b.to_bytes(),
            certificate,
        })
    }
    fn receipt_json(&self, _: &[u8; 32]) -> Result<String, ProbeError> {
        Err(ProbeError::Unsupported {
            what: "receipt files".into(),
        })
    }
    fn contract(&self, name: &str) -> Result<Option<ContractInfo>, ProbeError> {
        Ok((name == CONTRACT).then(|| ContractInfo {
            name: name.into(),
            ..ContractInfo::default()
        }))
    }
}

fn failed(ev: &[Evidence]) -> Vec<&Evidence> {
    ev.iter().filter(|e| !e.pass).collect()
}

#[test]
fn three_of_four_signers_on_the_contract_call_block_pass() {
    let fake = Fake::four(3);
    let ev = contract_deterministic(&fake);
    assert!(failed(&ev).is_empty(), "{ev:#?}");
    // The set, the search, and the one block holding the call (not the built-in's block 4).
    assert_eq!(ev.len(), 3, "{ev:#?}");
    assert!(
        ev[0].detail.starts_with("4 validators decide block 5"),
        "{ev:#?}"
    );
    assert!(
        ev[1].detail.starts_with("1 block(s) at height(s) 3 "),
        "{ev:#?}"
    );
    assert!(ev[1].detail.contains(CONTRACT), "{ev:#?}");
    let tx = fake.tx(CONTRACT, 1).tx_id().to_string();
    let hd = fake.at(3).0.header;
    for needle in [
        format!("tx {tx} {CONTRACT}.inc"),
        "3 signer(s) of 4 validators (the genesis file's set)".to_string(),
        format!("state root {}", hd.state_root),
    ] {
        assert!(ev[2].detail.contains(&needle), "{needle}: {ev:#?}");
    }
}

#[test]
fn a_certificate_with_one_signer_fails() {
    let ev = contract_deterministic(&Fake::four(1));
    let bad = failed(&ev);
    assert_eq!(bad.len(), 1, "{ev:#?}");
    assert!(
        bad[0].case.starts_with("block 3: its commit certificate"),
        "{ev:#?}"
    );
    assert!(bad[0].detail.contains("short of the quorum"), "{ev:#?}");
    // A set whose quorum one validator could reach (by power) is still refused by count.
    let e = enough_signers(3, 1, 4).unwrap_err().why();
    assert!(
        e.contains("1 signer(s) of a 4-validator set: fewer than 2 distinct validators"),
        "{e}"
    );
    assert!(enough_signers(3, 2, 4).is_ok());
}

#[test]
fn a_one_validator_chain_fails_with_the_reason() {
    let w = crate::checks::contracts::World::new(0x0014_00bb).unwrap();
    let genesis = w.genesis.to_json();
    let fake = Fake::new(genesis, Vec::new(), 0);
    let ev = contract_deterministic(&fake);
    assert_eq!(ev.len(), 1, "{ev:#?}");
    assert!(!ev[0].pass);
    assert!(
        ev[0]
            .detail
            .starts_with("determinism across validators cannot be shown on a one-validator chain"),
        "{ev:#?}"
    );
    assert!(
        enough_signers(3, 1, 1)
            .unwrap_err()
            .why()
            .contains("one-validator chain")
    );
}

#[test]
fn a_chain_without_contract_calls_fails_with_the_reason() {
    let mut fake = Fake::four(4);
    fake.call_at = None;
    let ev = contract_deterministic(&fake);
    let bad = failed(&ev);
    assert_eq!(bad.len(), 1, "{ev:#?}");
    assert_eq!(
        bad[0].detail,
        "no contract call found in the last 5 blocks (1..=5): run with --allow-writes so node-contract-lifecycle makes some"
    );
}
