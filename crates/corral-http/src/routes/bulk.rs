//! `POST /api/v2/{account|contact}/_bulk` (docs/API.md, Bulk import): NDJSON in, one NDJSON
//! result per input line out, in order, both streamed.
//!
//! The request body is read chunk by chunk and split into lines of at most
//! [`MAX_BODY_BYTES`] (the single-call limit); lines are written in batches, one write
//! transaction per batch with a savepoint per line ([`corral_store::bulk`]), and a batch's
//! results are sent only after it commits: every result line the client has read is durable.
//! A batch is the complete lines at hand (at most [`BATCH_LINES`] / [`BATCH_BYTES`]), so a
//! client that sends one line and waits for its answer gets it at once; a batch whose
//! transaction runs past [`BATCH_TIME`] commits what it wrote and goes on in a new one.
//!
//! Memory is bounded by one batch of input plus [`RESULT_BUFFER`] batches of results: a client
//! that stops reading results stops the server reading its input (TCP back-pressure).

use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult, error_body};
use crate::extract::{MAX_BODY_BYTES, parse_json};
use crate::request_id;
use crate::routes::shared::{ChannelBody, StreamCut};
use crate::routes::v2_records::{named_for_v2, parse_assert, writable};
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use corral_core::v2::{self, WriteMode};
use corral_core::{CoreError, ErrorCode, RecordType};
use corral_store::BulkOp;
use http_body::Body as _;
use serde_json::{Value as Json, json};
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::Poll;
use tokio::sync::mpsc;

/// The media type of bulk requests and responses.
pub const NDJSON: &str = "application/x-ndjson";
/// Most lines written in one transaction. Small enough that a batch holds the SQLite writer
/// for milliseconds and PostgreSQL's per-transaction lock table (asserts take an advisory
/// lock per key) is never near full; large enough that commits are a small share of the work.
pub const BATCH_LINES: usize = 500;
/// Longest a batch's transaction runs before it commits and answers the lines it wrote (the
/// rest of the batch follows in the next one): on a slow or loaded database results keep
/// flowing, and the connection's inactivity limit only ever meets a client that stalls.
pub const BATCH_TIME: std::time::Duration = std::time::Duration::from_secs(1);
/// Most input bytes in one batch (at least one line is always taken).
pub const BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Batches of results queued for a client that reads slowly.
const RESULT_BUFFER: usize = 4;

/// One input line, numbered from 1 as in the file (blank lines count, but get no result).
#[derive(Debug, PartialEq, Eq)]
enum Item {
    Line(u64, Bytes),
    /// Longer than [`MAX_BODY_BYTES`]: answered 413 without being kept.
    TooLong(u64),
}

/// Splits a byte stream into lines without holding more than one line.
#[derive(Debug, Default)]
struct Lines {
    partial: BytesMut,
    /// Inside a line already known to be too long: skipping to its end.
    skipping: bool,
    numbered: u64,
}

impl Lines {
    fn next_number(&mut self) -> u64 {
        self.numbered += 1;
        self.numbered
    }

    fn push(&mut self, mut chunk: &[u8], out: &mut VecDeque<Item>) {
        while !chunk.is_empty() {
            let newline = chunk.iter().position(|&b| b == b'\n');
            let (piece, rest) = match newline {
                Some(i) => (&chunk[..i], &chunk[i + 1..]),
                None => (chunk, &[][..]),
            };
            if !self.skipping && self.partial.len() + piece.len() > MAX_BODY_BYTES {
                self.skipping = true;
                self.partial = BytesMut::new();
            }
            if !self.skipping {
                self.partial.extend_from_slice(piece);
            }
            if newline.is_some() {
                self.end_line(out);
            }
            chunk = rest;
        }
    }

    fn end_line(&mut self, out: &mut VecDeque<Item>) {
        let n = self.next_number();
        if std::mem::take(&mut self.skipping) {
            out.push_back(Item::TooLong(n));
            return;
        }
        let line = self.partial.split().freeze();
        if !line.iter().all(u8::is_ascii_whitespace) {
            out.push_back(Item::Line(n, line));
        }
    }

    /// The end of the input: a last line without a newline still counts.
    fn finish(&mut self, out: &mut VecDeque<Item>) {
        if self.skipping || !self.partial.is_empty() {
            self.end_line(out);
        }
    }
}

fn is_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(NDJSON))
}

/// `POST /api/v2/{rt}/_bulk`.
pub async fn bulk(
    State(state): State<AppState>,
    principal: Principal,
    Path(rt): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let rt = writable(&rt, "")?;
    principal.require(Permission::write(rt))?;
    if !is_ndjson(&headers) {
        return Err(ApiError::new(ErrorCode::UnsupportedMediaType, format!("send the body as {NDJSON}")));
    }
    let (tx, rx) = mpsc::channel(RESULT_BUFFER);
    let id = request_id::current();
    // Its own task, so reading and writing the next batch overlaps sending this one's results.
    tokio::spawn(request_id::within(id, run(state, principal, rt, body, tx)));
    let mut response = Body::new(ChannelBody(rx)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}

/// Reads, writes and answers batches until the input ends or the client goes away.
async fn run(
    state: AppState,
    principal: Principal,
    rt: RecordType,
    mut body: Body,
    tx: mpsc::Sender<Result<Bytes, StreamCut>>,
) {
    let mut lines = Lines::default();
    let mut pending: VecDeque<Item> = VecDeque::new();
    let mut ended = false;
    loop {
        // Wait for at least one line, then take whatever else has already arrived.
        while !ended && pending.is_empty() {
            ended = read_frame(&mut body, &mut lines, &mut pending, true).await == Read::End;
        }
        while !ended && pending.len() < BATCH_LINES && queued_bytes(&pending) < BATCH_BYTES {
            match read_frame(&mut body, &mut lines, &mut pending, false).await {
                Read::Data => {}
                Read::NotYet => break,
                Read::End => ended = true,
            }
        }
        if ended {
            lines.finish(&mut pending);
        }
        if pending.is_empty() {
            return;
        }
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(item) = pending.pop_front() {
            bytes += match &item {
                Item::Line(_, l) => l.len(),
                Item::TooLong(_) => 0,
            };
            batch.push(item);
            if batch.len() >= BATCH_LINES || bytes >= BATCH_BYTES {
                break;
            }
        }
        if write_batch(&state, &principal, rt, batch, &tx).await.is_err() {
            tracing::info!(request_id = %request_id::current(), "bulk client went away; stopping");
            return;
        }
    }
}

fn queued_bytes(pending: &VecDeque<Item>) -> usize {
    pending.iter().map(|i| if let Item::Line(_, l) = i { l.len() } else { 0 }).sum()
}

#[derive(Debug, PartialEq, Eq)]
enum Read {
    Data,
    /// Nothing has arrived yet (only when not waiting).
    NotYet,
    /// The body ended, or failed: a client that broke off its upload has no one to answer.
    End,
}

/// Reads one frame into `lines`, waiting for it when `wait`, else only if it is already there.
async fn read_frame(body: &mut Body, lines: &mut Lines, out: &mut VecDeque<Item>, wait: bool) -> Read {
    let polled = std::future::poll_fn(|cx| match Pin::new(&mut *body).poll_frame(cx) {
        Poll::Pending if !wait => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
        Poll::Ready(frame) => Poll::Ready(Some(frame)),
    })
    .await;
    match polled {
        None => Read::NotYet,
        Some(None) => Read::End,
        Some(Some(Err(e))) => {
            tracing::info!(request_id = %request_id::current(), error = %e, "bulk body read failed");
            Read::End
        }
        Some(Some(Ok(frame))) => {
            if let Ok(data) = frame.into_data() {
                lines.push(&data, out);
            }
            Read::Data
        }
    }
}

/// Parses, writes and answers one batch: its lines go to the database in transactions of at
/// most [`BATCH_TIME`] each, and each transaction's results are sent once it commits. `Err`:
/// the client went away.
async fn write_batch(
    state: &AppState,
    principal: &Principal,
    rt: RecordType,
    batch: Vec<Item>,
    tx: &mpsc::Sender<Result<Bytes, StreamCut>>,
) -> Result<(), ClientGone> {
    // Each line's number and its parse error; the lines that parsed go to `ops`, in order.
    let mut parsed: Vec<(u64, ApiResult<BulkOp>)> = Vec::with_capacity(batch.len());
    match state.schema(&principal.actor.tenant, rt).await {
        Ok(schema) => {
            for item in batch {
                match item {
                    Item::Line(n, line) => parsed.push((n, parse_line(rt, line, &schema))),
                    Item::TooLong(n) => parsed.push((
                        n,
                        Err(ApiError::new(
                            ErrorCode::PayloadTooLarge,
                            format!("the line is longer than {MAX_BODY_BYTES} bytes"),
                        )),
                    )),
                }
            }
        }
        Err(e) => {
            let (code, message) = (e.code, e.message);
            parsed = batch
                .into_iter()
                .map(|i| {
                    let n = match i {
                        Item::Line(n, _) | Item::TooLong(n) => n,
                    };
                    (n, Err(ApiError::new(code, message.clone())))
                })
                .collect();
        }
    }
    let mut ops = Vec::with_capacity(parsed.len());
    let parsed: Vec<(u64, Option<ApiError>)> = parsed
        .into_iter()
        .map(|(n, p)| match p {
            Ok(op) => {
                ops.push(op);
                (n, None)
            }
            Err(e) => (n, Some(e)),
        })
        .collect();
    let mut lines = parsed.into_iter().peekable();
    let mut written_ops = 0;
    while lines.peek().is_some() {
        // One transaction over the next ops (a failure fails every op left in the batch).
        let (outcomes, covered) = if written_ops == ops.len() {
            (Ok(Vec::new()), 0)
        } else {
            match state.store().bulk_write(&principal.actor, rt, &ops[written_ops..], BATCH_TIME).await {
                Ok(outcomes) => {
                    let n = outcomes.len();
                    (Ok(outcomes), n)
                }
                Err(e) => (Err(ApiError::from(e)), ops.len() - written_ops),
            }
        };
        written_ops += covered;
        let mut outcomes = outcomes.map(Vec::into_iter);
        // Answer the lines up to the last op this transaction covered (and the refused lines
        // between them), in order.
        let mut out = Vec::new();
        let mut answered_ops = 0;
        while let Some((_, p)) = lines.peek() {
            if p.is_none() && answered_ops == covered {
                break;
            }
            let (n, p) = lines.next().expect("peeked");
            let result = match (p, &mut outcomes) {
                (Some(e), _) => error_line(n, &e),
                (None, Err(e)) => {
                    answered_ops += 1;
                    error_line(n, e)
                }
                (None, Ok(outcomes)) => {
                    answered_ops += 1;
                    match outcomes.next() {
                        Some(Ok((record, created))) => {
                            let (status, action) = if created { (201, "created") } else { (200, "updated") };
                            json!({"line": n, "status": status, "id": record.meta.id.canonical(), "action": action})
                        }
                        Some(Err(e)) => error_line(n, &named_for_v2(rt, e.into())),
                        None => error_line(n, &ApiError::internal()),
                    }
                }
            };
            serde_json::to_writer(&mut out, &result).expect("a JSON value serialises");
            out.push(b'\n');
        }
        tx.send(Ok(Bytes::from(out))).await.map_err(|_| ClientGone)?;
    }
    Ok(())
}

/// The response stream's reader is gone: nobody to answer.
struct ClientGone;

fn error_line(n: u64, e: &ApiError) -> Json {
    let body = error_body(e.code, &e.message, Json::Object(e.details.clone()));
    json!({"line": n, "status": e.code.status(), "error": body["error"]})
}

/// One line: `{"op": "create", …the create body}` or `{"op": "assert", "match", "attributes"}`,
/// validated exactly as `POST /api/v2/{type}` and `_assert` validate their bodies.
fn parse_line(rt: RecordType, line: Bytes, schema: &corral_core::custom::TenantSchema) -> ApiResult<BulkOp> {
    let mut value = parse_json(line)?.value;
    let op = match value.as_object_mut() {
        Some(obj) => obj.remove("op"),
        None => return Err(CoreError::invalid_value("op", "each line is a JSON object with an `op`").into()),
    };
    match op.as_ref().and_then(Json::as_str) {
        Some("create") => Ok(BulkOp::Create(v2::parse_write(rt, &value, WriteMode::Create, schema)?)),
        Some("assert") => {
            let (keys, write) = parse_assert(rt, &value, schema)?;
            Ok(BulkOp::Assert(keys, write))
        }
        None if op.is_none() => Err(CoreError::required_missing("op").into()),
        _ => Err(CoreError::invalid_value("op", "expected create or assert").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<Item> {
        let mut lines = Lines::default();
        let mut out = VecDeque::new();
        for c in chunks {
            lines.push(c, &mut out);
        }
        lines.finish(&mut out);
        out.into_iter().collect()
    }

    #[test]
    fn lines_are_numbered_across_chunks_and_blank_lines_count() {
        let items = split(&[b"{\"a\"", b":1}\n\n  \r\n{\"b\":2}\r", b"\n{\"c\":3}"]);
        assert_eq!(
            items,
            vec![
                Item::Line(1, Bytes::from_static(b"{\"a\":1}")),
                Item::Line(4, Bytes::from_static(b"{\"b\":2}\r")),
                Item::Line(5, Bytes::from_static(b"{\"c\":3}")),
            ]
        );
    }

    #[test]
    fn an_over_long_line_is_skipped_without_being_kept() {
        let long = vec![b'x'; MAX_BODY_BYTES / 2 + 1];
        let items = split(&[b"{}\n", &long, &long, b"\n{}\n", &long, &long]);
        assert_eq!(
            items,
            vec![
                Item::Line(1, Bytes::from_static(b"{}")),
                Item::TooLong(2),
                Item::Line(3, Bytes::from_static(b"{}")),
                Item::TooLong(4),
            ]
        );
    }
}
