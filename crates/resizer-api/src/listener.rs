//! Every HTTP listener of every role (public, admin, internal, health): a cap
//! on open connections, a deadline for each request head, an idle timeout for
//! kept-alive connections, a bound on head size, a deadline and a minimum rate
//! for request bodies, and a graceful stop.
//!
//! Why not `axum::serve`: it has none of these, and a client that opens a
//! socket and sends nothing, or one header byte a second, holds memory and a
//! task for as long as it likes. Timeouts are checked by one watchdog per
//! connection on a coarse tick instead of a timer per read, so the hot path
//! (reading bodies) pays two relaxed atomic adds per read.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use resizer_telemetry::GaugeGuard;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The bounds every listener enforces; see docs/configuration.md (`[http]`).
#[derive(Debug, Clone, Copy)]
pub struct ListenerLimits {
    /// Open connections; one more is closed at once, before any byte is read.
    pub max_connections: usize,
    /// Time to receive a whole request head, counted from the connection's
    /// start (first request) or from the head's first byte (later ones).
    pub header_read_timeout: Duration,
    /// Time a kept-alive connection may wait, with no byte of a next request, before it is closed.
    pub idle_timeout: Duration,
    /// Largest request head (request line and headers); 431 above.
    pub max_header_bytes: usize,
    /// Time to receive a whole request body.
    pub body_timeout: Duration,
    /// Slowest body accepted after the first second: a client sending less is cut off with 408.
    pub min_body_bytes_per_sec: u64,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_header_bytes: 32 * 1024,
            body_timeout: Duration::from_secs(30),
            min_body_bytes_per_sec: 16 * 1024,
        }
    }
}

/// Why a connection or body was cut off, as the `reason` label of
/// `resizer_http_connections_dropped_total`.
fn dropped(listener: &'static str, reason: &'static str) {
    metrics::counter!("resizer_http_connections_dropped_total", "listener" => listener, "reason" => reason)
        .increment(1);
}

/// Serves `router` on `listener` until `stop` is cancelled, then stops
/// accepting and waits for open connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    name: &'static str,
    limits: ListenerLimits,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: CancellationToken,
) {
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!(listener = name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            dropped(name, "connection_cap");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (router, stop, tls) = (router.clone(), stop.clone(), tls.clone());
        tokio::spawn(async move {
            connection(stream, router, name, limits, tls, stop).await;
            drop(permit);
        });
    }
    drop(listener);
    // Every connection holds a permit until it ends.
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
}

/// What the watchdog reads of one connection.
struct Activity {
    started: Instant,
    bytes_read: AtomicU64,
    /// `bytes_read` when the last request finished.
    bytes_at_idle: AtomicU64,
    /// Milliseconds after `started` when the last request finished.
    idle_since_ms: AtomicU64,
    requests_done: AtomicU64,
    active: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            bytes_read: AtomicU64::new(0),
            bytes_at_idle: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(0),
            requests_done: AtomicU64::new(0),
            active: AtomicUsize::new(0),
        }
    }

    fn begin(self: &Arc<Self>) -> RequestGuard {
        self.active.fetch_add(1, Ordering::SeqCst);
        RequestGuard(self.clone())
    }
}

/// Marks a request in progress; on drop the connection is idle again.
struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let a = &self.0;
        a.bytes_at_idle
            .store(a.bytes_read.load(Ordering::SeqCst), Ordering::SeqCst);
        a.idle_since_ms
            .store(a.started.elapsed().as_millis() as u64, Ordering::SeqCst);
        a.requests_done.fetch_add(1, Ordering::SeqCst);
        a.active.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn connection(
    stream: TcpStream,
    router: Router,
    name: &'static str,
    limits: ListenerLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: CancellationToken,
) {
    let _open = GaugeGuard::raise(metrics::gauge!("resizer_http_connections_open", "listener" => name));
    // Handlers that throttle by client (wrong secrets) read it as `ConnectInfo`.
    let peer = stream.peer_addr().ok();
    let Some(acceptor) = tls else {
        return serve_io(stream, peer, router, name, limits, stop).await;
    };
    // The handshake is part of the head: it gets the same deadline.
    match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls_stream)) => serve_io(tls_stream, peer, router, name, limits, stop).await,
        Ok(Err(e)) => {
            dropped(name, "tls_handshake");
            tracing::debug!(listener = name, error = %e, "TLS handshake failed");
        }
        Err(_) => dropped(name, "tls_handshake"),
    }
}

/// Serves HTTP/1 on one accepted (and, with TLS, handshaken) connection.
async fn serve_io<S>(
    stream: S,
    peer: Option<std::net::SocketAddr>,
    router: Router,
    name: &'static str,
    limits: ListenerLimits,
    stop: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Counted {
        inner: stream,
        activity: activity.clone(),
    });
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let busy = requests.begin();
        let router = router.clone();
        async move {
            let mut request = request.map(|body| Body::new(TimedBody::new(body, name, limits)));
            if let Some(peer) = peer {
                request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            }
            let response = router.oneshot(request).await;
            drop(busy);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .max_header_size(limits.max_header_bytes)
        .max_buf_size(limits.max_header_bytes.max(8192) * 2)
        .max_headers(100)
        .header_read_timeout(None);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(listener = name, error = %e, "connection ended with an error");
            }
        }
        reason = watchdog(&activity, &limits) => {
            dropped(name, reason);
            tracing::debug!(listener = name, reason, "connection closed");
        }
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Returns when the connection has overstayed: `header_timeout` (a head not
/// complete in time) or `idle` (a kept-alive connection with nothing to do).
async fn watchdog(activity: &Activity, limits: &ListenerLimits) -> &'static str {
    let tick = (limits.header_read_timeout.min(limits.idle_timeout) / 4)
        .clamp(Duration::from_millis(25), Duration::from_secs(1));
    let mut head_started: Option<Instant> = None;
    let mut done_seen = 0;
    loop {
        tokio::time::sleep(tick).await;
        let now = Instant::now();
        if activity.active.load(Ordering::SeqCst) > 0 {
            head_started = None;
            continue;
        }
        let done = activity.requests_done.load(Ordering::SeqCst);
        if done != done_seen {
            done_seen = done;
            head_started = None;
        }
        if done == 0 {
            // The first request's head is due from the moment the socket opened.
            if now - activity.started >= limits.header_read_timeout {
                return "header_timeout";
            }
            continue;
        }
        let waiting =
            activity.bytes_read.load(Ordering::SeqCst) == activity.bytes_at_idle.load(Ordering::SeqCst);
        if waiting {
            let idle_since =
                activity.started + Duration::from_millis(activity.idle_since_ms.load(Ordering::SeqCst));
            if now.saturating_duration_since(idle_since) >= limits.idle_timeout {
                return "idle";
            }
        } else if now - *head_started.get_or_insert(now) >= limits.header_read_timeout {
            return "header_timeout";
        }
    }
}

/// The socket, counting what is read so the watchdog can tell idle from busy.
struct Counted<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            self.activity.bytes_read.fetch_add(read as u64, Ordering::Relaxed);
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A request body that ends in [`BodyTooSlow`] once it has taken longer than
/// its deadline, or has fallen below the minimum rate after a one-second grace.
/// Checked only while someone reads it: a handler that never reads the body
/// is not held up by it.
struct TimedBody {
    inner: Incoming,
    name: &'static str,
    started: Instant,
    received: u64,
    limits: ListenerLimits,
    check: Pin<Box<tokio::time::Sleep>>,
}

/// Grace before the minimum body rate applies (a slow start is not an attack).
const BODY_RATE_GRACE: Duration = Duration::from_secs(1);

impl TimedBody {
    fn new(inner: Incoming, name: &'static str, limits: ListenerLimits) -> Self {
        let first = BODY_RATE_GRACE.min(limits.body_timeout);
        Self {
            inner,
            name,
            started: Instant::now(),
            received: 0,
            limits,
            check: Box::pin(tokio::time::sleep(first)),
        }
    }

    /// Whether the body is behind: past its deadline, or below the minimum rate.
    fn behind(&self) -> bool {
        let elapsed = self.started.elapsed();
        if elapsed >= self.limits.body_timeout {
            return true;
        }
        let rated = elapsed.saturating_sub(BODY_RATE_GRACE).as_secs_f64();
        (self.received as f64) < self.limits.min_body_bytes_per_sec as f64 * rated
    }
}

/// The request body was cut off: too slow, or not complete within its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received in time")]
pub struct BodyTooSlow;

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        while this.check.as_mut().poll(cx).is_ready() {
            if this.behind() {
                dropped(this.name, "body_slow");
                return Poll::Ready(Some(Err(Box::new(BodyTooSlow))));
            }
            let next = tokio::time::Instant::now() + Duration::from_millis(500);
            this.check.as_mut().reset(next);
        }
        let poll = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &poll
            && let Some(data) = frame.data_ref()
        {
            this.received += data.len() as u64;
        }
        poll.map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether a body error (as seen through axum's boxing) is [`BodyTooSlow`].
pub fn is_body_too_slow(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<BodyTooSlow>() {
            return true;
        }
        current = e.source();
    }
    false
}
