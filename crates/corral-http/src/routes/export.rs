//! `POST /api/v2/{account|contact}/_export` (docs/API.md, Export): every record matching
//! a `_query` filter, streamed as NDJSON or CSV rows straight from the store.
//!
//! The rows are the flat export rows of [`corral_core::export`] (what `corral export`
//! writes and `corral import` reads back), in id order (creation order: ids are UUIDv7).
//! Pages of [`PAGE`] records are read by keyset on the id on one blocking thread and
//! rendered into the body on another (so reading a page overlaps rendering the previous
//! one), both off the async workers: an export scans the tenant. A client that reads
//! slowly holds the producer back (at most [`CHUNKS_IN_FLIGHT`] pages wait); one that goes
//! away stops it.
//!
//! Each page is its own read: a record written during an export appears as its page read
//! it, and one that exists throughout appears exactly once. A failure before the first page
//! is answered with the usual error body; a failure after it cuts the response short (the
//! chunked transfer does not end properly), so a client never takes a partial export for a
//! whole one.

use crate::auth::{Permission, Principal};
use crate::error::ApiResult;
use crate::extract::JsonBody;
use crate::request_id;
use crate::routes::shared::{ChannelBody, StreamCut, body_filters, object, resolve_plan};
use crate::routes::v2_records::writable;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use corral_core::export::Columns;
use corral_core::list::{Dialect as ListDialect, ListQuery, Plan};
use corral_core::{Actor, CoreError, Record, RecordType};
use serde_json::Value as Json;
use tokio::sync::{mpsc, oneshot};

/// Records read and rendered per page.
pub const PAGE: usize = 1000;
/// Rendered pages queued for a client that reads slowly.
const CHUNKS_IN_FLIGHT: usize = 2;
/// The media type of CSV exports.
pub const CSV: &str = "text/csv; charset=utf-8";

/// The two export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Ndjson,
    Csv,
}

/// `POST /api/v2/{rt}/_export` with `{"filters"?, "include_archived"?, "format"?}`.
pub async fn export(
    State(state): State<AppState>,
    principal: Principal,
    Path(rt): Path<String>,
    body: JsonBody,
) -> ApiResult<Response> {
    let rt = writable(&rt, "")?;
    principal.require(Permission::read(rt))?;
    let obj = object(&body.value, &["filters", "include_archived", "format"])?;
    let format = match obj.get("format") {
        None | Some(Json::Null) => Format::Ndjson,
        Some(Json::String(f)) if f == "ndjson" => Format::Ndjson,
        Some(Json::String(f)) if f == "csv" => Format::Csv,
        Some(_) => return Err(CoreError::invalid_value("format", "expected ndjson or csv").into()),
    };
    // Id order: the primary key's own order, so each page is one index range.
    let mut query = ListQuery { dialect: ListDialect::V2, sort: vec![("id".into(), false)], ..ListQuery::default() };
    if let Some(filters) = body_filters(obj)? {
        query.filters = filters;
    }
    if let Some(flag) = obj.get("include_archived").filter(|f| !f.is_null()) {
        query.include_deleted =
            flag.as_bool().ok_or_else(|| CoreError::invalid_value("include_archived", "expected true or false"))?;
    }
    let actor = principal.actor.clone();
    let (plan, schema) = resolve_plan(&state, &actor, rt, &query).await?;
    let columns = Columns::new(rt, &schema);
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let (pages_tx, pages_rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let (spent_tx, spent_rx) = std::sync::mpsc::channel();
    let (first_tx, first_rx) = oneshot::channel();
    let reader = Reader { state, actor, rt, plan, runtime: tokio::runtime::Handle::current() };
    let id = request_id::current();
    // Two threads: one reads pages while the other renders the previous one.
    let reader_id = id.clone();
    tokio::task::spawn_blocking(move || reader.run(reader_id, first_tx, pages_tx, spent_rx));
    tokio::task::spawn_blocking(move || render(id, columns, format, pages_rx, spent_tx, tx));
    // The first page decides the status: an error before any row is an ordinary error answer.
    match first_rx.await {
        Ok(Err(e)) => return Err(e.into()),
        Ok(Ok(())) => {}
        Err(_) => {
            return Err(corral_store::StoreError::Internal("the export stopped before its first page".into()).into());
        }
    }
    let mut response = Body::new(ChannelBody(rx)).into_response();
    let media = match format {
        Format::Ndjson => crate::routes::bulk::NDJSON,
        Format::Csv => CSV,
    };
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}

/// Reads the pages of an export in order, on a blocking thread.
struct Reader {
    state: AppState,
    actor: Actor,
    rt: RecordType,
    plan: Plan,
    runtime: tokio::runtime::Handle,
}

/// What the reader hands the renderer: a page of records, or why reading stopped.
type PageRead = Result<Vec<Record>, corral_store::StoreError>;

impl Reader {
    /// Reads pages until the last one, a failure, or the renderer going away. The first
    /// page's outcome also goes to `first` (it decides the response status).
    fn run(
        self,
        request_id: String,
        first: oneshot::Sender<Result<(), corral_store::StoreError>>,
        pages: mpsc::Sender<PageRead>,
        spent: std::sync::mpsc::Receiver<Vec<Record>>,
    ) {
        let mut first = Some(first);
        let mut after: Option<Vec<Json>> = None;
        loop {
            // Pages the renderer is done with are freed here, by the thread that allocated
            // them: the system allocator frees another thread's memory slowly (docs/PERFORMANCE.md).
            spent.try_iter().for_each(drop);
            let page = self.runtime.block_on(request_id::within(
                request_id.clone(),
                self.state.store().list_records(&self.actor, self.rt, &self.plan, after.as_deref(), PAGE),
            ));
            let (records, next) = match (page, first.take()) {
                (Ok(page), first) => {
                    if let Some(first) = first {
                        let _ = first.send(Ok(()));
                    }
                    page
                }
                (Err(e), Some(first)) => {
                    let _ = first.send(Err(e));
                    return;
                }
                (Err(e), None) => {
                    let _ = pages.blocking_send(Err(e));
                    return;
                }
            };
            if pages.blocking_send(Ok(records)).is_err() {
                return;
            }
            match next {
                Some(position) => after = Some(position),
                None => return,
            }
        }
    }
}

/// Renders pages into chunks of the body, on a blocking thread, until the reader ends or the
/// client goes away; a read failure cuts the body short.
fn render(
    request_id: String,
    columns: Columns,
    format: Format,
    mut pages: mpsc::Receiver<PageRead>,
    spent: std::sync::mpsc::Sender<Vec<Record>>,
    tx: mpsc::Sender<Result<Bytes, StreamCut>>,
) {
    // The CSV header row goes before the first page's rows, also when nothing matches.
    let mut csv_header = format == Format::Csv;
    while let Some(page) = pages.blocking_recv() {
        let chunk = page.map_err(|e| e.to_string()).and_then(|records| {
            let chunk = match format {
                Format::Csv => csv_page(&columns, std::mem::take(&mut csv_header), &records),
                Format::Ndjson => {
                    let mut out = Vec::with_capacity(records.len() * 512);
                    for record in &records {
                        columns.write_ndjson(record, &mut out);
                    }
                    Ok(Bytes::from(out))
                }
            };
            // Back to the reader to free (dropped here if it has finished).
            let _ = spent.send(records);
            chunk
        });
        let sent = match chunk {
            Ok(chunk) if chunk.is_empty() => Ok(()),
            Ok(chunk) => tx.blocking_send(Ok(chunk)),
            Err(e) => {
                tracing::error!(request_id = %request_id, error = %e, "export failed mid-stream; response cut short");
                let _ = tx.blocking_send(Err(StreamCut(e)));
                return;
            }
        };
        if sent.is_err() {
            tracing::info!(request_id = %request_id, "export client went away; stopping");
            return;
        }
    }
    // A CSV export of nothing still has its header row.
    if csv_header && let Ok(chunk) = csv_page(&columns, true, &[]) {
        let _ = tx.blocking_send(Ok(chunk));
    }
}

/// Renders one page of CSV rows (after the header row when `header`).
fn csv_page(columns: &Columns, header: bool, records: &[Record]) -> Result<Bytes, String> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(1 << 20));
    if header {
        w.write_record(columns.names()).map_err(|e| e.to_string())?;
    }
    for record in records {
        w.write_record(columns.cells(record).iter().map(|c| c.as_bytes())).map_err(|e| e.to_string())?;
    }
    w.into_inner().map(Bytes::from).map_err(|e| e.to_string())
}
