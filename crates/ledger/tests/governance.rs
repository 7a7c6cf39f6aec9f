//! Governance and the validator set on the in-memory backend, four founding organisations
//! each with its own CA, admin and validator: a key rotation decided by a majority takes
//! effect at its named height (the old key's votes stop counting there, the new key's start),
//! a revoked validator stops counting from the next height, votes are one per organisation
//! and refused after the deadline or from outside the electorate, a second pending change
//! waits, and a receipt of a later block verifies offline from the genesis file through the
//! certified chain of set changes (and fails when one link is altered).

#[path = "support/world.rs"]
#[allow(dead_code, reason = "each test file uses part of the shared world")]
mod world;

use std::sync::Arc;

use crypto::Signer;
use crypto_sm::SoftwareProvider;
use crypto_sm::rng::SeededRandom;
use execution::{FailureCode, Genesis, ProposalStatus, RejectCode};
use ledger::{Ledger, LedgerError};
use pki::{IssueRequest, Role, Serial, Validity, issue, issue_crl};
use receipt::{Cause, Finality, ReceiptBundle, ReceiptError, SetChange, TrustContext};
use types::{ChainId, Height, Status};
use world::*;

#[test]
fn a_rotation_decided_by_a_majority_takes_effect_at_its_height_and_receipts_follow_it() {
    let mut w = world();
    let b_old = w.orgs[1].node.cert.fingerprint();
    let b_new = w.orgs[1].spare.cert.clone();
    // A proposes at height 1: rotate B's validator to B's spare key from height 6.
    let propose = w.propose_tx(
        0,
        "validator-rotate",
        4,
        6,
        vec![b_old.0.to_vec(), b_new.der().to_vec()],
    );
    let id = proposal_id(&propose);
    assert_eq!(w.block(&[propose]), vec![Status::Success]);
    // B votes yes (2 of 4: no majority yet), D no; C's yes makes 3 of 4 at height 3.
    let (vb, vd) = (w.vote_tx(1, &id, true), w.vote_tx(3, &id, false));
    assert_eq!(w.block(&[vb, vd]), vec![Status::Success, Status::Success]);
    let record = proposal(&w, id);
    assert_eq!(record.status, ProposalStatus::Open);
    // A second vote of B is refused at admission.
    let again = w.vote_tx(1, &id, true);
    let refused = w.ledger.admit(&again, t(2), &|_| false).unwrap_err();
    assert_eq!(refused.code, RejectCode::BadArguments, "{refused:?}");
    assert!(
        refused.message.contains("already voted"),
        "{}",
        refused.message
    );
    let vc = w.vote_tx(2, &id, true);
    assert_eq!(w.block(&[vc]), vec![Status::Success]);
    let executed_at = w.ledger.head().tip.height;
    assert_eq!(executed_at, Height(3));
    let record = proposal(&w, id);
    assert_eq!(record.status, ProposalStatus::Executed(Height(3)));
    // Nothing changes before height 6: blocks 4 and 5 are decided by the old set; block 5's
    // header names the new set as the next.
    let old = w.ledger.validator_set(Height(5));
    assert!(old.get(&b_old).is_some());
    w.empty_blocks_until(4);
    let h4 = w.ledger.head().header.consensus.unwrap();
    assert_eq!(h4.next_validator_set, old.hash());
    w.empty_blocks_until(5);
    let h5 = w.ledger.head().header.consensus.unwrap();
    let new = w.ledger.validator_set(Height(6));
    assert_ne!(new.hash(), old.hash());
    assert_eq!(h5.next_validator_set, new.hash());
    assert!(new.get(&b_old).is_none() && new.get(&b_new.fingerprint()).is_some());
    // At height 6 the old key's precommit no longer counts: a certificate of A, B(old), C
    // is refused; with B's new key it commits.
    let head = w.ledger.head();
    let p = w
        .ledger
        .propose(
            Vec::new(),
            w.orgs[0].node.cert.fingerprint(),
            head.header.timestamp.0 + 1000,
        )
        .unwrap();
    let stale = World::certificate(
        &[&w.orgs[0].node, &w.orgs[1].node, &w.orgs[2].node],
        Height(6),
        p.executed.hash(),
    );
    assert!(matches!(
        w.ledger.commit(p.executed.clone(), stale),
        Err(LedgerError::Certificate { .. })
    ));
    let fresh = World::certificate(
        &[&w.orgs[0].node, &w.orgs[1].spare, &w.orgs[2].node],
        Height(6),
        p.executed.hash(),
    );
    w.ledger.commit(p.executed, fresh).unwrap();

    // A document anchored at height 7 by D's admin: its receipt carries the change.
    let anchor = w.tx(
        &w.orgs[3].admin,
        "attestation",
        "anchor",
        vec![vec![7; 32], b"k".to_vec(), b"m".to_vec(), Vec::new()],
    );
    assert_eq!(w.block(&[anchor]), vec![Status::Success]);
    let store = w.ledger.store();
    let block = store.block(Height(7)).unwrap().unwrap();
    let receipts = vec![store.receipt(&block.txs[0].tx_id()).unwrap().unwrap()];
    let cert7 = store.certificate(Height(7)).unwrap().unwrap();
    let mut bundle = ReceiptBundle::build(
        &block,
        &receipts,
        0,
        Finality::Certificate(cert7),
        vec![w.orgs[3].admin.cert.clone()],
        vec![crl(&w.orgs[3], 1, &[])],
    )
    .unwrap();
    let trust = TrustContext {
        chain_id: ChainId::new(CHAIN).unwrap(),
        validators: w.orgs.iter().map(|o| o.node.cert.clone()).collect(),
        consortium: w.genesis.consortium().unwrap(),
    };
    // Without the change, the genesis set does not decide block 7.
    assert!(matches!(
        bundle.verify(&trust, None),
        Err(ReceiptError::ValidatorSet { .. })
    ));
    let epochs = w.ledger.with_state(|v| execution::epochs(v)).unwrap();
    assert_eq!(epochs.len(), 1);
    assert_eq!(epochs[0].from, Height(6));
    // The causes: the proposal (block 1) and the vote that executed it (block 3).
    let mut expected = vec![
        store.block(Height(1)).unwrap().unwrap().txs[0].tx_id(),
        store.block(Height(3)).unwrap().unwrap().txs[0].tx_id(),
    ];
    expected.sort_by_key(|t| t.0.0);
    assert_eq!(epochs[0].causes, expected);
    bundle.set_changes = w.ledger.set_changes(Height(7)).unwrap();
    let change: &SetChange = &bundle.set_changes[0];
    assert_eq!(bundle.set_changes.len(), 1);
    assert_eq!(change.header, store.header(Height(5)).unwrap().unwrap());
    let mut at: Vec<(Height, u32)> = change
        .causes
        .iter()
        .map(|c: &Cause| (c.header.height, c.position))
        .collect();
    at.sort();
    assert_eq!(at, vec![(Height(1), 0), (Height(3), 0)]);
    assert!(w.ledger.set_changes(Height(5)).unwrap().is_empty());
    let verified = bundle.verify(&trust, None).unwrap();
    assert_eq!(verified.set_changes, vec![Height(6)]);
    // Through the file format too.
    let again =
        ReceiptBundle::from_json(bundle.to_json().as_bytes(), &types::Limits::default()).unwrap();
    assert_eq!(again, bundle);
    // Any altered link fails: another new set, a certificate of another block, a cause
    // not in its block.
    let mut forged = bundle.clone();
    forged.set_changes[0].validators[0] = w.orgs[0].spare.cert.clone();
    assert!(matches!(
        forged.verify(&trust, None),
        Err(ReceiptError::SetChange { index: 0, .. })
    ));
    let mut forged = bundle.clone();
    forged.set_changes[0].certificate = store.certificate(Height(4)).unwrap().unwrap();
    assert!(matches!(
        forged.verify(&trust, None),
        Err(ReceiptError::SetChange { index: 0, .. })
    ));
    let mut forged = bundle.clone();
    forged.set_changes[0].causes[0].position = 1;
    assert!(matches!(
        forged.verify(&trust, None),
        Err(ReceiptError::SetChange { index: 0, .. })
    ));
    // Causes that do not explain the change: none, or only the vote (no proposal).
    let mut forged = bundle.clone();
    forged.set_changes[0].causes.clear();
    assert!(matches!(
        forged.verify(&trust, None),
        Err(ReceiptError::SetChange { index: 0, .. })
    ));
    let mut forged = bundle.clone();
    forged.set_changes[0]
        .causes
        .retain(|c| c.tx.tx.call.method == "vote");
    assert!(matches!(
        forged.verify(&trust, None),
        Err(ReceiptError::SetChange { index: 0, .. })
    ));
    // A ledger reopened on its store (a restarted node) knows every height's set from the
    // recorded epochs.
    let World {
        ledger, genesis, ..
    } = w;
    let reopened = Ledger::open(ledger.into_store(), genesis).unwrap();
    assert_eq!(reopened.validator_set(Height(5)).hash(), old.hash());
    assert_eq!(reopened.validator_set(Height(6)).hash(), new.hash());
    assert_eq!(reopened.validator_set(Height(8)).hash(), new.hash());
    assert_eq!(reopened.validator_sets().len(), 2);
}

#[test]
fn a_revoked_validator_stops_counting_from_the_next_height() {
    let mut w = world();
    w.empty_blocks_until(2);
    // D's admin records a CRL revoking D's node certificate, in block 3.
    let d_node = w.orgs[3].node.cert.clone();
    let new_crl = crl(&w.orgs[3], 2, &[&d_node]);
    let update = w.tx(
        &w.orgs[3].admin,
        "identity",
        "update_crl",
        vec![new_crl.der().to_vec()],
    );
    let update_id = proposal_id(&update);
    assert_eq!(w.block(&[update]), vec![Status::Success]);
    let set4 = w.ledger.validator_set(Height(4));
    assert_eq!(set4.len(), 3);
    assert!(set4.get(&d_node.fingerprint()).is_none());
    assert_eq!(
        w.ledger.head().header.consensus.unwrap().next_validator_set,
        set4.hash()
    );
    let epochs = w.ledger.with_state(|v| execution::epochs(v)).unwrap();
    assert_eq!(epochs[0].from, Height(4));
    assert_eq!(
        epochs[0].causes,
        vec![types::TxId(crypto::Digest(update_id))]
    );
    assert!(epochs[0].reason.contains("revoked"), "{}", epochs[0].reason);
    // At height 4, D's precommit is no vote: A, B, D is not a certificate; A, B, C is.
    let head = w.ledger.head();
    let p = w
        .ledger
        .propose(
            Vec::new(),
            w.orgs[0].node.cert.fingerprint(),
            head.header.timestamp.0 + 1000,
        )
        .unwrap();
    let with_d = World::certificate(
        &[&w.orgs[0].node, &w.orgs[1].node, &w.orgs[3].node],
        Height(4),
        p.executed.hash(),
    );
    assert!(w.ledger.commit(p.executed.clone(), with_d).is_err());
    let ok = World::certificate(
        &[&w.orgs[0].node, &w.orgs[1].node, &w.orgs[2].node],
        Height(4),
        p.executed.hash(),
    );
    w.ledger.commit(p.executed, ok).unwrap();
}

#[test]
fn votes_are_one_per_organisation_within_the_deadline_and_changes_wait_their_turn() {
    let mut w = world();
    let spare_a = w.orgs[0].spare.cert.clone();
    let d_node = w.orgs[3].node.cert.fingerprint();
    // Ill-formed proposals are refused at admission, naming the argument.
    let bad = w.propose_tx(
        0,
        "validator-add",
        5,
        5,
        vec![b"A2".to_vec(), spare_a.der().to_vec()],
    );
    let r = w.ledger.admit(&bad, t(2), &|_| false).unwrap_err();
    assert!(r.message.contains("after the deadline"), "{}", r.message);
    let admin_cert = w.orgs[0].admin.cert.der().to_vec();
    let bad = w.propose_tx(0, "validator-add", 5, 9, vec![b"A2".to_vec(), admin_cert]);
    let r = w.ledger.admit(&bad, t(2), &|_| false).unwrap_err();
    assert!(r.message.contains("node-sign"), "{}", r.message);
    let bad = w.propose_tx(0, "validator-remove", 5, 9, vec![vec![9; 32]]);
    let r = w.ledger.admit(&bad, t(2), &|_| false).unwrap_err();
    assert!(r.message.contains("not a validator"), "{}", r.message);
    // Two proposals: add A's spare (effective 20), remove D (effective 8).
    let add = w.propose_tx(
        0,
        "validator-add",
        10,
        20,
        vec![b"Agency A node 2".to_vec(), spare_a.der().to_vec()],
    );
    let remove = w.propose_tx(1, "validator-remove", 6, 8, vec![d_node.0.to_vec()]);
    let (add_id, remove_id) = (proposal_id(&add), proposal_id(&remove));
    assert_eq!(
        w.block(&[add, remove]),
        vec![Status::Success, Status::Success]
    );
    // The addition passes first (A, B, C): pending until 20.
    let votes = [w.vote_tx(1, &add_id, true), w.vote_tx(2, &add_id, true)];
    assert_eq!(w.block(&votes), vec![Status::Success, Status::Success]);
    // The removal reaches its threshold while the addition is pending: that vote fails and
    // is not counted; it may be cast again later.
    let (va, vc) = (
        w.vote_tx(0, &remove_id, true),
        w.vote_tx(2, &remove_id, true),
    );
    let statuses = w.block(&[va, vc]);
    assert_eq!(statuses[0], Status::Success);
    assert_eq!(
        failed(&statuses[1]),
        FailureCode::ValidatorChangePending.number()
    );
    // The removal's deadline (6) passes: a vote is refused as closed.
    w.empty_blocks_until(6);
    let late = w.vote_tx(2, &remove_id, true);
    let r = w.ledger.admit(&late, t(2), &|_| false).unwrap_err();
    assert!(r.message.contains("expired"), "{}", r.message);
    // Rejection: D and C vote no on a new proposal; with A's yes, 2 no of 4 leave at most
    // 2 yes, short of the majority of 3.
    let p = w.propose_tx(0, "validator-remove", 30, 40, vec![d_node.0.to_vec()]);
    let pid = proposal_id(&p);
    w.block(&[p]);
    let votes = [w.vote_tx(3, &pid, false), w.vote_tx(2, &pid, false)];
    w.block(&votes);
    let rec = proposal(&w, pid);
    assert!(
        matches!(rec.status, ProposalStatus::Rejected(_)),
        "{:?}",
        rec.status
    );
    // A user may not propose.
    let bad = w.tx(
        &w.orgs[0].spare,
        "governance",
        "vote",
        vec![pid.to_vec(), b"yes".to_vec()],
    );
    let r = w.ledger.admit(&bad, t(2), &|_| false).unwrap_err();
    assert_eq!(r.code, RejectCode::PermissionDenied);
    // The addition takes effect at 20: five validators.
    w.empty_blocks_until(19);
    assert_eq!(w.ledger.validator_set(Height(20)).len(), 5);
    assert_eq!(w.ledger.validator_set(Height(19)).len(), 4);
}

#[test]
fn policies_come_from_genesis_and_change_only_with_every_organisation() {
    // Genesis: validator changes need all four organisations.
    let mut w = world_with(Some(serde_json::json!({ "validators": "all" })));
    assert_eq!(
        w.genesis.governance,
        vec![("validators".to_string(), execution::Policy::All)]
    );
    // The policy is part of the genesis hash and survives the file round trip.
    let plain = world();
    assert_ne!(w.genesis.hash(), plain.genesis.hash());
    assert_eq!(
        Genesis::from_json(w.genesis.to_json().as_bytes()).unwrap(),
        w.genesis
    );
    let d_node = w.orgs[3].node.cert.fingerprint();
    let p = w.propose_tx(0, "validator-remove", 20, 30, vec![d_node.0.to_vec()]);
    let pid = proposal_id(&p);
    w.block(&[p]);
    let votes = [w.vote_tx(1, &pid, true), w.vote_tx(2, &pid, true)];
    w.block(&votes);
    // Three of four is not all.
    assert_eq!(status_of(&w, pid), ProposalStatus::Open);
    // Lowering the policy to a majority is itself a policy proposal, which needs all four:
    // three yes and one no rejects it.
    let lower = w.propose_tx(
        0,
        "policy",
        20,
        0,
        vec![b"validators".to_vec(), b"majority".to_vec()],
    );
    let lid = proposal_id(&lower);
    w.block(&[lower]);
    let votes = [
        w.vote_tx(1, &lid, true),
        w.vote_tx(2, &lid, true),
        w.vote_tx(3, &lid, false),
    ];
    w.block(&votes);
    assert!(matches!(status_of(&w, lid), ProposalStatus::Rejected(_)));
    // With all four it passes, and a new proposal then needs only three.
    let lower = w.propose_tx(
        1,
        "policy",
        20,
        0,
        vec![b"validators".to_vec(), b"at-least:3".to_vec()],
    );
    let lid = proposal_id(&lower);
    w.block(&[lower]);
    let votes = [
        w.vote_tx(0, &lid, true),
        w.vote_tx(2, &lid, true),
        w.vote_tx(3, &lid, true),
    ];
    w.block(&votes);
    assert!(matches!(status_of(&w, lid), ProposalStatus::Executed(_)));
    assert_eq!(
        w.ledger
            .with_state(|v| execution::policy(v, "validators"))
            .unwrap(),
        execution::Policy::AtLeast(3)
    );
    // The open proposal keeps the policy it was made under (all): three yes still wait.
    assert_eq!(status_of(&w, pid), ProposalStatus::Open);
    let p2 = w.propose_tx(2, "validator-remove", 20, 30, vec![d_node.0.to_vec()]);
    let p2id = proposal_id(&p2);
    w.block(&[p2]);
    let votes = [w.vote_tx(0, &p2id, true), w.vote_tx(1, &p2id, true)];
    w.block(&votes);
    assert!(matches!(status_of(&w, p2id), ProposalStatus::Executed(_)));
    // A genesis policy of an unknown kind, or an unparsable one, is refused naming it.
    for (g, needle) in [
        (
            serde_json::json!({ "treasury": "all" }),
            "governance.treasury",
        ),
        (
            serde_json::json!({ "validators": "most" }),
            "governance.validators",
        ),
    ] {
        let mut json: serde_json::Value = serde_json::from_str(&w.genesis.to_json()).unwrap();
        json["governance"] = g;
        let e = Genesis::from_json(json.to_string().as_bytes()).unwrap_err();
        assert!(e.to_string().contains(needle), "{e}");
    }
    // The contract lifecycle kinds have their own policy, which genesis may set (issue 14).
    let mut json: serde_json::Value = serde_json::from_str(&w.genesis.to_json()).unwrap();
    json["governance"] = serde_json::json!({ "contracts": "all" });
    let g = Genesis::from_json(json.to_string().as_bytes()).unwrap();
    assert_eq!(
        g.governance
            .iter()
            .find(|(k, _)| k == "contracts")
            .map(|(_, p)| p.text()),
        Some("all".to_string())
    );
}

/// Review findings 5 and 6: a sponsored organisation's validator stands only while its
/// sponsor's CRL does not revoke the organisation's CA, and a sponsor cannot take a seat away
/// without a vote by deregistering the organisation that holds it (or replacing its CA).
#[test]
fn a_sponsored_organisations_seat_follows_its_ca_and_leaves_only_by_governance() {
    let mut w = world();
    let validity = Validity {
        not_before: t(0),
        not_after: t(365),
    };
    // Agency A's CA issues Agency E's CA; E's CA issues E's admin and node.
    let p = SoftwareProvider::new(Arc::new(SeededRandom::new(99)));
    let e_key = p.generate().unwrap();
    let a = &w.orgs[0];
    let e_ca = issue(
        &a.ca,
        &a.ca_key,
        &IssueRequest {
            role: Role::AgencyCa,
            common_name: "Agency E CA",
            organisation: "Agency E",
            public_key: &e_key.public_key(),
            serial: Serial::from_bytes(&[0x51]).unwrap(),
            validity,
        },
    )
    .unwrap();
    let leaf = |role: Role, cn: &str, serial: u8| {
        let key = p.generate().unwrap();
        let cert = issue(
            &e_ca,
            &e_key,
            &IssueRequest {
                role,
                common_name: cn,
                organisation: "Agency E",
                public_key: &key.public_key(),
                serial: Serial::from_bytes(&[serial]).unwrap(),
                validity,
            },
        )
        .unwrap();
        Key { key, cert }
    };
    let e_admin = leaf(Role::Admin, "admin", 0x61);
    let e_node = leaf(Role::NodeSign, "node", 0x62);
    let e_crl = issue_crl(&e_ca, &e_key, 1, t(0), t(60), &[]).unwrap();
    let register = w.tx(
        &e_admin,
        "identity",
        "register_org",
        vec![e_ca.der().to_vec(), e_crl.der().to_vec()],
    );
    assert_eq!(w.block(&[register]), vec![Status::Success]);
    // Governance seats E's validator (A, B, C of the now five organisations).
    let add = w.propose_tx(
        0,
        "validator-add",
        4,
        6,
        vec![b"Agency E node".to_vec(), e_node.cert.der().to_vec()],
    );
    let id = proposal_id(&add);
    w.block(&[add]);
    let votes = [w.vote_tx(1, &id, true), w.vote_tx(2, &id, true)];
    w.block(&votes);
    w.empty_blocks_until(5);
    assert!(
        w.ledger
            .validator_set(Height(6))
            .get(&e_node.cert.fingerprint())
            .is_some()
    );
    // A's admin (E's sponsor) may not deregister E, nor replace its CA, while E holds a seat.
    let deregister = w.tx(
        &w.orgs[0].admin,
        "identity",
        "deregister_org",
        vec![b"Agency E".to_vec()],
    );
    let r = w.ledger.admit(&deregister, t(2), &|_| false).unwrap_err();
    assert_eq!(r.code, RejectCode::PermissionDenied);
    assert!(
        r.message.contains("holds a validator seat"),
        "{}",
        r.message
    );
    // A's CRL revokes E's CA: E's validator leaves at the next height, with the CRL as cause.
    w.empty_blocks_until(6);
    let revoke = crl(&w.orgs[0], 2, &[&e_ca]);
    let update = w.tx(
        &w.orgs[0].admin,
        "identity",
        "update_crl",
        vec![revoke.der().to_vec()],
    );
    let update_id = proposal_id(&update);
    assert_eq!(w.block(&[update]), vec![Status::Success]);
    let h = w.ledger.head().tip.height;
    let next = w.ledger.validator_set(Height(h.0 + 1));
    assert!(next.get(&e_node.cert.fingerprint()).is_none());
    assert_eq!(next.len(), 4);
    let epochs = w.ledger.with_state(|v| execution::epochs(v)).unwrap();
    let last = epochs.last().unwrap();
    assert_eq!(last.from, Height(h.0 + 1));
    assert_eq!(last.causes, vec![types::TxId(crypto::Digest(update_id))]);
    assert!(last.reason.contains("Agency E"), "{}", last.reason);
}

/// The parameters in force after the head, as (expiry window, max transactions, max size,
/// first height).
fn params_of(w: &World) -> (u64, u32, usize, u64) {
    let p = w.ledger.params().unwrap();
    (
        p.params.expiry_window,
        p.params.max_txs_per_block,
        p.params.max_tx_size,
        p.since.0,
    )
}

#[test]
fn a_parameter_change_takes_effect_at_its_height_for_admission_proposer_and_verifier() {
    let mut w = world();
    let genesis_params = (100, 2000, 131_072, 0);
    // Height 1: A proposes at most 2 transactions per block of at most 8 KiB, from height 5.
    let p1 = w.params_tx(0, 3, 5, [None, Some(2), Some(8192)]);
    let id1 = proposal_id(&p1);
    assert_eq!(w.block(&[p1]), vec![Status::Success]);
    // Height 2: B votes yes (2 of 4); D proposes an expiry window of 50 from height 9.
    let p2 = w.params_tx(3, 8, 9, [Some(50), None, None]);
    let id2 = proposal_id(&p2);
    let vb = w.vote_tx(1, &id1, true);
    assert_eq!(w.block(&[vb, p2]), vec![Status::Success; 2]);
    // Height 3: C's yes executes the first: pending, nothing in force yet.
    let vc = w.vote_tx(2, &id1, true);
    let vc_id = proposal_id(&vc);
    assert_eq!(w.block(&[vc]), vec![Status::Success]);
    assert_eq!(status_of(&w, id1), ProposalStatus::Executed(Height(3)));
    let pending = w
        .ledger
        .with_state(|v| execution::pending_params(v))
        .unwrap()
        .unwrap();
    assert_eq!(pending.effective, Height(5));
    assert_eq!(pending.proposal.0, id1);
    assert_eq!(params_of(&w), genesis_params);

    // Height 4 (the last under the genesis parameters): a 9 KiB transaction is admitted, and
    // a block of three transactions is proposed and verified. In it the second parameter
    // change reaches its threshold (D, A, B) while the first is pending: that vote fails
    // with GOVERNANCE_CHANGE_PENDING.
    let big = w.anchor_tx(3, 4096);
    assert!(big.len() > 8192 && big.len() < 131_072, "{}", big.len());
    let (va, vb2) = (w.vote_tx(0, &id2, true), w.vote_tx(1, &id2, true));
    let p = w.propose(&[va, vb2, big]);
    assert!(p.left_out.is_empty() && p.dropped.is_empty());
    let statuses: Vec<u32> = p
        .executed
        .receipts()
        .iter()
        .map(|r| failed(&r.status))
        .collect();
    assert_eq!(
        statuses,
        vec![0, FailureCode::ValidatorChangePending.number(), 0]
    );
    let verified = w
        .ledger
        .verify(p.executed.block().clone(), ledger::TimeRule::Decided, None)
        .unwrap();
    assert_eq!(verified.hash(), p.executed.hash());
    w.commit(p.executed);
    assert_eq!(status_of(&w, id2), ProposalStatus::Open);

    // From height 5 the change is in force: the same size of transaction is refused, naming
    // the parameter and since when; the values not named are kept.
    assert_eq!(params_of(&w), (100, 2, 8192, 5));
    let big2 = w.anchor_tx(3, 4096);
    let refused = w.ledger.admit(&big2, t(2), &|_| false).unwrap_err();
    assert_eq!(refused.code, RejectCode::TooLarge, "{refused}");
    assert!(
        refused
            .message
            .contains("exceeds the chain's max_tx_size 8192 in force since height 5"),
        "{}",
        refused.message
    );
    let history = w
        .ledger
        .with_state(|v| execution::params_history(v))
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].from, history[0].proposal.0, history[0].tx.0.0),
        (Height(5), id1, vc_id)
    );
    assert!(
        w.ledger
            .with_state(|v| execution::pending_params(v))
            .unwrap()
            .is_none()
    );
    // The proposer packs at most 2 of 3 candidates; the third is left for a later block.
    let small: Vec<Vec<u8>> = (0..3).map(|_| w.anchor_tx(3, 10)).collect();
    let third = proposal_id(&small[2]);
    let p = w.propose(&small);
    assert_eq!(p.executed.block().txs.len(), 2);
    assert_eq!(p.left_out.len(), 1);
    assert_eq!(p.left_out[0].0.0, third);
    // A block of all three at height 5 is refused by a verifier before anything runs.
    let mut over = p.executed.block().clone();
    over.txs.push(
        <types::SignedTx as types::Decode>::from_bytes(&small[2], &types::Limits::default())
            .unwrap(),
    );
    over.header.tx_count = 3;
    over.header.tx_root = over.tx_root();
    match w.ledger.verify(over, ledger::TimeRule::Decided, None) {
        Err(ledger::BlockRefusal::TooManyTxs { count, max, since }) => {
            assert_eq!((count, max, since.as_str()), (3, 2, "since height 5"));
        }
        other => panic!("expected TooManyTxs, got {other:?}"),
    }
    w.commit(p.executed);

    // With the first change in effect, the second may execute (C's yes: D, A, C of 4), from
    // height 9, keeping the first change's values.
    let vc2 = w.vote_tx(2, &id2, true);
    assert_eq!(w.block(&[vc2]), vec![Status::Success]);
    assert_eq!(status_of(&w, id2), ProposalStatus::Executed(Height(6)));
    w.empty_blocks_until(7);
    assert_eq!(params_of(&w), (100, 2, 8192, 5));
    w.empty_blocks_until(8);
    assert_eq!(params_of(&w), (50, 2, 8192, 9));
    // The expiry window in force bounds expiry: 90 is beyond 8 + 50.
    let late = w.anchor_tx(3, 10);
    let refused = w.ledger.admit(&late, t(2), &|_| false).unwrap_err();
    assert_eq!(refused.code, RejectCode::ExpiryTooFar, "{refused}");
    assert!(
        refused
            .message
            .contains("expiry_window 50 in force since height 9"),
        "{}",
        refused.message
    );

    // A restarted node (the ledger reopened on its store) keeps the parameters in force and
    // their history.
    let genesis = w.genesis.clone();
    let World { ledger, .. } = w;
    let reopened = Ledger::open(ledger.into_store(), genesis).unwrap();
    let p = reopened.params().unwrap();
    assert_eq!(
        (
            p.params.expiry_window,
            p.params.max_txs_per_block,
            p.params.max_tx_size,
            p.since
        ),
        (50, 2, 8192, Height(9))
    );
    let history = reopened
        .with_state(|v| execution::params_history(v))
        .unwrap();
    assert_eq!(
        history.iter().map(|c| c.from.0).collect::<Vec<_>>(),
        vec![5, 9]
    );
    assert_eq!(
        reopened.admit(&big2, t(2), &|_| false).unwrap_err().code,
        RejectCode::TooLarge
    );
}

#[test]
fn parameter_proposals_outside_the_bounds_are_refused_at_admission() {
    let w = world();
    let cases: [([Option<u64>; 3], u64, u64, &str); 7] = [
        ([None, None, None], 3, 5, "names at least one"),
        (
            [Some(0), None, None],
            3,
            5,
            "expiry_window 0 is outside 1..=1000000",
        ),
        (
            [Some(1_000_001), None, None],
            3,
            5,
            "expiry_window 1000001 is outside",
        ),
        (
            [None, Some(0), None],
            3,
            5,
            "max_txs_per_block 0 is outside",
        ),
        (
            [None, Some(10_001), None],
            3,
            5,
            "max_txs_per_block 10001 is outside 1..=10000",
        ),
        (
            [None, None, Some(8191)],
            3,
            5,
            "max_tx_size 8191 is outside 8192..=131072",
        ),
        ([None, Some(5), None], 5, 5, "must be after the deadline"),
    ];
    for (update, deadline, effective, want) in cases {
        let tx = w.params_tx(0, deadline, effective, update);
        let r = w.ledger.admit(&tx, t(2), &|_| false).unwrap_err();
        assert_eq!(r.code, RejectCode::BadArguments, "{update:?}: {r}");
        assert!(r.message.contains(want), "{update:?}: {}", r.message);
    }
    // A value given in the wrong width is named too.
    let tx = w.propose_tx(0, "params", 3, 5, vec![vec![1, 2], Vec::new(), Vec::new()]);
    let r = w.ledger.admit(&tx, t(2), &|_| false).unwrap_err();
    assert_eq!(r.code, RejectCode::BadArguments);
    assert!(
        r.message.contains("args[3] (expiry_window): 2 bytes"),
        "{}",
        r.message
    );
    // The bounds themselves are admitted.
    let edge = w.params_tx(0, 3, 5, [Some(1_000_000), Some(10_000), Some(8192)]);
    w.ledger.admit(&edge, t(2), &|_| false).unwrap();
}

#[test]
fn the_params_policy_comes_from_genesis_and_changes_by_a_policy_proposal() {
    let mut w = world_with(Some(serde_json::json!({ "params": "all" })));
    assert_eq!(
        w.ledger
            .with_state(|v| execution::policy(v, "params"))
            .unwrap(),
        execution::Policy::All
    );
    // The validators' policy keeps its default.
    assert_eq!(
        w.ledger
            .with_state(|v| execution::policy(v, "validators"))
            .unwrap(),
        execution::Policy::Majority
    );
    let p = w.params_tx(0, 20, 30, [Some(200), None, None]);
    let id = proposal_id(&p);
    assert_eq!(w.block(&[p]), vec![Status::Success]);
    let (vb, vc) = (w.vote_tx(1, &id, true), w.vote_tx(2, &id, true));
    assert_eq!(w.block(&[vb, vc]), vec![Status::Success; 2]);
    // Three of four do not pass under "all".
    assert_eq!(status_of(&w, id), ProposalStatus::Open);
    // A policy proposal lowers it to a majority (decided by all four).
    let pp = w.propose_tx(
        1,
        "policy",
        20,
        0,
        vec![b"params".to_vec(), b"majority".to_vec()],
    );
    let pid = proposal_id(&pp);
    assert_eq!(w.block(&[pp]), vec![Status::Success]);
    let votes: Vec<Vec<u8>> = [0, 2, 3]
        .iter()
        .map(|o| w.vote_tx(*o, &pid, true))
        .collect();
    assert_eq!(w.block(&votes), vec![Status::Success; 3]);
    assert_eq!(
        w.ledger
            .with_state(|v| execution::policy(v, "params"))
            .unwrap(),
        execution::Policy::Majority
    );
    // The open proposal keeps the policy it was made under; a new one passes with three.
    assert_eq!(proposal(&w, id).policy, execution::Policy::All);
    let p = w.params_tx(3, 20, 30, [Some(300), None, None]);
    let id = proposal_id(&p);
    assert_eq!(w.block(&[p]), vec![Status::Success]);
    let (va, vb) = (w.vote_tx(0, &id, true), w.vote_tx(1, &id, true));
    assert_eq!(w.block(&[va, vb]), vec![Status::Success; 2]);
    assert_eq!(status_of(&w, id), ProposalStatus::Executed(Height(6)));
}
