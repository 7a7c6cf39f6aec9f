//! The route table of the REST gateway (docs/rest.md, "Routes"): one row per route, naming the
//! gRPC method it calls. The gateway, its OpenAPI document and the coverage test all read this
//! table; the descriptors say what each method takes and returns.

/// Who may call a route on the plain listener in public mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Public {
    /// Public: reads that name organisations and hashes.
    Yes,
    /// Public unless `rest.public_raw = false`: raw objects carrying signers' certificates.
    Raw,
    /// Never public: writes, identity-bound calls, the exchange, supervision.
    No,
}

/// What a route's request body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    /// No body: the request message comes from the path and the query.
    None,
    /// A JSON object of the request message's fields (those not in the path).
    Json,
    /// The octets of a client stream's payload (Exchange.Upload), its fixed fields in the query.
    Octets,
}

/// One route.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Route {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The path template, `{field}` naming a field of the request message.
    pub path: &'static str,
    /// The gRPC method, `gmchain.v1.Service/Method`; empty for a REST-only route.
    pub grpc: &'static str,
    /// The OpenAPI operationId (unique).
    pub op: &'static str,
    pub public: Public,
    pub body: Body,
    /// Request fields this route fixes (`/v1/blocks/latest` fixes `height` absent): no query
    /// parameter may set them.
    pub fixed: &'static [&'static str],
}

const fn get(path: &'static str, grpc: &'static str, op: &'static str, public: Public) -> Route {
    Route {
        method: "GET",
        path,
        grpc,
        op,
        public,
        body: Body::None,
        fixed: &[],
    }
}

const fn post(path: &'static str, grpc: &'static str, op: &'static str, body: Body) -> Route {
    Route {
        method: "POST",
        path,
        grpc,
        op,
        public: Public::No,
        body,
        fixed: &[],
    }
}

/// REST-only routes (no gRPC method) are handled by name in `rest::local`.
pub(crate) const PREPARE: &str = "PrepareTransaction";
pub(crate) const GENESIS: &str = "GetGenesis";
pub(crate) const HEALTH: &str = "GetHealth";
pub(crate) const CONFORMANCE: &str = "GetConformanceReport";

use Public::{No, Raw, Yes};

/// Every route of `/v1`, in the order of docs/rest.md.
pub(crate) const ROUTES: &[Route] = &[
    post(
        "/v1/tx",
        "gmchain.v1.Chain/SubmitTransaction",
        "SubmitTransaction",
        Body::Json,
    ),
    post("/v1/tx/prepare", "", PREPARE, Body::Json),
    post(
        "/v1/tx/batch",
        "gmchain.v1.Batch/SubmitTransactions",
        "SubmitTransactions",
        Body::Json,
    ),
    get(
        "/v1/tx/{tx_id}",
        "gmchain.v1.Chain/GetTransaction",
        "GetTransaction",
        Raw,
    ),
    get(
        "/v1/tx/{tx_id}/receipt",
        "gmchain.v1.Chain/GetReceipt",
        "GetReceipt",
        Raw,
    ),
    get(
        "/v1/tx/{tx_id}/proof",
        "gmchain.v1.Chain/GetReceiptProof",
        "GetReceiptProof",
        Raw,
    ),
    Route {
        fixed: &["height"],
        ..get(
            "/v1/blocks/latest",
            "gmchain.v1.Chain/GetBlock",
            "GetLatestBlock",
            Raw,
        )
    },
    get(
        "/v1/blocks/stream",
        "gmchain.v1.Chain/SubscribeBlocks",
        "SubscribeBlocks",
        Raw,
    ),
    get(
        "/v1/blocks/{height}",
        "gmchain.v1.Chain/GetBlock",
        "GetBlock",
        Raw,
    ),
    get(
        "/v1/attestations/by-digest/{digest}",
        "gmchain.v1.Chain/GetAttestation",
        "GetAttestationByDigest",
        Yes,
    ),
    get(
        "/v1/attestations/{id}",
        "gmchain.v1.Chain/GetAttestation",
        "GetAttestation",
        Yes,
    ),
    get(
        "/v1/attestations",
        "gmchain.v1.Chain/ListAttestations",
        "ListAttestations",
        Yes,
    ),
    get("/v1/status", "gmchain.v1.Chain/GetStatus", "GetStatus", Yes),
    get(
        "/v1/validators",
        "gmchain.v1.Chain/GetValidators",
        "GetValidators",
        Yes,
    ),
    get(
        "/v1/proposals/{id}",
        "gmchain.v1.Chain/GetProposal",
        "GetProposal",
        Yes,
    ),
    get(
        "/v1/proposals",
        "gmchain.v1.Chain/ListProposals",
        "ListProposals",
        Yes,
    ),
    post(
        "/v1/contracts/{contract}/query",
        "gmchain.v1.Chain/QueryContract",
        "QueryContract",
        Body::Json,
    ),
    get(
        "/v1/contracts/{name}",
        "gmchain.v1.Chain/GetContract",
        "GetContract",
        Yes,
    ),
    get(
        "/v1/log-heads/{log}",
        "gmchain.v1.Chain/GetLogHead",
        "GetLogHead",
        Yes,
    ),
    get(
        "/v1/events",
        "gmchain.v1.Chain/QueryEvents",
        "QueryEvents",
        Raw,
    ),
    get(
        "/v1/events/stream",
        "gmchain.v1.Chain/SubscribeEvents",
        "SubscribeEvents",
        Raw,
    ),
    post(
        "/v1/exchange/uploads",
        "gmchain.v1.Exchange/Upload",
        "Upload",
        Body::Octets,
    ),
    post(
        "/v1/exchange/fetch",
        "gmchain.v1.Exchange/Fetch",
        "Fetch",
        Body::Json,
    ),
    get(
        "/v1/exchange/datasets",
        "gmchain.v1.Exchange/ListDatasets",
        "ListDatasets",
        No,
    ),
    get(
        "/v1/exchange/datasets/{dataset}",
        "gmchain.v1.Exchange/GetDataset",
        "GetDataset",
        No,
    ),
    get(
        "/v1/exchange/datasets/{dataset}/fetch-log",
        "gmchain.v1.Exchange/GetFetchLog",
        "GetFetchLog",
        No,
    ),
    get(
        "/v1/exchange/requests/{request_id}",
        "gmchain.v1.Exchange/GetAccessRequest",
        "GetAccessRequest",
        No,
    ),
    get(
        "/v1/exchange/messages",
        "gmchain.v1.Exchange/ListMessages",
        "ListMessages",
        No,
    ),
    get(
        "/v1/exchange/messages/{message_id}",
        "gmchain.v1.Exchange/GetMessage",
        "GetMessage",
        No,
    ),
    get(
        "/v1/exchange/endpoints/{organisation}/{node}",
        "gmchain.v1.Exchange/GetEndpoint",
        "GetEndpoint",
        No,
    ),
    get(
        "/v1/exchange/escrow",
        "gmchain.v1.Exchange/GetEscrow",
        "GetEscrow",
        No,
    ),
    get(
        "/v1/supervision",
        "gmchain.v1.Supervision/GetSupervision",
        "GetSupervision",
        No,
    ),
    get(
        "/v1/supervision/trace/{kind}/{id}",
        "gmchain.v1.Supervision/Trace",
        "Trace",
        No,
    ),
    get(
        "/v1/supervision/headers/{height}",
        "gmchain.v1.Supervision/GetCertifiedHeader",
        "GetCertifiedHeader",
        No,
    ),
    post(
        "/v1/supervision/prove-state",
        "gmchain.v1.Supervision/ProveState",
        "ProveState",
        Body::Json,
    ),
    get(
        "/v1/supervision/alerts/stream",
        "gmchain.v1.Supervision/WatchAlerts",
        "WatchAlerts",
        No,
    ),
    get("/v1/genesis", "", GENESIS, Yes),
    get("/v1/health", "", HEALTH, Yes),
    // The report names its signing auditor (a person): public only with public_raw.
    get("/v1/conformance/report", "", CONFORMANCE, Raw),
];

/// The names of a path template's parameters, in order.
pub(crate) fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}
