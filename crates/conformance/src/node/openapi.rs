//! The open API (platform standard GZ-7.5.2, in part): the REST/JSON gateway the node serves
//! beside gRPC on its mutual-TLS listener. Judged from the bytes: the OpenAPI document's version,
//! paths and coverage of the gRPC methods the suite knows; GetStatus's answer against the gRPC
//! answer; refusals as RFC 9457 problem documents whose codes are in the registry, with the HTTP
//! status of the registry's gRPC status.

use super::error::NodeCheckError;
use super::submit::ev;
use super::{HttpAnswer, NodeProbe};
use crate::checks::Evidence;
use serde_json::Value;

const SRC: &str = "live node over mutual GM TLS; expected: docs/rest.md, the error-code registry";

/// The gRPC methods every node serves (gmchain.v1): each must have a REST route.
const METHODS: &[&str] = &[
    "SubmitTransaction",
    "GetTransaction",
    "GetReceipt",
    "GetBlock",
    "GetAttestation",
    "ListAttestations",
    "GetReceiptProof",
    "SubscribeBlocks",
    "GetStatus",
    "GetValidators",
    "GetProposal",
    "ListProposals",
    "QueryContract",
    "GetContract",
    "GetLogHead",
    "QueryEvents",
    "SubscribeEvents",
];

fn wrong(what: String) -> NodeCheckError {
    NodeCheckError::RestContract { what }
}

/// The HTTP status the registry's gRPC status maps to (docs/rest.md).
fn http_of(g: codes::Grpc) -> u16 {
    match g {
        codes::Grpc::InvalidArgument => 400,
        codes::Grpc::Unauthenticated => 401,
        codes::Grpc::PermissionDenied => 403,
        codes::Grpc::NotFound => 404,
        codes::Grpc::AlreadyExists => 409,
        codes::Grpc::FailedPrecondition => 412,
        codes::Grpc::ResourceExhausted => 429,
        codes::Grpc::Unavailable => 503,
        codes::Grpc::Unimplemented => 501,
        codes::Grpc::Internal | codes::Grpc::DataLoss => 500,
    }
}

/// `a` is a problem document with `status` whose code is the registry's `expect` (or, with
/// `expect` empty, any registry code whose gRPC status maps to `status`).
fn problem(a: &HttpAnswer, status: u16, expect: &str) -> Result<String, NodeCheckError> {
    if a.status != status {
        return Err(wrong(format!(
            "HTTP {} where {status} was expected: {}",
            a.status,
            String::from_utf8_lossy(&a.body)
        )));
    }
    if a.media_type != "application/problem+json" {
        return Err(wrong(format!(
            "media type {:?}, not application/problem+json",
            a.media_type
        )));
    }
    let p: Value = serde_json::from_slice(&a.body)
        .map_err(|e| wrong(format!("the problem document is not JSON: {e}")))?;
    if p["status"].as_u64() != Some(u64::from(status)) {
        return Err(wrong(format!(
            "the problem's status {} is not {status}",
            p["status"]
        )));
    }
    if p["detail"].as_str().is_none_or(|d| d.is_empty()) {
        return Err(wrong("the problem names nothing (empty detail)".into()));
    }
    let name = p["code"]
        .as_str()
        .ok_or_else(|| wrong(format!("the problem carries no code: {p}")))?;
    let code = codes::by_name(name)
        .ok_or_else(|| wrong(format!("code {name} is not in the error-code registry")))?;
    if !expect.is_empty() && name != expect {
        return Err(wrong(format!("code {name}, not {expect}")));
    }
    // REST-only codes carry their own HTTP status; the others the mapping of their gRPC status.
    if !name.starts_with("REST_") && http_of(code.grpc) != status {
        return Err(wrong(format!(
            "code {name} is gRPC {} (HTTP {}) but came with HTTP {status}",
            code.grpc.as_str(),
            http_of(code.grpc)
        )));
    }
    Ok(format!("HTTP {status} {name} ({})", code.number))
}

pub(super) fn open_api(p: &dyn NodeProbe) -> Vec<Evidence> {
    let mut out = Vec::new();
    // The document: OpenAPI 3.1, every path under /v1, every gRPC method mapped.
    let doc = p
        .http("GET", "/openapi.json", None, b"")
        .map_err(NodeCheckError::from)
        .and_then(|a| {
            if a.status != 200 || a.media_type != "application/json" {
                return Err(wrong(format!(
                    "GET /openapi.json: HTTP {} {}",
                    a.status, a.media_type
                )));
            }
            serde_json::from_slice::<Value>(&a.body)
                .map_err(|e| wrong(format!("GET /openapi.json is not JSON: {e}")))
        });
    let doc = match doc {
        Ok(d) => d,
        Err(e) => {
            out.push(ev("the OpenAPI document", SRC, Err(e)));
            return out;
        }
    };
    out.push(ev("OpenAPI 3.1, every path under /v1", SRC, {
        let version = doc["openapi"].as_str().unwrap_or("");
        let paths = doc["paths"].as_object();
        match paths {
            _ if !version.starts_with("3.1.") => {
                Err(wrong(format!("openapi {version:?}, not 3.1.x")))
            }
            None => Err(wrong("no paths".into())),
            Some(ps) => match ps.keys().find(|k| !k.starts_with("/v1/")) {
                Some(k) => Err(wrong(format!("path {k} is not under /v1"))),
                None => Ok(format!("openapi {version}, {} paths", ps.len())),
            },
        }
    }));
    out.push(ev(
        "every gRPC method of gmchain.v1.Chain has a route",
        SRC,
        {
            let text = doc["paths"].to_string();
            let missing: Vec<&str> = METHODS
                .iter()
                .copied()
                .filter(|m| !text.contains(&format!("gmchain.v1.Chain/{m} ")))
                .collect();
            if missing.is_empty() {
                Ok(format!("{} methods", METHODS.len()))
            } else {
                Err(wrong(format!("no route for {}", missing.join(", "))))
            }
        },
    ));
    // The same answer as gRPC.
    out.push(ev("GET /v1/status answers as GetStatus", SRC, {
        let grpc = p.status().map_err(NodeCheckError::from);
        let rest = p
            .http("GET", "/v1/status", None, b"")
            .map_err(NodeCheckError::from);
        match (grpc, rest) {
            (Err(e), _) | (_, Err(e)) => Err(e),
            (Ok(g), Ok(a)) => serde_json::from_slice::<Value>(&a.body)
                .map_err(|e| wrong(format!("GET /v1/status is not JSON: {e}")))
                .and_then(|v| {
                    if a.status != 200 {
                        Err(wrong(format!("GET /v1/status: HTTP {}", a.status)))
                    } else if v["chain_id"].as_str() != Some(g.chain_id.as_str()) {
                        Err(wrong(format!(
                            "chain_id {} over REST, {} over gRPC",
                            v["chain_id"], g.chain_id
                        )))
                    } else {
                        Ok(format!("chain {}", g.chain_id))
                    }
                }),
        }
    }));
    // Refusals: problem documents with registry codes.
    // (what, method, path, media type, body, HTTP status, code)
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a str,
        Option<&'a str>,
        Vec<u8>,
        u16,
        &'a str,
    );
    let cases: [Case; 4] = [
        (
            "a path parameter that is not hex",
            "GET",
            "/v1/tx/not-hex",
            None,
            Vec::new(),
            400,
            "REST_REQUEST",
        ),
        (
            "an unknown route",
            "GET",
            "/v1/no-such-route",
            None,
            Vec::new(),
            404,
            "REST_NOT_FOUND",
        ),
        (
            "a transaction that is not one",
            "POST",
            "/v1/tx",
            Some("application/json"),
            br#"{"signed_tx":"AAAA"}"#.to_vec(),
            400,
            "TX_MALFORMED",
        ),
        (
            "a body over the submission limit (8 MiB)",
            "POST",
            "/v1/tx",
            Some("application/json"),
            vec![b' '; 8 << 20],
            413,
            "REST_TOO_LARGE",
        ),
    ];
    for (what, method, path, ct, body, status, code) in cases {
        out.push(ev(
            &format!("{what} ({method} {path}) is refused"),
            SRC,
            p.http(method, path, ct, &body)
                .map_err(NodeCheckError::from)
                .and_then(|a| problem(&a, status, code)),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> HttpAnswer {
        HttpAnswer {
            status,
            media_type: "application/problem+json".into(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_problem_must_carry_a_registry_code_with_its_http_status() {
        let ok = answer(
            409,
            r#"{"status":409,"detail":"again","code":"TX_DUPLICATE"}"#,
        );
        assert!(problem(&ok, 409, "TX_DUPLICATE").is_ok());
        // The wrong HTTP status for the code's gRPC status.
        let bad = answer(
            400,
            r#"{"status":400,"detail":"again","code":"TX_DUPLICATE"}"#,
        );
        assert!(
            problem(&bad, 400, "")
                .unwrap_err()
                .why()
                .contains("ALREADY_EXISTS")
        );
        // A code the registry does not know.
        let bad = answer(400, r#"{"status":400,"detail":"x","code":"MADE_UP"}"#);
        assert!(
            problem(&bad, 400, "")
                .unwrap_err()
                .why()
                .contains("registry")
        );
        // No code, an empty detail, another media type.
        assert!(problem(&answer(400, r#"{"status":400,"detail":"x"}"#), 400, "").is_err());
        assert!(
            problem(
                &answer(400, r#"{"status":400,"detail":"","code":"REST_REQUEST"}"#),
                400,
                ""
            )
            .is_err()
        );
        let mut plain = answer(400, r#"{"status":400,"detail":"x","code":"REST_REQUEST"}"#);
        plain.media_type = "application/json".into();
        assert!(problem(&plain, 400, "").is_err());
    }
}
