//! Serving a router over TCP (docs/OPERATIONS.md): HTTP/1.1 connections on hyper's own
//! connection builder, with the connection-level limits `axum::serve` does not offer.
//!
//! Each connection is in one of three phases, and closed when it stays in one too long:
//!
//! - **head**: from accepting the connection, or from the first byte of a later request, to
//!   the end of the request head: at most `header_read_timeout`;
//! - **busy**: a request is being handled and answered: at most `request_timeout` plus
//!   [`WRITE_GRACE`] (the router answers at `request_timeout`; the grace lets that answer
//!   reach a client that reads slowly, then the connection is dropped). A streaming bulk
//!   import or export (`…/_bulk`, `…/_export`) may run for hours: for it the limit is on
//!   *inactivity* instead —
//!   every byte read or written restarts the busy clock;
//! - **idle**: keep-alive between requests, from the end of one response to the first byte
//!   of the next: at most `idle_timeout`.
//!
//! hyper's own `header_read_timeout` runs as a backstop set to `idle_timeout +
//! header_read_timeout`: it bounds the same wait (end of the previous response to the end of
//! the next head) in case the phase tracking here ever missed a transition.
//!
//! On shutdown the listener closes, idle connections close at once, busy ones finish their
//! request, and whatever is still open after `shutdown_timeout` is dropped.
//!
//! A request hyper cannot parse (a head over [`HYPER_MAX_HEAD_BYTES`], a malformed request
//! line or header) never reaches the router: hyper answers it itself with an empty `400`,
//! `414` or `431` and closes. The stream below recognises those answers and sends the one
//! JSON error body instead ([`hyper_rejection`]), so every status a client sees has it.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::Service;

/// Largest request head hyper reads (request line and headers). Between the router's own
/// limits ([`crate::edge::MAX_HEADER_BYTES`], [`crate::edge::MAX_URI_BYTES`]) and this, the
/// router answers `431` / `414` on a connection that stays open; beyond it hyper rejects the
/// head, the answer is rewritten to the JSON `431` ([`hyper_rejection`]) and the connection
/// closes.
pub const HYPER_MAX_HEAD_BYTES: usize = 32 * 1024;
/// Most header fields hyper parses (above the router's [`crate::edge::MAX_HEADER_COUNT`], so
/// the router answers the JSON `431`); beyond it hyper rejects the head as above.
pub const HYPER_MAX_HEADERS: usize = 128;
/// hyper's per-connection read buffer limit (it starts at 8 KiB and grows only as needed).
pub const HYPER_MAX_BUFFER: usize = 64 * 1024;
/// How long a busy connection may take beyond `request_timeout` to deliver its answer.
pub const WRITE_GRACE: Duration = Duration::from_secs(10);

/// Connection-level limits (defaults: docs/OPERATIONS.md).
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    /// The router's whole-request deadline ([`crate::edge::EdgeOptions::request_timeout`]).
    pub request_timeout: Duration,
    /// How long shutdown waits for open connections before dropping them.
    pub shutdown_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            request_timeout: crate::edge::EdgeOptions::default().request_timeout,
            shutdown_timeout: Duration::from_secs(20),
        }
    }
}

/// Serves `router` on `listener` until `signal` resolves, then drains for at most
/// `options.shutdown_timeout`. Returns once every connection is closed or dropped.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    signal: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.idle_timeout + options.header_read_timeout)
        .max_header_size(HYPER_MAX_HEAD_BYTES)
        .max_headers(HYPER_MAX_HEADERS)
        .max_buf_size(HYPER_MAX_BUFFER);
    let builder = Arc::new(builder);
    let options = Arc::new(options);
    // Dropping the sender tells every connection to finish up.
    let (draining_tx, draining_rx) = tokio::sync::watch::channel(());
    let mut connections = JoinSet::new();
    let mut signal = pin!(signal);
    loop {
        tokio::select! {
            () = &mut signal => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let mut draining = draining_rx.clone();
                    let draining = async move {
                        let _ = draining.changed().await;
                    };
                    connections.spawn(connection(stream, router.clone(), builder.clone(), options.clone(), draining));
                }
                Err(e) => accept_error(e).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    drop(draining_tx);
    let open = connections.len();
    tracing::info!(open, limit_s = options.shutdown_timeout.as_secs_f64(), "draining connections");
    let drained =
        tokio::time::timeout(options.shutdown_timeout, async { while connections.join_next().await.is_some() {} })
            .await;
    if drained.is_err() {
        tracing::warn!(open = connections.len(), "shutdown timeout reached; dropping the remaining connections");
        connections.shutdown().await;
    }
    Ok(())
}

/// Accept errors: a connection that failed before it was accepted is not our problem; running
/// out of file descriptors is, and accepting again at once would spin.
async fn accept_error(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; pausing accepts for 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Drives one connection until it ends, a phase deadline passes, or (after `draining`
/// resolved and hyper's graceful shutdown) its last request is answered.
async fn connection(
    stream: TcpStream,
    router: Router,
    builder: Arc<hyper::server::conn::http1::Builder>,
    options: Arc<ServeOptions>,
    draining: impl Future<Output = ()>,
) {
    let clock = Arc::new(Clock::new());
    let io = TokioIo::new(TimedStream { inner: stream, clock: clock.clone(), rejection: None });
    let service = ConnectionService { router, clock: clock.clone() };
    let mut conn = pin!(builder.serve_connection(io, service));
    let mut draining = pin!(draining);
    let mut shutting_down = false;
    let mut sleep = pin!(tokio::time::sleep_until(clock.deadline(&options)));
    poll_fn(|cx| {
        if !shutting_down && draining.as_mut().poll(cx).is_ready() {
            shutting_down = true;
            conn.as_mut().graceful_shutdown();
        }
        if let Poll::Ready(result) = conn.as_mut().poll(cx) {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return Poll::Ready(());
        }
        // Reading and answering happen inside `conn.poll`: the phase is current now.
        let deadline = clock.deadline(&options);
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                tracing::debug!(phase = clock.phase().name(), "connection timed out; closing it");
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    })
    .await;
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Head = 0,
    Busy = 1,
    Idle = 2,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Head => "head",
            Phase::Busy => "busy",
            Phase::Idle => "idle",
        }
    }
}

/// A connection's phase and when it began, shared by its stream, its service and its task
/// (all polled from the connection's one task, so the atomics are never contended).
struct Clock {
    start: Instant,
    /// `phase | milliseconds since start << 2`.
    state: AtomicU64,
    in_flight: AtomicUsize,
    /// A streaming request is in flight: progress in either direction restarts `Busy`.
    streaming: std::sync::atomic::AtomicBool,
}

impl Clock {
    fn new() -> Self {
        Clock {
            start: Instant::now(),
            state: AtomicU64::new(Phase::Head as u64),
            in_flight: AtomicUsize::new(0),
            streaming: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn enter(&self, phase: Phase) {
        let since = self.start.elapsed().as_millis() as u64;
        self.state.store(phase as u64 | since << 2, Ordering::Relaxed);
    }

    fn phase(&self) -> Phase {
        match self.state.load(Ordering::Relaxed) & 3 {
            0 => Phase::Head,
            1 => Phase::Busy,
            _ => Phase::Idle,
        }
    }

    fn deadline(&self, options: &ServeOptions) -> Instant {
        let state = self.state.load(Ordering::Relaxed);
        let since = self.start + Duration::from_millis(state >> 2);
        since
            + match self.phase() {
                Phase::Head => options.header_read_timeout,
                Phase::Busy => options.request_timeout + WRITE_GRACE,
                Phase::Idle => options.idle_timeout,
            }
    }

    /// Bytes arrived: the first bytes after an idle spell start a request head.
    fn on_read(&self) {
        match self.phase() {
            Phase::Idle => self.enter(Phase::Head),
            Phase::Busy => self.on_progress(),
            Phase::Head => {}
        }
    }

    /// Bytes moved while busy: a streaming request is still alive.
    fn on_progress(&self) {
        if self.streaming.load(Ordering::Relaxed) && self.phase() == Phase::Busy {
            self.enter(Phase::Busy);
        }
    }

    fn request_started(&self, streaming: bool) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.streaming.store(streaming, Ordering::Relaxed);
        self.enter(Phase::Busy);
    }

    fn request_finished(&self) {
        if self.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.streaming.store(false, Ordering::Relaxed);
            self.enter(Phase::Idle);
        }
    }
}

/// The TCP stream, telling the clock when bytes arrive, and swapping hyper's own bodiless
/// rejections for the JSON error body.
struct TimedStream {
    inner: TcpStream,
    clock: Arc<Clock>,
    /// The JSON answer replacing hyper's rejection, and how much of it is written. Once set,
    /// everything else hyper writes (the rest of its rejection) is dropped: hyper closes the
    /// connection after a rejection, so nothing follows it.
    rejection: Option<(Vec<u8>, usize)>,
}

impl TimedStream {
    /// Writes the replacement answer, then reports `claimed` bytes (what hyper asked to
    /// write) as written.
    fn poll_write_rejection(&mut self, cx: &mut Context<'_>, claimed: usize) -> Poll<io::Result<usize>> {
        let Some((answer, written)) = self.rejection.as_mut() else { return Poll::Ready(Ok(claimed)) };
        while *written < answer.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &answer[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(claimed))
    }

    /// Whether this write is (or follows) a hyper rejection; sets up the replacement if it
    /// starts one. Only hyper answers before a request reached the service.
    fn intercepts(&mut self, first: &[u8]) -> bool {
        if self.rejection.is_some() {
            return true;
        }
        if self.clock.in_flight.load(Ordering::Relaxed) != 0 {
            return false;
        }
        match hyper_rejection(first) {
            Some(answer) => {
                self.rejection = Some((answer, 0));
                true
            }
            None => false,
        }
    }
}

/// The JSON answer for a response head hyper wrote on its own: a `400`, `414` or `431` with
/// `content-length: 0`. The router never sends those bodiless (its errors carry the JSON
/// body), so the match cannot catch a routed response.
fn hyper_rejection(head: &[u8]) -> Option<Vec<u8>> {
    use corral_core::error::ErrorCode;
    let status = head.strip_prefix(b"HTTP/1.1 ")?.get(..3)?;
    let (code, message) = match status {
        b"400" => (ErrorCode::InvalidHeader, "the request line or a header could not be parsed"),
        b"414" => (ErrorCode::UriTooLong, "the request target is too long"),
        b"431" => {
            (ErrorCode::HeadersTooLarge, "the request head is larger than the server reads (32 KiB, 128 header fields)")
        }
        _ => return None,
    };
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")?;
    let bodiless = head[..end].split(|&b| b == b'\n').any(|line| line.eq_ignore_ascii_case(b"content-length: 0\r"));
    if !bodiless {
        return None;
    }
    let body = crate::error::error_body(code, message, serde_json::json!({})).to_string();
    let reason = match status {
        b"400" => "Bad Request",
        b"414" => "URI Too Long",
        _ => "Request Header Fields Too Large",
    };
    let status = std::str::from_utf8(status).ok()?;
    Some(
        format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             x-content-type-options: nosniff\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl AsyncRead for TimedStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.on_read();
        }
        polled
    }
}

impl AsyncWrite for TimedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.intercepts(buf) {
            return self.poll_write_rejection(cx, buf.len());
        }
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.clock.on_progress();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
        if self.intercepts(first) {
            let claimed = bufs.iter().map(|b| b.len()).sum();
            return self.poll_write_rejection(cx, claimed);
        }
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.clock.on_progress();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The router as one connection's hyper service: a request is in flight from the call until
/// hyper drops its response body (written, or abandoned).
struct ConnectionService {
    router: Router,
    clock: Arc<Clock>,
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response<TrackedResponse>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        // Streaming routes (crate::routes::bulk, crate::routes::export) are timed by
        // inactivity, not in total.
        let path = request.uri().path();
        self.clock.request_started(path.ends_with("/_bulk") || path.ends_with("/_export"));
        let guard = InFlight(self.clock.clone());
        let response = self.router.clone().call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|inner| TrackedResponse { inner, _guard: guard }))
        })
    }
}

/// Marks the request finished when dropped.
struct InFlight(Arc<Clock>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A response body holding its request's [`InFlight`] guard.
struct TrackedResponse {
    inner: Body,
    _guard: InFlight,
}

impl http_body::Body for TrackedResponse {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
