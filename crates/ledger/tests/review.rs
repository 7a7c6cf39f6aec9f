//! Review tests (issue 13 point 6): each test states what the chain should do and fails
//! on the reviewed commit, demonstrating a finding. The world (four founding organisations,
//! each with a CA, an admin, a validator and a spare node key) is the one of
//! `tests/governance.rs`.

#[path = "support/world.rs"]
#[allow(dead_code, reason = "each test file uses part of the shared world")]
mod world;

use execution::{FailureCode, ProposalStatus};
use pki::{UnixTime, Validity};
use receipt::{Cause, Finality, ReceiptBundle, TrustContext};
use types::{ChainId, Height, Status};
use world::*;

/// Finding: `governance.rs` `check_change`/`usable` never looks at a certificate's validity
/// period, so governance adds a validator whose certificate had already expired at the block's
/// time (genesis refuses such a validator: it validates each at the genesis time). Its TLS links
/// are then refused by the node (admission's expiry check), so it sits in the set, counts in
/// n and in the quorum, and can never vote.
#[test]
fn review_governance_must_not_add_an_expired_validator_certificate() {
    let mut w = world();
    // Agency A's CA issues a node-sign certificate that expired one hour after T0; blocks
    // are at T0 + 1 day.
    let expired = node_key(
        &w,
        0,
        99,
        0x40,
        "Agency A",
        Validity {
            not_before: t(0),
            not_after: UnixTime(T0 + 3600),
        },
    );
    let add = w.propose_tx(
        0,
        "validator-add",
        3,
        5,
        vec![b"Agency A expired".to_vec(), expired.cert.der().to_vec()],
    );
    // Fixed: the proposal is refused at admission, naming the validity.
    let refused = w.ledger.admit(&add, t(2), &|_| false).unwrap_err();
    assert!(
        refused.message.contains("not valid at the block's time"),
        "{}",
        refused.message
    );
    w.empty_blocks_until(4);
    assert!(
        w.ledger
            .validator_set(Height(5))
            .get(&expired.cert.fingerprint())
            .is_none()
    );
}

/// Finding: `governance.rs` rotate compares only the subject O of the old and new
/// certificates; the issuing organisation is never compared. Agency B's CA (a self-issued
/// root, for which `pki::issue` allows any O) issues a node-sign certificate saying
/// O=Agency A; a proposal "rotate Agency A's validator" to it passes every check, so the
/// seat of A moves to a key that B holds while voters read "Agency A".
#[test]
fn review_rotation_must_refuse_a_certificate_issued_by_another_organisation() {
    let w = world();
    let a_old = w.orgs[0].node.cert.fingerprint();
    let by_b = node_key(
        &w,
        1,
        98,
        0x41,
        "Agency A",
        Validity {
            not_before: t(0),
            not_after: t(300),
        },
    );
    assert_eq!(by_b.cert.organisation().as_deref(), Some("Agency A"));
    let rotate = w.propose_tx(
        1,
        "validator-rotate",
        3,
        5,
        vec![a_old.0.to_vec(), by_b.cert.der().to_vec()],
    );
    let admitted = w.ledger.admit(&rotate, t(2), &|_| false);
    assert!(
        admitted.is_err(),
        "a rotation of Agency A's validator to a certificate issued by Agency B's CA ({}) was admitted",
        by_b.cert.issuer()
    );
}

/// Finding: `parse_proposal` bounds the deadline but not the effective height. A decided
/// change effective at u64::MAX stays pending for ever, and because at most one change may
/// be pending (`execute` returns GOVERNANCE_CHANGE_PENDING), no other validator change can
/// ever execute again (there is no cancel).
#[test]
fn review_effective_height_must_be_bounded() {
    let mut w = world();
    let spare_a = w.orgs[0].spare.cert.clone();
    let add = w.propose_tx(
        0,
        "validator-add",
        3,
        u64::MAX,
        vec![b"A2".to_vec(), spare_a.der().to_vec()],
    );
    // Fixed: an effective height more than MAX_VOTING_PERIOD after the deadline is refused
    // at admission, so no decided change can stay pending for ever.
    let refused = w.ledger.admit(&add, t(2), &|_| false).unwrap_err();
    assert!(
        refused.message.contains("at most 1000000 blocks after it"),
        "{}",
        refused.message
    );
    // A later change executes.
    let d_node = w.orgs[3].node.cert.fingerprint();
    let remove = w.propose_tx(1, "validator-remove", 10, 12, vec![d_node.0.to_vec()]);
    let rid = proposal_id(&remove);
    w.block(&[remove]);
    let votes = [w.vote_tx(0, &rid, true), w.vote_tx(2, &rid, true)];
    let statuses = w.block(&votes);
    assert_eq!(
        statuses.iter().map(failed).collect::<Vec<_>>(),
        vec![0, 0],
        "the removal could not execute: a change effective at height {} blocks it for ever",
        u64::MAX
    );
}

/// Finding: `ReceiptBundle::follow_set_changes` checks that each cause is some certified
/// transaction but not that it is the change's cause: a receipt whose revocation change
/// carries no cause, or an unrelated anchoring as its cause, verifies. The issue asks that
/// the change enter the chain "with its CRL transaction and proof". (Also
/// `Ledger::set_changes` silently skips a cause it cannot find, lib.rs:322.)
#[test]
fn review_receipt_must_bind_the_causes_of_a_set_change() {
    let mut w = world();
    // Block 1: an unrelated anchoring by A; block 3: D's CRL revokes D's validator.
    let unrelated = w.tx(
        &w.orgs[0].admin,
        "attestation",
        "anchor",
        vec![vec![1; 32], b"k".to_vec(), b"m".to_vec(), Vec::new()],
    );
    assert_eq!(w.block(&[unrelated]), vec![Status::Success]);
    w.empty_blocks_until(2);
    let d_node = w.orgs[3].node.cert.clone();
    let update = w.tx(
        &w.orgs[3].admin,
        "identity",
        "update_crl",
        vec![crl(&w.orgs[3], 2, &[&d_node]).der().to_vec()],
    );
    assert_eq!(w.block(&[update]), vec![Status::Success]);
    // Block 4 (decided by A, B, C): B anchors; its receipt carries the change.
    let anchor = w.tx(
        &w.orgs[1].admin,
        "attestation",
        "anchor",
        vec![vec![4; 32], b"k".to_vec(), b"m".to_vec(), Vec::new()],
    );
    assert_eq!(w.block(&[anchor]), vec![Status::Success]);
    let store = w.ledger.store();
    let block = store.block(Height(4)).unwrap().unwrap();
    let receipts = vec![store.receipt(&block.txs[0].tx_id()).unwrap().unwrap()];
    let mut bundle = ReceiptBundle::build(
        &block,
        &receipts,
        0,
        Finality::Certificate(store.certificate(Height(4)).unwrap().unwrap()),
        vec![w.orgs[1].admin.cert.clone()],
        vec![crl(&w.orgs[1], 1, &[])],
    )
    .unwrap();
    bundle.set_changes = w.ledger.set_changes(Height(4)).unwrap();
    let trust = TrustContext {
        chain_id: ChainId::new(CHAIN).unwrap(),
        validators: w.orgs.iter().map(|o| o.node.cert.clone()).collect(),
        consortium: w.genesis.consortium().unwrap(),
    };
    bundle.verify(&trust, None).unwrap();
    assert_eq!(bundle.set_changes[0].causes.len(), 1);

    // The cause removed.
    let mut no_cause = bundle.clone();
    no_cause.set_changes[0].causes.clear();
    // The cause replaced by the unrelated anchoring of block 1, properly proven.
    let b1 = store.block(Height(1)).unwrap().unwrap();
    let leaves: Vec<crypto::Digest> = b1
        .txs
        .iter()
        .map(|t| types::merkle::leaf_hash(t.entry_hash().as_bytes()))
        .collect();
    let mut other_cause = bundle.clone();
    other_cause.set_changes[0].causes[0] = Cause {
        header: b1.header.clone(),
        certificate: store.certificate(Height(1)).unwrap().unwrap(),
        position: 0,
        tx: b1.txs[0].clone(),
        tx_proof: types::merkle::prove(&leaves, 0).unwrap(),
    };
    let results = [
        ("no cause", no_cause.verify(&trust, None).is_ok()),
        (
            "an unrelated anchoring as the cause",
            other_cause.verify(&trust, None).is_ok(),
        ),
    ];
    let accepted: Vec<_> = results
        .iter()
        .filter(|(_, ok)| *ok)
        .map(|(w, _)| *w)
        .collect();
    assert!(
        accepted.is_empty(),
        "a receipt whose revocation change carries {accepted:?} verified"
    );
}

/// Sound (passes): two votes of one organisation in one block (both admitted at the parent's
/// state) count once: execution runs the authorisation hook on the block's overlay, so the
/// second fails as already voted and cannot flip or double the first.
#[test]
fn review_two_votes_of_one_organisation_in_one_block_count_once() {
    let mut w = world();
    let d_node = w.orgs[3].node.cert.fingerprint();
    let p = w.propose_tx(0, "validator-remove", 10, 12, vec![d_node.0.to_vec()]);
    let id = proposal_id(&p);
    w.block(&[p]);
    let twice = [w.vote_tx(1, &id, true), w.vote_tx(1, &id, false)];
    let statuses = w.block(&twice);
    assert_eq!(statuses[0], Status::Success);
    assert_eq!(failed(&statuses[1]), FailureCode::AlreadyVoted.number());
    let rec = proposal(&w, id);
    assert_eq!(rec.votes.get("Agency B"), Some(&true));
    assert_eq!(rec.status, ProposalStatus::Open);
}
