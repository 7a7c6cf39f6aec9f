//! The OpenAPI 3.1 document of the REST API, generated from the route table and the proto
//! descriptors (with their comments), so that it cannot drift from what the gateway does.
//! `docs/openapi.json` is this document, checked by a test.

use bytes::Bytes;
use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor};
use serde_json::{Map, Value as Json, json};

use super::routes::{self, Body, Public, Route};

/// The leading comment of the descriptor at `path` in `file`, one paragraph.
fn comment(file: &prost_reflect::FileDescriptor, path: &[i32]) -> Option<String> {
    let info = file.file_descriptor_proto().source_code_info.as_ref()?;
    let loc = info.location.iter().find(|l| l.path == path)?;
    let text = loc.leading_comments.as_deref()?;
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    (!joined.is_empty()).then_some(joined)
}

fn method_comment(m: &MethodDescriptor) -> Option<String> {
    comment(&m.parent_file(), m.path())
}

fn field_comment(f: &FieldDescriptor) -> Option<String> {
    comment(&f.parent_file(), f.path())
}

fn message_comment(m: &MessageDescriptor) -> Option<String> {
    comment(&m.parent_file(), m.path())
}

/// The schema of one value of a field's kind.
fn kind_schema(kind: &Kind, for_path: bool) -> Json {
    match kind {
        Kind::Bytes if for_path => json!({"type": "string", "pattern": "^([0-9a-f]{2})*$"}),
        Kind::Bytes => json!({
            "type": "string",
            "contentEncoding": "base64",
            "pattern": "^[A-Za-z0-9+/]*={0,2}$",
        }),
        Kind::String => json!({"type": "string"}),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::Uint32 | Kind::Fixed32 => {
            json!({"type": "integer", "minimum": 0, "maximum": u32::MAX})
        }
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            json!({"type": "integer", "minimum": i32::MIN, "maximum": i32::MAX})
        }
        Kind::Uint64 | Kind::Fixed64 => json!({
            "type": "string",
            "pattern": "^(0|[1-9][0-9]{0,19})$",
            "description": "an unsigned 64-bit integer as a decimal string (numbers are accepted in requests)",
        }),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => json!({
            "type": "string",
            "pattern": "^-?(0|[1-9][0-9]{0,18})$",
        }),
        Kind::Double | Kind::Float => json!({"type": "number"}),
        Kind::Enum(e) => {
            let names: Vec<Json> = e.values().map(|v| Json::String(v.name().into())).collect();
            json!({"type": "string", "enum": names})
        }
        Kind::Message(m) => json!({"$ref": format!("#/components/schemas/{}", m.name())}),
    }
}

fn field_schema(f: &FieldDescriptor) -> Json {
    let mut s = kind_schema(&f.kind(), false);
    if f.is_list() {
        s = json!({"type": "array", "items": s});
    }
    // (A $ref with siblings is allowed in 3.1: a message field keeps its own words too.)
    if let (Some(c), Json::Object(m)) = (field_comment(f), &mut s) {
        m.insert("description".into(), Json::String(c));
    }
    s
}

/// A message's schema, leaving out `skip` (fields bound in the path).
fn message_schema(m: &MessageDescriptor, skip: &[&str]) -> Json {
    let mut props = Map::new();
    let mut required = Vec::new();
    for f in m.fields() {
        if skip.contains(&f.name()) {
            continue;
        }
        props.insert(f.name().into(), field_schema(&f));
        // Fields without presence are always written in answers.
        if !f.supports_presence() {
            required.push(Json::String(f.name().into()));
        }
    }
    let mut s = Map::new();
    s.insert("type".into(), json!("object"));
    s.insert("properties".into(), Json::Object(props));
    s.insert("additionalProperties".into(), json!(false));
    if let Some(c) = message_comment(m) {
        s.insert("description".into(), Json::String(c));
    }
    let oneofs: Vec<Json> = m
        .oneofs()
        .filter(|o| !o.is_synthetic())
        .map(|o| {
            Json::String(format!(
                "{}: {}",
                o.name(),
                o.fields()
                    .map(|f| f.name().to_string())
                    .collect::<Vec<_>>()
                    .join(" | ")
            ))
        })
        .collect();
    if !oneofs.is_empty() {
        s.insert("x-oneof".into(), Json::Array(oneofs));
    }
    // Answers name every field without presence; requests may leave any out.
    s.insert("x-answer-required".into(), Json::Array(required));
    Json::Object(s)
}

fn collect(m: &MessageDescriptor, out: &mut std::collections::BTreeMap<String, MessageDescriptor>) {
    if out.contains_key(m.name()) {
        return;
    }
    out.insert(m.name().to_string(), m.clone());
    for f in m.fields() {
        if let Kind::Message(sub) = f.kind() {
            collect(&sub, out);
        }
    }
}

fn problem_schema() -> Json {
    json!({
        "type": "object",
        "description": "RFC 9457 problem document; code is the registry name (docs/error-codes.md)",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "code": {"type": "string"},
            "grpc_status": {"type": "string"},
        },
        "required": ["type", "title", "status", "detail"],
    })
}

fn problem_responses(ops: &mut Map<String, Json>) {
    for (status, what) in [
        ("400", "malformed request"),
        ("401", "no certificate identity on this listener"),
        ("403", "not allowed here"),
        ("404", "not found"),
        ("405", "method not allowed"),
        ("409", "already exists"),
        ("412", "precondition failed"),
        ("413", "body too large"),
        ("415", "not application/json"),
        ("429", "a limit was reached"),
        ("500", "internal error"),
        ("501", "not implemented"),
        ("503", "unavailable"),
        ("504", "timed out"),
    ] {
        ops.insert(
            status.into(),
            json!({
                "description": what,
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
            }),
        );
    }
}

fn local_schemas(schemas: &mut Map<String, Json>) {
    schemas.insert(
        "PrepareTransactionRequest".into(),
        json!({
            "type": "object",
            "description": "A contract call to prepare: the node returns the canonical transaction and the 32 bytes to sign (its id), signed with SM2 over SM3(ZA ‖ id).",
            "properties": {
                "contract": {"type": "string"},
                "method": {"type": "string"},
                "args": {"type": "array", "items": {"type": "string", "contentEncoding": "base64"}},
                "sender_certificate": {"type": "string", "description": "PEM, or base64 DER"},
                "sender_registered": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "fuel_limit": {"type": ["string", "integer"]},
                "expiry": {"type": ["string", "integer"], "description": "default: the tip + the chain's expiry window"},
                "salt": {"type": "string", "pattern": "^[0-9a-f]{32}$", "description": "default: random"},
            },
            "required": ["contract", "method"],
            "additionalProperties": false,
        }),
    );
    schemas.insert(
        "PrepareTransactionResponse".into(),
        json!({
            "type": "object",
            "properties": {
                "tx": {"type": "string", "contentEncoding": "base64"},
                "tx_id": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "sign_bytes": {"type": "string", "contentEncoding": "base64"},
                "signer_user_id": {"type": "string"},
                "expiry": {"type": "string"},
                "tip": {"type": "string"},
            },
            "required": ["tx", "tx_id", "sign_bytes", "signer_user_id", "expiry", "tip"],
        }),
    );
    schemas.insert(
        "Health".into(),
        json!({
            "type": "object",
            "description": "The node's storage, token, peers and signing.",
            "properties": {
                "status": {"type": "string", "enum": ["ok", "degraded", "down"], "description": "ok; degraded: a peer missing, a quorum of the configured nodes still linked, or a restored validator held by its restore guard (HTTP 200); down: storage or token failing, or below a quorum (HTTP 503). Checked at most every 5 s."},
                "checked_ms": {"type": "integer"},
                "storage": {"type": "object"},
                "token": {"type": "object"},
                "peers": {"type": "object"},
                "signing": {"type": "object", "description": "ok: false while a validator restored from a backup or a snapshot signs nothing (restore_guard: true, learned_height: the height it waits for; docs/ops/backup.md)."},
            },
            "required": ["status"],
        }),
    );
    schemas.insert("Problem".into(), problem_schema());
}

fn query_param(name: &str, f: &FieldDescriptor) -> Json {
    let mut s = kind_schema(&f.kind(), true);
    if f.is_list() {
        s = json!({"type": "array", "items": s});
    }
    let mut p = json!({"name": name, "in": "query", "required": false, "schema": s});
    if let Some(c) = field_comment(f) {
        p["description"] = Json::String(c);
    }
    p
}

fn operation(route: &Route, pool: &DescriptorPool) -> Json {
    let method = pool
        .services()
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .find(|m| format!("{}/{}", m.parent_service().full_name(), m.name()) == route.grpc);
    let mut op = Map::new();
    op.insert("operationId".into(), Json::String(route.op.into()));
    let tag = route
        .grpc
        .split_once('/')
        .map(|(s, _)| s.rsplit('.').next().unwrap_or(s).to_string())
        .unwrap_or_else(|| "Node".into());
    op.insert("tags".into(), json!([tag]));
    let public = match route.public {
        Public::Yes => "public",
        Public::Raw => "public unless rest.public_raw = false",
        Public::No => "not on a public listener",
    };
    let mut params = Vec::new();
    let mut responses = Map::new();
    problem_responses(&mut responses);
    match &method {
        Some(m) => {
            op.insert(
                "summary".into(),
                Json::String(format!("{} ({})", route.grpc, public)),
            );
            if let Some(c) = method_comment(m) {
                op.insert("description".into(), Json::String(c));
            }
            let input = m.input();
            let in_path = routes::path_params(route.path);
            for p in &in_path {
                if let Some(f) = input.get_field_by_name(p) {
                    params.push(json!({
                        "name": p, "in": "path", "required": true,
                        "schema": kind_schema(&f.kind(), true),
                    }));
                }
            }
            match route.body {
                Body::None => {
                    for f in input.fields() {
                        if in_path.contains(&f.name()) || route.fixed.contains(&f.name()) {
                            continue;
                        }
                        // A message field's scalar fields as `field.sub` (one level).
                        let flat: Vec<(String, FieldDescriptor)> = match f.kind().as_message() {
                            Some(m) => m
                                .fields()
                                .map(|g| (format!("{}.{}", f.name(), g.name()), g))
                                .collect(),
                            None => vec![(f.name().to_string(), f.clone())],
                        };
                        for (name, g) in flat {
                            params.push(query_param(&name, &g));
                        }
                    }
                }
                Body::Json => {
                    let schema = if in_path.is_empty() {
                        if route.op == "SubmitTransaction" {
                            json!({"oneOf": [
                                {"$ref": "#/components/schemas/SubmitTransactionRequest"},
                                {"$ref": "#/components/schemas/SubmitPreparedTransaction"},
                            ]})
                        } else {
                            json!({"$ref": format!("#/components/schemas/{}", input.name())})
                        }
                    } else {
                        json!({"$ref": format!("#/components/schemas/{}Body", input.name())})
                    };
                    op.insert(
                        "requestBody".into(),
                        json!({"required": true, "content": {"application/json": {"schema": schema}}}),
                    );
                }
                Body::Octets => {
                    params.push(
                        json!({"name": "payload_sm3", "in": "query", "required": true,
                        "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}),
                    );
                    params.push(
                        json!({"name": "payload_len", "in": "query", "required": true,
                        "schema": {"type": "string", "pattern": "^(0|[1-9][0-9]{0,19})$"}}),
                    );
                    op.insert(
                        "requestBody".into(),
                        json!({"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}}),
                    );
                }
            }
            let out = json!({"$ref": format!("#/components/schemas/{}", m.output().name())});
            let content = if m.is_server_streaming() {
                // Each event (as OpenAPI 3.2's itemSchema reads one; the schema of a 3.1 event
                // stream): one message as JSON, or an `error` event carrying a Problem.
                let data = |schema: Json| json!({"type": "string", "contentMediaType": "application/json", "contentSchema": schema});
                json!({"text/event-stream": {"schema": {
                    "description": format!("server-sent events: each event's data is one {} as JSON; an `error` event with a Problem ends the stream", m.output().name()),
                    "oneOf": [
                        {"type": "object", "properties": {"event": {"const": "message"}, "data": data(out)}, "required": ["data"]},
                        {"type": "object", "properties": {"event": {"const": "error"}, "data": data(json!({"$ref": "#/components/schemas/Problem"}))}, "required": ["event", "data"]},
                    ],
                }}})
            } else {
                json!({"application/json": {"schema": out}})
            };
            responses.insert(
                "200".into(),
                json!({"description": "OK", "content": content}),
            );
        }
        None => {
            let (summary, ok, body) = match route.op {
                routes::PREPARE => (
                    "The canonical transaction of a contract call and the bytes to sign (REST only)",
                    json!({"$ref": "#/components/schemas/PrepareTransactionResponse"}),
                    Some(json!({"$ref": "#/components/schemas/PrepareTransactionRequest"})),
                ),
                routes::CONFORMANCE => (
                    "The conformance report the operator publishes (rest.conformance_report), as its file holds it; gmchain-content-sm3 carries its SM3; verify its signature with gmchain conformance verify-report",
                    json!({"type": "object"}),
                    None,
                ),
                routes::GENESIS => (
                    "The node's genesis file, as it holds it (compare its SM3 with the hash the operator publishes)",
                    json!({"type": "object"}),
                    None,
                ),
                _ => (
                    "The node's storage, token and peer status",
                    json!({"$ref": "#/components/schemas/Health"}),
                    None,
                ),
            };
            op.insert(
                "summary".into(),
                Json::String(format!("{summary} ({public})")),
            );
            if let Some(b) = body {
                op.insert(
                    "requestBody".into(),
                    json!({"required": true, "content": {"application/json": {"schema": b}}}),
                );
            }
            responses.insert(
                "200".into(),
                json!({"description": "OK", "content": {"application/json": {"schema": ok}}}),
            );
            if route.op == routes::HEALTH {
                responses.insert(
                    "503".into(),
                    json!({"description": "a component is down", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}),
                );
            }
        }
    }
    if !params.is_empty() {
        op.insert("parameters".into(), Json::Array(params));
    }
    op.insert("responses".into(), Json::Object(responses));
    Json::Object(op)
}

/// The document.
pub(crate) fn document(pool: &DescriptorPool) -> Json {
    let mut paths = Map::new();
    let mut messages = std::collections::BTreeMap::new();
    let mut bodies = Vec::new();
    for route in routes::ROUTES {
        let entry = paths
            .entry(route.path.to_string())
            .or_insert_with(|| Json::Object(Map::new()));
        if let Json::Object(m) = entry {
            m.insert(route.method.to_ascii_lowercase(), operation(route, pool));
        }
        if let Some((svc, name)) = route.grpc.split_once('/')
            && let Some(m) = pool
                .get_service_by_name(svc)
                .and_then(|s| s.methods().find(|m| m.name() == name))
        {
            collect(&m.input(), &mut messages);
            collect(&m.output(), &mut messages);
            let in_path = routes::path_params(route.path);
            if route.body == Body::Json && !in_path.is_empty() {
                bodies.push((m.input(), in_path));
            }
        }
    }
    let mut schemas = Map::new();
    for (name, m) in &messages {
        schemas.insert(name.clone(), message_schema(m, &[]));
    }
    for (m, skip) in bodies {
        schemas.insert(format!("{}Body", m.name()), message_schema(&m, &skip));
    }
    schemas.insert(
        "SubmitPreparedTransaction".into(),
        json!({
            "type": "object",
            "description": "A prepared transaction (POST /v1/tx/prepare) and the caller's DER SM2 signature over its sign_bytes.",
            "properties": {
                "tx": {"type": "string", "contentEncoding": "base64"},
                "signature": {"type": "string", "contentEncoding": "base64"},
                "signer_user_id": {"type": "string", "description": "default 1234567812345678"},
                "wait_for_commit": {"type": "boolean"},
            },
            "required": ["tx", "signature"],
            "additionalProperties": false,
        }),
    );
    local_schemas(&mut schemas);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "gmchain node API (REST/JSON)",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every gRPC method of gmchain.v1 as a route under /v1 (docs/rest.md). Bodies: proto3 JSON with the proto's field names, bytes as base64, 64-bit integers as decimal strings. Paths and queries: bytes as lower-case hex. Errors: application/problem+json with the registry code.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "paths": Json::Object(paths),
        "components": {"schemas": Json::Object(schemas)},
    })
}

/// The document as the node serves it and `docs/openapi.json` holds it: pretty, with a final
/// newline.
pub(crate) fn document_bytes(pool: &DescriptorPool) -> Bytes {
    let mut s = serde_json::to_string_pretty(&document(pool)).unwrap_or_default();
    s.push('\n');
    Bytes::from(s)
}
