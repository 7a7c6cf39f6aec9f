//! The `exchange` contract (issue 15): the catalogue, requests and grants by sharing class,
//! the custodian's fetch log, point-to-point messages with acknowledgements, and every
//! organisation rule refused with its code at admission or in execution.

use super::*;
use crypto::{CipherFormat, Decrypter};
use execution::data::{
    self, Envelope, FetchObject, OBJECT_DATASET, OBJECT_MESSAGE, RequestStatus, SharingClass,
};

/// Agency A with a custodian node (node-1, its node-enc certificate recorded as an endpoint)
/// and Agency B with a node that requests.
struct Exchange {
    w: World,
    x: WithB,
    a_enc: Member,
    b_node: Member,
    b_enc: Member,
}

fn u64b(v: u64) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

fn endpoint_args(node: &str, enc: &Member) -> Vec<Vec<u8>> {
    vec![
        node.as_bytes().to_vec(),
        b"127.0.0.2:7443".to_vec(),
        enc.cert.der().to_vec(),
    ]
}

fn setup() -> Exchange {
    let w = world();
    let mut x = with_agency_b(&w);
    let a_enc = w.pki.leaf(&w.pki.a, Role::NodeEnc, "node-1");
    let b_node = w.pki.leaf(&x.b, Role::NodeSign, "b-node");
    let b_enc = w.pki.leaf(&x.b, Role::NodeEnc, "b-node");
    let r = x.node.run(&[call(
        &w.admin,
        10,
        "exchange",
        "set_endpoint",
        endpoint_args("node-1", &a_enc),
    )]);
    assert_success(&r);
    Exchange {
        w,
        x,
        a_enc,
        b_node,
        b_enc,
    }
}

fn register_args(name: &str, class: SharingClass) -> Vec<Vec<u8>> {
    vec![
        name.as_bytes().to_vec(),
        vec![class.to_u8()],
        b"application/json".to_vec(),
        "营业执照 licences".as_bytes().to_vec(),
        b"business licences issued this year".to_vec(),
        vec![0],
    ]
}

/// A wrapped 16-byte data key to `to`.
fn wrap(key: &[u8; 16], to: &Member) -> Vec<u8> {
    crypto_sm::sm2::encrypt(
        &to.cert.public_key(),
        key,
        CipherFormat::Der,
        &SeededRandom::new(7),
    )
    .unwrap()
}

fn payload_fields(plaintext_len: u64, custodian: &str, envelope: Vec<u8>) -> Vec<Vec<u8>> {
    vec![
        sm3(b"plaintext").0.to_vec(),
        sm3(b"payload").0.to_vec(),
        u64b(plaintext_len),
        u64b(exchange::payload::sealed_len(plaintext_len).unwrap()),
        custodian.as_bytes().to_vec(),
        envelope,
        data::encode_envelopes(&[]),
    ]
}

fn publish_args(name: &str, custodian_enc: &Member) -> Vec<Vec<u8>> {
    let mut a = vec![name.as_bytes().to_vec()];
    a.extend(payload_fields(
        3 << 20,
        "node-1",
        wrap(&[9; 16], custodian_enc),
    ));
    a.push(Vec::new());
    a
}

fn request_args(dataset: &str, enc: &Member, duration: u64) -> Vec<Vec<u8>> {
    vec![
        dataset.as_bytes().to_vec(),
        "核验企业资质 licence checks".as_bytes().to_vec(),
        enc.cert.der().to_vec(),
        u64b(duration),
    ]
}

fn fetch_args(
    dataset: &str,
    version: u64,
    requester: &Member,
    request: Digest,
    outcome: u32,
    envelope: Vec<u8>,
) -> Vec<Vec<u8>> {
    vec![
        vec![OBJECT_DATASET],
        dataset.as_bytes().to_vec(),
        u64b(version),
        requester.id().0.to_vec(),
        request.0.to_vec(),
        outcome.to_be_bytes().to_vec(),
        // The record names the released envelope by its SM3.
        if envelope.is_empty() {
            Vec::new()
        } else {
            sm3(&envelope).0.to_vec()
        },
        Vec::new(),
    ]
}

fn tx_id(bytes: &[u8]) -> Digest {
    SignedTx::from_bytes(bytes, &types::Limits::default())
        .unwrap()
        .tx_id()
        .0
}

/// A's user registers `name` of `class` and, with `publish`, publishes its first version
/// (custodian node-1); each transaction in its own block, which must succeed.
fn dataset(
    node: &mut Node,
    user: &Member,
    custodian_enc: &Member,
    salt: u8,
    name: &str,
    class: SharingClass,
    publish: bool,
) {
    assert_success(&node.run(&[call(
        user,
        salt,
        "exchange",
        "register",
        register_args(name, class),
    )]));
    if publish {
        assert_success(&node.run(&[call(
            user,
            salt + 1,
            "exchange",
            "publish",
            publish_args(name, custodian_enc),
        )]));
    }
}

/// `who` requests `dataset` with `enc` for `duration` blocks, in a block of its own, which must
/// succeed; returns the request's ID.
fn ask(
    node: &mut Node,
    who: &Member,
    enc: &Member,
    salt: u8,
    dataset: &str,
    duration: u64,
) -> Digest {
    let tx = call(
        who,
        salt,
        "exchange",
        "request",
        request_args(dataset, enc, duration),
    );
    let id = tx_id(&tx);
    assert_success(&node.run(&[tx]));
    id
}

#[test]
fn a_conditional_dataset_is_granted_by_the_owner_fetched_logged_and_revoked() {
    let mut e = setup();
    let node = &mut e.x.node;
    let r = node.run(&[call(
        &e.w.user,
        20,
        "exchange",
        "register",
        register_args("licences", SharingClass::Conditional),
    )]);
    assert_success(&r);
    let r = node.run(&[call(
        &e.w.user,
        21,
        "exchange",
        "publish",
        publish_args("licences", &e.a_enc),
    )]);
    assert_success(&r);
    let ds = data::dataset(&node.view(), "Agency A/licences")
        .unwrap()
        .unwrap();
    assert_eq!((ds.versions, ds.class), (1, SharingClass::Conditional));
    let v = data::version(&node.view(), "Agency A/licences", 1)
        .unwrap()
        .unwrap();
    assert_eq!(v.payload.plaintext_len, 3 << 20);
    assert_eq!(v.payload.custodian_envelope.recipient, e.a_enc.id());
    // The custodian's copy opens with the node-enc key, to the data key.
    let key = e
        .a_enc
        .key
        .decrypt(&v.payload.custodian_envelope.cipher, CipherFormat::Der)
        .unwrap();
    assert_eq!(key.expose(), &[9; 16]);
    assert_eq!(
        data::datasets(&node.view(), 0, 10).unwrap(),
        vec!["Agency A/licences".to_string()]
    );

    // B's node asks; the request waits for A's admin.
    let rid = ask(node, &e.b_node, &e.b_enc, 22, "Agency A/licences", 1000);
    let req = data::request(&node.view(), &rid).unwrap().unwrap();
    assert_eq!(req.status, RequestStatus::Pending);
    assert_eq!(req.organisation, "Agency B");
    assert!(!req.live_at(Height(node.height)));
    let latest = data::latest_request(&node.view(), &e.b_node.id(), "Agency A/licences")
        .unwrap()
        .unwrap();
    assert_eq!(latest.id, rid);

    // B's admin cannot grant A's dataset; A's admin can, until an expiry height.
    let not_owner = call(
        &e.x.b_admin,
        23,
        "exchange",
        "grant",
        vec![rid.0.to_vec(), u64b(100)],
    );
    assert_eq!(
        code_of(node.admit(&not_owner)),
        RejectCode::PermissionDenied
    );
    let expiry = node.height + 50;
    let r = node.run(&[call(
        &e.w.admin,
        24,
        "exchange",
        "grant",
        vec![rid.0.to_vec(), u64b(expiry)],
    )]);
    assert_success(&r);
    let req = data::request(&node.view(), &rid).unwrap().unwrap();
    assert_eq!(req.status, RequestStatus::Granted);
    assert!(req.live_at(Height(expiry)) && !req.live_at(Height(expiry + 1)));
    assert_eq!(req.decided_by, e.w.admin.id());
    // A second grant of the same request is refused in execution.
    let r = node.run(&[call(
        &e.w.admin,
        25,
        "exchange",
        "grant",
        vec![rid.0.to_vec(), u64b(expiry)],
    )]);
    assert_eq!(failed(&r[0]), Some(FailureCode::RequestState));

    // The custodian records a served fetch with the grantee's envelope; another node of A
    // (not the custodian) may not.
    let served = wrap(&[9; 16], &e.b_enc);
    let r = node.run(&[call(
        &e.w.node_cert,
        26,
        "exchange",
        "record_fetch",
        fetch_args("Agency A/licences", 1, &e.b_node, rid, 0, served.clone()),
    )]);
    assert_success(&r);
    let other = e.w.pki.leaf(&e.w.pki.a, Role::NodeSign, "node-2");
    let r = node.admit(&call(
        &other,
        27,
        "exchange",
        "record_fetch",
        fetch_args("Agency A/licences", 1, &e.b_node, rid, 0, served.clone()),
    ));
    assert_eq!(code_of(r), RejectCode::PermissionDenied);
    // A version that does not exist is refused.
    let r = node.admit(&call(
        &e.w.node_cert,
        28,
        "exchange",
        "record_fetch",
        fetch_args("Agency A/licences", 2, &e.b_node, rid, 0, served.clone()),
    ));
    assert_eq!(code_of(r), RejectCode::PermissionDenied);

    // Revoked: the custodian records the refusal that follows.
    let r = node.run(&[call(
        &e.w.admin,
        29,
        "exchange",
        "revoke",
        vec![rid.0.to_vec(), b"audit finding".to_vec()],
    )]);
    assert_success(&r);
    let req = data::request(&node.view(), &rid).unwrap().unwrap();
    assert_eq!(req.status, RequestStatus::Revoked);
    assert_eq!(req.reason, "audit finding");
    let refused = codes::EXCHANGE_NO_GRANT.number;
    let r = node.run(&[call(
        &e.w.node_cert,
        30,
        "exchange",
        "record_fetch",
        fetch_args("Agency A/licences", 1, &e.b_node, rid, refused, Vec::new()),
    )]);
    assert_success(&r);
    let (log, total) = data::fetch_log(
        &node.view(),
        &FetchObject::Dataset("Agency A/licences".into()),
        0,
        10,
    )
    .unwrap();
    assert_eq!(total, 2);
    assert_eq!(log[0].outcome, 0);
    assert_eq!(log[0].requester, e.b_node.id());
    assert_eq!(log[0].node, e.w.node_cert.id());
    assert_eq!(log[0].envelope_sm3, sm3(&served).0.to_vec());
    assert_eq!(
        e.b_enc
            .key
            .decrypt(&served, CipherFormat::Der)
            .unwrap()
            .expose(),
        &[9; 16]
    );
    assert_eq!((log[1].outcome, log[1].envelope_sm3.len()), (refused, 0));
    // A refused fetch carries no envelope; a served one must carry one.
    let r = node.admit(&call(
        &e.w.node_cert,
        31,
        "exchange",
        "record_fetch",
        fetch_args("Agency A/licences", 1, &e.b_node, rid, 0, Vec::new()),
    ));
    assert_eq!(code_of(r), RejectCode::BadArguments);
}

#[test]
fn an_unconditional_dataset_is_granted_at_once_and_a_not_shared_one_never() {
    let mut e = setup();
    let node = &mut e.x.node;
    let r = node.run(&[
        call(
            &e.w.user,
            20,
            "exchange",
            "register",
            register_args("open", SharingClass::Unconditional),
        ),
        call(
            &e.w.user,
            21,
            "exchange",
            "register",
            register_args("closed", SharingClass::NotShared),
        ),
    ]);
    assert_success(&r);
    let open = call(
        &e.b_node,
        22,
        "exchange",
        "request",
        request_args("Agency A/open", &e.b_enc, 30),
    );
    let closed = call(
        &e.b_node,
        23,
        "exchange",
        "request",
        request_args("Agency A/closed", &e.b_enc, 30),
    );
    let (open_id, at) = (tx_id(&open), node.height + 1);
    let r = node.run(&[open, closed]);
    assert_eq!(r[0].status, Status::Success);
    assert_eq!(failed(&r[1]), Some(FailureCode::NotShared));
    let req = data::request(&node.view(), &open_id).unwrap().unwrap();
    assert_eq!(req.status, RequestStatus::Granted);
    assert_eq!(req.expiry, Height(at + 30));
    assert_eq!(req.decided_by, Digest([0; 32]));
    // Nothing of the refused request was written.
    let ds = data::dataset(&node.view(), "Agency A/closed")
        .unwrap()
        .unwrap();
    assert_eq!(ds.requests, 0);
    assert!(
        data::latest_request(&node.view(), &e.b_node.id(), "Agency A/closed")
            .unwrap()
            .is_none()
    );
    // A dataset that does not exist fails; a duplicate name fails.
    let r = node.run(&[
        call(
            &e.b_node,
            24,
            "exchange",
            "request",
            request_args("Agency A/nothing", &e.b_enc, 30),
        ),
        call(
            &e.w.admin,
            25,
            "exchange",
            "register",
            register_args("open", SharingClass::Conditional),
        ),
    ]);
    assert_eq!(failed(&r[0]), Some(FailureCode::DatasetUnknown));
    assert_eq!(failed(&r[1]), Some(FailureCode::DatasetExists));
}

#[test]
fn requests_need_the_signers_own_encryption_certificate_of_another_organisation() {
    let mut e = setup();
    let node = &mut e.x.node;
    dataset(
        node,
        &e.w.user,
        &e.a_enc,
        20,
        "open",
        SharingClass::Unconditional,
        false,
    );
    // Another holder's encryption certificate (A's node-enc) is not B's node's.
    let r = node.admit(&call(
        &e.b_node,
        21,
        "exchange",
        "request",
        request_args("Agency A/open", &e.a_enc, 30),
    ));
    assert_eq!(code_of(r), RejectCode::PermissionDenied);
    // A signing certificate is not an encryption certificate.
    let r = node.admit(&call(
        &e.b_node,
        22,
        "exchange",
        "request",
        request_args("Agency A/open", &e.b_node, 30),
    ));
    assert_eq!(code_of(r), RejectCode::PermissionDenied);
    // The owner's own organisation does not request.
    let a_enc2 = e.w.pki.leaf(&e.w.pki.a, Role::NodeEnc, "node-1");
    let r = node.admit(&call(
        &e.w.node_cert,
        23,
        "exchange",
        "request",
        request_args("Agency A/open", &a_enc2, 30),
    ));
    assert_eq!(code_of(r), RejectCode::PermissionDenied);
    // A revoked encryption certificate is refused at admission (B's CRL names it).
    let crl = e.w.pki.crl(&e.x.b, 3, 2, &[&e.b_enc]);
    assert_success(&node.run(&[call(
        &e.x.b_admin,
        24,
        "identity",
        "update_crl",
        vec![crl.der().to_vec()],
    )]));
    let r = node.admit(&call(
        &e.b_node,
        25,
        "exchange",
        "request",
        request_args("Agency A/open", &e.b_enc, 30),
    ));
    assert_eq!(code_of(r), RejectCode::PermissionDenied);
    // A person's dual pair: B's user with its user-enc certificate is admitted, and not with
    // an encryption certificate of another role or another person.
    let b_user_enc = e.w.pki.leaf(&e.x.b, Role::UserEnc, "bob");
    let other_enc = e.w.pki.leaf(&e.x.b, Role::UserEnc, "eve");
    let admin_enc = e.w.pki.leaf(&e.x.b, Role::AdminEnc, "bob");
    assert_success(&node.run(&[call(
        &e.x.b_user,
        27,
        "exchange",
        "request",
        request_args("Agency A/open", &b_user_enc, 30),
    )]));
    for (salt, enc) in [(28, &other_enc), (29, &admin_enc)] {
        let r = node.admit(&call(
            &e.x.b_user,
            salt,
            "exchange",
            "request",
            request_args("Agency A/open", enc, 30),
        ));
        assert_eq!(code_of(r), RejectCode::PermissionDenied);
    }
    // A duration of 0 or past the maximum is malformed.
    let r = node.admit(&call(
        &e.b_node,
        26,
        "exchange",
        "request",
        request_args("Agency A/open", &e.b_enc, 0),
    ));
    assert_eq!(code_of(r), RejectCode::BadArguments);
}

#[test]
fn publish_checks_sizes_custodian_escrow_and_confidentiality() {
    let mut e = setup();
    let node = &mut e.x.node;
    let mut conf = register_args("secret", SharingClass::Conditional);
    conf[5] = vec![1];
    // A confidential dataset shows no title in clear.
    assert_eq!(
        code_of(node.admit(&call(&e.w.user, 20, "exchange", "register", conf.clone()))),
        RejectCode::BadArguments
    );
    conf[3].clear();
    conf[4].clear();
    assert_success(&node.run(&[call(&e.w.user, 21, "exchange", "register", conf)]));
    // A version of a confidential dataset must carry its metadata sealed.
    let r = node.run(&[call(
        &e.w.user,
        22,
        "exchange",
        "publish",
        publish_args("secret", &e.a_enc),
    )]);
    assert_eq!(failed(&r[0]), Some(FailureCode::BadArguments));
    let mut sealed = Vec::new();
    exchange::payload::seal(
        &crypto_sm::sm4::Sm4Secret::from_slice(&[9; 16]).unwrap(),
        &[1; 8],
        &mut &br#"{"title":"x"}"#[..],
        &mut sealed,
    )
    .unwrap();
    let sealed_args = |a_enc: &Member| {
        let mut a = publish_args("secret", a_enc);
        a[8] = sealed.clone();
        a
    };
    assert_success(&node.run(&[call(
        &e.w.user,
        23,
        "exchange",
        "publish",
        sealed_args(&e.a_enc),
    )]));
    // A payload length that is not the sealed length of the plaintext's is malformed.
    let mut args = sealed_args(&e.a_enc);
    args[4] = u64b(12345);
    assert_eq!(
        code_of(node.admit(&call(&e.w.user, 24, "exchange", "publish", args))),
        RejectCode::BadArguments
    );
    // A custodian without an endpoint fails; so do escrow envelopes the chain does not name.
    let mut args = sealed_args(&e.a_enc);
    args[5] = b"node-9".to_vec();
    let r = node.run(&[call(&e.w.user, 25, "exchange", "publish", args)]);
    assert_eq!(failed(&r[0]), Some(FailureCode::EndpointUnknown));
    let mut args = sealed_args(&e.a_enc);
    args[7] = data::encode_envelopes(&[Envelope {
        recipient: sm3(b"someone"),
        cipher: wrap(&[9; 16], &e.b_enc),
    }]);
    let r = node.run(&[call(&e.w.user, 26, "exchange", "publish", args)]);
    assert_eq!(failed(&r[0]), Some(FailureCode::EscrowMismatch));
    // An envelope that is not an SM2Cipher of 16 bytes is malformed.
    let mut args = sealed_args(&e.a_enc);
    args[6] = crypto_sm::sm2::encrypt(
        &e.a_enc.cert.public_key(),
        &[1; 32],
        CipherFormat::Der,
        &SeededRandom::new(3),
    )
    .unwrap();
    assert_eq!(
        code_of(node.admit(&call(&e.w.user, 27, "exchange", "publish", args))),
        RejectCode::BadArguments
    );
    // B's admin cannot record an endpoint for a node of A, nor with a signing certificate.
    let r = node.admit(&call(
        &e.x.b_admin,
        28,
        "exchange",
        "set_endpoint",
        endpoint_args("node-1", &e.a_enc),
    ));
    assert_eq!(code_of(r), RejectCode::PermissionDenied);
    let r = node.admit(&call(
        &e.x.b_admin,
        29,
        "exchange",
        "set_endpoint",
        endpoint_args("b-node", &e.b_node),
    ));
    assert_eq!(code_of(r), RejectCode::PermissionDenied);
    let ds = data::dataset(&node.view(), "Agency A/secret")
        .unwrap()
        .unwrap();
    assert_eq!(
        (ds.versions, ds.confidential, ds.title.as_str()),
        (1, true, "")
    );
}

#[test]
fn a_message_is_delivered_to_named_organisations_and_acknowledged_once() {
    let mut e = setup();
    let node = &mut e.x.node;
    let mut args = vec![
        "公函 letter".as_bytes().to_vec(),
        data::encode_recipients(&["Agency B".to_string()]),
        b"application/pdf".to_vec(),
    ];
    args.extend(payload_fields(10, "node-1", wrap(&[5; 16], &e.a_enc)));
    let send = call(&e.w.user, 20, "exchange", "send", args.clone());
    let mid = tx_id(&send);
    assert_success(&node.run(&[send]));
    let m = data::message(&node.view(), &mid).unwrap().unwrap();
    assert_eq!(m.recipients, vec!["Agency B".to_string()]);
    assert_eq!(
        data::inbox(&node.view(), "Agency B", 0, 10).unwrap(),
        vec![mid]
    );
    assert_eq!(
        data::outbox(&node.view(), "Agency A", 0, 10).unwrap(),
        vec![mid]
    );
    // To its own organisation or an unknown one: refused in execution.
    let mut own = args.clone();
    own[1] = data::encode_recipients(&["Agency A".to_string()]);
    let mut unknown = args;
    unknown[1] = data::encode_recipients(&["Agency Z".to_string()]);
    let r = node.run(&[
        call(&e.w.user, 21, "exchange", "send", own),
        call(&e.w.user, 22, "exchange", "send", unknown),
    ]);
    assert_eq!(failed(&r[0]), Some(FailureCode::OrgUnknown));
    assert_eq!(failed(&r[1]), Some(FailureCode::OrgUnknown));
    // A's user is not a recipient; B's user acknowledges once.
    let r = node.admit(&call(
        &e.w.user2,
        23,
        "exchange",
        "ack",
        vec![mid.0.to_vec()],
    ));
    assert_eq!(code_of(r), RejectCode::PermissionDenied);
    assert_success(&node.run(&[call(
        &e.x.b_user,
        24,
        "exchange",
        "ack",
        vec![mid.0.to_vec()],
    )]));
    let a = data::acknowledgement(&node.view(), &mid, "Agency B")
        .unwrap()
        .unwrap();
    assert_eq!(a.signer, e.x.b_user.id());
    let r = node.run(&[call(
        &e.x.b_admin,
        25,
        "exchange",
        "ack",
        vec![mid.0.to_vec()],
    )]);
    assert_eq!(failed(&r[0]), Some(FailureCode::AlreadyAcknowledged));
    // The custodian records fetches of messages in the message's own log.
    let r = node.run(&[call(
        &e.w.node_cert,
        26,
        "exchange",
        "record_fetch",
        vec![
            vec![OBJECT_MESSAGE],
            mid.0.to_vec(),
            u64b(0),
            e.x.b_user.id().0.to_vec(),
            vec![0; 32],
            0u32.to_be_bytes().to_vec(),
            sm3(&wrap(&[5; 16], &e.b_enc)).0.to_vec(),
            e.b_enc.cert.der().to_vec(),
        ],
    )]);
    assert_success(&r);
    let (log, total) = data::fetch_log(&node.view(), &FetchObject::Message(mid), 0, 10).unwrap();
    assert_eq!((total, log[0].requester), (1, e.x.b_user.id()));
}

// ---------------------------------------------------------------------------------------------
// review10: findings of the security review of issue 15 (each ignored until fixed)

#[test]
fn review10_a_revoked_unconditional_grant_stays_revoked() {
    let mut e = setup();
    let node = &mut e.x.node;
    dataset(
        node,
        &e.w.user,
        &e.a_enc,
        60,
        "open",
        SharingClass::Unconditional,
        true,
    );
    let rid = ask(node, &e.b_node, &e.b_enc, 62, "Agency A/open", 1000);
    // The owner's admin revokes the automatic grant.
    assert_success(&node.run(&[call(
        &e.w.admin,
        63,
        "exchange",
        "revoke",
        vec![rid.0.to_vec(), b"misuse".to_vec()],
    )]));
    let latest = data::latest_request(&node.view(), &e.b_node.id(), "Agency A/open")
        .unwrap()
        .unwrap();
    assert!(!latest.live_at(Height(node.height)));
    // The grantee asks again, in one transaction of its own.
    let _ = node.run(&[call(
        &e.b_node,
        64,
        "exchange",
        "request",
        request_args("Agency A/open", &e.b_enc, 1000),
    )]);
    // What the custodian judges a fetch on must still say "revoked".
    let latest = data::latest_request(&node.view(), &e.b_node.id(), "Agency A/open")
        .unwrap()
        .unwrap();
    assert!(
        !latest.live_at(Height(node.height)),
        "request {} re-granted {} after the owner revoked {rid}",
        latest.id,
        latest.status.as_str()
    );
}

#[test]
fn review10_a_served_fetch_record_names_a_live_grant_of_its_requester() {
    let mut e = setup();
    let node = &mut e.x.node;
    dataset(
        node,
        &e.w.user,
        &e.a_enc,
        70,
        "licences",
        SharingClass::Conditional,
        true,
    );
    // B's admin never asked; the request id is made up; the outcome says "served".
    let r = node.run(&[call(
        &e.w.node_cert,
        72,
        "exchange",
        "record_fetch",
        fetch_args(
            "Agency A/licences",
            1,
            &e.x.b_admin,
            Digest([7; 32]),
            0,
            wrap(&[9; 16], &e.b_enc),
        ),
    )]);
    assert_ne!(
        r[0].status,
        Status::Success,
        "the log now says B's admin fetched under request 0707.. that does not exist"
    );
}

#[test]
fn review10_a_second_pending_request_for_the_same_dataset_is_refused() {
    let mut e = setup();
    let node = &mut e.x.node;
    dataset(
        node,
        &e.w.user,
        &e.a_enc,
        80,
        "licences",
        SharingClass::Conditional,
        false,
    );
    assert_success(&node.run(&[call(
        &e.b_node,
        81,
        "exchange",
        "request",
        request_args("Agency A/licences", &e.b_enc, 1000),
    )]));
    let r = node.run(&[call(
        &e.b_node,
        82,
        "exchange",
        "request",
        request_args("Agency A/licences", &e.b_enc, 1000),
    )]);
    assert_ne!(
        r[0].status,
        Status::Success,
        "a second pending request of the same signer was recorded"
    );
}

// ---------------------------------------------------------------------------------------------
// review12: second security pass on the fixes of review10 (each ignored until fixed)

#[test]
fn review12_a_revoked_grantee_with_another_certificate_is_not_granted_again() {
    let mut e = setup();
    let node = &mut e.x.node;
    dataset(
        node,
        &e.w.user,
        &e.a_enc,
        90,
        "open",
        SharingClass::Unconditional,
        false,
    );
    let rid = ask(node, &e.b_node, &e.b_enc, 91, "Agency A/open", 1000);
    assert_success(&node.run(&[call(
        &e.w.admin,
        92,
        "exchange",
        "revoke",
        vec![rid.0.to_vec(), b"misuse".to_vec()],
    )]));
    // The same node (O = Agency B, CN = b-node) with a renewed signing certificate.
    let renewed = e.w.pki.leaf(&e.x.b, Role::NodeSign, "b-node");
    let _ = node.run(&[call(
        &renewed,
        93,
        "exchange",
        "request",
        request_args("Agency A/open", &e.b_enc, 1000),
    )]);
    let again = data::latest_request(&node.view(), &renewed.id(), "Agency A/open").unwrap();
    assert!(
        !again
            .as_ref()
            .is_some_and(|r| r.live_at(Height(node.height))),
        "b-node, revoked under {rid}, is granted again under a renewed certificate"
    );
}

#[test]
fn review12_a_grant_is_judged_for_the_block_its_record_lands_in() {
    let mut e = setup();
    let node = &mut e.x.node;
    dataset(
        node,
        &e.w.user,
        &e.a_enc,
        100,
        "licences",
        SharingClass::Conditional,
        true,
    );
    let rid = ask(node, &e.b_node, &e.b_enc, 102, "Agency A/licences", 1000);
    let expiry = node.height + 3;
    assert_success(&node.run(&[call(
        &e.w.admin,
        103,
        "exchange",
        "grant",
        vec![rid.0.to_vec(), u64b(expiry)],
    )]));
    while node.height < expiry {
        let _ = node.run(&[]);
    }
    // The custodian judges a grant in the block its record can land in at the earliest, the
    // next one (crates/node/src/exchange.rs grant_verdict at tip + 1): at tip = expiry it
    // refuses instead of serving.
    let judged = data::latest_request(&node.view(), &e.b_node.id(), "Agency A/licences")
        .unwrap()
        .unwrap();
    assert!(judged.live_at(Height(node.height)));
    assert!(
        !judged.live_at(Height(node.height + 1)),
        "the custodian's judgement refuses"
    );
    // A served record landing after the expiry fails; it names the envelope only by its SM3
    // (32 bytes), so the failed transaction in the block carries no key.
    let envelope = wrap(&[9; 16], &e.b_enc);
    let args = fetch_args("Agency A/licences", 1, &e.b_node, rid, 0, envelope.clone());
    assert_eq!(args[6], sm3(&envelope).0.to_vec());
    let r = node.run(&[call(&e.w.node_cert, 104, "exchange", "record_fetch", args)]);
    assert_eq!(failed(&r[0]), Some(FailureCode::RequestState));
}

#[test]
#[ignore = "review12 finding 4: a served record without a grant checks only the organisation in the enc_cert it names, not that the certificate is the requester's (nor that it validates)"]
fn review12_a_served_record_without_a_grant_names_the_requesters_own_certificate() {
    let mut e = setup();
    let node = &mut e.x.node;
    dataset(
        node,
        &e.w.user,
        &e.a_enc,
        110,
        "licences",
        SharingClass::Conditional,
        true,
    );
    // B's node never asked; the record names no grant and an encryption certificate of A.
    let mut args = fetch_args(
        "Agency A/licences",
        1,
        &e.b_node,
        Digest([0; 32]),
        0,
        wrap(&[9; 16], &e.b_enc),
    );
    args[7] = e.a_enc.cert.der().to_vec();
    let r = node.run(&[call(&e.w.node_cert, 112, "exchange", "record_fetch", args)]);
    assert_ne!(
        r[0].status,
        Status::Success,
        "the log says Agency B's node was served licences without a grant"
    );
}
