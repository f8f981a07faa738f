//! The admin API over HTTP: the routes (KINX's `/api/haproxy/...` and `/api/quagga`, and the
//! OpenAPI document), each request turned into one [`Operation`] handed to the one service task
//! (so mutations are carried out one at a time, in the order they arrive), the gate checked
//! first, and every answer JSON: unknown routes and methods, a body that is not JSON or not
//! `application/json`, a body over [`BODY_LIMIT`] and a path id that is not a [`Name`] are
//! refused with the same JSON error body as the service's own refusals. [`serve`] runs the
//! accept loop of one listening socket, with TLS in front when the door says so.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use log::{debug, warn};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_rustls::TlsAcceptor;

use super::auth::Gate;
use super::error::ApiError;
use super::fields;
use super::service::{Operation, Reply};
use super::store::Kind;
use crate::haproxy::model::Name;

/// The largest request body read (1 MiB); a larger one is answered 413.
pub const BODY_LIMIT: usize = 1 << 20;
/// The OpenAPI 3 description of every route.
pub const OPENAPI: &str = include_str!("openapi.json");
/// Connections served at once; more wait in the listen backlog.
const CONNECTIONS: usize = 128;
/// How long a client may take to send a request's headers (or a TLS handshake).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// One request for the service task, and where its reply goes.
#[derive(Debug)]
pub struct Call {
    /// What to do.
    pub operation: Operation,
    /// The answer.
    pub reply: oneshot::Sender<Reply>,
}

/// The way to the service task.
pub type Calls = mpsc::Sender<Call>;

/// The API's front door, replaced as a whole on reload: who may come in, and TLS.
pub struct Door {
    /// The credential a request must carry.
    pub gate: Gate,
    /// TLS in front of HTTP, when configured.
    pub tls: Option<TlsAcceptor>,
}

/// The door as the router and the accept loop see it; swapped in place on reload.
pub type SharedDoor = Arc<RwLock<Arc<Door>>>;

/// A collection under `/api/haproxy/` with its own ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Collection {
    LoadBalancers,
    Listeners,
    Pools,
    HealthMonitors,
    Peers,
}

impl Collection {
    const ALL: [Collection; 5] = [
        Collection::LoadBalancers,
        Collection::Listeners,
        Collection::Pools,
        Collection::HealthMonitors,
        Collection::Peers,
    ];

    fn segment(self) -> &'static str {
        match self {
            Collection::LoadBalancers => "loadbalancers",
            Collection::Listeners => "listeners",
            Collection::Pools => "pools",
            Collection::HealthMonitors => "healthmonitors",
            Collection::Peers => "peers",
        }
    }

    fn kind(self) -> Kind {
        match self {
            Collection::LoadBalancers => Kind::LoadBalancer,
            Collection::Listeners => Kind::Listener,
            Collection::Pools => Kind::Pool,
            Collection::HealthMonitors => Kind::HealthMonitor,
            Collection::Peers => Kind::Peer,
        }
    }
}

/// Every route (in the OpenAPI document's `{name}` syntax, which is axum's) and its methods.
pub fn routes() -> Vec<(String, &'static [Method])> {
    const LIST: &[Method] = &[Method::GET, Method::POST];
    const ONE: &[Method] = &[Method::GET, Method::PUT, Method::DELETE];
    let mut routes = Vec::new();
    for c in Collection::ALL {
        routes.push((format!("/api/haproxy/{}", c.segment()), LIST));
        routes.push((format!("/api/haproxy/{}/{{id}}", c.segment()), ONE));
    }
    routes.push(("/api/haproxy/pools/{pool_id}/members".into(), LIST));
    routes.push(("/api/haproxy/pools/{pool_id}/members/{id}".into(), ONE));
    routes.push((
        "/api/quagga".into(),
        &[Method::GET, Method::POST, Method::PUT, Method::DELETE],
    ));
    routes.push(("/api/openapi.json".into(), &[Method::GET]));
    routes
}

/// What every handler shares.
#[derive(Clone)]
struct Shared {
    calls: Calls,
    door: SharedDoor,
}

/// The router: every route of [`routes`], behind the door's gate.
pub fn router(calls: Calls, door: SharedDoor) -> Router {
    let shared = Shared { calls, door };
    let mut router = Router::new();
    for c in Collection::ALL {
        router = router
            .route(&format!("/api/haproxy/{}", c.segment()), collection(c))
            .route(&format!("/api/haproxy/{}/{{id}}", c.segment()), object(c));
    }
    router
        .route(
            "/api/haproxy/pools/{pool_id}/members",
            get(|s: State<Shared>, p: Path<String>| async move {
                with_pool(p, |pool| Ok(Operation::List(Kind::Member(pool))))
                    .call(&s)
                    .await
            })
            .post(
                |s: State<Shared>, p: Path<String>, h: HeaderMap, b: Result<Bytes, _>| async move {
                    with_pool(p, |pool| Ok(Operation::Create(Kind::Member(pool), body(&h, b)?)))
                        .call(&s)
                        .await
                },
            ),
        )
        .route(
            "/api/haproxy/pools/{pool_id}/members/{id}",
            get(|s: State<Shared>, p: Path<(String, String)>| async move {
                with_member(p, |pool, id| Ok(Operation::Get(Kind::Member(pool), id)))
                    .call(&s)
                    .await
            })
            .put(
                |s: State<Shared>,
                 p: Path<(String, String)>,
                 h: HeaderMap,
                 b: Result<Bytes, _>| async move {
                    with_member(p, |pool, id| {
                        Ok(Operation::Update(Kind::Member(pool), id, body(&h, b)?))
                    })
                    .call(&s)
                    .await
                },
            )
            .delete(|s: State<Shared>, p: Path<(String, String)>| async move {
                with_member(p, |pool, id| Ok(Operation::Delete(Kind::Member(pool), id)))
                    .call(&s)
                    .await
            }),
        )
        .route(
            "/api/quagga",
            get(|s: State<Shared>| async move { Ok(Operation::GetQuagga).call(&s).await })
                .post(|s: State<Shared>, h: HeaderMap, b: Result<Bytes, _>| async move {
                    body(&h, b).map(Operation::SetQuagga).call(&s).await
                })
                .put(|s: State<Shared>, h: HeaderMap, b: Result<Bytes, _>| async move {
                    body(&h, b).map(Operation::SetQuagga).call(&s).await
                })
                .delete(|s: State<Shared>| async move {
                    Ok(Operation::DeleteQuagga).call(&s).await
                }),
        )
        .route(
            "/api/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .fallback(|method: Method, uri: Uri| async move {
            refusal(ApiError::not_found(
                "route",
                &format!("{method} {}", uri.path()),
            ))
        })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            refusal(ApiError {
                status: 405,
                error: "method not allowed",
                field: None,
                reason: format!("{} does not take {method}", uri.path()),
            })
        })
        .layer(middleware::from_fn_with_state(shared.door.clone(), authorize))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

/// `GET` (list) and `POST` (create) of a collection.
fn collection(c: Collection) -> MethodRouter<Shared> {
    get(move |s: State<Shared>| async move { Ok(Operation::List(c.kind())).call(&s).await }).post(
        move |s: State<Shared>, h: HeaderMap, b: Result<Bytes, _>| async move {
            body(&h, b)
                .map(|v| Operation::Create(c.kind(), v))
                .call(&s)
                .await
        },
    )
}

/// `GET`, `PUT` (update) and `DELETE` of one object of a collection.
fn object(c: Collection) -> MethodRouter<Shared> {
    get(move |s: State<Shared>, p: Path<String>| async move {
        id("id", p.0)
            .map(|id| Operation::Get(c.kind(), id))
            .call(&s)
            .await
    })
    .put(
        move |s: State<Shared>, p: Path<String>, h: HeaderMap, b: Result<Bytes, _>| async move {
            id("id", p.0)
                .and_then(|id| Ok(Operation::Update(c.kind(), id, body(&h, b)?)))
                .call(&s)
                .await
        },
    )
    .delete(move |s: State<Shared>, p: Path<String>| async move {
        id("id", p.0)
            .map(|id| Operation::Delete(c.kind(), id))
            .call(&s)
            .await
    })
}

fn with_pool(
    Path(pool): Path<String>,
    op: impl FnOnce(Name) -> Result<Operation, ApiError>,
) -> Result<Operation, ApiError> {
    op(id("pool_id", pool)?)
}

fn with_member(
    Path((pool, member)): Path<(String, String)>,
    op: impl FnOnce(Name, Name) -> Result<Operation, ApiError>,
) -> Result<Operation, ApiError> {
    op(id("pool_id", pool)?, id("id", member)?)
}

/// A path segment as an id (as a body's ids are read).
fn id(field: &'static str, value: String) -> Result<Name, ApiError> {
    fields::id(&Value::String(value)).map_err(|reason| ApiError::bad(field, reason))
}

/// A request body: JSON, sent as `application/json`, within the limit.
fn body(headers: &HeaderMap, bytes: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let bytes = bytes.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError {
                status: 413,
                error: "payload too large",
                field: None,
                reason: format!("a request body is at most {BODY_LIMIT} bytes"),
            }
        } else {
            ApiError::malformed(format!(
                "the body could not be read: {}",
                rejection.body_text()
            ))
        }
    })?;
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return Err(ApiError::malformed(
            "the body must be sent with Content-Type: application/json",
        ));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::malformed(format!("the body is not JSON: {e}")))
}

/// Hands a request to the service task and answers with its reply.
trait CallService {
    async fn call(self, shared: &Shared) -> Response;
}

impl CallService for Result<Operation, ApiError> {
    async fn call(self, shared: &Shared) -> Response {
        let operation = match self {
            Ok(operation) => operation,
            Err(e) => return refusal(e),
        };
        let (reply, answer) = oneshot::channel();
        let gone = || {
            refusal(ApiError {
                status: 503,
                error: "unavailable",
                field: None,
                reason: "keepserver is shutting down".into(),
            })
        };
        if shared.calls.send(Call { operation, reply }).await.is_err() {
            return gone();
        }
        match answer.await {
            Ok(reply) => respond(reply),
            Err(_) => gone(),
        }
    }
}

fn respond(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match reply.body {
        Some(body) => (status, json_body(&body)).into_response(),
        None => status.into_response(),
    }
}

fn json_body(value: &Value) -> ([(header::HeaderName, &'static str); 1], Vec<u8>) {
    let mut bytes = serde_json::to_vec(value).unwrap_or_default();
    bytes.push(b'\n');
    ([(header::CONTENT_TYPE, "application/json")], bytes)
}

fn refusal(e: ApiError) -> Response {
    respond(Reply::from(e))
}

/// Lets a request in when it carries the door's credential; else 401 with the challenge.
pub async fn authorize(State(door): State<SharedDoor>, request: Request, next: Next) -> Response {
    let door = door
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match door.gate.check(given) {
        Ok(()) => next.run(request).await,
        Err(challenge) => {
            let body = json!(ApiError {
                status: 401,
                error: "unauthorized",
                field: None,
                reason: challenge.reason.into(),
            });
            let mut response = (StatusCode::UNAUTHORIZED, json_body(&body)).into_response();
            if let Ok(value) = HeaderValue::from_str(&challenge.header) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
            response
        }
    }
}

/// Binds `listen` now (from a synchronous caller such as a reload), for [`serve`].
pub fn bind_now(listen: SocketAddr) -> std::io::Result<TcpListener> {
    std::net::TcpListener::bind(listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .and_then(TcpListener::from_std)
}

/// One listening socket served by [`serve`], which moves to another address in place.
pub struct Listening {
    router: Router,
    door: SharedDoor,
    server: tokio::task::JoinHandle<()>,
}

impl Listening {
    /// Serves `router` behind `door` on `listener`.
    pub fn start(listener: TcpListener, router: Router, door: SharedDoor) -> Listening {
        let server = tokio::spawn(serve(listener, router.clone(), door.clone()));
        Listening {
            router,
            door,
            server,
        }
    }

    /// Serves on `listen` instead; when it cannot be bound the old socket is kept.
    pub fn rebind(&mut self, listen: SocketAddr) -> std::io::Result<()> {
        let listener = bind_now(listen)?;
        self.server.abort();
        self.server = tokio::spawn(serve(listener, self.router.clone(), self.door.clone()));
        Ok(())
    }

    /// Stops accepting connections.
    pub fn shutdown(&self) {
        self.server.abort();
    }
}

/// Serves `router` on `listener` until the task is aborted: each connection on a task of its
/// own (at most [`CONNECTIONS`] at once), through the door's TLS when it has one.
pub async fn serve(listener: TcpListener, router: Router, door: SharedDoor) {
    let slots = Arc::new(Semaphore::new(CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!("admin API: accept failed error=\"{e}\"");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let tls = door
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .tls
            .clone();
        let router = router.clone();
        tokio::spawn(async move {
            connection(stream, peer, tls, router).await;
            drop(slot);
        });
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    router: Router,
) {
    let service = hyper_util::service::TowerToHyperService::new(router);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let served = match tls {
        None => {
            http.serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await
        }
        Some(acceptor) => {
            match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    http.serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await
                }
                Ok(Err(e)) => {
                    debug!("admin API: TLS handshake failed peer={peer} error=\"{e}\"");
                    return;
                }
                Err(_) => {
                    debug!("admin API: TLS handshake timed out peer={peer}");
                    return;
                }
            }
        }
    };
    if let Err(e) = served {
        debug!("admin API: connection ended peer={peer} error=\"{e}\"");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    /// A router whose service task answers every call 200 with the operation's debug text, and
    /// the door it checks.
    fn fake(gate: Gate) -> (Router, SharedDoor) {
        let (calls, mut rx) = mpsc::channel::<Call>(8);
        tokio::spawn(async move {
            while let Some(call) = rx.recv().await {
                let reply = Reply {
                    status: 200,
                    body: Some(json!({"operation": format!("{:?}", call.operation)})),
                };
                let _ = call.reply.send(reply);
            }
        });
        let door = Arc::new(RwLock::new(Arc::new(Door { gate, tls: None })));
        (router(calls, door.clone()), door)
    }

    fn open() -> Router {
        fake(Gate::load(None).expect("open")).0
    }

    async fn send(router: &Router, request: axum::http::Request<Body>) -> (u16, HeaderMap, Value) {
        let response = router.clone().oneshot(request).await.expect("infallible");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("every answer is JSON")
        };
        (status, headers, body)
    }

    fn request(method: &str, path: &str, body: Option<&str>) -> axum::http::Request<Body> {
        let builder = axum::http::Request::builder().method(method).uri(path);
        match body {
            Some(body) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => builder.body(Body::empty()),
        }
        .expect("request")
    }

    fn operation(body: &Value) -> &str {
        body["operation"].as_str().unwrap_or("")
    }

    #[tokio::test]
    async fn routes_become_operations() {
        let router = open();
        let cases = [
            ("GET", "/api/haproxy/pools", None, "List(Pool)"),
            (
                "GET",
                "/api/haproxy/loadbalancers/lb1",
                None,
                "Get(LoadBalancer, Name(\"lb1\"))",
            ),
            (
                "POST",
                "/api/haproxy/listeners",
                Some("{\"a\":1}"),
                "Create(Listener, Object {\"a\": Number(1)})",
            ),
            (
                "PUT",
                "/api/haproxy/peers/n-1",
                Some("{}"),
                "Update(Peer, Name(\"n-1\"), Object {})",
            ),
            (
                "DELETE",
                "/api/haproxy/healthmonitors/m.1",
                None,
                "Delete(HealthMonitor, Name(\"m.1\"))",
            ),
            (
                "GET",
                "/api/haproxy/pools/p1/members",
                None,
                "List(Member(Name(\"p1\")))",
            ),
            (
                "POST",
                "/api/haproxy/pools/p1/members",
                Some("{}"),
                "Create(Member(Name(\"p1\")), Object {})",
            ),
            (
                "GET",
                "/api/haproxy/pools/p1/members/m1",
                None,
                "Get(Member(Name(\"p1\")), Name(\"m1\"))",
            ),
            (
                "PUT",
                "/api/haproxy/pools/p1/members/m1",
                Some("{}"),
                "Update(Member(Name(\"p1\")), Name(\"m1\"), Object {})",
            ),
            (
                "DELETE",
                "/api/haproxy/pools/p1/members/m1",
                None,
                "Delete(Member(Name(\"p1\")), Name(\"m1\"))",
            ),
            ("GET", "/api/quagga", None, "GetQuagga"),
            ("POST", "/api/quagga", Some("{}"), "SetQuagga(Object {})"),
            ("PUT", "/api/quagga", Some("{}"), "SetQuagga(Object {})"),
            ("DELETE", "/api/quagga", None, "DeleteQuagga"),
        ];
        for (method, path, body, want) in cases {
            let (status, _, answer) = send(&router, request(method, path, body)).await;
            assert_eq!(status, 200, "{method} {path}: {answer}");
            assert_eq!(operation(&answer), want, "{method} {path}");
        }
    }

    #[tokio::test]
    async fn refusals_are_json_and_never_reach_the_service() {
        let router = open();
        let cases: [(axum::http::Request<Body>, u16, Option<&str>, &str); 8] = [
            (
                request("GET", "/api/nothing", None),
                404,
                None,
                "no route `GET /api/nothing`",
            ),
            (
                request("PATCH", "/api/haproxy/pools/p1", None),
                405,
                None,
                "does not take PATCH",
            ),
            (
                request("GET", "/api/haproxy/pools/a%20b", None),
                400,
                Some("id"),
                "position 2",
            ),
            (
                request("DELETE", "/api/haproxy/pools/a%0Ab/members/m", None),
                400,
                Some("pool_id"),
                "position 2",
            ),
            (
                request(
                    "GET",
                    &format!("/api/haproxy/pools/p/members/{}", "x".repeat(57)),
                    None,
                ),
                400,
                Some("id"),
                "more than 56",
            ),
            (
                request("POST", "/api/haproxy/pools", Some("{\"a\":")),
                400,
                None,
                "the body is not JSON: EOF",
            ),
            (
                axum::http::Request::post("/api/haproxy/pools")
                    .header(header::CONTENT_TYPE, "text/plain")
                    .body(Body::from("{}"))
                    .expect("request"),
                400,
                None,
                "Content-Type: application/json",
            ),
            (
                request(
                    "PUT",
                    "/api/quagga",
                    Some(&format!("\"{}\"", "a".repeat(BODY_LIMIT))),
                ),
                413,
                None,
                "at most 1048576 bytes",
            ),
        ];
        for (req, want_status, want_field, want_reason) in cases {
            let what = format!("{} {}", req.method(), req.uri());
            let (status, headers, body) = send(&router, req).await;
            assert_eq!(status, want_status, "{what}: {body}");
            assert_eq!(
                headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok()),
                Some("application/json"),
                "{what}"
            );
            assert_eq!(body["field"].as_str(), want_field, "{what}: {body}");
            let reason = body["reason"].as_str().unwrap_or("");
            assert!(reason.contains(want_reason), "{what}: {body}");
            assert!(body["error"].is_string(), "{what}: {body}");
            assert!(body.get("operation").is_none(), "{what}: {body}");
        }
        let charset = axum::http::Request::post("/api/haproxy/pools")
            .header(header::CONTENT_TYPE, "Application/JSON; charset=utf-8")
            .body(Body::from("{}"))
            .expect("request");
        assert_eq!(send(&router, charset).await.0, 200);
    }

    #[tokio::test]
    async fn the_gate_answers_401_with_a_challenge_and_is_swapped_in_place() {
        let dir = tempfile::tempdir().expect("dir");
        let token = dir.path().join("token");
        std::fs::write(&token, "t0ken\n").expect("write");
        std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod");
        let auth = crate::config::api::Auth::Token { token_file: token };
        let (router, door) = fake(Gate::load(Some(&auth)).expect("gate"));
        for given in [None, Some("Bearer nope"), Some("Basic dDBrZW4=")] {
            let mut req = request("GET", "/api/haproxy/pools", None);
            if let Some(given) = given {
                req.headers_mut()
                    .insert(header::AUTHORIZATION, HeaderValue::from_static(given));
            }
            let (status, headers, body) = send(&router, req).await;
            assert_eq!(status, 401, "{given:?}: {body}");
            assert_eq!(
                headers
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok()),
                Some("Bearer realm=\"keepserver\""),
            );
            assert_eq!(body["error"], "unauthorized");
        }
        // Unknown routes are behind the gate too: nothing is told to a stranger.
        let (status, _, _) = send(&router, request("GET", "/nowhere", None)).await;
        assert_eq!(status, 401);
        let mut req = request("GET", "/api/haproxy/pools", None);
        req.headers_mut().insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer t0ken"),
        );
        assert_eq!(send(&router, req).await.0, 200);

        *door.write().expect("door") = Arc::new(Door {
            gate: Gate::load(None).expect("open"),
            tls: None,
        });
        let (status, _, _) = send(&router, request("GET", "/api/haproxy/pools", None)).await;
        assert_eq!(status, 200, "the new door is in force at once");
    }

    /// The (path, method) pairs of the OpenAPI document.
    fn documented() -> BTreeSet<(String, String)> {
        let doc: Value = serde_json::from_str(OPENAPI).expect("the OpenAPI document is JSON");
        assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
        let mut pairs = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                if method != "parameters" {
                    pairs.insert((path.clone(), method.to_uppercase()));
                }
            }
        }
        pairs
    }

    #[tokio::test]
    async fn the_openapi_document_names_every_route_and_only_those() {
        let routed: BTreeSet<(String, String)> = routes()
            .into_iter()
            .flat_map(|(path, methods)| methods.iter().map(move |m| (path.clone(), m.to_string())))
            .collect();
        assert_eq!(documented(), routed);
        // And the router really answers each of them (with ids filled in), none of them 404/405.
        let router = open();
        for (path, method) in documented() {
            let concrete = path.replace("{pool_id}", "p1").replace("{id}", "x1");
            let body = matches!(method.as_str(), "POST" | "PUT").then_some("{}");
            let (status, _, answer) = send(&router, request(&method, &concrete, body)).await;
            assert_eq!(status, 200, "{method} {path}: {answer}");
        }
    }

    #[tokio::test]
    async fn the_openapi_document_is_served() {
        let (status, _, doc) = send(&open(), request("GET", "/api/openapi.json", None)).await;
        assert_eq!(status, 200);
        assert_eq!(doc["info"]["title"], "keepserver admin API");
    }
}
