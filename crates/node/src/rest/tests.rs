use super::*;

/// Issue 17: every gRPC method of every service has a REST route, a server stream is served as
/// server-sent events, a client stream takes octets, and each route's path parameters are fields
/// of its request message.
#[test]
fn every_grpc_method_has_a_rest_route_of_its_kind() {
    let pool = descriptor_pool();
    let services: Vec<_> = pool.services().collect();
    assert_eq!(
        services.len(),
        4,
        "the descriptors hold the Chain, Batch, Exchange and Supervision services"
    );
    let mut missing = Vec::new();
    for s in &services {
        for m in s.methods() {
            let name = format!("{}/{}", s.full_name(), m.name());
            let routes: Vec<_> = routes::ROUTES.iter().filter(|r| r.grpc == name).collect();
            if routes.is_empty() {
                missing.push(name.clone());
            }
            for r in routes {
                if m.is_client_streaming() {
                    assert_eq!(r.body, Body::Octets, "{name}: a client stream takes octets");
                } else {
                    assert_ne!(r.body, Body::Octets, "{name}");
                }
                if m.is_server_streaming() {
                    assert!(
                        r.method == "GET" || r.body == Body::Json,
                        "{name}: a server stream is an SSE GET, or a POST with a JSON body"
                    );
                }
                for p in routes::path_params(r.path) {
                    assert!(
                        m.input().get_field_by_name(p).is_some(),
                        "{}: path parameter {p} is not a field of {}",
                        r.path,
                        m.input().name()
                    );
                }
                if r.body == Body::None {
                    for f in m.input().fields() {
                        // A query carries scalars, and a message field's scalars one level down.
                        if let Some(sub) = f.kind().as_message() {
                            assert!(
                                !f.is_list()
                                    && sub
                                        .fields()
                                        .all(|g| g.kind().as_message().is_none() && !g.is_list()),
                                "{}: {} cannot be carried by a query: make the route a POST",
                                r.path,
                                f.name()
                            );
                        }
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "gRPC methods without a REST route: {missing:?}"
    );
    // And every route names a method that exists, or is one of the REST-only routes.
    for r in routes::ROUTES {
        if r.grpc.is_empty() {
            assert!(
                [
                    routes::PREPARE,
                    routes::GENESIS,
                    routes::HEALTH,
                    routes::CONFORMANCE
                ]
                .contains(&r.op),
                "{}",
                r.path
            );
            continue;
        }
        let (svc, name) = r.grpc.split_once('/').unwrap();
        assert!(
            pool.get_service_by_name(svc)
                .is_some_and(|s| s.methods().any(|m| m.name() == name)),
            "{} names {}, which is not a gRPC method",
            r.path,
            r.grpc
        );
        assert!(
            r.path.starts_with("/v1/"),
            "{}: every path starts with /v1",
            r.path
        );
    }
    let mut ops: Vec<_> = routes::ROUTES.iter().map(|r| r.op).collect();
    ops.sort_unstable();
    let n = ops.len();
    ops.dedup();
    assert_eq!(ops.len(), n, "operationIds are unique");
}

/// The document the node serves is the one in the repository (GMCHAIN_BLESS_OPENAPI=1 writes it).
#[test]
fn the_openapi_document_in_the_repository_is_the_generated_one() {
    let generated = openapi::document_bytes(&descriptor_pool());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    if std::env::var_os("GMCHAIN_BLESS_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let kept = std::fs::read(&path).unwrap_or_default();
    assert!(
        kept == generated.as_ref(),
        "docs/openapi.json differs from the generated document: run GMCHAIN_BLESS_OPENAPI=1 cargo test -p node rest:: and commit it"
    );
    let doc: Json = serde_json::from_slice(&generated).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    // One operation per route.
    let ops: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(ops, routes::ROUTES.len());
    // Every $ref resolves.
    let text = String::from_utf8(generated.to_vec()).unwrap();
    for part in text.split("\"#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap();
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "dangling $ref {name}"
        );
    }
}

#[test]
fn grpc_statuses_map_to_the_documented_http_statuses() {
    use tonic::Code as G;
    for (g, h) in [
        (G::InvalidArgument, 400),
        (G::Unauthenticated, 401),
        (G::PermissionDenied, 403),
        (G::NotFound, 404),
        (G::AlreadyExists, 409),
        (G::FailedPrecondition, 412),
        (G::ResourceExhausted, 429),
        (G::Unavailable, 503),
        (G::DeadlineExceeded, 504),
        (G::Internal, 500),
        (G::DataLoss, 500),
    ] {
        assert_eq!(http_status(g).as_u16(), h, "{g:?}");
    }
}

fn route(op: &str) -> &'static Route {
    routes::ROUTES.iter().find(|r| r.op == op).unwrap()
}

fn input(op: &str) -> MessageDescriptor {
    let op = if op == "GetLatestBlock" {
        "GetBlock"
    } else {
        op
    };
    let r = route(op);
    let (svc, name) = r.grpc.split_once('/').unwrap();
    descriptor_pool()
        .get_service_by_name(svc)
        .unwrap()
        .methods()
        .find(|m| m.name() == name)
        .unwrap()
        .input()
}

#[test]
fn path_and_query_values_are_read_by_their_field_types() {
    let id = "ab".repeat(32);
    let m = request_message(
        &input("GetTransaction"),
        route("GetTransaction"),
        &[("tx_id".into(), id.clone())],
        "",
        Map::new(),
    )
    .unwrap();
    assert_eq!(
        m.get_field_by_name("tx_id")
            .unwrap()
            .as_bytes()
            .unwrap()
            .as_ref(),
        hex::decode(&id).unwrap().as_slice()
    );
    let m = request_message(
        &input("ListAttestations"),
        route("ListAttestations"),
        &[],
        "owner=Dev%20Bureau%2Falice&start=3&limit=10",
        Map::new(),
    )
    .unwrap();
    assert_eq!(
        m.get_field_by_name("owner").unwrap().as_str(),
        Some("Dev Bureau/alice")
    );
    assert_eq!(m.get_field_by_name("start").unwrap().as_u64(), Some(3));
    assert_eq!(m.get_field_by_name("limit").unwrap().as_u32(), Some(10));
    // Refusals name what was wrong.
    let bad = |path: &[(String, String)], query: &str, body: Map<String, Json>, op: &str| {
        request_message(&input(op), route(op), path, query, body)
            .unwrap_err()
            .detail
    };
    assert!(
        bad(
            &[("tx_id".into(), "xyz".into())],
            "",
            Map::new(),
            "GetTransaction"
        )
        .contains("tx_id")
    );
    assert!(
        bad(
            &[("tx_id".into(), "AB".repeat(32))],
            "",
            Map::new(),
            "GetTransaction"
        )
        .contains("lower-case hex")
    );
    assert!(bad(&[], "limit=-1", Map::new(), "ListAttestations").contains("limit"));
    assert!(bad(&[], "limit=1&limit=2", Map::new(), "ListAttestations").contains("twice"));
    assert!(bad(&[], "colour=red", Map::new(), "ListAttestations").contains("owner, start, limit"));
    // A message field's scalars, one level down.
    let m = request_message(
        &input("QueryEvents"),
        route("QueryEvents"),
        &[],
        &format!(
            "filter.contract=hello&filter.topic={}&from_height=2",
            "0a".repeat(4)
        ),
        Map::new(),
    )
    .unwrap();
    let f = m.get_field_by_name("filter").unwrap();
    let f = f.as_message().unwrap();
    assert_eq!(
        f.get_field_by_name("contract").unwrap().as_str(),
        Some("hello")
    );
    assert_eq!(
        f.get_field_by_name("topic")
            .unwrap()
            .as_bytes()
            .unwrap()
            .as_ref(),
        &[10u8; 4]
    );
    assert!(bad(&[], "filter=x", Map::new(), "QueryEvents").contains("filter.<name>"));
    assert!(bad(&[], "filter.colour=x", Map::new(), "QueryEvents").contains("colour"));
    let mut body = Map::new();
    body.insert("signed_tx".into(), json!("not base64!"));
    assert!(bad(&[], "", body, "SubmitTransaction").contains("SubmitTransactionRequest"));
    let mut body = Map::new();
    body.insert("colour".into(), json!("red"));
    assert!(bad(&[], "", body, "SubmitTransaction").contains("colour"));
    let mut body = Map::new();
    body.insert("contract".into(), json!("x"));
    assert!(
        bad(
            &[("contract".into(), "hello".into())],
            "",
            body,
            "QueryContract"
        )
        .contains("in the path")
    );
}

#[test]
fn public_mode_shows_an_attestations_organisation_not_the_person() {
    let pool = descriptor_pool();
    let desc = pool
        .get_message_by_name("gmchain.v1.ListAttestationsResponse")
        .unwrap();
    let att = pool.get_message_by_name("gmchain.v1.Attestation").unwrap();
    let mut a = DynamicMessage::new(att);
    a.set_field_by_name("owner", Value::String("Dev Bureau/alice".into()));
    a.set_field_by_name("signer", Value::Bytes(Bytes::from_static(&[7; 32])));
    a.set_field_by_name("digest", Value::Bytes(Bytes::from_static(&[1; 32])));
    let mut list = DynamicMessage::new(desc);
    list.set_field_by_name("attestations", Value::List(vec![Value::Message(a)]));
    redact_attestations(&mut list);
    let text = to_json(&list).unwrap();
    assert!(text.contains("\"owner\":\"Dev Bureau\""), "{text}");
    assert!(!text.contains("alice"), "{text}");
    assert!(text.contains("\"signer\":\"\""), "{text}");
    // A common name may hold '/' (an organisation's name may not): the owner keeps the
    // organisation only (review 20).
    let att = pool.get_message_by_name("gmchain.v1.Attestation").unwrap();
    let mut b = DynamicMessage::new(att);
    b.set_field_by_name("owner", Value::String("Acme/Zhang/Wei".into()));
    redact_attestations(&mut b);
    assert_eq!(b.get_field_by_name("owner").unwrap().as_str(), Some("Acme"));
    // The digest stays: it is what the public checks.
    assert!(text.contains(&base64::engine::general_purpose::STANDARD.encode([1u8; 32])));
}

/// Review 19 (low): numbers as the document writes them, and a route's fixed fields untouchable.
#[test]
fn numbers_are_canonical_and_fixed_fields_cannot_be_set() {
    for raw in ["+1", "01", "-0", " 1", ""] {
        let e = request_message(
            &input("GetBlock"),
            route("GetBlock"),
            &[("height".into(), raw.into())],
            "",
            Map::new(),
        )
        .unwrap_err();
        assert!(e.detail.contains("height"), "{raw:?}: {}", e.detail);
    }
    assert!(
        request_message(
            &input("GetBlock"),
            route("GetBlock"),
            &[("height".into(), "0".into())],
            "",
            Map::new()
        )
        .is_ok()
    );
    let e = request_message(
        &input("GetLatestBlock"),
        route("GetLatestBlock"),
        &[],
        "height=1",
        Map::new(),
    )
    .unwrap_err();
    assert!(e.detail.contains("height"), "{}", e.detail);
}
