//! The `exchange` system contract (数据交换及共享, docs/execution.md §4.4): the catalogue of
//! shared datasets and their versions, access requests and grants, the custodian nodes'
//! endpoints, the log of every served and refused fetch, and files sent point to point with
//! delivery receipts. No data and no data key is ever here in clear: a version names the SM3
//! digests and sizes of a payload (`docs/formats.md` §8) that lives off the chain on its
//! custodian node, and its key only wrapped with SM2 to the custodian's node-enc certificate
//! and to the chain's escrow recipients; a grantee's copy is wrapped by the custodian when it
//! serves a fetch and recorded with that fetch.
//!
//! Who may do what (the permission table has the roles; [`Contract::authorize`] the
//! organisation rules): an organisation's admins record its nodes' endpoints; its admins and
//! users register datasets, publish versions and send files; another organisation's admins,
//! users and nodes request access; the owner's admins grant, deny and revoke; the custodian
//! node records fetches; a recipient organisation's admins and users acknowledge a message.

mod records;

pub use records::{
    AccessRequest, Acknowledgement, Dataset, Endpoint, Envelope, EscrowRecipient, FetchObject,
    FetchRecord, MAX_ADDRESS_LEN, MAX_CONTENT_TYPE_LEN, MAX_DATASET_NAME_LEN, MAX_DESCRIPTION_LEN,
    MAX_ENVELOPE_LEN, MAX_ESCROW, MAX_GRANT_BLOCKS, MAX_LIST, MAX_PURPOSE_LEN, MAX_RECIPIENTS,
    MAX_SEALED_METADATA_LEN, MAX_TITLE_LEN, Message, Payload, RequestStatus, SharingClass, Version,
    acknowledgement, dataset, datasets, decode_escrow, encode_envelopes, encode_escrow, endpoint,
    escrow_recipients, fetch_log, inbox, latest_request, message, outbox, request, requests,
    version,
};

use crate::codes::{FailureCode, RejectCode};
use crate::context::{CallContext, ContractError, Phase};
use crate::contract::{BUILTIN_CALL_COST, Contract, Denial, digest_arg, u64_be};
use crate::keys::{EXCHANGE, exchange as k};
use crate::records::decode_u64;
use crate::trace::TraceKind;
use crypto::Digest;
use pki::{Certificate, Role};
use types::Height;
use types::codec::Reader;

/// The built-in `exchange` contract.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExchangeContract;

const METHODS: &[&str] = &[
    "set_endpoint",
    "register",
    "publish",
    "request",
    "grant",
    "deny",
    "revoke",
    "record_fetch",
    "send",
    "ack",
];

/// `record_fetch`'s object kind byte for a dataset version.
pub const OBJECT_DATASET: u8 = 1;
/// `record_fetch`'s object kind byte for a message.
pub const OBJECT_MESSAGE: u8 = 2;

fn bad(message: impl Into<String>) -> ContractError {
    ContractError::failed(FailureCode::BadArguments, message)
}

fn fail(code: FailureCode, message: impl Into<String>) -> ContractError {
    ContractError::failed(code, message)
}

fn count(args: &[Vec<u8>], n: usize, method: &str, names: &str) -> Result<(), ContractError> {
    if args.len() == n {
        Ok(())
    } else {
        Err(bad(format!(
            "exchange.{method} takes {n} arguments ({names}), got {}",
            args.len()
        )))
    }
}

fn utf8(arg: &[u8], what: &str, max: usize) -> Result<String, ContractError> {
    if arg.len() > max {
        return Err(bad(format!("{what}: {} bytes, at most {max}", arg.len())));
    }
    let s = String::from_utf8(arg.to_vec()).map_err(|_| bad(format!("{what}: not UTF-8")))?;
    if s.chars().any(char::is_control) {
        return Err(bad(format!("{what}: contains a control character")));
    }
    Ok(s)
}

fn token(arg: &[u8], what: &str, max: usize, extra: &[u8]) -> Result<String, ContractError> {
    if arg.is_empty()
        || arg.len() > max
        || !arg
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(b))
    {
        let extra = String::from_utf8_lossy(extra);
        return Err(bad(format!(
            "{what}: must be 1..={max} bytes of [A-Za-z0-9{extra}]"
        )));
    }
    Ok(String::from_utf8_lossy(arg).into_owned())
}

fn envelope_cipher(arg: &[u8], what: &str) -> Result<Vec<u8>, ContractError> {
    if arg.len() > MAX_ENVELOPE_LEN {
        return Err(bad(format!(
            "{what}: {} bytes, at most {MAX_ENVELOPE_LEN}",
            arg.len()
        )));
    }
    let c2 = crypto::gmt0009::decode_ciphertext(arg)
        .map_err(|e| bad(format!("{what}: not a GM/T 0009 SM2Cipher: {e}")))?;
    // C1 (65) ‖ C3 (32) ‖ C2: a data key is 16 bytes.
    if c2.len() != 65 + 32 + 16 {
        return Err(bad(format!(
            "{what}: wraps {} bytes, a data key is 16",
            c2.len().saturating_sub(97)
        )));
    }
    Ok(arg.to_vec())
}

fn envelopes(arg: &[u8], what: &str) -> Result<Vec<Envelope>, ContractError> {
    let mut r = Reader::new(arg);
    let list = records::read_envelopes(&mut r)
        .map_err(|e| bad(format!("{what}: {e}")))
        .and_then(|l| {
            r.finish().map_err(|e| bad(format!("{what}: {e}")))?;
            Ok(l)
        })?;
    for (i, e) in list.iter().enumerate() {
        envelope_cipher(&e.cipher, &format!("{what}[{i}]"))?;
        if list[..i].iter().any(|p| p.recipient == e.recipient) {
            return Err(bad(format!("{what}: recipient {} twice", e.recipient)));
        }
    }
    Ok(list)
}

fn dataset_id(arg: &[u8]) -> Result<(String, String), ContractError> {
    let s = utf8(arg, "dataset", 256 + 1 + MAX_DATASET_NAME_LEN)?;
    let (org, name) = s
        .rsplit_once('/')
        .ok_or_else(|| bad(format!("dataset {s:?}: expected <organisation>/<name>")))?;
    token(
        name.as_bytes(),
        "dataset name",
        MAX_DATASET_NAME_LEN,
        b"._-",
    )?;
    if org.is_empty() {
        return Err(bad(format!("dataset {s:?}: no organisation")));
    }
    Ok((org.to_string(), name.to_string()))
}

/// The shape of a payload's fields: `[plaintext_sm3, payload_sm3, plaintext_len,
/// payload_len, custodian, custodian_envelope, escrow]`.
fn payload_args(a: &[Vec<u8>]) -> Result<Payload, ContractError> {
    let plaintext_len = u64_be(&a[2], "plaintext_len")?;
    let payload_len = u64_be(&a[3], "payload_len")?;
    match exchange::payload::sealed_len(plaintext_len) {
        Some(n) if n == payload_len => {}
        _ => {
            return Err(bad(format!(
                "payload_len {payload_len} is not the sealed length of {plaintext_len} bytes of plaintext (docs/formats.md §8)"
            )));
        }
    }
    let custodian = utf8(&a[4], "custodian", 256)?;
    if custodian.is_empty() {
        return Err(bad(
            "custodian: empty (the common name of the node holding the blob)",
        ));
    }
    Ok(Payload {
        plaintext_sm3: digest_arg(&a[0], "plaintext_sm3")?,
        payload_sm3: digest_arg(&a[1], "payload_sm3")?,
        plaintext_len,
        payload_len,
        custodian,
        custodian_envelope: Envelope {
            recipient: Digest([0; 32]),
            cipher: envelope_cipher(&a[5], "custodian_envelope")?,
        },
        escrow: envelopes(&a[6], "escrow")?,
    })
}

/// Checks that `der` is the caller's own encryption certificate: same organisation and common
/// name, the role paired with the caller's, and (at admission, where a clock exists) valid
/// under the chain's CAs with their recorded CRLs.
fn own_enc_cert(ctx: &CallContext<'_>, der: &[u8]) -> Result<Certificate, Denial> {
    let refuse = |why: String| deny(FailureCode::EncCertInvalid, why);
    let caller = ctx.caller();
    let cert = Certificate::from_der(der)
        .map_err(|e| refuse(format!("the encryption certificate does not parse: {e}")))?;
    let Some(want) = caller.role.encryption_pair() else {
        return Err(refuse(format!(
            "a {} certificate has no encryption pair",
            caller.role
        )));
    };
    if cert.role() != Some(want)
        || cert.organisation().as_deref() != Some(caller.organisation.as_str())
        || cert.common_name().as_deref() != Some(caller.common_name.as_str())
    {
        return Err(refuse(format!(
            "the encryption certificate ({}, role {}) is not the {want} certificate of {:?} of {:?}",
            cert.subject(),
            cert.role().map_or("none", |r| r.as_str()),
            caller.common_name,
            caller.organisation
        )));
    }
    if let Some(cas) = ctx.ca_validation() {
        match cas.validate(&cert, want)? {
            Ok(_) => {}
            Err(e) => {
                return Err(refuse(format!(
                    "the encryption certificate does not validate: {e}"
                )));
            }
        }
    }
    Ok(cert)
}

// The contract reads its records through the same reads the node's serving path uses
// (`records`), on its call context, which sees the call's own writes.

fn read_dataset(ctx: &CallContext<'_>, id: &str) -> Result<Option<Dataset>, ContractError> {
    records::dataset(ctx, id).map_err(ContractError::State)
}

fn need_dataset(ctx: &CallContext<'_>, id: &str) -> Result<Dataset, ContractError> {
    read_dataset(ctx, id)?.ok_or_else(|| {
        fail(
            FailureCode::DatasetUnknown,
            format!("no dataset {id:?} in the catalogue"),
        )
    })
}

fn read_request(ctx: &CallContext<'_>, id: &Digest) -> Result<AccessRequest, ContractError> {
    records::request(ctx, id)
        .map_err(ContractError::State)?
        .ok_or_else(|| {
            fail(
                FailureCode::RequestUnknown,
                format!("no access request {id}"),
            )
        })
}

fn read_message(ctx: &CallContext<'_>, id: &Digest) -> Result<Option<Message>, ContractError> {
    records::message(ctx, id).map_err(ContractError::State)
}

/// An event's topic for a name (a dataset ID, an organisation, a log): its SM3, since a topic
/// holds at most 64 bytes and names may be longer.
pub fn topic(name: &str) -> Vec<u8> {
    crypto_sm::sm3::sm3(name.as_bytes()).0.to_vec()
}

fn bump(ctx: &mut CallContext<'_>, key: &[u8]) -> Result<u64, ContractError> {
    let n = decode_u64(key, ctx.get(key)?.as_deref()).map_err(ContractError::State)?;
    ctx.put(key, n.saturating_add(1).to_be_bytes().to_vec())?;
    Ok(n)
}

/// Completes a payload against the state: the custodian is a node of the organisation with a
/// recorded endpoint (whose certificate the custodian envelope names), and the escrow
/// envelopes name exactly the chain's escrow recipients.
fn bind_payload(
    ctx: &CallContext<'_>,
    organisation: &str,
    mut p: Payload,
) -> Result<Payload, ContractError> {
    let Some(ep) =
        records::endpoint(ctx, organisation, &p.custodian).map_err(ContractError::State)?
    else {
        return Err(fail(
            FailureCode::EndpointUnknown,
            format!(
                "node {:?} of {organisation:?} has recorded no endpoint (exchange.set_endpoint)",
                p.custodian
            ),
        ));
    };
    p.custodian_envelope.recipient = crypto_sm::sm3::sm3(&ep.enc_cert);
    let escrow = records::escrow_recipients(ctx).map_err(ContractError::State)?;
    let mut want: Vec<Digest> = escrow.iter().map(|e| e.id).collect();
    let mut got: Vec<Digest> = p.escrow.iter().map(|e| e.recipient).collect();
    want.sort_by_key(|d| d.0);
    got.sort_by_key(|d| d.0);
    if want != got {
        return Err(fail(
            FailureCode::EscrowMismatch,
            format!(
                "the escrow envelopes name {} recipient(s), the chain names {}: wrap the data key to each escrow certificate",
                got.len(),
                want.len()
            ),
        ));
    }
    Ok(p)
}

fn refuse_not_owner(ctx: &CallContext<'_>, method: &str, owner: &str) -> Denial {
    deny(
        FailureCode::PermissionDenied,
        format!(
            "exchange.{method}: {owner:?} owns this, not the signer's organisation {:?}",
            ctx.caller().organisation
        ),
    )
}

/// An organisation rule's refusal: `TX_PERMISSION_DENIED` at admission and recheck, `code` in
/// execution.
fn deny(code: FailureCode, message: impl Into<String>) -> Denial {
    Denial::refused(RejectCode::PermissionDenied, code, message)
}

/// Before execution a missing record is left for `call` to fail on (it may be created by an
/// earlier transaction of the same block); in execution the hook sees it first.
fn admitted_without(ctx: &CallContext<'_>) -> bool {
    ctx.phase() != Phase::Execution
}

/// A served fetch is recorded only if the rules allowed it at this block: the grant it names is
/// its requester's, for this dataset, granted and not expired; without a grant, the
/// encryption certificate the key went to belongs to the owner (a dataset) or to the sender or a
/// recipient (a message). So the custodian, whose record releases the key, cannot put a
/// served fetch on the chain that the chain's own state refuses.
fn served_by_the_rules(ctx: &CallContext<'_>, f: &FetchArgs) -> Result<(), ContractError> {
    let refuse = |why: String| fail(FailureCode::RequestState, why);
    let height = ctx.block().height;
    if f.request != Digest([0; 32]) {
        let FetchObject::Dataset(id) = &f.object else {
            return Err(bad("request: a message is fetched without a grant (zero)"));
        };
        let r = read_request(ctx, &f.request)?;
        if &r.dataset != id || r.requester != f.requester {
            return Err(refuse(format!(
                "request {} is not the requester's request for {id:?}",
                f.request
            )));
        }
        if !r.live_at(height) {
            return Err(refuse(format!(
                "request {} is {} (expiry {}) at height {}: no live grant",
                f.request,
                r.status.as_str(),
                r.expiry.0,
                height.0
            )));
        }
        return Ok(());
    }
    let Some(cert) = &f.enc_cert else {
        return Err(bad("enc_cert: missing"));
    };
    let org = cert.organisation().unwrap_or_default();
    if !cert.role().is_some_and(Role::is_encryption) {
        return Err(refuse(format!(
            "{} is not an encryption certificate",
            cert.subject()
        )));
    }
    // The supervisor's auditors may fetch any dataset or message (docs/audit.md §4): the
    // wrapped key goes to an auditor-enc certificate of the supervising organisation.
    let supervisor_key = crate::keys::full(
        crate::keys::SUPERVISION,
        &crate::keys::supervision::supervisor(),
    );
    let supervising = cert.role() == Some(Role::AuditorEnc)
        && match crate::view::StateRead::read(ctx, &supervisor_key).map_err(ContractError::State)? {
            Some(b) => {
                crate::trace::SupervisorRecord::decode(&supervisor_key, &b)?.organisation == org
            }
            None => false,
        };
    let allowed = supervising
        || match &f.object {
            FetchObject::Dataset(id) => id.rsplit_once('/').is_some_and(|(o, _)| o == org),
            FetchObject::Message(mid) => read_message(ctx, mid)?
                .is_some_and(|m| m.organisation == org || m.recipients.contains(&org)),
        };
    if allowed {
        Ok(())
    } else {
        Err(refuse(format!(
            "a served fetch without a grant went to {org:?}, which neither owns nor received it"
        )))
    }
}

impl ExchangeContract {
    fn set_endpoint(ctx: &mut CallContext<'_>, args: &[Vec<u8>]) -> Result<(), ContractError> {
        let (node, address, cert) = parse_set_endpoint(args)?;
        let caller = ctx.caller();
        let ep = Endpoint {
            organisation: caller.organisation.clone(),
            node: node.clone(),
            address,
            enc_cert: cert.der().to_vec(),
            height: ctx.block().height,
        };
        ctx.put(&k::endpoint(&ep.organisation, &node), ep.encode())?;
        ctx.emit("endpoint", node.into_bytes())
    }

    fn register(ctx: &mut CallContext<'_>, args: &[Vec<u8>]) -> Result<(), ContractError> {
        let r = parse_register(args)?;
        let caller = ctx.caller();
        let ds = Dataset {
            organisation: caller.organisation.clone(),
            name: r.name,
            class: r.class,
            content_type: r.content_type,
            title: r.title,
            description: r.description,
            confidential: r.confidential,
            creator: caller.cert_id,
            height: ctx.block().height,
            versions: 0,
            requests: 0,
        };
        let id = ds.id();
        if read_dataset(ctx, &id)?.is_some() {
            return Err(fail(
                FailureCode::DatasetExists,
                format!("{:?} already has a dataset {:?}", ds.organisation, ds.name),
            ));
        }
        let seq = bump(ctx, &k::dataset_count())?;
        ctx.put(&k::dataset_index(seq), id.clone().into_bytes())?;
        ctx.put(&k::dataset(&id), ds.encode())?;
        ctx.trace(TraceKind::Dataset, &id);
        ctx.emit_with_topics("registered", vec![topic(&id)], id.into_bytes())
    }

    fn publish(ctx: &mut CallContext<'_>, args: &[Vec<u8>]) -> Result<(), ContractError> {
        let (name, payload, sealed_metadata) = parse_publish(args)?;
        let caller = ctx.caller();
        let id = format!("{}/{name}", caller.organisation);
        let mut ds = need_dataset(ctx, &id)?;
        if ds.confidential == sealed_metadata.is_empty() {
            return Err(bad(if ds.confidential {
                format!(
                    "dataset {id:?} is confidential: a version carries its title and description sealed (sealed_metadata)"
                )
            } else {
                format!("dataset {id:?} is not confidential: sealed_metadata must be empty")
            }));
        }
        let payload = bind_payload(ctx, &ds.organisation, payload)?;
        ds.versions = ds.versions.saturating_add(1);
        let v = Version {
            number: ds.versions,
            payload,
            sealed_metadata,
            publisher: caller.cert_id,
            height: ctx.block().height,
            timestamp_ms: ctx.block().timestamp_ms,
        };
        ctx.put(&k::version(&id, v.number), v.encode())?;
        ctx.put(&k::dataset(&id), ds.encode())?;
        ctx.trace(TraceKind::Dataset, &id);
        ctx.emit_with_topics(
            "published",
            vec![topic(&id)],
            v.number.to_be_bytes().to_vec(),
        )
    }

    fn request(ctx: &mut CallContext<'_>, args: &[Vec<u8>]) -> Result<(), ContractError> {
        let r = parse_request(args)?;
        let id = format!("{}/{}", r.organisation, r.name);
        let mut ds = need_dataset(ctx, &id)?;
        let caller = ctx.caller();
        let height = ctx.block().height;
        if ds.class == SharingClass::NotShared {
            return Err(fail(
                FailureCode::NotShared,
                format!("dataset {id:?} is not shared: no request can be granted"),
            ));
        }
        // One open request per requester and dataset; after a revocation or a denial, only
        // the owner's admin decides again (an unconditional dataset is not re-granted by
        // asking again).
        let mut decided_against = false;
        if let Some(prior) =
            records::latest_request(&*ctx, &caller.cert_id, &id).map_err(ContractError::State)?
        {
            match prior.status {
                RequestStatus::Pending => {
                    return Err(fail(
                        FailureCode::RequestState,
                        format!("request {} for {id:?} is still pending", prior.id),
                    ));
                }
                RequestStatus::Granted if prior.live_at(height) => {
                    return Err(fail(
                        FailureCode::RequestState,
                        format!(
                            "request {} for {id:?} is granted until height {}",
                            prior.id, prior.expiry.0
                        ),
                    ));
                }
                RequestStatus::Revoked | RequestStatus::Denied => decided_against = true,
                RequestStatus::Granted => {}
            }
        }
        // The owner's revocation or denial holds for the requester's whole organisation
        // (another member or a renewed certificate asks in vain) until the owner grants it
        // again.
        decided_against |= ctx
            .get(&k::decided_against(&id, &caller.organisation))?
            .is_some();
        let (status, expiry) = match ds.class {
            SharingClass::Unconditional if !decided_against => (
                RequestStatus::Granted,
                Height(height.0.saturating_add(r.duration)),
            ),
            _ => (RequestStatus::Pending, Height(0)),
        };
        let req = AccessRequest {
            id: ctx.tx_id().0,
            dataset: id.clone(),
            organisation: caller.organisation.clone(),
            common_name: caller.common_name.clone(),
            requester: caller.cert_id,
            enc_cert: r.enc_cert,
            purpose: r.purpose,
            duration: r.duration,
            status,
            expiry,
            height,
            decided_at: if status == RequestStatus::Granted {
                height
            } else {
                Height(0)
            },
            decided_by: Digest([0; 32]),
            reason: String::new(),
        };
        ctx.put(&k::request_index(&id, ds.requests), req.id.0.to_vec())?;
        ds.requests = ds.requests.saturating_add(1);
        ctx.put(&k::dataset(&id), ds.encode())?;
        ctx.put(&k::grantee(&req.requester, &id), req.id.0.to_vec())?;
        ctx.put(&k::request(&req.id), req.encode())?;
        ctx.trace(TraceKind::Dataset, &id);
        ctx.emit_with_topics(
            if status == RequestStatus::Granted {
                "granted"
            } else {
                "requested"
            },
            vec![topic(&id)],
            req.id.0.to_vec(),
        )
    }

    fn decide(
        ctx: &mut CallContext<'_>,
        method: &str,
        args: &[Vec<u8>],
    ) -> Result<(), ContractError> {
        let (rid, arg) = parse_decision(method, args)?;
        let mut req = read_request(ctx, &rid)?;
        let height = ctx.block().height;
        let event = match method {
            "grant" => {
                if req.status != RequestStatus::Pending {
                    return Err(fail(
                        FailureCode::RequestState,
                        format!("request {rid} is {}, not pending", req.status.as_str()),
                    ));
                }
                let expiry = u64_be(&arg, "expiry")?;
                // A fetch is recorded in a later block than this one: a grant must outlive it.
                if expiry <= height.0 || expiry - height.0 > MAX_GRANT_BLOCKS {
                    return Err(bad(format!(
                        "expiry {expiry}: must be after the current height {} and at most {MAX_GRANT_BLOCKS} blocks after it",
                        height.0
                    )));
                }
                req.status = RequestStatus::Granted;
                req.expiry = Height(expiry);
                ctx.delete(&k::decided_against(&req.dataset, &req.organisation))?;
                "granted"
            }
            "deny" => {
                if req.status != RequestStatus::Pending {
                    return Err(fail(
                        FailureCode::RequestState,
                        format!("request {rid} is {}, not pending", req.status.as_str()),
                    ));
                }
                req.status = RequestStatus::Denied;
                req.reason = utf8(&arg, "reason", MAX_PURPOSE_LEN)?;
                ctx.put(
                    &k::decided_against(&req.dataset, &req.organisation),
                    rid.0.to_vec(),
                )?;
                "denied"
            }
            _ => {
                if req.status != RequestStatus::Granted {
                    return Err(fail(
                        FailureCode::RequestState,
                        format!("request {rid} is {}, not granted", req.status.as_str()),
                    ));
                }
                req.status = RequestStatus::Revoked;
                req.reason = utf8(&arg, "reason", MAX_PURPOSE_LEN)?;
                ctx.put(
                    &k::decided_against(&req.dataset, &req.organisation),
                    rid.0.to_vec(),
                )?;
                "revoked"
            }
        };
        req.decided_at = height;
        req.decided_by = ctx.caller().cert_id;
        ctx.put(&k::request(&rid), req.encode())?;
        ctx.trace(TraceKind::Dataset, &req.dataset);
        ctx.emit_with_topics(event, vec![topic(&req.dataset)], rid.0.to_vec())
    }

    fn record_fetch(ctx: &mut CallContext<'_>, args: &[Vec<u8>]) -> Result<(), ContractError> {
        let f = parse_record_fetch(args)?;
        if f.outcome == 0 {
            served_by_the_rules(ctx, &f)?;
        }
        let name = f.object.log_name();
        let seq = bump(ctx, &k::fetch_count(&name))?;
        let rec = FetchRecord {
            seq,
            object: f.object,
            version: f.version,
            requester: f.requester,
            request: f.request,
            outcome: f.outcome,
            envelope_sm3: f.envelope_sm3,
            node: ctx.caller().cert_id,
            height: ctx.block().height,
            timestamp_ms: ctx.block().timestamp_ms,
        };
        ctx.put(&k::fetch(&name, seq), rec.encode())?;
        if let FetchObject::Dataset(id) = &rec.object {
            ctx.trace(TraceKind::Dataset, id);
        }
        ctx.emit_with_topics(
            if rec.outcome == 0 {
                "fetched"
            } else {
                "fetch-refused"
            },
            vec![topic(&name), rec.requester.0.to_vec()],
            seq.to_be_bytes().to_vec(),
        )
    }

    fn send(ctx: &mut CallContext<'_>, args: &[Vec<u8>]) -> Result<(), ContractError> {
        let s = parse_send(args)?;
        let caller = ctx.caller();
        for org in &s.recipients {
            let active = crate::view::organisation(&*ctx, org)
                .map_err(ContractError::State)?
                .is_some_and(|o| o.is_active());
            if !active || *org == caller.organisation {
                return Err(fail(
                    FailureCode::OrgUnknown,
                    format!("recipient {org:?} is not another registered, active organisation"),
                ));
            }
        }
        let payload = bind_payload(ctx, &caller.organisation, s.payload)?;
        let m = Message {
            id: ctx.tx_id().0,
            organisation: caller.organisation.clone(),
            common_name: caller.common_name.clone(),
            sender: caller.cert_id,
            subject: s.subject,
            content_type: s.content_type,
            recipients: s.recipients,
            payload,
            height: ctx.block().height,
            timestamp_ms: ctx.block().timestamp_ms,
        };
        for org in &m.recipients {
            let seq = bump(ctx, &k::inbox_count(org))?;
            ctx.put(&k::inbox(org, seq), m.id.0.to_vec())?;
        }
        let seq = bump(ctx, &k::outbox_count(&m.organisation))?;
        ctx.put(&k::outbox(&m.organisation, seq), m.id.0.to_vec())?;
        ctx.put(&k::message(&m.id), m.encode())?;
        for org in &m.recipients {
            ctx.emit_with_topics("sent", vec![topic(org)], m.id.0.to_vec())?;
        }
        Ok(())
    }

    fn ack(ctx: &mut CallContext<'_>, args: &[Vec<u8>]) -> Result<(), ContractError> {
        count(args, 1, "ack", "message")?;
        let mid = digest_arg(&args[0], "message")?;
        let caller = ctx.caller();
        let key = k::ack(&mid, &caller.organisation);
        if ctx.get(&key)?.is_some() {
            return Err(fail(
                FailureCode::AlreadyAcknowledged,
                format!(
                    "{:?} already acknowledged message {mid}",
                    caller.organisation
                ),
            ));
        }
        let a = Acknowledgement {
            organisation: caller.organisation.clone(),
            common_name: caller.common_name.clone(),
            signer: caller.cert_id,
            height: ctx.block().height,
            timestamp_ms: ctx.block().timestamp_ms,
        };
        ctx.put(&key, a.encode())?;
        ctx.emit_with_topics("acknowledged", vec![topic(&a.organisation)], mid.0.to_vec())
    }
}

// ---------------------------------------------------------------------------------------------
// Argument parsing (shape only; `check_args` and `call` share it)

fn parse_set_endpoint(args: &[Vec<u8>]) -> Result<(String, String, Certificate), ContractError> {
    count(args, 3, "set_endpoint", "node, address, enc_cert")?;
    let node = utf8(&args[0], "node", 256)?;
    if node.is_empty() {
        return Err(bad("node: empty (the node's common name)"));
    }
    let address = token(&args[1], "address", MAX_ADDRESS_LEN, b".-:[]")?;
    if !address.contains(':') {
        return Err(bad(format!("address {address:?}: expected host:port")));
    }
    let cert = Certificate::from_der(&args[2])
        .map_err(|e| bad(format!("enc_cert: does not parse: {e}")))?;
    Ok((node, address, cert))
}

struct RegisterArgs {
    name: String,
    class: SharingClass,
    content_type: String,
    title: String,
    description: String,
    confidential: bool,
}

fn parse_register(args: &[Vec<u8>]) -> Result<RegisterArgs, ContractError> {
    count(
        args,
        6,
        "register",
        "name, class, content_type, title, description, confidential",
    )?;
    let name = token(&args[0], "name", MAX_DATASET_NAME_LEN, b"._-")?;
    let class = match args[1].as_slice() {
        [b] => SharingClass::from_u8(*b),
        _ => None,
    }
    .ok_or_else(|| bad("class: one byte, 1 unconditional, 2 conditional, 3 not-shared"))?;
    let content_type = token(&args[2], "content_type", MAX_CONTENT_TYPE_LEN, b"./+-_;=")?;
    let title = utf8(&args[3], "title", MAX_TITLE_LEN)?;
    let description = utf8(&args[4], "description", MAX_DESCRIPTION_LEN)?;
    let confidential = match args[5].as_slice() {
        [0] => false,
        [1] => true,
        _ => return Err(bad("confidential: one byte, 0 or 1")),
    };
    if confidential && !(title.is_empty() && description.is_empty()) {
        return Err(bad(
            "a confidential dataset has no title or description in clear: each version carries them sealed",
        ));
    }
    if !confidential && title.is_empty() {
        return Err(bad("title: empty"));
    }
    Ok(RegisterArgs {
        name,
        class,
        content_type,
        title,
        description,
        confidential,
    })
}

fn parse_publish(args: &[Vec<u8>]) -> Result<(String, Payload, Vec<u8>), ContractError> {
    count(
        args,
        9,
        "publish",
        "name, plaintext_sm3, payload_sm3, plaintext_len, payload_len, custodian, custodian_envelope, escrow, sealed_metadata",
    )?;
    let name = token(&args[0], "name", MAX_DATASET_NAME_LEN, b"._-")?;
    let payload = payload_args(&args[1..8])?;
    let sealed = &args[8];
    if sealed.len() > MAX_SEALED_METADATA_LEN {
        return Err(bad(format!(
            "sealed_metadata: {} bytes, at most {MAX_SEALED_METADATA_LEN}",
            sealed.len()
        )));
    }
    if !sealed.is_empty()
        && (sealed.len() < exchange::payload::HEADER_LEN + 16
            || sealed[..4] != exchange::payload::MAGIC)
    {
        return Err(bad(
            "sealed_metadata: not a sealed payload (docs/formats.md §8)",
        ));
    }
    Ok((name, payload, sealed.clone()))
}

struct RequestArgs {
    organisation: String,
    name: String,
    purpose: String,
    enc_cert: Vec<u8>,
    duration: u64,
}

fn parse_request(args: &[Vec<u8>]) -> Result<RequestArgs, ContractError> {
    count(args, 4, "request", "dataset, purpose, enc_cert, duration")?;
    let (organisation, name) = dataset_id(&args[0])?;
    let purpose = utf8(&args[1], "purpose", MAX_PURPOSE_LEN)?;
    if purpose.trim().is_empty() {
        return Err(bad("purpose: empty (say why the data is needed)"));
    }
    if args[2].len() > pki::MAX_CERT_LEN {
        return Err(bad("enc_cert: too large"));
    }
    let duration = u64_be(&args[3], "duration")?;
    if duration == 0 || duration > MAX_GRANT_BLOCKS {
        return Err(bad(format!(
            "duration {duration}: must be 1..={MAX_GRANT_BLOCKS} blocks"
        )));
    }
    Ok(RequestArgs {
        organisation,
        name,
        purpose,
        enc_cert: args[2].clone(),
        duration,
    })
}

fn parse_decision(method: &str, args: &[Vec<u8>]) -> Result<(Digest, Vec<u8>), ContractError> {
    let what = if method == "grant" {
        "request, expiry"
    } else {
        "request, reason"
    };
    count(args, 2, method, what)?;
    let rid = digest_arg(&args[0], "request")?;
    if method == "grant" {
        u64_be(&args[1], "expiry")?;
    } else {
        utf8(&args[1], "reason", MAX_PURPOSE_LEN)?;
    }
    Ok((rid, args[1].clone()))
}

struct FetchArgs {
    object: FetchObject,
    version: u64,
    requester: Digest,
    request: Digest,
    outcome: u32,
    envelope_sm3: Vec<u8>,
    /// A served fetch without a grant: the encryption certificate the key was wrapped to,
    /// whose organisation shows the requester's right (the owner's own, a recipient's).
    enc_cert: Option<Certificate>,
}

fn parse_record_fetch(args: &[Vec<u8>]) -> Result<FetchArgs, ContractError> {
    count(
        args,
        8,
        "record_fetch",
        "kind, object, version, requester, request, outcome, envelope_sm3, enc_cert",
    )?;
    let object = match args[0].as_slice() {
        [OBJECT_DATASET] => {
            let (o, n) = dataset_id(&args[1])?;
            FetchObject::Dataset(format!("{o}/{n}"))
        }
        [OBJECT_MESSAGE] => FetchObject::Message(digest_arg(&args[1], "object")?),
        _ => return Err(bad("kind: one byte, 1 dataset, 2 message")),
    };
    let version = u64_be(&args[2], "version")?;
    let requester = digest_arg(&args[3], "requester")?;
    let request = digest_arg(&args[4], "request")?;
    let outcome = <[u8; 4]>::try_from(args[5].as_slice())
        .map(u32::from_be_bytes)
        .map_err(|_| bad("outcome: 4 bytes (u32 big-endian), 0 served"))?;
    let envelope_sm3 = if outcome == 0 {
        digest_arg(&args[6], "envelope_sm3")?.0.to_vec()
    } else if args[6].is_empty() {
        Vec::new()
    } else {
        return Err(bad("envelope_sm3: must be empty for a refused fetch"));
    };
    if outcome != 0 && codes::by_number(outcome).is_none() {
        return Err(bad(format!("outcome {outcome}: not a registry code")));
    }
    let enc_cert = if outcome == 0 && request == Digest([0; 32]) {
        Some(
            Certificate::from_der(&args[7])
                .map_err(|e| bad(format!("enc_cert: a served fetch without a grant names the encryption certificate its key was wrapped to: {e}")))?,
        )
    } else if args[7].is_empty() {
        None
    } else {
        return Err(bad(
            "enc_cert: only a served fetch without a grant carries one",
        ));
    };
    Ok(FetchArgs {
        object,
        version,
        requester,
        request,
        outcome,
        envelope_sm3,
        enc_cert,
    })
}

struct SendArgs {
    subject: String,
    recipients: Vec<String>,
    content_type: String,
    payload: Payload,
}

fn parse_send(args: &[Vec<u8>]) -> Result<SendArgs, ContractError> {
    count(
        args,
        10,
        "send",
        "subject, recipients, content_type, plaintext_sm3, payload_sm3, plaintext_len, payload_len, custodian, custodian_envelope, escrow",
    )?;
    let subject = utf8(&args[0], "subject", MAX_TITLE_LEN)?;
    let mut r = Reader::new(&args[1]);
    let recipients = (|| {
        let n = r.len("recipients", MAX_RECIPIENTS)?;
        let v = (0..n)
            .map(|_| {
                r.bytes("recipients", 256)
                    .map(|b| String::from_utf8_lossy(b).into_owned())
            })
            .collect::<Result<Vec<_>, _>>()?;
        r.finish()?;
        Ok::<_, types::DecodeError>(v)
    })()
    .map_err(|e| bad(format!("recipients: {e}")))?;
    if recipients.is_empty() {
        return Err(bad("recipients: none"));
    }
    for (i, o) in recipients.iter().enumerate() {
        if o.is_empty() || recipients[..i].contains(o) {
            return Err(bad(format!("recipients: {o:?} empty or twice")));
        }
    }
    let content_type = token(&args[2], "content_type", MAX_CONTENT_TYPE_LEN, b"./+-_;=")?;
    let payload = payload_args(&args[3..10])?;
    Ok(SendArgs {
        subject,
        recipients,
        content_type,
        payload,
    })
}

/// Encodes `send`'s recipients argument: a u32 count, then each name as u32 length ‖ UTF-8.
pub fn encode_recipients(list: &[String]) -> Vec<u8> {
    let mut w = types::codec::Writer::new();
    w.len(list.len());
    for o in list {
        w.bytes(o.as_bytes());
    }
    w.into_bytes()
}

// ---------------------------------------------------------------------------------------------
// Organisation rules

fn owner_of_request(ctx: &CallContext<'_>, rid: &Digest) -> Result<Option<String>, Denial> {
    Ok(records::request(ctx, rid)?.map(|r| {
        r.dataset
            .rsplit_once('/')
            .map(|(o, _)| o.to_string())
            .unwrap_or_default()
    }))
}

fn authorize_fetch_record(ctx: &CallContext<'_>, args: &[Vec<u8>]) -> Result<(), Denial> {
    let f = parse_record_fetch(args)?;
    let caller = ctx.caller();
    // The custodian of the object records its fetches: the node named by the version or the
    // message, of the owning organisation.
    let custodian = match &f.object {
        FetchObject::Dataset(id) => {
            let Some(ds) = read_dataset(ctx, id)? else {
                return Err(deny(
                    FailureCode::DatasetUnknown,
                    format!("exchange.record_fetch: no dataset {id:?}"),
                ));
            };
            if f.version == 0 || f.version > ds.versions {
                return Err(deny(
                    FailureCode::VersionUnknown,
                    format!(
                        "exchange.record_fetch: dataset {id:?} has {} version(s), not {}",
                        ds.versions, f.version
                    ),
                ));
            }
            let Some(v) = records::version(ctx, id, f.version)? else {
                return Err(deny(
                    FailureCode::VersionUnknown,
                    format!("exchange.record_fetch: no version {} of {id:?}", f.version),
                ));
            };
            (ds.organisation, v.payload.custodian)
        }
        FetchObject::Message(mid) => {
            let Some(m) = read_message(ctx, mid)? else {
                return Err(deny(
                    FailureCode::MessageUnknown,
                    format!("exchange.record_fetch: no message {mid}"),
                ));
            };
            (m.organisation, m.payload.custodian)
        }
    };
    if caller.organisation != custodian.0 || caller.common_name != custodian.1 {
        return Err(deny(
            FailureCode::PermissionDenied,
            format!(
                "exchange.record_fetch: only the custodian {:?} of {:?} records its fetches, not {:?} of {:?}",
                custodian.1, custodian.0, caller.common_name, caller.organisation
            ),
        ));
    }
    Ok(())
}

impl Contract for ExchangeContract {
    fn name(&self) -> &'static str {
        EXCHANGE
    }

    fn methods(&self) -> &'static [&'static str] {
        METHODS
    }

    fn check_args(&self, method: &str, args: &[Vec<u8>]) -> Result<(), ContractError> {
        match method {
            "set_endpoint" => parse_set_endpoint(args).map(|_| ()),
            "register" => parse_register(args).map(|_| ()),
            "publish" => parse_publish(args).map(|_| ()),
            "request" => parse_request(args).map(|_| ()),
            "grant" | "deny" | "revoke" => parse_decision(method, args).map(|_| ()),
            "record_fetch" => parse_record_fetch(args).map(|_| ()),
            "send" => parse_send(args).map(|_| ()),
            "ack" => count(args, 1, "ack", "message").and_then(|_| {
                digest_arg(&args[0], "message")?;
                Ok(())
            }),
            _ => Err(fail(
                FailureCode::UnknownCall,
                format!("exchange has no method {method:?}"),
            )),
        }
    }

    fn authorize(
        &self,
        ctx: &CallContext<'_>,
        method: &str,
        args: &[Vec<u8>],
    ) -> Result<(), Denial> {
        let caller = ctx.caller();
        match method {
            "set_endpoint" => {
                let (node, _, cert) = parse_set_endpoint(args)?;
                let ok = cert.role() == Some(Role::NodeEnc)
                    && cert.organisation().as_deref() == Some(caller.organisation.as_str())
                    && cert.common_name().as_deref() == Some(node.as_str());
                if !ok {
                    return Err(deny(
                        FailureCode::EncCertInvalid,
                        format!(
                            "exchange.set_endpoint: the certificate ({}) is not the node-enc certificate of node {node:?} of {:?}",
                            cert.subject(),
                            caller.organisation
                        ),
                    ));
                }
                if let Some(cas) = ctx.ca_validation()
                    && let Err(e) = cas.validate(&cert, Role::NodeEnc)?
                {
                    return Err(deny(
                        FailureCode::EncCertInvalid,
                        format!(
                            "exchange.set_endpoint: the node-enc certificate does not validate: {e}"
                        ),
                    ));
                }
                Ok(())
            }
            "request" => {
                let r = parse_request(args)?;
                if r.organisation == caller.organisation {
                    return Err(deny(
                        FailureCode::PermissionDenied,
                        format!(
                            "exchange.request: {:?} owns dataset {:?}; its own members fetch without a grant",
                            r.organisation, r.name
                        ),
                    ));
                }
                own_enc_cert(ctx, &r.enc_cert)?;
                Ok(())
            }
            "grant" | "deny" | "revoke" => {
                let (rid, _) = parse_decision(method, args)?;
                match owner_of_request(ctx, &rid)? {
                    Some(owner) if owner != caller.organisation => {
                        Err(refuse_not_owner(ctx, method, &owner))
                    }
                    Some(_) => Ok(()),
                    None if admitted_without(ctx) => Ok(()),
                    None => Err(deny(
                        FailureCode::RequestUnknown,
                        format!("no access request {rid}"),
                    )),
                }
            }
            "record_fetch" => authorize_fetch_record(ctx, args),
            "ack" => {
                let mid = digest_arg(&args[0], "message")?;
                match read_message(ctx, &mid)? {
                    Some(m) => {
                        if m.recipients.contains(&caller.organisation) {
                            Ok(())
                        } else {
                            Err(deny(
                                FailureCode::PermissionDenied,
                                format!(
                                    "exchange.ack: {:?} is not a recipient of message {mid}",
                                    caller.organisation
                                ),
                            ))
                        }
                    }
                    None if admitted_without(ctx) => Ok(()),
                    None => Err(deny(
                        FailureCode::MessageUnknown,
                        format!("no message {mid}"),
                    )),
                }
            }
            // register, publish and send act on the signer's own organisation only.
            _ => Ok(()),
        }
    }

    fn call(
        &self,
        ctx: &mut CallContext<'_>,
        method: &str,
        args: &[Vec<u8>],
    ) -> Result<(), ContractError> {
        ctx.charge(BUILTIN_CALL_COST)?;
        match method {
            "set_endpoint" => Self::set_endpoint(ctx, args),
            "register" => Self::register(ctx, args),
            "publish" => Self::publish(ctx, args),
            "request" => Self::request(ctx, args),
            "grant" | "deny" | "revoke" => Self::decide(ctx, method, args),
            "record_fetch" => Self::record_fetch(ctx, args),
            "send" => Self::send(ctx, args),
            "ack" => Self::ack(ctx, args),
            _ => Err(fail(
                FailureCode::UnknownCall,
                format!("exchange has no method {method:?}"),
            )),
        }
    }
}
