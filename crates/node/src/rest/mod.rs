//! The REST/JSON gateway (docs/rest.md). Each route of [`routes::ROUTES`] names a gRPC method:
//! the gateway reads the path, the query and the JSON body into that method's request message
//! (proto3 JSON through the descriptors of `api::FILE_DESCRIPTOR_SET`), calls the node's own
//! gRPC services in process with the connection's facts (its address, its TLS member), and
//! writes the answer as JSON, a server stream as server-sent events, a refusal as an RFC 9457
//! problem document with the registry code. No rule of the API is implemented here twice.

pub(crate) mod openapi;
pub(crate) mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body as AxBody;
use axum::extract::{RawPathParams, Request};
use axum::response::Response;
use base64::Engine as _;
use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderValue, StatusCode, header};
use http_body_util::BodyExt as _;
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, Kind, MessageDescriptor, MethodDescriptor,
    ReflectMessage, SerializeOptions, Value,
};
use serde_json::{Map, Value as Json, json};
use tower::ServiceExt as _;

use crate::local::LocalNode;
use routes::{Body, Public, Route};

/// `[rest]`: the plain REST listener (absent: REST only beside gRPC on the mutual-TLS API).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestConfig {
    /// Where the plain listener (REST and the console) listens; loopback unless
    /// `api.allow_non_loopback`.
    pub listen: Option<SocketAddr>,
    /// What the plain listener serves.
    pub mode: RestMode,
    /// Public mode: show a person's name in attestations (default: the organisation only).
    pub public_person_names: bool,
    /// Public mode: serve blocks, transactions, receipts and events (default false: they carry
    /// signers' certificates, and with them their names).
    pub public_raw: bool,
    /// How long a unary call may take, the wait for a commit included.
    pub request_timeout: Duration,
    /// The signed conformance report (`gmchain conformance run`'s report.json) the operator
    /// publishes at `GET /v1/conformance/report`, read when asked.
    pub conformance_report: Option<std::path::PathBuf>,
    /// Host names (beside IP addresses and `localhost`) the REST routes of the mutual-TLS
    /// listener answer to; any other name is refused (DNS rebinding through `gmchain tunnel`).
    pub allowed_hosts: Vec<String>,
}

impl Default for RestConfig {
    fn default() -> Self {
        Self {
            listen: None,
            mode: RestMode::Gateway,
            public_person_names: false,
            public_raw: false,
            request_timeout: Duration::from_secs(30),
            conformance_report: None,
            allowed_hosts: Vec::new(),
        }
    }
}

/// What the plain REST listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestMode {
    /// Behind the operator's gateway: reads and transaction submission; no certificate identity.
    Gateway,
    /// To anyone: the public reads only.
    Public,
}

/// Which listener a gateway serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Listener {
    /// The mutual-TLS API: every route, with the client's identity.
    Tls,
    /// The plain REST listener.
    Plain(RestMode),
}

/// How long a server-sent event stream waits for a client that stopped reading.
const SSE_STALL: Duration = Duration::from_secs(30);
/// How often an idle server-sent event stream carries a comment line.
const SSE_HEARTBEAT: Duration = Duration::from_secs(15);
/// The largest conformance report served (a full live run is well under 1 MiB).
const CONFORMANCE_REPORT_LIMIT: u64 = 4 << 20;
/// The largest JSON body of a route other than transaction submission.
const JSON_BODY_LIMIT: usize = 1 << 20;
/// The data of one Exchange.Upload message (the service's own limit).
const UPLOAD_CHUNK: usize = 1 << 20;

struct Inner {
    /// The gRPC services this gateway calls (the same values the listener serves).
    grpc: axum::Router,
    pool: DescriptorPool,
    listener: Listener,
    /// The node, its configuration and limits (shared by every listener's gateway).
    node: NodeFacts,
    /// The largest body of a transaction submission: the gRPC limit in base64, plus JSON.
    submit_body_limit: usize,
    /// The same for a batch submission.
    batch_body_limit: usize,
    openapi: Bytes,
}

/// The descriptor pool of the API.
pub(crate) fn descriptor_pool() -> DescriptorPool {
    // The set is compiled from our own proto files at build time: decoding it cannot fail
    // unless the build is broken, which the tests catch.
    DescriptorPool::decode(api::FILE_DESCRIPTOR_SET).unwrap_or_default()
}

/// A tonic server as a listener's router mounts it.
pub(crate) trait GrpcService:
    tonic::server::NamedService
    + tower::Service<
        http::Request<AxBody>,
        Response = http::Response<tonic::body::Body>,
        Error = std::convert::Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static
{
}

impl<T> GrpcService for T where
    T: tonic::server::NamedService
        + tower::Service<
            http::Request<AxBody>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + Sync
        + 'static
{
}

/// `svc` at its service's paths (tonic's own scheme, `/gmchain.v1.Chain/…`).
fn mount<S: GrpcService>(r: axum::Router, svc: S) -> axum::Router {
    r.route_service(&format!("/{}/{{*rest}}", S::NAME), svc)
}

/// The gRPC routes a listener serves, as an axum router.
pub(crate) fn grpc_router(
    (chain, batch): (impl GrpcService, impl GrpcService),
    exchange: impl GrpcService,
    supervision: impl GrpcService,
) -> axum::Router {
    let r = mount(axum::Router::new(), chain);
    let r = mount(r, batch);
    let r = mount(r, exchange);
    mount(r, supervision)
}

/// A console asset with its content type, the console's Content-Security-Policy, and no
/// sniffing; revalidated on each load, so a node upgrade is seen at once.
fn console_response(path: &str) -> Response {
    let Some((content_type, bytes)) = crate::console::asset(path) else {
        return problem_response(
            StatusCode::NOT_FOUND,
            &codes::REST_NOT_FOUND,
            format!("{path}: no such console asset"),
        );
    };
    let mut resp = Response::new(AxBody::from(Bytes::from_static(bytes)));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::console::CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// What the gateway of every listener shares: the node and its configured limits.
#[derive(Clone)]
pub(crate) struct NodeFacts {
    pub config: RestConfig,
    pub core: Arc<LocalNode>,
    /// The genesis file's bytes (`GET /v1/genesis`).
    pub genesis: Bytes,
    /// The gRPC submission's message limit.
    pub submit_message_limit: usize,
    /// The batch submission's message limit (`api.max_batch_bytes`).
    pub batch_message_limit: usize,
    /// The node's batch slots: a REST batch takes one before its body is read.
    pub batch_gate: crate::service::BatchGate,
    /// The largest upload (the custodian's `max_blob_bytes`).
    pub upload_limit: u64,
    /// The p2p peers of the configuration (health).
    pub expected_peers: usize,
    /// The health report cache every listener shares.
    pub health: Arc<crate::health::Cache>,
}

/// The router a listener serves: `grpc` itself on the mutual-TLS listener (beside REST), the
/// REST routes, `/openapi.json`, and the console's assets on the plain listener.
pub(crate) fn router(grpc: axum::Router, listener: Listener, node: &NodeFacts) -> axum::Router {
    let allowed_hosts = Arc::new(node.config.allowed_hosts.clone());
    let pool = descriptor_pool();
    let openapi = openapi::document_bytes(&pool);
    let inner = Arc::new(Inner {
        grpc: grpc.clone(),
        pool,
        listener,
        node: node.clone(),
        submit_body_limit: node.submit_message_limit / 3 * 4 + 64 * 1024,
        batch_body_limit: node.batch_message_limit / 3 * 4 + 64 * 1024,
        openapi,
    });
    let mut r = match listener {
        Listener::Tls => grpc,
        Listener::Plain(_) => axum::Router::new(),
    };
    for (i, route) in routes::ROUTES.iter().enumerate() {
        let g = inner.clone();
        let handler = move |params: Result<
            RawPathParams,
            axum::extract::rejection::RawPathParamsRejection,
        >,
                            req: Request| async move {
            match params {
                Ok(params) => g.handle(&routes::ROUTES[i], params, req).await,
                Err(e) => Problem::bad(format!("the path: {e}")).response(),
            }
        };
        let filter = match route.method {
            "POST" => axum::routing::MethodFilter::POST,
            _ => axum::routing::MethodFilter::GET,
        };
        r = r.route(route.path, axum::routing::on(filter, handler));
    }
    for path in ["/openapi.json", "/v1/openapi.json"] {
        let g = inner.clone();
        r = r.route(
            path,
            axum::routing::get(move || async move {
                let mut resp = Response::new(AxBody::from(g.openapi.clone()));
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                resp
            }),
        );
    }
    // The web console (`crate::console`): its assets at `/`, on the plain listener and on the
    // mutual-TLS listener, where an auditor reaches it through `gmchain tunnel` with the
    // identity the supervision pages need.
    for path in crate::console::asset_paths().chain(std::iter::once("/")) {
        r = r.route(
            path,
            axum::routing::get(move || async move { console_response(path) }),
        );
    }
    r.method_not_allowed_fallback(|req: Request| async move {
        problem_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &codes::REST_METHOD,
            format!(
                "{} {}: this route does not take {}",
                req.method(),
                req.uri().path(),
                req.method()
            ),
        )
    })
    .fallback(|req: Request| async move {
        let grpc = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc"));
        if grpc {
            return tonic::Status::unimplemented(format!(
                "{}: no such gRPC service on this listener",
                req.uri().path()
            ))
            .into_http();
        }
        problem_response(
            StatusCode::NOT_FOUND,
            &codes::REST_NOT_FOUND,
            format!(
                "{} {}: no such route; the routes are in /openapi.json (docs/rest.md)",
                req.method(),
                req.uri().path()
            ),
        )
    })
    .layer(axum::middleware::from_fn(
        move |req: Request, next: axum::middleware::Next| {
            let allowed = allowed_hosts.clone();
            async move {
                match browser_guard(&req, &allowed) {
                    Ok(()) => next.run(req).await,
                    Err(p) => p.response(),
                }
            }
        },
    ))
}

/// Refuses what only a hostile web page sends (docs/rest.md, "Browsers"), on every path of
/// every listener: on a gRPC path, anything but HTTP/2 with a gRPC media type (a page cannot
/// speak HTTP/2 over plain TCP, which is what `gmchain tunnel` offers it); elsewhere a request
/// another site made (`Sec-Fetch-Site`, or an `Origin` that is not the request's own host) and
/// one for a host name that is not an IP address, `localhost` or a name in
/// `rest.allowed_hosts`, as a DNS-rebinding page sends.
pub(crate) fn browser_guard(req: &Request, allowed_hosts: &[String]) -> Result<(), Problem> {
    let refuse = |why: String| Problem::new(StatusCode::FORBIDDEN, &codes::REST_CROSS_SITE, why);
    let header_str = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or("\u{fffd}").to_string())
    };
    if req.uri().path().starts_with("/gmchain.") {
        let grpc = header_str("content-type").is_some_and(|c| c.starts_with("application/grpc"));
        if req.version() != http::Version::HTTP_2 || !grpc {
            return Err(refuse(format!(
                "{}: a gRPC path takes HTTP/2 with application/grpc only",
                req.uri().path()
            )));
        }
        return Ok(());
    }
    let host = header_str("host")
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default()
        .to_ascii_lowercase();
    if let Some(site) = header_str("sec-fetch-site")
        && site != "same-origin"
        && site != "none"
    {
        return Err(refuse(format!(
            "Sec-Fetch-Site: {site}: a page of another site cannot call this API"
        )));
    }
    if let Some(origin) = header_str("origin") {
        let authority = origin
            .split_once("://")
            .map(|(_, a)| a.trim_end_matches('/').to_ascii_lowercase());
        if authority.as_deref() != Some(host.as_str()) {
            return Err(refuse(format!(
                "Origin {origin} is not this host ({host}): a page of another site cannot call this API"
            )));
        }
    }
    if !host_allowed(&host, allowed_hosts) {
        return Err(refuse(format!(
            "host {host:?} is not an IP address, localhost or a name in rest.allowed_hosts"
        )));
    }
    Ok(())
}

/// An IP address, `localhost`, or a name in `allowed` (with or without a port).
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    // The name without its port (an IPv6 literal keeps its brackets).
    let name = match host.rsplit_once(':') {
        Some((n, port)) if port.chars().all(|c| c.is_ascii_digit()) && !n.ends_with(':') => n,
        _ => host,
    };
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    !name.is_empty()
        && (bare.parse::<std::net::IpAddr>().is_ok()
            || name == "localhost"
            || allowed.iter().any(|h| h.eq_ignore_ascii_case(name)))
}

/// A refusal on its way to the client.
#[derive(Debug)]
pub(crate) struct Problem {
    status: StatusCode,
    code: Option<&'static str>,
    grpc: Option<tonic::Code>,
    detail: String,
}

impl Problem {
    fn new(status: StatusCode, code: &'static codes::Code, detail: String) -> Self {
        Problem {
            status,
            code: Some(code.name),
            grpc: None,
            detail,
        }
    }

    fn bad(detail: String) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, &codes::REST_REQUEST, detail)
    }

    /// A gRPC status as the problem the client sees: the HTTP mapping of its code, the
    /// registry name the service attached.
    fn from_status(s: &tonic::Status) -> Self {
        let code = s
            .metadata()
            .get(api::CODE_METADATA_KEY)
            .and_then(|v| v.to_str().ok())
            .and_then(codes::by_name)
            .map(|c| c.name);
        Problem {
            status: http_status(s.code()),
            code,
            grpc: Some(s.code()),
            detail: s.message().to_string(),
        }
    }

    fn json(&self) -> Json {
        let title = self
            .code
            .and_then(codes::by_name)
            .map(|c| c.description.to_string())
            .unwrap_or_else(|| {
                self.status
                    .canonical_reason()
                    .unwrap_or("Error")
                    .to_string()
            });
        let mut m = Map::new();
        m.insert(
            "type".into(),
            Json::String(match self.code {
                Some(c) => format!("urn:gmchain:code:{c}"),
                None => "about:blank".into(),
            }),
        );
        m.insert("title".into(), Json::String(title));
        m.insert("status".into(), json!(self.status.as_u16()));
        m.insert("detail".into(), Json::String(self.detail.clone()));
        if let Some(c) = self.code {
            m.insert("code".into(), Json::String(c.into()));
        }
        if let Some(g) = self.grpc {
            m.insert("grpc_status".into(), Json::String(grpc_name(g).into()));
        }
        Json::Object(m)
    }

    fn response(&self) -> Response {
        let mut resp = Response::new(AxBody::from(self.json().to_string()));
        *resp.status_mut() = self.status;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        resp
    }
}

fn problem_response(status: StatusCode, code: &'static codes::Code, detail: String) -> Response {
    Problem::new(status, code, detail).response()
}

/// The HTTP status of a gRPC status code (docs/rest.md).
pub(crate) fn http_status(c: tonic::Code) -> StatusCode {
    use tonic::Code as G;
    match c {
        G::Ok => StatusCode::OK,
        G::InvalidArgument | G::OutOfRange => StatusCode::BAD_REQUEST,
        G::Unauthenticated => StatusCode::UNAUTHORIZED,
        G::PermissionDenied => StatusCode::FORBIDDEN,
        G::NotFound => StatusCode::NOT_FOUND,
        G::AlreadyExists | G::Aborted => StatusCode::CONFLICT,
        G::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
        G::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        G::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        G::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        G::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        G::Cancelled | G::Unknown | G::Internal | G::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn grpc_name(c: tonic::Code) -> &'static str {
    use tonic::Code as G;
    match c {
        G::Ok => "OK",
        G::Cancelled => "CANCELLED",
        G::Unknown => "UNKNOWN",
        G::InvalidArgument => "INVALID_ARGUMENT",
        G::DeadlineExceeded => "DEADLINE_EXCEEDED",
        G::NotFound => "NOT_FOUND",
        G::AlreadyExists => "ALREADY_EXISTS",
        G::PermissionDenied => "PERMISSION_DENIED",
        G::ResourceExhausted => "RESOURCE_EXHAUSTED",
        G::FailedPrecondition => "FAILED_PRECONDITION",
        G::Aborted => "ABORTED",
        G::OutOfRange => "OUT_OF_RANGE",
        G::Unimplemented => "UNIMPLEMENTED",
        G::Internal => "INTERNAL",
        G::Unavailable => "UNAVAILABLE",
        G::DataLoss => "DATA_LOSS",
        G::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Proto3 JSON as this API writes it: the proto's field names, every field without presence.
pub(crate) fn serialize_options() -> SerializeOptions {
    SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(false)
        .stringify_64_bit_integers(true)
}

/// A message as JSON text, its fields in the proto's order.
fn to_json(msg: &DynamicMessage) -> Result<String, Problem> {
    let mut out = Vec::new();
    msg.serialize_with_options(
        &mut serde_json::Serializer::new(&mut out),
        &serialize_options(),
    )
    .map_err(|e| internal(format!("the answer could not be written as JSON: {e}")))?;
    String::from_utf8(out).map_err(|e| internal(format!("the answer is not UTF-8: {e}")))
}

fn json_text_response(status: StatusCode, text: String) -> Response {
    let mut resp = Response::new(AxBody::from(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Frames one gRPC message (uncompressed).
fn frame(msg: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + msg.len());
    b.extend_from_slice(&[0]);
    b.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    b.extend_from_slice(msg);
    b.freeze()
}

/// Reads gRPC messages out of a response body as its frames arrive.
struct Frames {
    body: AxBody,
    buf: BytesMut,
    trailers: Option<http::HeaderMap>,
}

impl Frames {
    /// The next message, `None` at the end (then [`Frames::status`] says how it ended).
    async fn next(&mut self) -> Result<Option<Bytes>, Problem> {
        loop {
            if self.buf.len() >= 5 {
                let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]])
                    as usize;
                if self.buf[0] != 0 {
                    return Err(internal("a compressed gRPC frame".into()));
                }
                if self.buf.len() >= 5 + len {
                    self.buf.advance(5);
                    return Ok(Some(self.buf.split_to(len).freeze()));
                }
            }
            match self.body.frame().await {
                None => {
                    if !self.buf.is_empty() {
                        return Err(internal("the answer ended inside a message".into()));
                    }
                    return Ok(None);
                }
                Some(Err(e)) => return Err(internal(format!("the answer broke off: {e}"))),
                Some(Ok(f)) => match f.into_data() {
                    Ok(d) => self.buf.extend_from_slice(&d),
                    Err(f) => {
                        if let Ok(t) = f.into_trailers() {
                            self.trailers = Some(t);
                        }
                    }
                },
            }
        }
    }

    /// How the call ended (after [`Frames::next`] gave `None`).
    fn status(&self) -> Result<(), Problem> {
        match self
            .trailers
            .as_ref()
            .and_then(tonic::Status::from_header_map)
        {
            Some(s) if s.code() == tonic::Code::Ok => Ok(()),
            Some(s) => Err(Problem::from_status(&s)),
            None => Err(internal("the answer ended without a gRPC status".into())),
        }
    }
}

fn internal(detail: String) -> Problem {
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        &codes::REST_INTERNAL,
        detail,
    )
}

impl Inner {
    async fn handle(&self, route: &Route, params: RawPathParams, req: Request) -> Response {
        match self.handle_inner(route, params, req).await {
            Ok(r) => r,
            Err(p) => p.response(),
        }
    }

    /// Whether this listener serves `route` (public mode serves the public reads only).
    fn allowed(&self, route: &Route) -> Result<(), Problem> {
        let Listener::Plain(RestMode::Public) = self.listener else {
            return Ok(());
        };
        let public = match route.public {
            Public::Yes => true,
            Public::Raw => self.node.config.public_raw,
            Public::No => false,
        };
        if public {
            return Ok(());
        }
        let code = if route.method == "POST" && route.op != "QueryContract" {
            &codes::NODE_READ_ONLY
        } else {
            &codes::REST_NOT_PUBLIC
        };
        Err(Problem::new(
            StatusCode::FORBIDDEN,
            code,
            format!(
                "{} {} is not served on this public listener (rest.mode = \"public\"{}); use the mutual-TLS API",
                route.method,
                route.path,
                if route.public == Public::Raw {
                    ", rest.public_raw = false"
                } else {
                    ""
                }
            ),
        ))
    }

    async fn handle_inner(
        &self,
        route: &Route,
        params: RawPathParams,
        req: Request,
    ) -> Result<Response, Problem> {
        self.allowed(route)?;
        let path: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if route.grpc.is_empty()
            && let Some(q) = req.uri().query().filter(|q| !q.is_empty())
        {
            return Err(Problem::bad(format!(
                "unknown query {q:?}: {} {} takes no query parameters",
                route.method, route.path
            )));
        }
        match route.op {
            routes::GENESIS => return Ok(self.genesis_response()),
            routes::HEALTH => return Ok(self.health_response().await),
            routes::CONFORMANCE => return self.conformance_report().await,
            routes::PREPARE => {
                let body = read_json_body(
                    req,
                    self.submit_body_limit,
                    self.node.config.request_timeout,
                )
                .await?;
                return self.prepare(body).await;
            }
            _ => {}
        }
        let method = self.method(route)?;
        let mut extensions = req.extensions().clone();
        if route.op == "SubmitTransactions" {
            // A slot before the body is read (it travels to the in-process call, which does not
            // take another): batches' memory is bounded here as on gRPC. On the plain listener
            // every client arrives through the operator's gateway, one address: only the
            // node-wide bound applies there.
            let peer = match self.listener {
                Listener::Tls => crate::service::peer_key(&extensions),
                Listener::Plain(_) => None,
            };
            let slot = self
                .node
                .batch_gate
                .try_take(peer)
                .map_err(|s| Problem::from_status(&s))?;
            extensions.insert(slot);
        }
        let query = req.uri().query().unwrap_or("").to_string();
        if route.body == Body::Octets {
            return self.upload(&method, &query, extensions, req).await;
        }
        let limit = match route.op {
            "SubmitTransaction" => self.submit_body_limit,
            "SubmitTransactions" => self.batch_body_limit,
            _ => JSON_BODY_LIMIT,
        };
        let mut body = match route.body {
            Body::Json => read_json_body(req, limit, self.node.config.request_timeout).await?,
            _ => Map::new(),
        };
        if route.op == "SubmitTransaction" {
            body = self.assemble(body)?;
        }
        let input = method.input();
        let msg = request_message(&input, route, &path, &query, body)?;
        // Redacting: owners are "organisation/common name", so listing by owner names a person
        // (an organisation alone matches no owner): a public listener finds attestations by
        // digest or id only.
        if self.redacting() && route.op == "ListAttestations" {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                &codes::REST_NOT_PUBLIC,
                "listing attestations by owner names a person (organisation/common name): this public listener finds them by digest or id (rest.public_person_names = false)".into(),
            ));
        }
        if method.is_server_streaming() {
            return self.stream(&method, msg, extensions).await;
        }
        let encoded = msg.encode_to_vec();
        // A batch's message is not kept while it waits for commits (only a single
        // submission's is, for its existing outcome).
        let msg = (route.op != "SubmitTransactions").then_some(msg);
        let call = self.unary(&method, encoded, extensions);
        let out = match tokio::time::timeout(self.node.config.request_timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(Problem::new(
                StatusCode::GATEWAY_TIMEOUT,
                &codes::REST_TIMEOUT,
                format!(
                    "{} did not answer within {} s (rest.request_timeout)",
                    route.op,
                    self.node.config.request_timeout.as_secs()
                ),
            )),
        };
        let out = match out {
            // Resubmitting a transaction gives its outcome (docs/rest.md).
            Err(p) if route.op == "SubmitTransaction" && p.code == Some("TX_DUPLICATE") => {
                match &msg {
                    Some(m) => return self.existing_outcome(m, p).await,
                    None => return Err(p),
                }
            }
            r => r?,
        };
        let mut answer = DynamicMessage::decode(method.output(), out.as_ref())
            .map_err(|e| internal(format!("the service's answer does not decode: {e}")))?;
        self.redact(&mut answer);
        Ok(json_text_response(StatusCode::OK, to_json(&answer)?))
    }

    fn method(&self, route: &Route) -> Result<MethodDescriptor, Problem> {
        let (service, name) = route
            .grpc
            .split_once('/')
            .ok_or_else(|| internal(format!("route {} names no method", route.path)))?;
        self.pool
            .get_service_by_name(service)
            .and_then(|s| s.methods().find(|m| m.name() == name))
            .ok_or_else(|| internal(format!("{}: no such gRPC method", route.grpc)))
    }

    /// One unary call to the in-process service; the answer's message bytes.
    async fn unary(
        &self,
        method: &MethodDescriptor,
        msg: Vec<u8>,
        extensions: http::Extensions,
    ) -> Result<Bytes, Problem> {
        let body = AxBody::from(frame(&msg));
        // The framed copy is the one the call reads; this one is not kept while it runs.
        drop(msg);
        let mut frames = self.call(method, body, extensions).await?;
        let first = frames.next().await?;
        while frames.next().await?.is_some() {}
        frames.status()?;
        first.ok_or_else(|| internal("the service answered no message".into()))
    }

    async fn call(
        &self,
        method: &MethodDescriptor,
        body: AxBody,
        extensions: http::Extensions,
    ) -> Result<Frames, Problem> {
        let mut req = http::Request::new(body);
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = format!("/{}/{}", method.parent_service().full_name(), method.name())
            .parse()
            .map_err(|e| internal(format!("method path: {e}")))?;
        *req.version_mut() = http::Version::HTTP_2;
        *req.extensions_mut() = extensions;
        req.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        req.headers_mut()
            .insert(header::TE, HeaderValue::from_static("trailers"));
        let resp = self
            .grpc
            .clone()
            .oneshot(req)
            .await
            .map_err(|e| internal(format!("the service failed: {e}")))?;
        let (parts, body) = resp.into_parts();
        // A trailers-only answer: the status is in the headers.
        if let Some(s) = tonic::Status::from_header_map(&parts.headers)
            && s.code() != tonic::Code::Ok
        {
            return Err(Problem::from_status(&s));
        }
        Ok(Frames {
            body,
            buf: BytesMut::new(),
            trailers: None,
        })
    }

    /// A server stream as server-sent events: `data: <json>` per message, `event: error` with
    /// a problem document if the stream ends in a refusal.
    async fn stream(
        &self,
        method: &MethodDescriptor,
        msg: DynamicMessage,
        extensions: http::Extensions,
    ) -> Result<Response, Problem> {
        let setup = self.call(
            method,
            AxBody::from(frame(&msg.encode_to_vec())),
            extensions,
        );
        let mut frames = tokio::time::timeout(self.node.config.request_timeout, setup)
            .await
            .map_err(|_| {
                Problem::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    &codes::REST_TIMEOUT,
                    format!(
                        "{} did not start within {} s (rest.request_timeout)",
                        method.name(),
                        self.node.config.request_timeout.as_secs()
                    ),
                )
            })??;
        let output = method.output();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::convert::Infallible>>(16);
        let redact = self.redacting();
        tokio::spawn(async move {
            // A comment line now and then keeps proxies from cutting an idle stream, and shows
            // a client that left.
            let mut heartbeat = tokio::time::interval(SSE_HEARTBEAT);
            heartbeat.tick().await;
            loop {
                let next = tokio::select! {
                    // The client left: dropping the call's body ends the service's stream and
                    // frees its subscription slot, whether or not an event ever comes.
                    () = tx.closed() => return,
                    _ = heartbeat.tick() => {
                        if tx
                            .send_timeout(Ok(Bytes::from_static(b": ping\n\n")), SSE_STALL)
                            .await
                            .is_err()
                        {
                            return;
                        }
                        continue;
                    }
                    n = frames.next() => n,
                };
                let event = match next {
                    Ok(Some(m)) => match DynamicMessage::decode(output.clone(), m.as_ref()) {
                        Ok(mut d) => {
                            if redact {
                                redact_attestations(&mut d);
                            }
                            match to_json(&d) {
                                Ok(j) => format!("data: {j}\n\n"),
                                Err(p) => format!("event: error\ndata: {}\n\n", p.json()),
                            }
                        }
                        Err(e) => format!(
                            "event: error\ndata: {}\n\n",
                            internal(format!("a streamed message does not decode: {e}")).json()
                        ),
                    },
                    Ok(None) => {
                        if let Err(p) = frames.status() {
                            let _ = tx
                                .send_timeout(
                                    Ok(Bytes::from(format!(
                                        "event: error\ndata: {}\n\n",
                                        p.json()
                                    ))),
                                    SSE_STALL,
                                )
                                .await;
                        }
                        return;
                    }
                    Err(p) => format!("event: error\ndata: {}\n\n", p.json()),
                };
                let end = event.starts_with("event: error");
                // A client that stops reading is dropped after SSE_STALL, as the service drops
                // a subscriber that lags.
                if tx
                    .send_timeout(Ok(Bytes::from(event)), SSE_STALL)
                    .await
                    .is_err()
                    || end
                {
                    return;
                }
            }
        });
        let body = AxBody::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
        let mut resp = Response::new(body);
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        Ok(resp)
    }

    /// Exchange.Upload: the request body's octets as the stream's messages (at most 1 MiB of
    /// data each), `payload_sm3` (hex) and `payload_len` in the query on the first.
    async fn upload(
        &self,
        method: &MethodDescriptor,
        query: &str,
        extensions: http::Extensions,
        req: Request,
    ) -> Result<Response, Problem> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/octet-stream")
        {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &codes::REST_MEDIA_TYPE,
                format!("Content-Type {ct:?}: an upload is application/octet-stream"),
            ));
        }
        let mut sm3 = None;
        let mut len = None;
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "payload_sm3" => {
                    let b = hex::decode(v.as_ref())
                        .ok()
                        .filter(|b| b.len() == 32)
                        .ok_or_else(|| {
                            Problem::bad(format!(
                                "query payload_sm3: {v:?} is not 64 hex characters"
                            ))
                        })?;
                    sm3 = Some(b);
                }
                "payload_len" => {
                    len = Some(
                        Some(v.as_ref())
                            .filter(|v| canonical_decimal(v))
                            .and_then(|v| v.parse::<u64>().ok())
                            .ok_or_else(|| {
                                Problem::bad(format!(
                                    "query payload_len: {v:?} is not a decimal u64"
                                ))
                            })?,
                    )
                }
                other => {
                    return Err(Problem::bad(format!(
                        "unknown query parameter {other:?}; this route takes payload_sm3 and payload_len"
                    )));
                }
            }
        }
        let (Some(sm3), Some(len)) = (sm3, len) else {
            return Err(Problem::bad(
                "query payload_sm3 (hex) and payload_len (decimal) are required".into(),
            ));
        };
        if len > self.node.upload_limit {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                &codes::REST_TOO_LARGE,
                format!(
                    "payload_len {len} is above this node's limit of {} bytes",
                    self.node.upload_limit
                ),
            ));
        }
        let chunk_desc = method.input();
        let limit = self.node.upload_limit;
        let idle = self.node.config.request_timeout;
        let mut body = req.into_body();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
        tokio::spawn(async move {
            let mut first = Some((sm3, len));
            let mut pending = BytesMut::new();
            let mut seen: u64 = 0;
            let send = |data: Bytes, first: &mut Option<(Vec<u8>, u64)>| {
                let mut m = DynamicMessage::new(chunk_desc.clone());
                if let Some((sm3, len)) = first.take() {
                    m.set_field_by_name("payload_sm3", Value::Bytes(sm3.into()));
                    m.set_field_by_name("payload_len", Value::U64(len));
                }
                m.set_field_by_name("data", Value::Bytes(data));
                frame(&m.encode_to_vec())
            };
            loop {
                // The call ended (the service answered or refused): stop reading the body, so
                // the connection is not held; a body that stalls for the request timeout ends
                // the upload.
                let next = tokio::select! {
                    () = tx.closed() => return,
                    f = tokio::time::timeout(idle, body.frame()) => f,
                };
                let Ok(next) = next else {
                    let _ = tx
                        .send(Err(std::io::Error::other(
                            "the upload's body stalled for rest.request_timeout",
                        )))
                        .await;
                    return;
                };
                match next {
                    Some(Ok(f)) => {
                        if let Ok(d) = f.into_data() {
                            seen += d.len() as u64;
                            if seen > limit {
                                let _ = tx
                                    .send(Err(std::io::Error::other("the body is above the limit")))
                                    .await;
                                return;
                            }
                            pending.extend_from_slice(&d);
                            while pending.len() >= UPLOAD_CHUNK {
                                let data = pending.split_to(UPLOAD_CHUNK).freeze();
                                if tx.send(Ok(send(data, &mut first))).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    Some(Err(e)) => {
                        let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                        return;
                    }
                    None => {
                        if !pending.is_empty() || first.is_some() {
                            let data = pending.split().freeze();
                            let _ = tx.send(Ok(send(data, &mut first))).await;
                        }
                        return;
                    }
                }
            }
        });
        let stream = AxBody::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
        let mut frames = self.call(method, stream, extensions).await?;
        let first = frames.next().await?;
        while frames.next().await?.is_some() {}
        frames.status()?;
        let out = first.ok_or_else(|| internal("the service answered no message".into()))?;
        let answer = DynamicMessage::decode(method.output(), out.as_ref())
            .map_err(|e| internal(format!("the service's answer does not decode: {e}")))?;
        Ok(json_text_response(StatusCode::OK, to_json(&answer)?))
    }

    fn redacting(&self) -> bool {
        self.listener == Listener::Plain(RestMode::Public) && !self.node.config.public_person_names
    }

    fn redact(&self, msg: &mut DynamicMessage) {
        if self.redacting() {
            redact_attestations(msg);
        }
    }

    /// The operator's conformance report as its file holds it, with its SM3 in a header (the
    /// signature is checked by `gmchain conformance verify-report` against the reader's anchors).
    async fn conformance_report(&self) -> Result<Response, Problem> {
        let Some(path) = self.node.config.conformance_report.clone() else {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                &codes::REST_NOT_FOUND,
                "this node publishes no conformance report (rest.conformance_report)".into(),
            ));
        };
        let bytes = tokio::task::spawn_blocking(move || {
            use std::io::Read as _;
            let f = std::fs::File::open(&path)?;
            let mut b = Vec::new();
            f.take(CONFORMANCE_REPORT_LIMIT + 1).read_to_end(&mut b)?;
            Ok::<_, std::io::Error>(b)
        })
        .await
        .map_err(|e| internal(e.to_string()))?
        .map_err(|e| {
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                &codes::REST_INTERNAL,
                format!("the conformance report (rest.conformance_report) cannot be read: {e}"),
            )
        })?;
        if bytes.len() as u64 > CONFORMANCE_REPORT_LIMIT {
            return Err(internal(format!(
                "the conformance report is larger than {CONFORMANCE_REPORT_LIMIT} bytes"
            )));
        }
        let sm3 = crypto_sm::sm3::sm3(&bytes).to_hex();
        let mut resp = Response::new(AxBody::from(bytes));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(v) = HeaderValue::from_str(&sm3) {
            resp.headers_mut().insert("gmchain-content-sm3", v);
        }
        Ok(resp)
    }

    fn genesis_response(&self) -> Response {
        let mut resp = Response::new(AxBody::from(self.node.genesis.clone()));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }

    async fn health_response(&self) -> Response {
        let core = self.node.core.clone();
        let peers = self.node.expected_peers;
        let mut report = self
            .node
            .health
            .get(move |tx| {
                // Run to its end whoever waits: callers that leave start no second check.
                tokio::spawn(async move {
                    let r =
                        tokio::task::spawn_blocking(move || crate::health::report(&core, peers))
                            .await
                            .unwrap_or_else(|e| {
                                crate::health::Report::failed(format!("health check: {e}"))
                            });
                    let _ = tx.send(Some(r));
                });
            })
            .await;
        // The free space as of now, not as of the cached report.
        crate::health::apply_disk(&mut report, &self.node.core);
        let status = if report.serving() {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        json_response(status, &report.to_json())
    }

    /// POST /v1/tx with `tx` and `signature` instead of `signed_tx`: the signed transaction
    /// made from the prepared bytes and the caller's signature over its id.
    fn assemble(&self, mut body: Map<String, Json>) -> Result<Map<String, Json>, Problem> {
        let has_parts = body.contains_key("tx") || body.contains_key("signature");
        if !has_parts {
            return Ok(body);
        }
        if body.contains_key("signed_tx") {
            return Err(Problem::bad(
                "give either signed_tx, or tx and signature (from /v1/tx/prepare), not both".into(),
            ));
        }
        let b64 = |field: &str, body: &mut Map<String, Json>| -> Result<Vec<u8>, Problem> {
            let v = body
                .remove(field)
                .ok_or_else(|| Problem::bad(format!("{field} is missing")))?;
            let s = v
                .as_str()
                .ok_or_else(|| Problem::bad(format!("{field}: not a base64 string")))?;
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| Problem::bad(format!("{field}: not base64: {e}")))
        };
        let tx_bytes = b64("tx", &mut body)?;
        let sig = b64("signature", &mut body)?;
        let user_id = match body.remove("signer_user_id") {
            None => crypto::UserId::default(),
            Some(Json::String(s)) => crypto::UserId::new(s.as_bytes())
                .map_err(|e| Problem::bad(format!("signer_user_id: {e}")))?,
            Some(_) => return Err(Problem::bad("signer_user_id: not a string".into())),
        };
        let limits = types::Limits::default();
        let tx = <types::Transaction as types::Decode>::from_bytes(&tx_bytes, &limits)
            .map_err(|e| Problem::bad(format!("tx: not a canonical transaction: {e}")))?;
        let signature = crypto::Signature::from_der(&sig)
            .map_err(|e| Problem::bad(format!("signature: not a DER SM2 signature: {e}")))?;
        let signed = types::SignedTx {
            tx,
            signature,
            signer_user_id: user_id,
        };
        body.insert(
            "signed_tx".into(),
            Json::String(
                base64::engine::general_purpose::STANDARD.encode(types::Encode::to_bytes(&signed)),
            ),
        );
        Ok(body)
    }

    /// A transaction the node already has: its outcome once committed (waiting for the commit
    /// within the request's time when the caller asked to wait), else the refusal as it came.
    async fn existing_outcome(
        &self,
        request: &DynamicMessage,
        refusal: Problem,
    ) -> Result<Response, Problem> {
        let signed = match request.get_field_by_name("signed_tx").as_deref() {
            Some(Value::Bytes(b)) => b.clone(),
            _ => return Err(refusal),
        };
        let wait = matches!(
            request.get_field_by_name("wait_for_commit").as_deref(),
            Some(Value::Bool(true))
        );
        let Ok(tx) =
            <types::SignedTx as types::Decode>::from_bytes(&signed, &types::Limits::default())
        else {
            return Err(refusal);
        };
        let id = tx.tx.tx_id();
        let core = self.node.core.clone();
        let deadline = tokio::time::Instant::now() + self.node.config.request_timeout;
        let mut blocks = core.subscribe();
        loop {
            // A receipt this node no longer holds (pruned, or below a snapshot's base): the
            // refusal as it came (TX_DUPLICATE), as gRPC gives it; its outcome is an archive
            // node's to tell.
            let pruned = |e: &crate::NodeError| e.code().name == codes::NODE_PRUNED.name;
            let c = core.clone();
            let found = match tokio::task::spawn_blocking(move || c.receipt(&id))
                .await
                .map_err(|e| internal(e.to_string()))?
            {
                Ok(found) => found,
                Err(e) if pruned(&e) => return Err(refusal),
                Err(e) => return Err(internal(e.to_string())),
            };
            if let Some((receipt, loc)) = found {
                // The same signed transaction only: other bytes with the same id (another
                // signature) are not what was committed, and keep their refusal.
                let c = core.clone();
                let committed = match tokio::task::spawn_blocking(move || c.transaction(&id))
                    .await
                    .map_err(|e| internal(e.to_string()))?
                {
                    Ok(committed) => committed,
                    Err(e) if pruned(&e) => return Err(refusal),
                    Err(e) => return Err(internal(e.to_string())),
                };
                if committed.is_none_or(|(t, _)| types::Encode::to_bytes(&t) != signed.as_ref()) {
                    return Err(refusal);
                }
                let body = json!({
                    "tx_id": base64::engine::general_purpose::STANDARD.encode(id.as_bytes()),
                    "committed": true,
                    "height": loc.height.0.to_string(),
                    "position": loc.position,
                    "receipt": base64::engine::general_purpose::STANDARD
                        .encode(types::Encode::to_bytes(&receipt)),
                });
                let mut resp = json_response(StatusCode::OK, &body);
                resp.headers_mut()
                    .insert("gmchain-existing", HeaderValue::from_static("true"));
                return Ok(resp);
            }
            if !wait {
                return Err(refusal);
            }
            match tokio::time::timeout_at(deadline, blocks.recv()).await {
                Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(_)) => return Err(refusal),
                Err(_) => {
                    return Err(Problem::new(
                        StatusCode::GATEWAY_TIMEOUT,
                        &codes::REST_TIMEOUT,
                        format!(
                            "transaction {id} is waiting in the pool and was not committed within {} s; GET /v1/tx/{id}/receipt later",
                            self.node.config.request_timeout.as_secs()
                        ),
                    ));
                }
            }
        }
    }

    /// POST /v1/tx/prepare: the canonical transaction for a call and the 32 bytes to sign.
    async fn prepare(&self, mut body: Map<String, Json>) -> Result<Response, Problem> {
        let take_str = |body: &mut Map<String, Json>, f: &str| -> Result<Option<String>, Problem> {
            match body.remove(f) {
                None => Ok(None),
                Some(Json::String(s)) => Ok(Some(s)),
                Some(_) => Err(Problem::bad(format!("{f}: not a string"))),
            }
        };
        let b64 = |s: &str, f: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| Problem::bad(format!("{f}: not base64: {e}")))
        };
        let u64_of = |v: Json, f: &str| -> Result<u64, Problem> {
            match v {
                Json::Number(n) => n.as_u64(),
                Json::String(s) => s.parse().ok(),
                _ => None,
            }
            .ok_or_else(|| Problem::bad(format!("{f}: not an unsigned 64-bit integer")))
        };
        let contract = take_str(&mut body, "contract")?
            .ok_or_else(|| Problem::bad("contract is missing".into()))?;
        let method = take_str(&mut body, "method")?
            .ok_or_else(|| Problem::bad("method is missing".into()))?;
        let args = match body.remove("args") {
            None => Vec::new(),
            Some(Json::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str()
                        .ok_or_else(|| Problem::bad(format!("args[{i}]: not a base64 string")))
                        .and_then(|s| b64(s, &format!("args[{i}]")))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(Problem::bad("args: not an array".into())),
        };
        let sender = match (
            take_str(&mut body, "sender_certificate")?,
            take_str(&mut body, "sender_registered")?,
        ) {
            (Some(pem_or_b64), None) => types::Sender::Certificate(certificate_der(&pem_or_b64)?),
            (None, Some(hex_digest)) => {
                let d = hex::decode(&hex_digest)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| {
                        Problem::bad("sender_registered: not 64 hex characters".into())
                    })?;
                types::Sender::Registered(crypto::Digest(d))
            }
            _ => {
                return Err(Problem::bad(
                    "give sender_certificate (PEM, or base64 DER) or sender_registered (hex SM3 of a registered certificate)".into(),
                ));
            }
        };
        let fuel_limit = body
            .remove("fuel_limit")
            .map(|v| u64_of(v, "fuel_limit"))
            .transpose()?;
        let expiry_in = body
            .remove("expiry")
            .map(|v| u64_of(v, "expiry"))
            .transpose()?;
        let salt = match take_str(&mut body, "salt")? {
            Some(s) => hex::decode(&s)
                .ok()
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .ok_or_else(|| Problem::bad("salt: not 32 hex characters".into()))?,
            None => {
                let mut s = [0u8; 16];
                getrandom_fill(&mut s)?;
                s
            }
        };
        if let Some(k) = body.keys().next() {
            return Err(Problem::bad(format!(
                "unknown field {k:?}; this route takes contract, method, args, sender_certificate or sender_registered, fuel_limit, expiry, salt"
            )));
        }
        let (tip, _) = self.node.core.tip();
        let params = self.node.core.ledger().params().map_err(|e| {
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                &codes::REST_INTERNAL,
                format!("the chain parameters could not be read: {e}"),
            )
        })?;
        let window = params.params.expiry_window;
        let latest = tip.height.0.saturating_add(window);
        let expiry = match expiry_in {
            // Admission's own rule (types::check_expiry), refused now rather than at submission.
            Some(e) => {
                types::check_expiry(types::Height(e), tip.height, window).map_err(|err| {
                    Problem::bad(format!(
                        "expiry {e}: {err} (the tip is {}, the chain's window {window})",
                        tip.height.0
                    ))
                })?;
                e
            }
            None => latest,
        };
        let tx = types::Transaction {
            chain_id: self.node.core.genesis().chain_id.clone(),
            salt,
            expiry: types::Height(expiry),
            fuel_limit,
            sender,
            call: types::Call {
                contract,
                method,
                args,
            },
        };
        let bytes = types::Encode::to_bytes(&tx);
        // The same decoding admission applies: what cannot be decoded is refused now.
        <types::Transaction as types::Decode>::from_bytes(&bytes, &types::Limits::default())
            .map_err(|e| Problem::bad(format!("the transaction is not valid: {e}")))?;
        let id = tx.tx_id();
        let e64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        Ok(json_response(
            StatusCode::OK,
            &json!({
                "tx": e64(&bytes),
                "tx_id": id.to_string(),
                "sign_bytes": e64(id.as_bytes()),
                "signer_user_id": String::from_utf8_lossy(crypto::UserId::default().as_bytes()),
                "expiry": expiry.to_string(),
                "tip": tip.height.0.to_string(),
            }),
        ))
    }
}

fn getrandom_fill(buf: &mut [u8]) -> Result<(), Problem> {
    getrandom::fill(buf).map_err(|e| internal(format!("no randomness for the salt: {e}")))
}

/// A certificate given as PEM or base64 DER.
fn certificate_der(s: &str) -> Result<Vec<u8>, Problem> {
    let der = if s.trim_start().starts_with("-----BEGIN") {
        pki::Certificate::from_pem(s.as_bytes())
            .map_err(|e| Problem::bad(format!("sender_certificate: {e}")))?
            .der()
            .to_vec()
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|e| Problem::bad(format!("sender_certificate: neither PEM nor base64: {e}")))?
    };
    pki::Certificate::from_der(&der)
        .map_err(|e| Problem::bad(format!("sender_certificate: {e}")))?;
    Ok(der)
}

fn json_response(status: StatusCode, body: &Json) -> Response {
    let mut resp = Response::new(AxBody::from(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Reads a JSON object body of at most `limit` bytes.
async fn read_json_body(
    req: Request,
    limit: usize,
    timeout: Duration,
) -> Result<Map<String, Json>, Problem> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &codes::REST_MEDIA_TYPE,
            format!("Content-Type {ct:?}: this route takes application/json"),
        ));
    }
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            &codes::REST_TOO_LARGE,
            format!("the body is larger than this route's limit of {limit} bytes"),
        )
    };
    if let Some(n) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && n > limit as u64
    {
        return Err(too_large());
    }
    let collected = tokio::time::timeout(
        timeout,
        http_body_util::Limited::new(req.into_body(), limit).collect(),
    )
    .await
    .map_err(|_| {
        Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            &codes::REST_BODY_TIMEOUT,
            format!(
                "the body did not arrive within {} s (rest.request_timeout)",
                timeout.as_secs()
            ),
        )
    })?;
    let bytes = collected
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                Problem::bad(format!("the body could not be read: {e}"))
            }
        })?
        .to_bytes();
    match serde_json::from_slice::<Json>(&bytes) {
        Ok(Json::Object(m)) => Ok(m),
        Ok(_) => Err(Problem::bad("the body is not a JSON object".into())),
        Err(e) => Err(Problem::bad(format!("the body is not JSON: {e}"))),
    }
}

/// Digits only, without a leading zero (the OpenAPI document's pattern): `+1` and `01` are
/// not the way this API writes numbers.
fn canonical_decimal(raw: &str) -> bool {
    !raw.is_empty()
        && raw.bytes().all(|b| b.is_ascii_digit())
        && (raw == "0" || !raw.starts_with('0'))
}

/// A path or query value as the JSON of its field (hex for bytes, decimal for integers).
fn param_json(
    input: &MessageDescriptor,
    name: &str,
    raw: &str,
    place: &str,
) -> Result<Json, Problem> {
    let field = input
        .get_field_by_name(name)
        .ok_or_else(|| Problem::bad(format!("unknown {place} parameter {name:?}")))?;
    let bad = |what: &str| Problem::bad(format!("{place} {name}: {raw:?} is not {what}"));
    Ok(match field.kind() {
        Kind::Bytes => {
            let b = hex::decode(raw).map_err(|_| bad("lower-case hex"))?;
            if raw.chars().any(|c| c.is_ascii_uppercase()) {
                return Err(bad("lower-case hex"));
            }
            Json::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Kind::String => Json::String(raw.to_string()),
        Kind::Bool => match raw {
            "true" => Json::Bool(true),
            "false" => Json::Bool(false),
            _ => return Err(bad("true or false")),
        },
        Kind::Uint64 | Kind::Fixed64 => {
            if !canonical_decimal(raw) {
                return Err(bad("a decimal u64 (digits, no sign, no leading zero)"));
            }
            raw.parse::<u64>().map_err(|_| bad("a decimal u64"))?;
            Json::String(raw.to_string())
        }
        Kind::Uint32 | Kind::Fixed32 => {
            if !canonical_decimal(raw) {
                return Err(bad("a decimal u32 (digits, no sign, no leading zero)"));
            }
            json!(raw.parse::<u32>().map_err(|_| bad("a decimal u32"))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            if !canonical_decimal(raw.strip_prefix('-').unwrap_or(raw)) {
                return Err(bad("a decimal i64"));
            }
            raw.parse::<i64>().map_err(|_| bad("a decimal i64"))?;
            Json::String(raw.to_string())
        }
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            if !canonical_decimal(raw.strip_prefix('-').unwrap_or(raw)) {
                return Err(bad("a decimal i32"));
            }
            json!(raw.parse::<i32>().map_err(|_| bad("a decimal i32"))?)
        }
        _ => return Err(Problem::bad(format!("{place} {name}: not a scalar field"))),
    })
}

/// The request message of `route` from its path parameters, query and JSON body.
fn request_message(
    input: &MessageDescriptor,
    route: &Route,
    path: &[(String, String)],
    query: &str,
    mut body: Map<String, Json>,
) -> Result<DynamicMessage, Problem> {
    for (k, v) in path {
        if body.contains_key(k) {
            return Err(Problem::bad(format!(
                "{k} is in the path; leave it out of the body"
            )));
        }
        body.insert(k.clone(), param_json(input, k, v, "path")?);
    }
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if route.body != Body::None {
            return Err(Problem::bad(format!(
                "unknown query parameter {k:?}: this route takes a JSON body"
            )));
        }
        if path.iter().any(|(p, _)| p == k.as_ref()) || route.fixed.contains(&k.as_ref()) {
            return Err(Problem::bad(format!(
                "query {k}: this route fixes it (it is in the path, or the route says which)"
            )));
        }
        // `filter.contract=…`: a scalar field of a message field, one level down.
        if let Some((outer, inner)) = k.split_once('.') {
            let sub = input
                .get_field_by_name(outer)
                .filter(|f| !f.is_list())
                .and_then(|f| f.kind().as_message().cloned())
                .ok_or_else(|| {
                    Problem::bad(format!(
                        "unknown query parameter {k:?}: {outer} is not a message field of {}",
                        input.name()
                    ))
                })?;
            let value = param_json(&sub, inner, &v, "query")?;
            let obj = body
                .entry(outer.to_string())
                .or_insert_with(|| Json::Object(Map::new()));
            match obj {
                Json::Object(o) => {
                    if o.insert(inner.to_string(), value).is_some() {
                        return Err(Problem::bad(format!("query {k}: given twice")));
                    }
                }
                _ => return Err(Problem::bad(format!("query {k}: {outer} given twice"))),
            }
            continue;
        }
        let field = input.get_field_by_name(&k).ok_or_else(|| {
            let names: Vec<String> = input
                .fields()
                .filter(|f| !path.iter().any(|(p, _)| p == f.name()))
                .flat_map(|f| match f.kind().as_message() {
                    Some(m) => m
                        .fields()
                        .map(|g| format!("{}.{}", f.name(), g.name()))
                        .collect::<Vec<_>>(),
                    None => vec![f.name().to_string()],
                })
                .collect();
            Problem::bad(format!(
                "unknown query parameter {k:?}; this route takes: {}",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ))
        })?;
        if field.kind().as_message().is_some() {
            return Err(Problem::bad(format!(
                "query {k}: a message field; give its fields as {k}.<name>"
            )));
        }
        let value = param_json(input, &k, &v, "query")?;
        if field.is_list() {
            match body
                .entry(k.to_string())
                .or_insert_with(|| Json::Array(Vec::new()))
            {
                Json::Array(a) => a.push(value),
                _ => return Err(Problem::bad(format!("query {k}: given twice"))),
            }
        } else if body.insert(k.to_string(), value).is_some() {
            return Err(Problem::bad(format!("query {k}: given twice")));
        }
    }
    let msg = DynamicMessage::deserialize_with_options(
        input.clone(),
        Json::Object(body),
        &DeserializeOptions::new().deny_unknown_fields(true),
    )
    .map_err(|e| Problem::bad(format!("the request is not a valid {}: {e}", input.name())))?;
    Ok(msg)
}

/// Public mode: an attestation names its organisation, not the person (docs/rest.md).
fn redact_attestations(msg: &mut DynamicMessage) {
    let is_attestation = msg.descriptor().full_name() == "gmchain.v1.Attestation";
    if is_attestation {
        if let Some(Value::String(owner)) = msg.get_field_by_name("owner").as_deref() {
            // An organisation's name never holds '/' (identity::check_org_name); a common
            // name may.
            let org = owner
                .split_once('/')
                .map_or(owner.as_str(), |(o, _)| o)
                .to_string();
            msg.set_field_by_name("owner", Value::String(org));
        }
        msg.set_field_by_name("signer", Value::Bytes(Bytes::new()));
        return;
    }
    let fields: Vec<_> = msg.descriptor().fields().collect();
    for f in fields {
        if f.kind().as_message().is_none() || !msg.has_field(&f) {
            continue;
        }
        match msg.get_field_mut(&f) {
            Value::Message(m) => redact_attestations(m),
            Value::List(items) => {
                for v in items {
                    if let Value::Message(m) = v {
                        redact_attestations(m);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
