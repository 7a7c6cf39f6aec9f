//! Supervision (issue 16): the supervisor named in genesis, its freezes of a certificate, of an
//! organisation's people and of a contract with their own codes, separate from an admin's
//! suspension; who may freeze under which policy; the trace indexes the executor keeps.

use super::*;
use execution::keys::{AUDIT, full};
use execution::{FreezeKind, FreezePolicy, TraceEntry};

/// The world's consortium with "GMChain Consortium" as the supervisor (its auditor
/// `regulator`, issued by the root), under `policy`, with the regulator's encryption
/// certificate as the escrow.
struct Supervised {
    w: World,
    node: Node,
    regulator: Member,
    regulator_enc: Member,
}

fn supervised_genesis(w: &World, policy: &str, escrow: &[&Member]) -> serde_json::Value {
    let mut g: serde_json::Value = serde_json::from_str(&w.g.to_json()).unwrap();
    g["format"] = serde_json::json!(3);
    g["supervision"] = serde_json::json!({
        "supervisor": "GMChain Consortium",
        "freeze_policy": policy,
        "escrow": escrow.iter().map(|m| m.cert.to_pem()).collect::<Vec<_>>(),
    });
    g
}

fn supervised(policy: &str) -> Supervised {
    let w = world();
    let regulator = w.pki.leaf(&w.pki.root, Role::Auditor, "regulator");
    let regulator_enc = w.pki.leaf(&w.pki.root, Role::AuditorEnc, "regulator");
    let json = supervised_genesis(&w, policy, &[&regulator_enc]);
    let g = Genesis::from_json(json.to_string().as_bytes()).unwrap();
    let node = Node::new(&g);
    Supervised {
        w,
        node,
        regulator,
        regulator_enc,
    }
}

fn freeze_args(kind: &str, target: &str, reason: &str) -> Vec<Vec<u8>> {
    vec![
        kind.as_bytes().to_vec(),
        target.as_bytes().to_vec(),
        reason.as_bytes().to_vec(),
    ]
}

fn freeze(m: &Member, salt: u8, kind: &str, target: &str) -> Vec<u8> {
    call(
        m,
        salt,
        "supervision",
        "freeze",
        freeze_args(kind, target, "a reason"),
    )
}

fn unfreeze(m: &Member, salt: u8, kind: &str, target: &str) -> Vec<u8> {
    call(
        m,
        salt,
        "supervision",
        "unfreeze",
        freeze_args(kind, target, "lifted"),
    )
}

#[test]
fn genesis_names_the_supervisor_and_writes_the_escrow() {
    let s = supervised("supervisor");
    let view = s.node.view();
    let sup = execution::supervisor(&view).unwrap().unwrap();
    assert_eq!(sup.organisation, "GMChain Consortium");
    assert_eq!(sup.policy, FreezePolicy::Supervisor);
    let escrow = execution::data::escrow_recipients(&view).unwrap();
    assert_eq!(escrow.len(), 1);
    assert_eq!(escrow[0].id, s.regulator_enc.id());
    // The file round-trips, and the section changes the genesis hash.
    let json = supervised_genesis(&s.w, "supervisor", &[&s.regulator_enc]).to_string();
    let g = Genesis::from_json(json.as_bytes()).unwrap();
    assert_eq!(Genesis::from_json(g.to_json().as_bytes()).unwrap(), g);
    assert_ne!(g.hash(), {
        let mut plain = g.clone();
        plain.supervision = None;
        plain.hash()
    });
}

#[test]
fn genesis_refuses_a_bad_supervision_section_naming_the_field() {
    let w = world();
    let regulator_enc = w.pki.leaf(&w.pki.root, Role::AuditorEnc, "regulator");
    let user_enc = w.pki.leaf(&w.pki.a, Role::UserEnc, "alice");
    let a_auditor_enc = w.pki.leaf(&w.pki.a, Role::AuditorEnc, "audit");
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (
            {
                let mut g = supervised_genesis(&w, "supervisor", &[]);
                g["supervision"]["supervisor"] = serde_json::json!("Nobody");
                g
            },
            "supervision.supervisor",
        ),
        (
            supervised_genesis(&w, "sometimes", &[]),
            "supervision.freeze_policy",
        ),
        (
            {
                let mut g = supervised_genesis(&w, "supervisor", &[]);
                g["supervision"]
                    .as_object_mut()
                    .unwrap()
                    .remove("freeze_policy");
                g
            },
            "supervision.freeze_policy: missing",
        ),
        (
            supervised_genesis(&w, "supervisor", &[&user_enc]),
            "not auditor-enc",
        ),
        (
            supervised_genesis(&w, "supervisor", &[&a_auditor_enc]),
            "is not the supervisor",
        ),
        (
            supervised_genesis(&w, "supervisor", &[&regulator_enc, &regulator_enc]),
            "duplicate",
        ),
        (
            {
                let mut g = supervised_genesis(&w, "supervisor", &[]);
                g["format"] = serde_json::json!(2);
                g
            },
            "supervision",
        ),
        (
            {
                let mut g = supervised_genesis(&w, "supervisor", &[]);
                g["supervision"]["extra"] = serde_json::json!(1);
                g
            },
            "supervision.extra",
        ),
    ];
    for (json, needle) in cases {
        let e = Genesis::from_json(json.to_string().as_bytes()).unwrap_err();
        assert!(e.to_string().contains(needle), "{needle}: {e}");
    }
}

#[test]
fn a_frozen_certificate_is_refused_from_the_next_block_with_its_own_code_and_only_the_supervisor_lifts_it()
 {
    let mut s = supervised("supervisor");
    let alice = s.w.user.id().to_hex();
    // Alice's certificate is on the chain once she has transacted.
    assert_success(&s.node.run(&[anchor(&s.w.user, 9, &sm3(b"first"))]));
    // Admitted before the freeze: refused at recheck once it is committed.
    let pending = s.node.must_admit(&anchor(&s.w.user, 1, &sm3(b"pending")));
    let r = s.node.run(&[freeze(&s.regulator, 1, "cert", &alice)]);
    assert_success(&r);
    let err = s.node.recheck(&pending).unwrap_err();
    assert_eq!(err.code, RejectCode::SignerFrozen, "{err}");
    assert!(err.message.contains("a reason"), "{err}");
    assert_eq!(
        code_of(s.node.admit(&anchor(&s.w.user, 2, &sm3(b"x")))),
        RejectCode::SignerFrozen
    );
    // A TLS handshake is judged the same way.
    let view = s.node.view();
    let refused = s
        .node
        .admission
        .authenticate(&view, t(11), &s.w.user.cert)
        .unwrap_err();
    assert!(
        matches!(&refused, execution::MemberRefusal::Frozen(RejectCode::SignerFrozen, m) if m.contains("frozen")),
        "{refused:?}"
    );
    // Others are unaffected.
    s.node.must_admit(&anchor(&s.w.user2, 1, &sm3(b"y")));
    // An admin's resume does not lift a supervisor's freeze: it is not a suspension.
    let r = s.node.run(&[call(
        &s.w.admin,
        1,
        "identity",
        "resume",
        vec![s.w.user.id().0.to_vec()],
    )]);
    assert_eq!(failed(&r[0]), Some(FailureCode::NotSuspended));
    // A second freeze fails; an admin's suspension is a separate flag.
    let r = s.node.run(&[
        freeze(&s.regulator, 2, "cert", &alice),
        call(
            &s.w.admin,
            2,
            "identity",
            "suspend",
            vec![s.w.user.id().0.to_vec()],
        ),
    ]);
    assert_eq!(failed(&r[0]), Some(FailureCode::AlreadyFrozen));
    assert_eq!(r[1].status, Status::Success);
    // The supervisor's unfreeze leaves the suspension: still refused, now as suspended.
    let r = s.node.run(&[unfreeze(&s.regulator, 3, "cert", &alice)]);
    assert_success(&r);
    assert_eq!(
        code_of(s.node.admit(&anchor(&s.w.user, 3, &sm3(b"z")))),
        RejectCode::SignerSuspended
    );
    let r = s.node.run(&[call(
        &s.w.admin,
        3,
        "identity",
        "resume",
        vec![s.w.user.id().0.to_vec()],
    )]);
    assert_success(&r);
    s.node.must_admit(&anchor(&s.w.user, 4, &sm3(b"z")));
    // Unfreezing what is not frozen fails with its code.
    let r = s.node.run(&[unfreeze(&s.regulator, 4, "cert", &alice)]);
    assert_eq!(failed(&r[0]), Some(FailureCode::NotFrozen));
}

#[test]
fn an_organisation_freeze_stops_its_people_not_its_nodes_and_never_the_supervisor() {
    let mut s = supervised("supervisor");
    let r = s.node.run(&[freeze(&s.regulator, 1, "org", "Agency A")]);
    assert_success(&r);
    for m in [&s.w.user, &s.w.admin] {
        assert_eq!(
            code_of(s.node.admit(&anchor(m, 9, &sm3(b"p")))),
            RejectCode::OrgFrozen
        );
    }
    let view = s.node.view();
    assert!(
        s.node
            .admission
            .authenticate(&view, t(11), &s.w.node_cert.cert)
            .is_ok(),
        "a node of a frozen organisation still authenticates"
    );
    // The supervising organisation is never frozen as a whole (its people alone unfreeze).
    let err = s
        .node
        .admit(&freeze(&s.regulator, 2, "org", "GMChain Consortium"))
        .unwrap_err();
    assert_eq!(err.code, RejectCode::PermissionDenied, "{err}");
    assert!(err.message.contains("supervising organisation"), "{err}");
    // Unknown targets are refused; so is a reason that is not printable text.
    let err = s
        .node
        .admit(&freeze(&s.regulator, 3, "org", "Agency Z"))
        .unwrap_err();
    assert!(err.message.contains("no registered organisation"), "{err}");
    let err = s
        .node
        .admit(&freeze(&s.regulator, 4, "contract", "nothing-here"))
        .unwrap_err();
    assert!(err.message.contains("no deployed contract"), "{err}");
    let err = s
        .node
        .admit(&call(
            &s.regulator,
            5,
            "supervision",
            "freeze",
            freeze_args("cert", &"ab".repeat(32), "line\nbreak"),
        ))
        .unwrap_err();
    assert_eq!(err.code, RejectCode::BadArguments, "{err}");
    let err = s
        .node
        .admit(&call(
            &s.regulator,
            6,
            "supervision",
            "freeze",
            freeze_args("cert", "not-hex", "r"),
        ))
        .unwrap_err();
    assert_eq!(err.code, RejectCode::BadArguments, "{err}");
    let r = s.node.run(&[unfreeze(&s.regulator, 7, "org", "Agency A")]);
    assert_success(&r);
    s.node.must_admit(&anchor(&s.w.user, 10, &sm3(b"q")));
}

#[test]
fn only_the_supervisors_auditors_freeze_and_only_under_the_supervisor_policy() {
    let s = supervised("supervisor");
    let alice = s.w.user.id().to_hex();
    // An auditor of another organisation.
    let err = s
        .node
        .admit(&freeze(&s.w.auditor, 1, "cert", &alice))
        .unwrap_err();
    assert_eq!(err.code, RejectCode::PermissionDenied, "{err}");
    assert!(err.message.contains("not the chain's supervisor"), "{err}");
    // An admin, even of the supervisor: the permission table.
    let root_admin = s.w.pki.leaf(&s.w.pki.root, Role::Admin, "root-admin");
    let err = s
        .node
        .admit(&freeze(&root_admin, 1, "cert", &alice))
        .unwrap_err();
    assert_eq!(err.code, RejectCode::PermissionDenied, "{err}");
    // Under the governance policy, the supervisor's auditors cannot act alone.
    let g = supervised("governance");
    let err = g
        .node
        .admit(&freeze(&g.regulator, 1, "cert", &alice))
        .unwrap_err();
    assert_eq!(err.code, RejectCode::PermissionDenied, "{err}");
    assert!(err.message.contains("governance"), "{err}");
    // A chain without a supervisor.
    let plain = Node::new(&s.w.g);
    let err = plain
        .admit(&freeze(&s.regulator, 1, "cert", &alice))
        .unwrap_err();
    assert!(err.message.contains("names no supervisor"), "{err}");
}

fn count(node: &Node, kind: &str, id: &str) -> u64 {
    node.view()
        .get(&full(AUDIT, &execution::keys::audit::count(kind, id)))
        .unwrap()
        .map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap()))
}

fn entry(node: &Node, kind: &str, id: &str, seq: u64) -> TraceEntry {
    let key = full(AUDIT, &execution::keys::audit::entry(kind, id, seq));
    TraceEntry::decode(&key, &node.view().get(&key).unwrap().unwrap()).unwrap()
}

#[test]
fn every_transaction_enters_its_signer_organisation_and_contract_indexes_in_order() {
    let mut s = supervised("supervisor");
    let alice = s.w.user.id().to_hex();
    let d = sm3(b"doc");
    // Block 1: two anchors by alice (the second a duplicate, failing) and one by bob.
    let first = s.node.must_admit(&anchor(&s.w.user, 1, &d));
    let again = s.node.must_admit(&anchor(&s.w.user, 2, &d));
    let bob = s.node.must_admit(&anchor(&s.w.user2, 1, &sm3(b"bob")));
    s.node.commit(&[first.clone(), again.clone(), bob.clone()]);
    // Block 2: the regulator freezes alice.
    let r = s.node.run(&[freeze(&s.regulator, 1, "cert", &alice)]);
    assert_success(&r);
    // One entry per block that touched alice: block 1 (two transactions), block 2 (the freeze).
    assert_eq!(count(&s.node, "cert", &alice), 2);
    let e: Vec<TraceEntry> = (0..2).map(|i| entry(&s.node, "cert", &alice, i)).collect();
    let rows: Vec<(u64, u32, u32)> = e
        .iter()
        .flat_map(|e| e.rows.iter().map(move |r| (e.height.0, r.position, r.code)))
        .collect();
    assert_eq!(rows, vec![(1, 0, 0), (1, 1, 3001), (2, 0, 0)]);
    assert_eq!(
        (e[0].rows[0].tx_id, e[0].rows[1].tx_id),
        (first.id().0, again.id().0)
    );
    assert_eq!(
        (e[1].rows[0].contract.as_str(), e[1].rows[0].method.as_str()),
        ("supervision", "freeze")
    );
    assert_eq!(count(&s.node, "org", "Agency A"), 1);
    assert_eq!(entry(&s.node, "org", "Agency A", 0).rows.len(), 3);
    assert_eq!(count(&s.node, "org", "GMChain Consortium"), 1);
    assert_eq!(count(&s.node, "contract", "attestation"), 1);
    assert_eq!(count(&s.node, "contract", "supervision"), 1);
    // An attestation has no index of its own: its record is its whole history.
    assert_eq!(count(&s.node, "attestation", &first.id().0.to_hex()), 0);
    assert_eq!(count(&s.node, "cert", &s.w.user2.id().to_hex()), 1);
    // The same transactions on another node give the same root: the indexes are part of
    // the state every validator computes.
    let mut other = Node::new(
        &Genesis::from_json(
            supervised_genesis(&s.w, "supervisor", &[&s.regulator_enc])
                .to_string()
                .as_bytes(),
        )
        .unwrap(),
    );
    other.commit(&[first, again, bob]);
    other.run(&[freeze(&s.regulator, 1, "cert", &alice)]);
    assert_eq!(other.root, s.node.root);
}

/// Review 18: a block touching a subject more than `MAX_ROWS_PER_ENTRY` (256) times writes
/// several entries at the same height, numbered on, with the transactions in block order.
#[test]
fn a_block_of_more_than_256_rows_for_a_subject_splits_into_numbered_entries() {
    let mut s = supervised("supervisor");
    let mut txs = Vec::new();
    for i in 0..150u8 {
        for (m, who) in [(&s.w.user, 0u8), (&s.w.user2, 1u8)] {
            txs.push(s.node.must_admit(&anchor(m, i, &sm3(&[who, i]))));
        }
    }
    s.node.commit(&txs);
    let e: Vec<TraceEntry> = (0..count(&s.node, "org", "Agency A"))
        .map(|i| entry(&s.node, "org", "Agency A", i))
        .collect();
    assert_eq!(
        e.iter()
            .map(|e| (e.height.0, e.rows.len()))
            .collect::<Vec<_>>(),
        vec![
            (1, execution::MAX_ROWS_PER_ENTRY),
            (1, 300 - execution::MAX_ROWS_PER_ENTRY)
        ]
    );
    let positions: Vec<u32> = e
        .iter()
        .flat_map(|e| e.rows.iter().map(|r| r.position))
        .collect();
    assert_eq!(positions, (0..300).collect::<Vec<u32>>());
    let ids: Vec<_> = e
        .iter()
        .flat_map(|e| e.rows.iter().map(|r| r.tx_id))
        .collect();
    assert_eq!(ids, txs.iter().map(|t| t.id().0).collect::<Vec<_>>());
    // Each signer's own index: one entry of its 150.
    assert_eq!(count(&s.node, "cert", &s.w.user.id().to_hex()), 1);
    assert_eq!(
        entry(&s.node, "cert", &s.w.user.id().to_hex(), 0)
            .rows
            .len(),
        150
    );
}

#[test]
fn freeze_kinds_round_trip() {
    for k in [FreezeKind::Cert, FreezeKind::Org, FreezeKind::Contract] {
        assert_eq!(FreezeKind::parse(k.as_str()), Some(k));
    }
    assert_eq!(FreezeKind::parse("dataset"), None);
}

#[test]
fn under_the_governance_policy_a_freeze_is_a_vote_of_the_organisations() {
    let mut s = supervised("governance");
    let alice = s.w.user.id().to_hex();
    assert_success(&s.node.run(&[anchor(&s.w.user, 9, &sm3(b"first"))]));
    let root_admin = s.w.pki.leaf(&s.w.pki.root, Role::Admin, "root-admin");
    let rest = freeze_args("cert", &alice, "by vote");
    // Only the supervising organisation proposes it.
    let err = s
        .node
        .admit(&propose_org(
            &s.node,
            &s.w.admin,
            1,
            "supervision-freeze",
            rest.clone(),
        ))
        .unwrap_err();
    assert!(err.message.contains("not the chain's supervisor"), "{err}");
    let p = propose_org(&s.node, &root_admin, 1, "supervision-freeze", rest.clone());
    let id = proposal_of(&p);
    assert_success(&s.node.run(&[p]));
    // One of two organisations voted: not in force yet.
    s.node.must_admit(&anchor(&s.w.user, 10, &sm3(b"still")));
    assert_success(&s.node.run(&[yes(&s.w.admin, 2, &id)]));
    assert_eq!(
        code_of(s.node.admit(&anchor(&s.w.user, 11, &sm3(b"now")))),
        RejectCode::SignerFrozen
    );
    let f = execution::supervisor_freeze(&s.node.view(), FreezeKind::Cert, &alice)
        .unwrap()
        .unwrap();
    assert_eq!(f.reason, "by vote");
    // The unfreeze is a vote too.
    let p = propose_org(
        &s.node,
        &root_admin,
        3,
        "supervision-unfreeze",
        freeze_args("cert", &alice, "cleared"),
    );
    let id = proposal_of(&p);
    assert_success(&s.node.run(&[p]));
    assert_success(&s.node.run(&[yes(&s.w.admin, 4, &id)]));
    s.node.must_admit(&anchor(&s.w.user, 12, &sm3(b"again")));
    // Under the supervisor policy the same proposal is refused: the auditors act alone.
    let t = supervised("supervisor");
    let err = t
        .node
        .admit(&propose_org(
            &t.node,
            &root_admin,
            1,
            "supervision-freeze",
            rest,
        ))
        .unwrap_err();
    assert!(err.message.contains("without a vote"), "{err}");
}

#[test]
fn governance_names_another_supervisor() {
    let mut s = supervised("supervisor");
    let root_admin = s.w.pki.leaf(&s.w.pki.root, Role::Admin, "root-admin");
    let p = propose_org(
        &s.node,
        &root_admin,
        1,
        "supervisor",
        vec![b"Agency A".to_vec(), b"governance".to_vec()],
    );
    let id = proposal_of(&p);
    assert_success(&s.node.run(&[p]));
    assert_success(&s.node.run(&[yes(&s.w.admin, 1, &id)]));
    let sup = execution::supervisor(&s.node.view()).unwrap().unwrap();
    assert_eq!(
        (sup.organisation.as_str(), sup.policy, sup.since.0),
        ("Agency A", FreezePolicy::Governance, 2)
    );
    // The former supervisor's auditor no longer freezes; the new one's would need a vote.
    let err = s
        .node
        .admit(&freeze(&s.regulator, 2, "cert", &"ab".repeat(32)))
        .unwrap_err();
    assert!(err.message.contains("not the chain's supervisor"), "{err}");
    // An unknown organisation cannot be named.
    let err = s
        .node
        .admit(&propose_org(
            &s.node,
            &root_admin,
            3,
            "supervisor",
            vec![b"Agency Z".to_vec(), b"supervisor".to_vec()],
        ))
        .unwrap_err();
    assert!(err.message.contains("not an active organisation"), "{err}");
}

#[test]
fn a_node_and_a_ca_anchor_their_audit_log_heads_which_only_grow() {
    let mut s = supervised("supervisor");
    let node_log = s.w.node_cert.id();
    let anchor_log = |m: &Member, salt: u8, log: &Digest, seq: u64, head: u8| {
        call(
            m,
            salt,
            "supervision",
            "anchor_log",
            vec![log.0.to_vec(), seq.to_be_bytes().to_vec(), vec![head; 32]],
        )
    };
    assert_success(
        &s.node
            .run(&[anchor_log(&s.w.node_cert, 1, &node_log, 10, 1)]),
    );
    let h = execution::log_head(&s.node.view(), &node_log)
        .unwrap()
        .unwrap();
    assert_eq!((h.seq, h.head, h.height.0), (10, Digest([1; 32]), 1));
    // Growing is fine; going back, or another hash at the same entry, fails with its code.
    assert_success(
        &s.node
            .run(&[anchor_log(&s.w.node_cert, 2, &node_log, 20, 2)]),
    );
    let r = s.node.run(&[
        anchor_log(&s.w.node_cert, 3, &node_log, 19, 3),
        anchor_log(&s.w.node_cert, 4, &node_log, 20, 4),
    ]);
    assert_eq!(failed(&r[0]), Some(FailureCode::LogRegressed));
    assert_eq!(failed(&r[1]), Some(FailureCode::LogRegressed));
    // A node anchors only its own log; an admin only its organisation's CA's.
    let err = s
        .node
        .admit(&anchor_log(&s.w.node_cert, 5, &s.w.user.id(), 1, 1))
        .unwrap_err();
    assert_eq!(err.code, RejectCode::PermissionDenied, "{err}");
    // A CA's log: its admin anchors it with the CA's signature of the anchor.
    let ca_log = s.w.pki.a.ca.fingerprint();
    let ca_signed = |key: &SoftSigner, salt: u8, log: &Digest, seq: u64, head: u8| {
        let sig = key
            .sign(
                &UserId::default(),
                &execution::log_anchor_statement(log, seq, &Digest([head; 32])),
            )
            .unwrap();
        let mut a = vec![log.0.to_vec(), seq.to_be_bytes().to_vec(), vec![head; 32]];
        a.push(crypto::gmt0009::encode_signature(&sig));
        call(&s.w.admin, salt, "supervision", "anchor_log", a)
    };
    assert_success(&s.node.run(&[ca_signed(&s.w.pki.a.key, 6, &ca_log, 3, 9)]));
    // Not without the CA's signature, nor with another key's, nor for another CA.
    let err = s
        .node
        .admit(&anchor_log(&s.w.admin, 7, &ca_log, 4, 9))
        .unwrap_err();
    assert!(err.message.contains("CA's signature"), "{err}");
    let err = s
        .node
        .admit(&ca_signed(&s.w.pki.root.key, 8, &ca_log, 5, 9))
        .unwrap_err();
    assert_eq!(err.code, RejectCode::PermissionDenied, "{err}");
    let root_log = s.w.pki.root.ca.fingerprint();
    let err = s
        .node
        .admit(&ca_signed(&s.w.pki.root.key, 9, &root_log, 3, 9))
        .unwrap_err();
    assert_eq!(err.code, RejectCode::PermissionDenied, "{err}");
    // A user cannot anchor anything.
    let err = s
        .node
        .admit(&anchor_log(&s.w.user, 10, &ca_log, 4, 9))
        .unwrap_err();
    assert_eq!(err.code, RejectCode::PermissionDenied, "{err}");
}

/// review17 finding 1: a single auditor of the supervisor (policy `supervisor`, no vote) can
/// freeze a validator's node-sign certificate. `authenticate` (which the node's p2p link
/// admission and TLS listeners call, crates/node/src/bft.rs `start_with_links`) then refuses
/// it, so its consensus links are cut after the block; freezing more than a third of the
/// validators halts the chain, and the unfreeze can then never be committed.
#[test]
fn review17_a_supervisor_freeze_must_not_cut_a_validator() {
    let s = supervised("supervisor");
    let validator = s.w.node_cert.id();
    assert!(
        s.w.g.validator(&validator).is_some(),
        "node-1 is a validator"
    );
    let r = s
        .node
        .admit(&freeze(&s.regulator, 1, "cert", &validator.to_hex()));
    assert!(
        r.is_err(),
        "a supervisor's freeze of a validator's node-sign certificate should be refused (it cuts consensus links)"
    );
}

/// review17 finding 1 (consequence): once frozen, the validator's certificate no longer
/// authenticates, which is what the p2p link admission checks.
#[test]
fn review17_a_frozen_validator_still_authenticates_for_links() {
    let mut s = supervised("supervisor");
    let validator = s.w.node_cert.id();
    // The node's certificate is on the chain once it has transacted; even then the freeze is
    // refused (only people are frozen), so its links and votes never depend on one auditor.
    let request = call(
        &s.w.node_cert,
        1,
        "supervision",
        "anchor_log",
        vec![
            validator.0.to_vec(),
            1u64.to_be_bytes().to_vec(),
            vec![1; 32],
        ],
    );
    assert_success(&s.node.run(&[request]));
    let err = s
        .node
        .admit(&freeze(&s.regulator, 1, "cert", &validator.to_hex()))
        .unwrap_err();
    assert!(err.message.contains("not a person's"), "{err}");
    let view = s.node.view();
    let r = s
        .node
        .admission
        .authenticate(&view, t(11), &s.w.node_cert.cert);
    assert!(
        r.is_ok(),
        "validator refused after a supervisor freeze: {r:?}"
    );
}

/// review17 finding 4: any admin of an organisation can anchor an arbitrary (seq, head) for
/// the organisation's CA log without any proof that the CA signed it; one anchor at
/// seq u64::MAX makes every later genuine anchor fail LOG_REGRESSED, for ever.
#[test]
fn review17_an_admin_cannot_jam_the_ca_log_anchor() {
    let mut s = supervised("supervisor");
    let ca_log = s.w.pki.a.ca.fingerprint();
    let anchor_log = |m: &Member, salt: u8, seq: u64, head: u8| {
        call(
            m,
            salt,
            "supervision",
            "anchor_log",
            vec![
                ca_log.0.to_vec(),
                seq.to_be_bytes().to_vec(),
                vec![head; 32],
            ],
        )
    };
    // Without the CA's signature the jamming anchor is refused at admission.
    let err = s
        .node
        .admit(&anchor_log(&s.w.admin, 1, u64::MAX, 0xee))
        .unwrap_err();
    assert_eq!(err.code, RejectCode::BadArguments, "{err}");
    // The CA's genuine head, entry 42, signed by the CA, is anchored.
    let sig =
        s.w.pki
            .a
            .key
            .sign(
                &UserId::default(),
                &execution::log_anchor_statement(&ca_log, 42, &Digest([0x42; 32])),
            )
            .unwrap();
    let genuine = call(
        &s.w.admin,
        2,
        "supervision",
        "anchor_log",
        vec![
            ca_log.0.to_vec(),
            42u64.to_be_bytes().to_vec(),
            vec![0x42; 32],
            crypto::gmt0009::encode_signature(&sig),
        ],
    );
    assert_success(&s.node.run(&[genuine]));
}
