//! The fault-injecting proxy: an HTTP server on loopback that the agent
//! uses as its AWS endpoint (`AWS_ENDPOINT_URL` and
//! `AWS_ENDPOINT_URL_<SERVICE>` all point at it). It reads each request's
//! service, region and operation ([`AwsRequest`]), asks the [`Faults`] in
//! force what to do, and then delays it, answers it with an error in the
//! service's own shape, drops the connection, holds it, or passes it to the
//! emulator that serves the service (moto for RDS, DynamoDB, Auto Scaling
//! and ECS, LocalStack for the rest) and relays the answer. It keeps rules
//! of AWS the emulators do not: resource states ([`States`]) and Route 53's
//! exact-match `DELETE` ([`crate::exact_delete`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::aws_request::AwsRequest;
use crate::error_shape::{answer, error_answer};
use crate::exact_delete::{self, ExactDeletes};
use crate::faults::{Faults, Outcome};
use crate::states::{StateAction, States, refusal, show_status};

/// Where each service's requests go when no fault stops them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstreams {
    /// The endpoint of services not named below (LocalStack).
    pub default: String,
    /// Endpoints by service (`rds`, `dynamodb`, `autoscaling`, `ecs`: moto).
    pub by_service: HashMap<String, String>,
}

impl Upstreams {
    /// From the AWS endpoint settings the emulators script exports
    /// (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_RDS`, ...); `None` without
    /// `AWS_ENDPOINT_URL`.
    pub fn from_env() -> Option<Self> {
        let default = std::env::var("AWS_ENDPOINT_URL").ok().filter(|v| !v.is_empty())?;
        let mut by_service = HashMap::new();
        for (service, var) in [
            ("rds", "RDS"),
            ("dynamodb", "DYNAMODB"),
            ("ec2", "EC2"),
            ("route53", "ROUTE_53"),
            ("cloudwatch", "CLOUDWATCH"),
            ("sts", "STS"),
            ("autoscaling", "AUTO_SCALING"),
            ("ecs", "ECS"),
        ] {
            if let Ok(url) = std::env::var(format!("AWS_ENDPOINT_URL_{var}")) {
                by_service.insert(service.to_string(), url);
            }
        }
        Some(Upstreams { default, by_service })
    }

    fn for_service(&self, service: &str) -> &str {
        self.by_service.get(service).map(String::as_str).unwrap_or(&self.default)
    }

    /// The environment that points an agent at a proxy on `url` for every
    /// service these upstreams serve.
    pub fn env_for(&self, url: &str) -> Vec<(String, String)> {
        let mut env = vec![("AWS_ENDPOINT_URL".to_string(), url.to_string())];
        for var in ["RDS", "DYNAMODB", "EC2", "ROUTE_53", "CLOUDWATCH", "STS", "AUTO_SCALING", "ECS"] {
            env.push((format!("AWS_ENDPOINT_URL_{var}"), url.to_string()));
        }
        env
    }
}

/// A running proxy; stopped when dropped.
pub struct Proxy {
    addr: SocketAddr,
    faults: Arc<Faults>,
    states: Arc<States>,
    in_flight: Arc<InFlight>,
    exact_deletes: Arc<ExactDeletes>,
    stop: watch::Sender<bool>,
}

impl Proxy {
    /// Starts a proxy on an ephemeral loopback port, in front of `upstreams`,
    /// applying `faults`. Must be called inside a tokio runtime, which runs it.
    pub async fn start(upstreams: Upstreams, faults: Arc<Faults>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        let states = Arc::new(States::default());
        let in_flight = Arc::new(InFlight::default());
        let exact_deletes = Arc::new(ExactDeletes::default());
        let shared = Arc::new(Shared {
            upstreams,
            faults: faults.clone(),
            states: states.clone(),
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
            seq: AtomicU64::new(0),
            dynamodb: tokio::sync::Mutex::new(()),
            in_flight: in_flight.clone(),
            exact_deletes: exact_deletes.clone(),
        });
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // e.g. out of file descriptors: do not spin.
                            tracing::warn!(error = %e, "chaos proxy: accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                    _ = stopped.changed() => return,
                };
                let shared = shared.clone();
                let mut stopped = stopped.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(shared.clone(), req));
                    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = conn => {}
                        _ = stopped.changed() => {}
                    }
                });
            }
        });
        Ok(Proxy { addr, faults, states, in_flight, exact_deletes, stop })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The rules in force and their counts.
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// The resource states it shows in place of the emulators' (see [`States`]).
    pub fn states(&self) -> &Arc<States> {
        &self.states
    }

    /// The change batches it refused for a `DELETE` that did not match (see [`ExactDeletes`]).
    pub fn exact_deletes(&self) -> &Arc<ExactDeletes> {
        &self.exact_deletes
    }

    /// The requests it holds at once (see [`InFlight`]).
    pub fn in_flight(&self) -> &Arc<InFlight> {
        &self.in_flight
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

struct Shared {
    upstreams: Upstreams,
    faults: Arc<Faults>,
    states: Arc<States>,
    client: Client<HttpConnector, Full<Bytes>>,
    seq: AtomicU64,
    /// DynamoDB applies each conditional write atomically; moto's server
    /// does not under concurrent requests (two agents' `attribute_not_exists`
    /// puts on one scope lock were both seen to succeed). The proxy hands
    /// DynamoDB its requests one at a time, as the real service orders them.
    dynamodb: tokio::sync::Mutex<()>,
    in_flight: Arc<InFlight>,
    exact_deletes: Arc<ExactDeletes>,
}

/// Requests the proxy holds at once: now, and the most so far (how a test
/// sees that a client sent its requests together rather than one by one).
#[derive(Debug, Default)]
pub struct InFlight {
    now: AtomicU64,
    most: AtomicU64,
}

impl InFlight {
    /// The most requests held at once so far.
    pub fn most(&self) -> u64 {
        self.most.load(Ordering::SeqCst)
    }

    /// Forgets the most so far (counting starts again from those held now).
    pub fn reset(&self) {
        self.most.store(self.now.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    fn enter(self: &Arc<Self>) -> Held {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        Held(self.clone())
    }
}

/// One request held, until it is answered or dropped.
struct Held(Arc<InFlight>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why the proxy closed a connection without answering (a fault, on purpose).
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by the chaos proxy ({0})")]
struct Dropped(&'static str);

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Dropped> {
    let _held = shared.in_flight.enter();
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(Dropped("the request body could not be read")),
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let aws = AwsRequest::read(
        header("authorization").unwrap_or(""),
        header("x-amz-target"),
        header("content-type").unwrap_or(""),
        parts.method.as_str(),
        parts.uri.path(),
        &body,
    );
    let state = shared.states.action(&aws, &body);
    let decision = shared.faults.decide(&aws);
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    if let StateAction::Refuse { instance, status } = &state {
        // A resource's state is looked at behind the service's front door:
        // a throttle, a 5xx, a reset or a hang answers first. A request the
        // state refuses changes nothing, so a lost answer loses the refusal
        // (and nothing reaches the emulator).
        return match decision.outcome {
            Outcome::Answer(what) | Outcome::LoseAnswer(what) => Ok(injected(&shared, &aws, what)),
            Outcome::Reset => Err(Dropped("reset")),
            Outcome::Hang(d) => {
                tokio::time::sleep(d).await;
                Err(Dropped("hang"))
            }
            Outcome::Forward | Outcome::Rewrite(..) => {
                let (code, message) = refusal(instance, status);
                let id = format!("chaos-{:08}", shared.seq.fetch_add(1, Ordering::Relaxed));
                Ok(respond(error_answer(&aws, code, &message, 400, &id)))
            }
        };
    }
    let (mut parts, mut body) = (parts, body);
    let deletes = if aws.service == "route53"
        && aws.operation == "ChangeResourceRecordSets"
        && matches!(decision.outcome, Outcome::Forward | Outcome::LoseAnswer(_) | Outcome::Rewrite(..))
    {
        check_deletes(&shared, &parts, &body).await
    } else {
        DeleteCheck::Unchecked
    };
    if let DeleteCheck::Refused(message) = deletes {
        // Refused whole: nothing reaches the emulator, lost answer or not.
        shared.exact_deletes.count();
        return Ok(match decision.outcome {
            Outcome::LoseAnswer(what) => injected(&shared, &aws, what),
            _ => {
                let id = format!("chaos-{:08}", shared.seq.fetch_add(1, Ordering::Relaxed));
                respond(error_answer(&aws, "InvalidChangeBatch", &message, 400, &id))
            }
        });
    }
    if deletes == DeleteCheck::Matched
        && let Some(upserts) = exact_delete::as_upserts(&body)
    {
        // Its DELETEs matched: what Route 53 would do, in a form moto gets right.
        body = Bytes::from(upserts);
        parts.headers.remove(hyper::header::CONTENT_LENGTH);
    }
    match decision.outcome {
        Outcome::Forward => {
            let response = forward(&shared, &aws, parts, body).await;
            Ok(match state {
                StateAction::Show { status } if response.status().is_success() => {
                    let (mut rparts, rbody) = response.into_parts();
                    let shown = match rbody.collect().await {
                        Ok(b) => show_status(&b.to_bytes(), &status),
                        Err(e) => match e {},
                    };
                    rparts.headers.remove(hyper::header::CONTENT_LENGTH);
                    Response::from_parts(rparts, Full::new(Bytes::from(shown)))
                }
                _ => response,
            })
        }
        Outcome::Answer(what) => Ok(injected(&shared, &aws, what)),
        Outcome::LoseAnswer(what) => {
            // The emulator executes it; the client never learns.
            let _ = forward(&shared, &aws, parts, body).await;
            Ok(injected(&shared, &aws, what))
        }
        Outcome::Rewrite(find, replace) => {
            let (rparts, rbody) = forward(&shared, &aws, parts, body).await.into_parts();
            let text = String::from_utf8_lossy(&rbody.collect().await.map(|b| b.to_bytes()).unwrap_or_default()).replace(&find, &replace);
            let mut rparts = rparts;
            rparts.headers.remove(hyper::header::CONTENT_LENGTH);
            Ok(Response::from_parts(rparts, Full::new(Bytes::from(text))))
        }
        Outcome::Reset => Err(Dropped("reset")),
        Outcome::Hang(d) => {
            tokio::time::sleep(d).await;
            Err(Dropped("hang"))
        }
    }
}

/// What Route 53 says of a change batch's `DELETE`s (see [`crate::exact_delete`]).
#[derive(Debug, PartialEq, Eq)]
enum DeleteCheck {
    /// Not checked: no `DELETE`, not a change batch, or the zone could not be listed.
    Unchecked,
    /// Every `DELETE` matches the set the zone has.
    Matched,
    /// Refused, with Route 53's message.
    Refused(String),
}

/// Checks the `DELETE`s of change batch `body` against the sets the zone
/// has, listed upstream with the request's own credentials; a listing that
/// cannot be had leaves the batch to the emulator (and says so in the log).
async fn check_deletes(shared: &Shared, parts: &hyper::http::request::Parts, body: &[u8]) -> DeleteCheck {
    let deletes = match exact_delete::deletes(body) {
        Ok(d) if !d.is_empty() => d,
        _ => return DeleteCheck::Unchecked,
    };
    let base = format!("{}{}", shared.upstreams.for_service("route53").trim_end_matches('/'), parts.uri.path().trim_end_matches('/'));
    let mut current = Vec::new();
    let mut query = String::new();
    for _ in 0..20 {
        let mut req = Request::builder().method("GET").uri(format!("{base}{query}"));
        for (k, v) in &parts.headers {
            if matches!(k.as_str(), "authorization" | "x-amz-date" | "x-amz-security-token") {
                req = req.header(k, v);
            }
        }
        let page = async {
            let response = shared.client.request(req.body(Full::new(Bytes::new())).map_err(|e| e.to_string())?).await.map_err(|e| e.to_string())?;
            let ok = response.status().is_success();
            let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            if !ok {
                return Err(format!("the listing was refused: {}", String::from_utf8_lossy(&bytes)));
            }
            exact_delete::listed(&bytes)
        };
        match page.await {
            Ok((sets, next)) => {
                current.extend(sets);
                match next {
                    Some((name, kind, id)) => {
                        query = format!("?name={}&type={}", encode(&name), encode(&kind));
                        if let Some(id) = id {
                            query.push_str(&format!("&identifier={}", encode(&id)));
                        }
                    }
                    None => return exact_delete::refusal(&deletes, &current).map_or(DeleteCheck::Matched, DeleteCheck::Refused),
                }
            }
            Err(why) => {
                tracing::warn!(zone = %base, %why, "chaos proxy: could not list the zone to check a DELETE; the emulator decides");
                return DeleteCheck::Unchecked;
            }
        }
    }
    tracing::warn!(zone = %base, "chaos proxy: the zone has more than 20 pages of records; its DELETEs are not checked");
    DeleteCheck::Unchecked
}

/// `v` percent-encoded for a query string.
fn encode(v: &str) -> String {
    v.bytes().map(|b| if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// An error in the service's shape, under a `chaos-` request id.
fn injected(shared: &Shared, aws: &AwsRequest, what: crate::error_shape::Injected) -> Response<Full<Bytes>> {
    let id = format!("chaos-{:08}", shared.seq.fetch_add(1, Ordering::Relaxed));
    respond(answer(aws, what, &id))
}

/// An injected answer as an HTTP response.
fn respond(a: crate::error_shape::Answer) -> Response<Full<Bytes>> {
    let mut resp = Response::builder().status(a.status);
    for (k, v) in a.headers {
        resp = resp.header(k, v);
    }
    resp.body(Full::new(Bytes::from(a.body))).unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Passes the request to its emulator and relays the answer; an emulator
/// that cannot be reached is a 502, as a load balancer would say. The
/// emulator's side runs to its end, and is counted, even if the client goes
/// away meanwhile: an agent killed in the middle of a request still had its
/// request take effect, and the count of accepted requests must say so.
async fn forward(shared: &Arc<Shared>, aws: &AwsRequest, parts: hyper::http::request::Parts, body: Bytes) -> Response<Full<Bytes>> {
    let (shared, aws) = (shared.clone(), aws.clone());
    match tokio::spawn(async move { upstream(&shared, &aws, parts, body).await }).await {
        Ok(r) => r,
        Err(e) => Response::builder()
            .status(502)
            .body(Full::new(Bytes::from(format!("chaos proxy: the forwarding task failed: {e}"))))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))),
    }
}

async fn upstream(shared: &Shared, aws: &AwsRequest, parts: hyper::http::request::Parts, body: Bytes) -> Response<Full<Bytes>> {
    let _one_at_a_time = if aws.service == "dynamodb" { Some(shared.dynamodb.lock().await) } else { None };
    let upstream = shared.upstreams.for_service(&aws.service);
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let uri = format!("{}{}", upstream.trim_end_matches('/'), path);
    let mut out = Request::builder().method(parts.method.clone()).uri(&uri);
    for (k, v) in &parts.headers {
        if k != hyper::header::HOST {
            out = out.header(k, v);
        }
    }
    let bad_gateway = |why: String| {
        Response::builder()
            .status(502)
            .body(Full::new(Bytes::from(format!("chaos proxy: {uri}: {why}"))))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
    };
    let request = match out.body(Full::new(body)) {
        Ok(r) => r,
        Err(e) => return bad_gateway(e.to_string()),
    };
    let response = match shared.client.request(request).await {
        Ok(r) => r,
        Err(e) => return bad_gateway(e.to_string()),
    };
    let (rparts, rbody) = response.into_parts();
    shared.faults.record(aws, rparts.status.as_u16());
    match rbody.collect().await {
        Ok(b) => Response::from_parts(rparts, Full::new(b.to_bytes())),
        Err(e) => bad_gateway(e.to_string()),
    }
}
