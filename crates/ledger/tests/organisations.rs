//! Governance of the consortium's organisations on the in-memory backend (the world of
//! `governance.rs`: four founding organisations, each with a validator): `org-register` makes
//! a new founding organisation whose CA is a trust anchor from the executing block on (its
//! admin anchors documents, authenticates as a peer and votes in later proposals, and this
//! survives a restart); `org-remove` takes any organisation away (its members are refused
//! from the next block) unless it holds a validator seat, sponsors an active organisation or
//! is the last founding one; both are checked when proposed and again when executed, and
//! decided by the `organisations` policy.

#[path = "support/world.rs"]
#[allow(dead_code, reason = "each test file uses part of the shared world")]
mod world;

use execution::{FailureCode, Policy, ProposalKind, ProposalStatus, RejectCode};
use pki::{Serial, Validity, issue_crl, issue_root};
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

fn register_args(o: &Org) -> Vec<Vec<u8>> {
    vec![o.ca.der().to_vec(), crl(o, 1, &[]).der().to_vec()]
}

/// The names of the chain's anchors once governance changed them.
fn anchor_names(w: &World) -> Option<Vec<String>> {
    w.ledger
        .with_state(|v| v.anchor_list())
        .unwrap()
        .map(|l| l.names)
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

#[test]
fn a_founding_organisation_registered_by_governance_acts_and_survives_a_restart() {
    // Genesis: organisation changes need every organisation.
    let mut w = world_with(Some(serde_json::json!({ "organisations": "all" })));
    let n = new_org("Agency N", 91);
    // Before: N's admin has no path to an anchor.
    let early = anchor_tx(&w, &n.admin, 1);
    let refused = w.admit(&early).unwrap_err();
    assert_eq!(refused.code, RejectCode::CertInvalid, "{refused:?}");
    assert!(w.ledger.authenticate(t(2), &n.admin.cert).is_err());

    let id = decide(&mut w, "org-register", register_args(&n), &[1, 2]);
    let record = proposal(&w, id);
    assert_eq!(record.policy, Policy::All);
    assert!(matches!(record.kind, ProposalKind::OrgRegister { .. }));
    // 3 of 4 yes under "all": still open, and N is not an anchor yet.
    assert_eq!(record.status, ProposalStatus::Open);
    assert_eq!(anchor_names(&w), None);
    assert!(w.admit(&early).is_err());
    let last = w.vote_tx(3, &id, true);
    assert_eq!(w.block(&[last]), vec![Status::Success]);
    let executed = w.ledger.head().tip.height;
    assert_eq!(proposal(&w, id).status, ProposalStatus::Executed(executed));
    assert_eq!(
        anchor_names(&w).unwrap(),
        ["Agency A", "Agency B", "Agency C", "Agency D", "Agency N"]
    );
    let org = w
        .ledger
        .with_state(|v| v.organisation("Agency N"))
        .unwrap()
        .unwrap();
    assert!(org.is_founding() && org.is_active());
    assert_eq!(org.registered_at, executed);
    assert_eq!(org.ca_cert, n.ca);

    // From the next block: N's admin anchors a document and authenticates as a peer.
    let doc = anchor_tx(&w, &n.admin, 2);
    assert_eq!(w.block(&[doc]), vec![Status::Success]);
    let member = w.ledger.authenticate(t(2), &n.admin.cert).unwrap();
    assert_eq!(member.organisation, "Agency N");

    // N is in the electorate of a later proposal and its vote counts.
    let later = w.propose_tx(
        0,
        "policy",
        w.ledger.head().tip.height.0 + 20,
        0,
        vec![b"validators".to_vec(), b"all".to_vec()],
    );
    let later_id = proposal_id(&later);
    assert_eq!(w.block(&[later]), vec![Status::Success]);
    assert!(
        proposal(&w, later_id)
            .electorate
            .contains(&"Agency N".into())
    );
    let vote_n = w.vote_tx_by(&n.admin, &later_id, true);
    assert_eq!(w.block(&[vote_n]), vec![Status::Success]);
    assert_eq!(proposal(&w, later_id).votes.get("Agency N"), Some(&true));

    // A restart reads the anchors from the state again.
    w.reopen();
    let after = anchor_tx(&w, &n.admin, 3);
    assert_eq!(w.block(&[after]), vec![Status::Success]);
    assert!(w.ledger.authenticate(t(2), &n.admin.cert).is_ok());
}

#[test]
fn org_register_is_checked_when_proposed_and_when_executed() {
    let mut w = world();
    let n = new_org("Agency N", 92);
    let deadline = 20u64;
    let propose =
        |w: &World, rest: Vec<Vec<u8>>| w.propose_tx(0, "org-register", deadline, 0, rest);

    // Argument shape: an admin certificate is no root CA; a CRL of another CA; an effective
    // height.
    let not_root = propose(
        &w,
        vec![n.admin.cert.der().to_vec(), crl(&n, 1, &[]).der().to_vec()],
    );
    let r = w.admit(&not_root).unwrap_err();
    assert_eq!(r.code, RejectCode::BadArguments);
    assert!(r.message.contains("root CA"), "{}", r.message);
    let foreign_crl = propose(
        &w,
        vec![n.ca.der().to_vec(), crl(&w.orgs[1], 1, &[]).der().to_vec()],
    );
    let r = w.admit(&foreign_crl).unwrap_err();
    assert!(r.message.contains("args[4] (CRL)"), "{}", r.message);
    let with_effective = w.propose_tx(0, "org-register", deadline, 30, register_args(&n));
    let r = w.admit(&with_effective).unwrap_err();
    assert!(r.message.contains("effective height"), "{}", r.message);

    // State: the name of a registered organisation; the key of a registered CA; a CA not
    // valid at the block's time.
    let p = crypto_sm::SoftwareProvider::new(std::sync::Arc::new(
        crypto_sm::rng::SeededRandom::new(93),
    ));
    let b_again = org_of(&p, "Agency B", 0x41);
    let r = w.admit(&propose(&w, register_args(&b_again))).unwrap_err();
    assert!(r.message.contains("already registered"), "{}", r.message);
    let same_key = issue_root(
        "Agency Q CA",
        "Agency Q",
        Serial::from_bytes(&[0x42]).unwrap(),
        Validity {
            not_before: t(0),
            not_after: t(3650),
        },
        &w.orgs[1].ca_key,
    )
    .unwrap();
    let same_key_crl = issue_crl(&same_key, &w.orgs[1].ca_key, 1, t(0), t(60), &[]).unwrap();
    let r = w
        .admit(&propose(
            &w,
            vec![same_key.der().to_vec(), same_key_crl.der().to_vec()],
        ))
        .unwrap_err();
    assert!(r.message.contains("subject or key"), "{}", r.message);
    let future = issue_root(
        "Agency F CA",
        "Agency F",
        Serial::from_bytes(&[0x43]).unwrap(),
        Validity {
            not_before: t(100),
            not_after: t(3650),
        },
        &n.ca_key,
    )
    .unwrap();
    let future_crl = issue_crl(&future, &n.ca_key, 1, t(0), t(60), &[]).unwrap();
    let r = w
        .admit(&propose(
            &w,
            vec![future.der().to_vec(), future_crl.der().to_vec()],
        ))
        .unwrap_err();
    assert!(
        r.message.contains("not valid at the block's time"),
        "{}",
        r.message
    );

    // Two proposals for the same name: the first executes, the second then fails in
    // execution (checked again) with IDENTITY_ORG_EXISTS.
    let first = propose(&w, register_args(&n));
    let n_other = new_org("Agency N", 94);
    let second = propose(&w, register_args(&n_other));
    let (id1, id2) = (proposal_id(&first), proposal_id(&second));
    assert_eq!(
        w.block(&[first, second]),
        vec![Status::Success, Status::Success]
    );
    let votes: Vec<_> = [1, 2].iter().map(|o| w.vote_tx(*o, &id1, true)).collect();
    assert_eq!(w.block(&votes), vec![Status::Success, Status::Success]);
    assert!(matches!(
        proposal(&w, id1).status,
        ProposalStatus::Executed(_)
    ));
    let b = w.vote_tx(1, &id2, true);
    assert_eq!(w.block(&[b]), vec![Status::Success]);
    let c = w.vote_tx(2, &id2, true);
    let statuses = w.block(&[c]);
    assert_eq!(
        failed(&statuses[0]),
        FailureCode::OrgExists.number(),
        "{statuses:?}"
    );
    assert_eq!(proposal(&w, id2).status, ProposalStatus::Open);
    // The registered CA is the first proposal's.
    let org = w
        .ledger
        .with_state(|v| v.organisation("Agency N"))
        .unwrap()
        .unwrap();
    assert_eq!(org.ca_cert, n.ca);
}

#[test]
fn a_removed_organisation_is_refused_and_removal_is_checked() {
    let mut w = world();
    let n = new_org("Agency N", 95);
    // Default policy: a majority (3 of 4).
    let id = decide(&mut w, "org-register", register_args(&n), &[1, 2]);
    assert!(matches!(
        proposal(&w, id).status,
        ProposalStatus::Executed(_)
    ));
    assert_eq!(proposal(&w, id).policy, Policy::Majority);
    let doc = anchor_tx(&w, &n.admin, 1);
    assert_eq!(w.block(&[doc]), vec![Status::Success]);

    // Refused when proposed: an organisation holding a validator seat, an unknown one.
    let deadline = w.ledger.head().tip.height.0 + 20;
    let seat = w.propose_tx(0, "org-remove", deadline, 0, vec![b"Agency B".to_vec()]);
    let r = w.admit(&seat).unwrap_err();
    assert!(r.message.contains("validator seat"), "{}", r.message);
    let unknown = w.propose_tx(0, "org-remove", deadline, 0, vec![b"Agency Z".to_vec()]);
    let r = w.admit(&unknown).unwrap_err();
    assert!(r.message.contains("not registered"), "{}", r.message);

    // N is removed (A proposes, B and C agree): from the next block its admin is refused,
    // as a signer and as a peer, and N is no longer an anchor.
    let id = decide(&mut w, "org-remove", vec![b"Agency N".to_vec()], &[1, 2]);
    let removed_at = w.ledger.head().tip.height;
    assert_eq!(
        proposal(&w, id).status,
        ProposalStatus::Executed(removed_at)
    );
    let org = w
        .ledger
        .with_state(|v| v.organisation("Agency N"))
        .unwrap()
        .unwrap();
    assert_eq!(org.removed_at, Some(removed_at));
    assert_eq!(
        anchor_names(&w).unwrap(),
        ["Agency A", "Agency B", "Agency C", "Agency D"]
    );
    let late = anchor_tx(&w, &n.admin, 2);
    let r = w.admit(&late).unwrap_err();
    assert_eq!(r.code, RejectCode::OrgRemoved, "{r:?}");
    assert!(w.ledger.authenticate(t(2), &n.admin.cert).is_err());
    // Nor can it vote in a later proposal's electorate: it is not in it.
    let later = w.propose_tx(
        0,
        "policy",
        w.ledger.head().tip.height.0 + 20,
        0,
        vec![b"organisations".to_vec(), b"all".to_vec()],
    );
    assert_eq!(w.block(std::slice::from_ref(&later)), vec![Status::Success]);
    assert!(
        !proposal(&w, proposal_id(&later))
            .electorate
            .contains(&"Agency N".into())
    );
    // A removed name is not registered again, and is not removed twice.
    let deadline = w.ledger.head().tip.height.0 + 20;
    let again = w.propose_tx(
        0,
        "org-register",
        deadline,
        0,
        register_args(&new_org("Agency N", 96)),
    );
    let r = w.admit(&again).unwrap_err();
    assert!(r.message.contains("was removed"), "{}", r.message);
    let twice = w.propose_tx(0, "org-remove", deadline, 0, vec![b"Agency N".to_vec()]);
    let r = w.admit(&twice).unwrap_err();
    assert!(r.message.contains("already removed"), "{}", r.message);
    // The removal survives a restart.
    w.reopen();
    assert_eq!(
        w.admit(&anchor_tx(&w, &n.admin, 3)).unwrap_err().code,
        RejectCode::OrgRemoved
    );
}

/// The receipt of the transaction at `position` of block `height`, as a node builds it for a
/// signer directly under its organisation's root CA: the leaf, that CA's CRL, and (when
/// `anchor` names an organisation) its record proven in the block's state.
fn receipt_of(
    w: &World,
    height: u64,
    signer: &Org,
    anchor: Option<&str>,
) -> receipt::ReceiptBundle {
    let store = w.ledger.store();
    let h = types::Height(height);
    let block = store.block(h).unwrap().unwrap();
    let receipts: Vec<_> = block
        .txs
        .iter()
        .map(|t| store.receipt(&t.tx_id()).unwrap().unwrap())
        .collect();
    let cert = store.certificate(h).unwrap().unwrap();
    let mut bundle = receipt::ReceiptBundle::build(
        &block,
        &receipts,
        0,
        receipt::Finality::Certificate(cert),
        vec![signer.admin.cert.clone()],
        vec![crl(signer, 1, &[])],
    )
    .unwrap();
    if let Some(name) = anchor {
        bundle.anchor_proofs = vec![anchor_proof(w, height, name)];
    }
    bundle
}

/// Organisation `name`'s record and its proof in the state of block `height`.
fn anchor_proof(w: &World, height: u64, name: &str) -> receipt::AnchorProof {
    let key = receipt::org_record_key(name);
    let (record, proof) = w
        .ledger
        .with_state_at(types::Height(height), |v| {
            (v.get(&key).unwrap().unwrap(), v.prove(&key).unwrap())
        })
        .unwrap();
    receipt::AnchorProof { record, proof }
}

#[test]
fn a_receipt_of_a_governance_registered_organisation_verifies_offline_with_its_anchor_proof() {
    let mut w = world();
    let n = new_org("Agency N", 97);
    decide(&mut w, "org-register", register_args(&n), &[1, 2]);
    let doc = anchor_tx(&w, &n.admin, 9);
    assert_eq!(w.block(&[doc]), vec![Status::Success]);
    let height = w.ledger.head().tip.height.0;
    // Another block changes the state after it.
    let other = anchor_tx(&w, &w.orgs[1].admin, 10);
    assert_eq!(w.block(&[other]), vec![Status::Success]);
    let trust = receipt::TrustContext {
        chain_id: types::ChainId::new(CHAIN).unwrap(),
        validators: w.orgs.iter().map(|o| o.node.cert.clone()).collect(),
        consortium: w.genesis.consortium().unwrap(),
    };

    // With the anchor proof it verifies against the genesis file alone, also after a round
    // trip through the file.
    let good = receipt_of(&w, height, &n, Some("Agency N"));
    let v = good.verify(&trust, None).unwrap();
    assert_eq!(v.organisation, "Agency N");
    let limits = types::Limits::default();
    let json = good.to_json();
    assert!(json.contains("\"anchor_proofs\""), "{json}");
    let read = receipt::ReceiptBundle::from_json(json.as_bytes(), &limits).unwrap();
    assert_eq!(read, good);
    read.verify(&trust, None).unwrap();

    // Without it, the genesis CAs do not anchor the signer.
    let bare = receipt_of(&w, height, &n, None);
    let e = bare.verify(&trust, None).unwrap_err();
    assert!(
        matches!(e, receipt::ReceiptError::SignerChain { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("anchor proof"), "{e}");

    // A record altered by one byte (its registration height): the proof no longer holds.
    let mut altered = good.clone();
    let rec = &mut altered.anchor_proofs[0].record;
    // ... ‖ registered_at (8) ‖ sponsor "" (4) ‖ removed_at (8) ‖ no former CAs (4).
    let at = rec.len() - 4 - 8 - 4 - 1;
    rec[at] ^= 1;
    let e = altered.verify(&trust, None).unwrap_err();
    assert!(
        matches!(&e, receipt::ReceiptError::AnchorProof { index: 0, reason } if reason.contains("state_root")),
        "{e}"
    );
    // The record and proof of the next block's state: not under this header's root.
    let mut later = good.clone();
    later.anchor_proofs = vec![anchor_proof(&w, height + 1, "Agency N")];
    assert!(matches!(
        later.verify(&trust, None),
        Err(receipt::ReceiptError::AnchorProof { .. })
    ));
    // N's record with another organisation's proof.
    let mut swapped = good.clone();
    swapped.anchor_proofs[0].proof = anchor_proof(&w, height, "Agency B").proof;
    assert!(matches!(
        swapped.verify(&trust, None),
        Err(receipt::ReceiptError::AnchorProof { .. })
    ));
    // A genuine proof of another organisation (a genesis one): no anchor for N's admin.
    let mut other_org = good.clone();
    other_org.anchor_proofs = vec![anchor_proof(&w, height, "Agency B")];
    assert!(matches!(
        other_org.verify(&trust, None),
        Err(receipt::ReceiptError::SignerChain { .. })
    ));
    // A record that is not one.
    let mut garbage = good.clone();
    garbage.anchor_proofs[0].record.push(0);
    let e = garbage.verify(&trust, None).unwrap_err();
    assert!(e.to_string().contains("does not decode"), "{e}");
    // A genesis organisation's receipt needs no proof, as before.
    let plain = receipt_of(&w, height + 1, &w.orgs[1], None);
    assert_eq!(plain.verify(&trust, None).unwrap().organisation, "Agency B");
    assert!(!plain.to_json().contains("anchor_proofs"));
}

#[test]
fn a_sponsor_is_not_removed_and_a_sponsored_organisations_record_is_no_anchor() {
    let mut w = world();
    // Agency A's CA issues Agency E's CA (genesis lets A sponsor E); E registers itself.
    let p = crypto_sm::SoftwareProvider::new(std::sync::Arc::new(
        crypto_sm::rng::SeededRandom::new(98),
    ));
    let e_ca_key = p.generate().unwrap();
    let validity = Validity {
        not_before: t(0),
        not_after: t(365),
    };
    let a = &w.orgs[0];
    let issue_as = |issuer: &pki::Certificate,
                    key: &crypto_sm::SoftSigner,
                    role: pki::Role,
                    cn: &str,
                    public_key: &crypto::PublicKey,
                    serial: u8| {
        pki::issue(
            issuer,
            key,
            &pki::IssueRequest {
                role,
                common_name: cn,
                organisation: "Agency E",
                public_key,
                serial: Serial::from_bytes(&[serial]).unwrap(),
                validity,
            },
        )
        .unwrap()
    };
    let e_ca = issue_as(
        &a.ca,
        &a.ca_key,
        pki::Role::AgencyCa,
        "Agency E CA",
        &crypto::Signer::public_key(&e_ca_key),
        0x51,
    );
    let admin_key = p.generate().unwrap();
    let e_admin = Key {
        cert: issue_as(
            &e_ca,
            &e_ca_key,
            pki::Role::Admin,
            "admin",
            &crypto::Signer::public_key(&admin_key),
            0x61,
        ),
        key: admin_key,
    };
    let e_crl = issue_crl(&e_ca, &e_ca_key, 1, t(0), t(60), &[]).unwrap();
    let register = w.tx(
        &e_admin,
        "identity",
        "register_org",
        vec![e_ca.der().to_vec(), e_crl.der().to_vec()],
    );
    assert_eq!(w.block(&[register]), vec![Status::Success]);

    // A sponsors an active organisation: refused before its validator seat is even looked at.
    let deadline = w.ledger.head().tip.height.0 + 20;
    let remove_a = w.propose_tx(1, "org-remove", deadline, 0, vec![b"Agency A".to_vec()]);
    let r = w.admit(&remove_a).unwrap_err();
    assert_eq!(r.code, RejectCode::BadArguments, "{r:?}");
    assert!(
        r.message
            .contains("sponsors the active organisations [\"Agency E\"]"),
        "{}",
        r.message
    );

    // E's admin anchors; its receipt verifies through A's genesis CA, and a proof of E's
    // record is refused: a sponsored organisation's CA is no anchor.
    let doc = anchor_tx(&w, &e_admin, 11);
    assert_eq!(w.block(&[doc]), vec![Status::Success]);
    let height = w.ledger.head().tip.height.0;
    let store = w.ledger.store();
    let h = types::Height(height);
    let block = store.block(h).unwrap().unwrap();
    let receipts = vec![store.receipt(&block.txs[0].tx_id()).unwrap().unwrap()];
    let mut bundle = receipt::ReceiptBundle::build(
        &block,
        &receipts,
        0,
        receipt::Finality::Certificate(store.certificate(h).unwrap().unwrap()),
        vec![e_admin.cert.clone(), e_ca.clone()],
        vec![e_crl.clone(), crl(&w.orgs[0], 1, &[])],
    )
    .unwrap();
    let trust = receipt::TrustContext {
        chain_id: types::ChainId::new(CHAIN).unwrap(),
        validators: w.orgs.iter().map(|o| o.node.cert.clone()).collect(),
        consortium: w.genesis.consortium().unwrap(),
    };
    assert_eq!(
        bundle.verify(&trust, None).unwrap().organisation,
        "Agency E"
    );
    bundle.anchor_proofs = vec![anchor_proof(&w, height, "Agency E")];
    let e = bundle.verify(&trust, None).unwrap_err();
    assert!(
        matches!(&e, receipt::ReceiptError::AnchorProof { reason, .. } if reason.contains("not a founding organisation")),
        "{e}"
    );
}

#[test]
fn a_sponsored_name_registered_by_governance_is_no_longer_certified_by_its_sponsor() {
    let mut w = world();
    // Genesis lets Agency A's root sponsor "Agency E"; governance registers Agency E with its
    // own root first.
    let e = new_org("Agency E", 99);
    decide(&mut w, "org-register", register_args(&e), &[1, 2]);
    let a = &w.orgs[0];
    let p = crypto_sm::SoftwareProvider::new(std::sync::Arc::new(
        crypto_sm::rng::SeededRandom::new(100),
    ));
    let key = p.generate().unwrap();
    let by_sponsor = Key {
        cert: pki::issue(
            &a.ca,
            &a.ca_key,
            &pki::IssueRequest {
                role: pki::Role::User,
                common_name: "mallory",
                organisation: "Agency E",
                public_key: &crypto::Signer::public_key(&key),
                serial: Serial::from_bytes(&[0x77]).unwrap(),
                validity: Validity {
                    not_before: t(0),
                    not_after: t(365),
                },
            },
        )
        .unwrap(),
        key,
    };
    let r = w.admit(&anchor_tx(&w, &by_sponsor, 1)).unwrap_err();
    assert_eq!(r.code, RejectCode::CaReplaced, "{r:?}");
    // E's own admin is admitted.
    assert_eq!(
        w.block(&[anchor_tx(&w, &e.admin, 2)]),
        vec![Status::Success]
    );
}

// ---------------------------------------------------------------------------------------------
// Findings of the review of governance `params`, `org-register` and `org-remove`: each test
// failed on the reviewed commit.

/// Review finding (fixed): `identity::check_new_founding` and
/// `parse_founding_ca` checked that the CRL of an `org-register` proposal is issued and
/// signed by the new CA, and did not check that it is current. A CRL whose nextUpdate had passed was
/// accepted; once the proposal executed, every member of the new founding organisation is
/// refused (`TX_REVOCATION_UNKNOWN`, its anchor's CRL is not current), its admins included,
/// so the organisation cannot even send `identity.update_crl` to repair it: the name is
/// burned (a removed name is never registered again) and the consortium must vote twice more
/// (remove, register under another name). The proposal should be refused when proposed (and
/// when executed), as a CA not valid at the block's time is.
#[test]
fn org_register_must_refuse_a_crl_that_is_not_current() {
    let w = world();
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
    let r = w.admit(&propose).unwrap_err();
    assert_eq!(r.code, RejectCode::BadArguments, "{r}");
    assert!(r.message.contains("CRL"), "{}", r.message);
    assert!(
        r.message.contains("is not current at the block's time"),
        "{}",
        r.message
    );
}

/// Checked and right: once an org-register executed, the proposer's recheck (cached chain
/// and anchors) and a verifier's admission judge a member of the new anchor alike.
#[test]
fn a_governance_registered_anchor_is_judged_alike_by_proposer_and_verifier() {
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

/// A CA of "Agency E" issued by Agency A's root (genesis lets A sponsor E), an admin under
/// it, and its CRL; keys from `seed`, serials from `serial`.
fn agency_e(w: &World, seed: u64, serial: u8) -> (pki::Certificate, Key, pki::Crl) {
    let p = crypto_sm::SoftwareProvider::new(std::sync::Arc::new(
        crypto_sm::rng::SeededRandom::new(seed),
    ));
    let validity = pki::Validity {
        not_before: t(0),
        not_after: t(365),
    };
    let request = |role, cn, public_key, serial| pki::IssueRequest {
        role,
        common_name: cn,
        organisation: "Agency E",
        public_key,
        serial: pki::Serial::from_bytes(&[serial]).unwrap(),
        validity,
    };
    let a = &w.orgs[0];
    let ca_key = p.generate().unwrap();
    let ca_pub = crypto::Signer::public_key(&ca_key);
    let ca = pki::issue(
        &a.ca,
        &a.ca_key,
        &request(pki::Role::AgencyCa, "Agency E CA", &ca_pub, serial),
    )
    .unwrap();
    let admin_key = p.generate().unwrap();
    let admin_pub = crypto::Signer::public_key(&admin_key);
    let admin = pki::issue(
        &ca,
        &ca_key,
        &request(pki::Role::Admin, "admin", &admin_pub, serial + 1),
    )
    .unwrap();
    let e_crl = issue_crl(&ca, &ca_key, 1, t(0), t(60), &[]).unwrap();
    (
        ca,
        Key {
            key: admin_key,
            cert: admin,
        },
        e_crl,
    )
}

/// Finding: `org-remove` of a sponsored organisation is not final. Governance removal sets
/// `removed_at` exactly as the sponsor's `deregister_org` does
/// (crates/execution/src/identity.rs:652), and `identity.replace_ca` re-admits any removed
/// sponsored organisation (`org.removed_at = None`, identity.rs:731-758, checked only by
/// `sponsored_org`, which does not ask who removed it). So the sponsor's admin alone undoes
/// the consortium's decision with one transaction, the next block. docs/execution.md §4.3
/// says the record stays "as for deregister_org" and that a removed name stays taken so its
/// records keep one meaning. The sponsor's `replace_ca` of an organisation governance removed
/// should be refused.
#[test]
fn a_sponsor_must_not_undo_a_governance_removal_with_replace_ca() {
    let mut w = world();
    let (e_ca, e_admin, e_crl) = agency_e(&w, 301, 0x51);
    let register = w.tx(
        &e_admin,
        "identity",
        "register_org",
        vec![e_ca.der().to_vec(), e_crl.der().to_vec()],
    );
    assert_eq!(w.block(&[register]), vec![Status::Success]);
    assert!(w.admit(&anchor_tx(&w, &e_admin, 1)).is_ok());

    // B proposes removing E; C and D agree (3 of 4, A not asked): E is removed.
    let deadline = w.ledger.head().tip.height.0 + 20;
    let remove = w.propose_tx(1, "org-remove", deadline, 0, vec![b"Agency E".to_vec()]);
    let id = proposal_id(&remove);
    assert_eq!(w.block(&[remove]), vec![Status::Success]);
    for v in [2, 3] {
        let vote = w.vote_tx(v, &id, true);
        assert_eq!(w.block(&[vote]), vec![Status::Success]);
    }
    assert!(matches!(
        proposal(&w, id).status,
        ProposalStatus::Executed(_)
    ));
    let r = w.admit(&anchor_tx(&w, &e_admin, 2)).unwrap_err();
    assert_eq!(r.code, RejectCode::OrgRemoved, "{r}");

    // A's admin alone issues E a new CA and re-admits it.
    let (e_ca2, e_admin2, e_crl2) = agency_e(&w, 302, 0x71);
    let undo = w.tx(
        &w.orgs[0].admin,
        "identity",
        "replace_ca",
        vec![e_ca2.der().to_vec(), e_crl2.der().to_vec()],
    );
    let undone = match w.admit(&undo) {
        Err(_) => false,
        Ok(()) => w.block(&[undo]) == vec![Status::Success],
    };
    let back = w.admit(&anchor_tx(&w, &e_admin2, 3));
    assert!(
        !undone && back.is_err(),
        "the sponsor re-admitted an organisation the consortium removed: replace_ca succeeded ({undone}), E's new admin admitted ({})",
        back.is_ok()
    );
}

/// Finding: `ParamsUpdate::check` (crates/execution/src/params.rs:75) bounds `max_tx_size`
/// below by a constant (8 KiB, `MIN_MAX_TX_SIZE`) and looks at nothing in the state, while
/// docs/operations.md ("the floor keeps an organisation's registration and CRL update
/// possible") and docs/execution.md §4.3 promise that CRL updates stay possible. An
/// organisation whose recorded CRL already lists about 150 or more certificates (legal under
/// the 128 KiB ceiling) can no longer send any successor (`identity.update_crl` carries the
/// whole CRL, which must keep its unexpired entries): `TX_TOO_LARGE`. When that CRL passes its
/// nextUpdate every member of the organisation is refused (`TX_REVOCATION_UNKNOWN`), the
/// admins who would vote to raise the limit included. A lowering should be refused while a
/// recorded CRL would not fit (or CRL updates be exempt from the limit).
#[test]
fn a_lowered_max_tx_size_must_leave_an_organisation_able_to_renew_its_crl() {
    let mut w = world();
    // Height 1: D records a CRL of 300 revoked serials.
    let (entries, big) = record_big_crl(&mut w);
    // A proposal to lower max_tx_size to 8192 is refused: D could not renew its CRL.
    let lower = w.params_tx(0, 4, 6, [None, None, Some(8192)]);
    let r = w.admit(&lower).unwrap_err();
    assert_eq!(r.code, RejectCode::BadArguments, "{r}");
    assert!(
        r.message
            .contains("would leave \"Agency D\" unable to renew its CRL"),
        "{r}"
    );
    // A limit that leaves room for it passes.
    let room = big.der().len() + execution::CRL_RENEWAL_MARGIN;
    let fits = w.params_tx(0, 4, 6, [None, None, Some(room as u64)]);
    assert!(w.admit(&fits).is_ok());
    // D renews the same CRL (a later thisUpdate and nextUpdate): it must still be possible.
    let renewed = {
        let d = &w.orgs[3];
        issue_crl(
            &d.ca,
            &d.ca_key,
            3,
            pki::UnixTime(t(1).0 + 3),
            t(90),
            &entries,
        )
        .unwrap()
    };
    let renew = w.tx(
        &w.orgs[3].admin,
        "identity",
        "update_crl",
        vec![renewed.der().to_vec()],
    );
    let r = w.admit(&renew);
    assert!(
        r.is_ok(),
        "after max_tx_size was lowered to 8192, D cannot renew its {}-entry CRL: {}",
        entries.len(),
        r.unwrap_err()
    );
}

/// The other half of the finding: a lowering proposed while every CRL was small fails its
/// executing vote (`GOVERNANCE_PARAMS_INVALID`) if a CRL grew past it in the meantime, and
/// nothing becomes pending.
#[test]
fn a_lowering_fails_when_executed_if_a_crl_grew_past_it_since_the_proposal() {
    let mut w = world();
    let lower = w.params_tx(0, 20, 30, [None, None, Some(8192)]);
    let id = proposal_id(&lower);
    assert_eq!(w.block(&[lower]), vec![Status::Success]);
    let vote_b = w.vote_tx(1, &id, true);
    assert_eq!(w.block(&[vote_b]), vec![Status::Success]);
    // D records a CRL of 300 entries.
    record_big_crl(&mut w);
    // C's vote would execute it: it fails with the code, and the proposal stays open.
    let vote_c = w.vote_tx(2, &id, true);
    let statuses = w.block(&[vote_c]);
    match &statuses[0] {
        Status::Failed { code, message } => {
            assert_eq!(
                *code,
                execution::FailureCode::ParamsInvalid.number(),
                "{message}"
            );
            assert!(message.contains("unable to renew its CRL"), "{message}");
        }
        other => panic!("the executing vote succeeded: {other:?}"),
    }
    assert_eq!(proposal(&w, id).status, ProposalStatus::Open);
    let pending = w
        .ledger
        .with_state(|v| execution::pending_params(v).unwrap());
    assert_eq!(pending, None);
}

/// Organisation D (index 3) records, in one block, a CRL of 300 revoked serials (about 11 KB,
/// under 128 KiB; its transaction is above 8 KiB). Returns the entries and the CRL.
fn record_big_crl(w: &mut World) -> (Vec<pki::RevokedEntry>, pki::Crl) {
    let entries: Vec<pki::RevokedEntry> = (0..300u16)
        .map(|i| pki::RevokedEntry {
            serial: pki::Serial::from_bytes(&(0x1000 + i).to_be_bytes()).unwrap(),
            revoked_at: t(1),
            reason: pki::RevocationReason::KeyCompromise,
        })
        .collect();
    let big = {
        let d = &w.orgs[3];
        issue_crl(&d.ca, &d.ca_key, 2, t(1), t(60), &entries).unwrap()
    };
    let update = w.tx(
        &w.orgs[3].admin,
        "identity",
        "update_crl",
        vec![big.der().to_vec()],
    );
    assert!(update.len() > 8192, "{}", update.len());
    assert_eq!(w.block(&[update]), vec![Status::Success]);
    (entries, big)
}
