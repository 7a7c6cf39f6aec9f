//! Review tests of governance `params`, `org-register` and `org-remove` (issue 13 point 6):
//! each test states what the chain should do. A test marked `#[ignore = "review finding:
//! …"]` fails on the reviewed commit and demonstrates the finding; the others pin behaviour
//! the review checked and found right. The world (four founding organisations, each with a
//! CA, an admin, a validator and a spare node key) is the one of `governance.rs`.

#[path = "support/world.rs"]
#[allow(dead_code, reason = "each test file uses part of the shared world")]
mod world;

use execution::{ProposalStatus, RejectCode};
use pki::issue_crl;
use types::Status;
use world::*;

fn anchor_tx(w: &World, signer: &Key, byte: u8) -> Vec<u8> {
    w.tx(
        signer,
        "attestation",
        "anchor",
        vec![vec![byte; 32], b"k".to_vec(), b"m".to_vec(), Vec::new()],
    )
}

/// Proposes `kind` by organisation 0 and has organisations `voters` vote yes, one block
/// each; returns the proposal ID.
fn decide(w: &mut World, kind: &str, rest: Vec<Vec<u8>>, voters: &[usize]) -> [u8; 32] {
    let deadline = w.ledger.head().tip.height.0 + 20;
    let propose = w.propose_tx(0, kind, deadline, 0, rest);
    let id = proposal_id(&propose);
    assert_eq!(w.block(&[propose]), vec![Status::Success]);
    for v in voters {
        let vote = w.vote_tx(*v, &id, true);
        assert_eq!(w.block(&[vote]), vec![Status::Success]);
    }
    id
}

/// Finding: `identity::check_new_founding` (crates/execution/src/identity.rs:504) and
/// `parse_founding_ca` (:457) check that the CRL of an `org-register` proposal is issued and
/// signed by the new CA, never that it is current. A CRL whose nextUpdate already passed is
/// accepted; once the proposal executes, every member of the new founding organisation is
/// refused (`TX_REVOCATION_UNKNOWN`, its anchor's CRL is not current), its admins included,
/// so the organisation cannot even send `identity.update_crl` to repair it: the name is
/// burned (a removed name is never registered again) and the consortium must vote twice more
/// (remove, register under another name). The proposal should be refused when proposed (and
/// when executed), as a CA not valid at the block's time is.
#[test]
#[ignore = "review finding: org-register accepts a CRL that is not current; the new organisation is locked out"]
fn review_org_register_must_refuse_a_crl_that_is_not_current() {
    let mut w = world();
    let n = new_org("Agency N", 191);
    // Issued by N's CA, but its nextUpdate (T0 + 1 day) is before every block of the world
    // (genesis is at T0 + 1 day, blocks follow a second apart).
    let stale = issue_crl(&n.ca, &n.ca_key, 1, t(0), t(1), &[]).unwrap();
    let deadline = w.ledger.head().tip.height.0 + 20;
    let propose = w.propose_tx(
        0,
        "org-register",
        deadline,
        0,
        vec![n.ca.der().to_vec(), stale.der().to_vec()],
    );
    // What the chain does today, shown when the test fails: the proposal executes and N is
    // then locked out.
    if w.admit(&propose).is_ok() {
        let id = proposal_id(&propose);
        assert_eq!(w.block(&[propose]), vec![Status::Success]);
        for v in [1, 2] {
            let vote = w.vote_tx(v, &id, true);
            assert_eq!(w.block(&[vote]), vec![Status::Success]);
        }
        assert!(matches!(
            proposal(&w, id).status,
            ProposalStatus::Executed(_)
        ));
        let doc = w.admit(&anchor_tx(&w, &n.admin, 1)).unwrap_err();
        let fresh = issue_crl(&n.ca, &n.ca_key, 2, t(1), t(60), &[]).unwrap();
        let repair = w.tx(
            &n.admin,
            "identity",
            "update_crl",
            vec![fresh.der().to_vec()],
        );
        let repair = w.admit(&repair).unwrap_err();
        panic!(
            "org-register with a CRL not current at the block's time executed; N's admin is then refused ({:?}: {}) and cannot repair it with update_crl ({:?}: {})",
            doc.code, doc.message, repair.code, repair.message
        );
    }
    let r = w.admit(&propose).unwrap_err();
    assert_eq!(r.code, RejectCode::BadArguments, "{r}");
    assert!(r.message.contains("CRL"), "{}", r.message);
}

/// Checked and right: once an org-register executed, the proposer's recheck (cached chain
/// and anchors) and a verifier's admission judge a member of the new anchor alike.
#[test]
fn review_a_governance_registered_anchor_is_judged_alike_by_proposer_and_verifier() {
    let mut w = world();
    let n = new_org("Agency N", 192);
    let id = decide(
        &mut w,
        "org-register",
        vec![n.ca.der().to_vec(), crl(&n, 1, &[]).der().to_vec()],
        &[1, 2],
    );
    assert!(matches!(
        proposal(&w, id).status,
        ProposalStatus::Executed(_)
    ));
    // A later block of N's admin is proposed and verified by the same rules.
    let doc = anchor_tx(&w, &n.admin, 7);
    let p = w.propose(&[doc]);
    assert!(p.dropped.is_empty(), "{:?}", p.dropped);
    let verified = w
        .ledger
        .verify(p.executed.block().clone(), ledger::TimeRule::Decided, None)
        .unwrap();
    assert_eq!(verified.hash(), p.executed.hash());
}
