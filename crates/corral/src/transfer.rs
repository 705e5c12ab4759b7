//! `corral import` and `corral export` (docs/API.md, Bulk import and export): CSV and NDJSON
//! files into and out of one tenant's accounts or contacts.
//!
//! Both go through the HTTP API, so a file row is validated and answered exactly as an API
//! call: against a remote server (`--server URL --token T`), or in-process against the local
//! database through the same router `corral serve` runs (no network, no listening port).
//! Imports stream the file through `POST /api/v2/{type}/_bulk`; exports stream
//! `POST /api/v2/{type}/_export`.

use anyhow::{Context, Result, anyhow, bail};
use axum::Router;
use bytes::{Bytes, BytesMut};
use corral_core::RecordType;
use corral_core::schema::{field_by_api_name, field_by_v1_name};
use http_body_util::BodyExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value as Json, json};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::mpsc as std_mpsc;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;
use tokio::sync::mpsc;
use tower::ServiceExt;

/// Request body bytes buffered per chunk sent to the server.
const CHUNK_BYTES: usize = 64 * 1024;
/// Columns a file may carry that are stamped by the server: skipped on import.
const READ_ONLY: &[&str] = &[
    "id",
    "tenant_id",
    "organization_id",
    "app_id",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
    "created_by_user_id",
    "updated_by_user_id",
    "is_deleted",
    "deleted_at",
    "deleted_by",
    "archived_at",
    "archived_by_user_id",
    "schema_version",
    "version",
    "record_type",
    "domains",
];

/// Where API calls go.
pub enum Api {
    /// The router over the local database, called in-process with a minted token.
    Local { router: Router, token: String },
    /// A running server.
    Remote { client: reqwest::Client, base: String, token: String },
}

/// A request body: bytes, or a stream fed through a channel.
enum Payload {
    Bytes(Bytes),
    Stream(ChannelBody),
}

/// A streaming request body fed by a channel (closing the sender ends it).
struct ChannelBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|b| Ok(http_body::Frame::data(b))))
    }
}

/// A response body being read.
enum Reply {
    Local(axum::body::Body),
    Remote(reqwest::Response),
}

impl Reply {
    async fn chunk(&mut self) -> Result<Option<Bytes>> {
        match self {
            Reply::Local(body) => loop {
                match body.frame().await {
                    None => return Ok(None),
                    Some(Err(e)) => bail!("reading the response: {e}"),
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            return Ok(Some(data));
                        }
                    }
                }
            },
            Reply::Remote(response) => response.chunk().await.context("reading the response from the server"),
        }
    }

    async fn bytes(mut self) -> Result<Bytes> {
        let mut all = BytesMut::new();
        while let Some(chunk) = self.chunk().await? {
            all.extend_from_slice(&chunk);
        }
        Ok(all.freeze())
    }
}

impl Api {
    async fn send(&self, method: &str, path: &str, content_type: &str, payload: Payload) -> Result<(u16, Reply)> {
        match self {
            Api::Local { router, token } => {
                let body = match payload {
                    Payload::Bytes(b) => axum::body::Body::from(b),
                    Payload::Stream(s) => axum::body::Body::new(s),
                };
                let request = axum::http::Request::builder()
                    .method(method)
                    .uri(path)
                    .header("authorization", format!("Bearer {token}"))
                    .header("content-type", content_type)
                    .body(body)?;
                let response = router.clone().oneshot(request).await.map_err(|e| anyhow!("{e}"))?;
                Ok((response.status().as_u16(), Reply::Local(response.into_body())))
            }
            Api::Remote { client, base, token } => {
                let body = match payload {
                    Payload::Bytes(b) => reqwest::Body::from(b),
                    Payload::Stream(s) => reqwest::Body::wrap(s),
                };
                let method = reqwest::Method::from_bytes(method.as_bytes())?;
                let response = client
                    .request(method, format!("{}{path}", base.trim_end_matches('/')))
                    .bearer_auth(token)
                    .header("content-type", content_type)
                    .body(body)
                    .send()
                    .await
                    .with_context(|| format!("cannot reach {base}"))?;
                Ok((response.status().as_u16(), Reply::Remote(response)))
            }
        }
    }

    /// A JSON call; an error answer becomes an error naming its code.
    pub async fn json(&self, method: &str, path: &str, body: Option<&Json>) -> Result<Json> {
        let payload = Payload::Bytes(body.map(|b| Bytes::from(b.to_string())).unwrap_or_default());
        let (status, reply) = self.send(method, path, "application/json", payload).await?;
        let bytes = reply.bytes().await?;
        let doc: Json = serde_json::from_slice(&bytes).unwrap_or(Json::Null);
        if status >= 400 {
            bail!("{method} {path}: {status} {}: {}", doc["error"]["code"], doc["error"]["message"]);
        }
        Ok(doc)
    }
}

/// A record type `corral import` / `export` handle.
pub fn record_type(name: &str) -> Result<RecordType> {
    match RecordType::from_api_name(name) {
        Some(rt @ (RecordType::Account | RecordType::Contact)) => Ok(rt),
        _ => bail!("--type must be account or contact"),
    }
}

/// File formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    /// `--format`, or the file's extension (`.csv`; anything else is NDJSON).
    pub fn pick(flag: Option<&str>, file: Option<&Path>) -> Result<Format> {
        match flag {
            Some("csv") => Ok(Format::Csv),
            Some("ndjson" | "jsonl") => Ok(Format::Ndjson),
            Some(other) => bail!("--format must be csv or ndjson, not {other}"),
            None => Ok(match file.and_then(Path::extension).and_then(|e| e.to_str()) {
                Some(e) if e.eq_ignore_ascii_case("csv") => Format::Csv,
                _ => Format::Ndjson,
            }),
        }
    }
}

/// The writable attributes of a type in a tenant: api_name → (value_type, is_array, is_custom).
struct Attributes(HashMap<String, (String, bool, bool)>);

impl Attributes {
    async fn load(api: &Api, rt: RecordType) -> Result<Attributes> {
        let doc = api.json("GET", &format!("/api/v2/_schema/{}", rt.api_name()), None).await?;
        let mut map = HashMap::new();
        for a in doc["attributes"].as_array().into_iter().flatten() {
            let name = a["api_name"].as_str().unwrap_or_default().to_owned();
            let vt = a["type_info"]["value_type"].as_str().unwrap_or_default().to_owned();
            let is_array = a["type_info"]["is_array"].as_bool().unwrap_or(false);
            map.insert(name, (vt, is_array, a["is_custom"].as_bool().unwrap_or(false)));
        }
        Ok(Attributes(map))
    }
}

/// What `corral import` was asked to do.
pub struct ImportOptions {
    pub file: PathBuf,
    pub rt: RecordType,
    /// `domain_name` (accounts) or `email` (contacts); `None`: create every row.
    pub match_field: Option<String>,
    pub format: Format,
    pub rejects: PathBuf,
    pub progress: bool,
}

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportSummary {
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub rejected: u64,
}

/// One row sent (or not) to the server, in file order.
enum Entry {
    /// Sent as the next request line; `line` is where the row starts in the file.
    Sent { line: u64 },
    /// Refused before sending (a malformed CSV row).
    Refused { line: u64, code: &'static str, message: String },
}

/// Turns file rows into `_bulk` lines.
struct Converter {
    rt: RecordType,
    match_field: Option<String>,
    attributes: Attributes,
}

impl Converter {
    /// A CSV cell as the JSON value its attribute takes; `None` for an empty cell (unset).
    fn cell(&self, api_name: &str, text: &str) -> Option<Json> {
        if text.is_empty() {
            return None;
        }
        let (vt, is_array) = match self.attributes.0.get(api_name) {
            Some((vt, is_array, _)) => (vt.as_str(), *is_array),
            None => ("", false),
        };
        if is_array {
            let items: Vec<Json> = text.split(';').map(str::trim).filter(|s| !s.is_empty()).map(|s| json!(s)).collect();
            return Some(Json::Array(items));
        }
        match vt {
            "checkbox" | "boolean" => Some(match text.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => json!(true),
                "false" | "no" | "0" => json!(false),
                // Sent as text: the server refuses it with its own error code.
                _ => json!(text),
            }),
            _ if text.starts_with('{') => Some(serde_json::from_str(text).unwrap_or_else(|_| json!(text))),
            _ => Some(json!(text)),
        }
    }

    /// A flat row (v1 field names, custom attributes by api name) as one `_bulk` line.
    fn line(&self, row: Vec<(String, Json)>) -> Json {
        let mut attributes = Map::new();
        let mut key: Option<Json> = None;
        for (name, value) in row {
            if value.is_null() || READ_ONLY.contains(&name.as_str()) {
                continue;
            }
            let api_name = match (self.rt, name.as_str()) {
                (RecordType::Account, "domain" | "domain_name") => {
                    key = Some(value);
                    continue;
                }
                (RecordType::Contact, "email" | "primary_email") => {
                    key = Some(value);
                    continue;
                }
                (RecordType::Contact, "phone") => "primary_phone_number".to_owned(),
                _ => match field_by_v1_name(self.rt, &name) {
                    Some((_, f)) => f.api_name.to_owned(),
                    None => name,
                },
            };
            // v1 documents list addresses; v2 writes the first.
            let value = match (field_by_api_name(self.rt, &api_name), value) {
                (Some((_, f)), Json::Array(mut items)) if f.is_array && api_name == "address" => {
                    if items.is_empty() {
                        continue;
                    }
                    items.swap_remove(0)
                }
                (_, v) => v,
            };
            attributes.insert(api_name, value);
        }
        let (match_name, attribute) = match self.rt {
            RecordType::Contact => ("primary_email", "primary_email"),
            _ => ("domain_name", "domain_name"),
        };
        match (key, &self.match_field) {
            (Some(value), Some(_)) => json!({"op": "assert", "match": {match_name: value}, "attributes": attributes}),
            (Some(value), None) if self.rt == RecordType::Contact => {
                attributes.insert(attribute.to_owned(), value);
                json!({"op": "create", "attributes": attributes})
            }
            // An account's domain can only be set through a match (or the domains
            // sub-resource): without --match it is asserted all the same.
            (Some(value), None) => json!({"op": "assert", "match": {match_name: value}, "attributes": attributes}),
            (None, _) => json!({"op": "create", "attributes": attributes}),
        }
    }
}

/// Reads `file` and sends its rows as `_bulk` lines down `tx` (chunks) and `entries`.
fn produce(
    options: &ImportOptions,
    converter: &Converter,
    tx: &mpsc::Sender<Bytes>,
    entries: &std_mpsc::Sender<Entry>,
    progress: &ProgressBar,
) -> Result<()> {
    let file = std::fs::File::open(&options.file).with_context(|| format!("cannot open {}", options.file.display()))?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    // A UTF-8 byte order mark (spreadsheet exports) is not part of the first header.
    if reader.fill_buf()?.starts_with(b"\xEF\xBB\xBF") {
        reader.consume(3);
    }
    let mut buffer = BytesMut::with_capacity(CHUNK_BYTES * 2);
    let send = |buffer: &mut BytesMut| -> Result<()> {
        if !buffer.is_empty() {
            tx.blocking_send(buffer.split().freeze()).map_err(|_| anyhow!("the server stopped reading the import"))?;
        }
        Ok(())
    };
    let push = |buffer: &mut BytesMut, line: u64, op: &[u8]| -> Result<()> {
        entries.send(Entry::Sent { line }).map_err(|_| anyhow!("the import was abandoned"))?;
        buffer.extend_from_slice(op);
        buffer.extend_from_slice(b"\n");
        if buffer.len() >= CHUNK_BYTES { send(buffer) } else { Ok(()) }
    };
    match options.format {
        Format::Csv => {
            // csv counts records, not lines: a quoted newline would throw the numbers off.
            let newlines = Rc::new(RefCell::new(Newlines::default()));
            let counted = LineCounter { inner: reader, offset: 0, newlines: newlines.clone() };
            let line_at = |byte: u64| newlines.borrow_mut().line_at(byte);
            let mut csv = csv::ReaderBuilder::new().has_headers(true).from_reader(counted);
            let headers: Vec<String> =
                csv.headers().context("cannot read the CSV header row")?.iter().map(|h| h.trim().to_owned()).collect();
            let api_names: Vec<String> = headers
                .iter()
                .map(|h| {
                    field_by_v1_name(options.rt, h).map(|(_, f)| f.api_name.to_owned()).unwrap_or_else(|| h.clone())
                })
                .collect();
            let mut record = csv::StringRecord::new();
            loop {
                let start = csv.position().byte();
                match csv.read_record(&mut record) {
                    Ok(false) => break,
                    Ok(true) => {
                        let line = line_at(record.position().map_or(start, |p| p.byte()));
                        let row = headers
                            .iter()
                            .zip(&api_names)
                            .zip(record.iter())
                            .filter_map(|((h, api), cell)| converter.cell(api, cell).map(|v| (h.clone(), v)))
                            .collect();
                        push(&mut buffer, line, converter.line(row).to_string().as_bytes())?;
                    }
                    Err(e) => {
                        let line = line_at(e.position().map_or(start, |p| p.byte()));
                        let message = match e.kind() {
                            csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                                format!("the row has {len} fields; the header has {expected_len}")
                            }
                            csv::ErrorKind::Utf8 { .. } => "the row is not valid UTF-8".to_owned(),
                            _ => e.to_string(),
                        };
                        entries.send(Entry::Refused { line, code: "invalid_csv", message }).ok();
                    }
                }
                progress.set_position(csv.position().byte());
            }
        }
        Format::Ndjson => {
            let (mut line_no, mut read) = (0u64, 0u64);
            let mut raw = Vec::new();
            loop {
                raw.clear();
                let n = reader.read_until(b'\n', &mut raw)?;
                if n == 0 {
                    break;
                }
                line_no += 1;
                read += n as u64;
                let text = raw.trim_ascii();
                if text.is_empty() {
                    continue;
                }
                match serde_json::from_slice::<Json>(text) {
                    Ok(Json::Object(obj)) if !obj.contains_key("op") => {
                        let mut row: Vec<(String, Json)> = Vec::with_capacity(obj.len());
                        for (k, v) in obj {
                            match (k.as_str(), v) {
                                ("custom_fields", Json::Object(custom)) => row.extend(custom),
                                (_, v) => row.push((k, v)),
                            }
                        }
                        push(&mut buffer, line_no, converter.line(row).to_string().as_bytes())?;
                    }
                    // Ready-made `_bulk` lines, and lines that are not objects (the server
                    // answers those as it answers any bad line), go as they are.
                    _ => push(&mut buffer, line_no, text)?,
                }
                progress.set_position(read);
            }
        }
    }
    send(&mut buffer)
}

/// Newline offsets read ahead of the CSV parser, and how many lie before its position.
#[derive(Default)]
struct Newlines {
    pending: VecDeque<u64>,
    before: u64,
}

impl Newlines {
    /// The line (from 1) of a record csv says starts at byte `offset`; offsets must not
    /// decrease between calls. After a `\r\n` csv puts the next record's start on the `\n`
    /// (it skips it as an empty line), so a newline at `offset` itself is behind the record.
    fn line_at(&mut self, offset: u64) -> u64 {
        while self.pending.front().is_some_and(|&n| n <= offset) {
            self.pending.pop_front();
            self.before += 1;
        }
        self.before + 1
    }
}

/// A reader that notes where its newlines are (only as far ahead as the parser has read).
struct LineCounter<R> {
    inner: R,
    offset: u64,
    newlines: Rc<RefCell<Newlines>>,
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut newlines = self.newlines.borrow_mut();
        for (i, _) in buf[..n].iter().enumerate().filter(|(_, b)| **b == b'\n') {
            newlines.pending.push_back(self.offset + i as u64);
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// `corral import`: streams the file through `_bulk`, writes refused rows to the rejects file.
pub async fn import(api: &Api, options: ImportOptions) -> Result<ImportSummary> {
    let rt = options.rt;
    let converter =
        Converter { rt, match_field: options.match_field.clone(), attributes: Attributes::load(api, rt).await? };
    let size =
        std::fs::metadata(&options.file).with_context(|| format!("cannot read {}", options.file.display()))?.len();
    let progress =
        progress_bar(Some(size), options.progress, "{elapsed_precise} [{wide_bar}] {percent}% {msg} ETA {eta}");
    let mut rejects = csv::Writer::from_path(&options.rejects)
        .with_context(|| format!("cannot write {}", options.rejects.display()))?;
    rejects.write_record(["line", "status", "code", "message", "details"])?;
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let (entries_tx, entries) = std_mpsc::channel::<Entry>();
    let producer = {
        let progress = progress.clone();
        std::thread::spawn(move || {
            let result = produce(&options, &converter, &tx, &entries_tx, &progress);
            drop(tx);
            result
        })
    };
    let (status, mut reply) = api
        .send(
            "POST",
            &format!("/api/v2/{}/_bulk", rt.api_name()),
            "application/x-ndjson",
            Payload::Stream(ChannelBody(rx)),
        )
        .await?;
    if status != 200 {
        let body = reply.bytes().await.unwrap_or_default();
        let doc: Json = serde_json::from_slice(&body).unwrap_or(Json::Null);
        bail!("the server refused the import: {status} {}: {}", doc["error"]["code"], doc["error"]["message"]);
    }
    let mut summary = ImportSummary::default();
    let started = Instant::now();
    let mut partial = BytesMut::new();
    let mut refuse =
        |summary: &mut ImportSummary, line: u64, status: &str, code: &str, message: &str, details: &str| {
            summary.rows += 1;
            summary.rejected += 1;
            rejects.write_record([line.to_string().as_str(), status, code, message, details])
        };
    let ended_early = loop {
        let Some(chunk) = (match reply.chunk().await {
            Ok(c) => c,
            Err(e) => break Some(e),
        }) else {
            break None;
        };
        partial.extend_from_slice(&chunk);
        while let Some(end) = partial.iter().position(|&b| b == b'\n') {
            let line = partial.split_to(end + 1);
            let result: Json = serde_json::from_slice(&line).context("the server sent a result that is not JSON")?;
            // Rows refused before sending come first, in file order.
            let source = loop {
                match entries.try_recv() {
                    Ok(Entry::Sent { line }) => break line,
                    Ok(Entry::Refused { line, code, message }) => {
                        refuse(&mut summary, line, "", code, &message, "")?;
                    }
                    Err(_) => bail!("the server answered more lines than were sent"),
                }
            };
            match result["action"].as_str() {
                Some("created") => summary.created += 1,
                Some("updated") => summary.updated += 1,
                _ => {
                    let e = &result["error"];
                    refuse(
                        &mut summary,
                        source,
                        &result["status"].to_string(),
                        e["code"].as_str().unwrap_or_default(),
                        e["message"].as_str().unwrap_or_default(),
                        &e["details"].to_string(),
                    )?;
                    continue;
                }
            }
            summary.rows += 1;
        }
        let rate = summary.rows as f64 / started.elapsed().as_secs_f64().max(0.001);
        progress.set_message(format!("{} rows, {rate:.0} rows/s", summary.rows));
    };
    let produced = producer.join().map_err(|_| anyhow!("the file reader panicked"))?;
    // Whatever is left: rows refused after the last sent one, or rows never answered.
    let mut unanswered = 0u64;
    for entry in entries.try_iter() {
        match entry {
            Entry::Refused { line, code, message } => refuse(&mut summary, line, "", code, &message, "")?,
            Entry::Sent { .. } => unanswered += 1,
        }
    }
    rejects.flush()?;
    progress.finish_and_clear();
    if let Some(e) = ended_early {
        bail!(
            "the import stopped after {} answered rows ({unanswered} sent rows unanswered): {e:#}. Every answered row is saved; run the same import again to resume.",
            summary.rows
        );
    }
    produced?;
    if unanswered > 0 {
        bail!("the server ended the import with {unanswered} rows unanswered; run it again to resume");
    }
    Ok(summary)
}

fn progress_bar(total: Option<u64>, enabled: bool, template: &str) -> ProgressBar {
    let bar = match total {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    if !enabled {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// What `corral export` was asked to do.
pub struct ExportOptions {
    pub rt: RecordType,
    pub format: Format,
    /// A `_query` filter (one filter object, or an array of them).
    pub filter: Option<Json>,
    pub progress: bool,
}

/// Counts the records in an export stream as it passes: NDJSON lines, or CSV rows (line
/// ends outside quoted cells; the header row is not a record).
struct RowCounter {
    format: Format,
    in_quotes: bool,
    ends: u64,
}

impl RowCounter {
    fn feed(&mut self, chunk: &[u8]) {
        match self.format {
            Format::Ndjson => self.ends += chunk.iter().filter(|&&b| b == b'\n').count() as u64,
            Format::Csv => {
                for &b in chunk {
                    match b {
                        b'"' => self.in_quotes = !self.in_quotes,
                        b'\n' if !self.in_quotes => self.ends += 1,
                        _ => {}
                    }
                }
            }
        }
    }

    fn records(&self) -> u64 {
        match self.format {
            Format::Ndjson => self.ends,
            Format::Csv => self.ends.saturating_sub(1),
        }
    }
}

/// `corral export`: every record of the type (matching the filter) to `out`, streamed from
/// `POST /api/v2/{type}/_export`. Returns how many.
pub async fn export(api: &Api, options: ExportOptions, out: &mut dyn Write) -> Result<u64> {
    let rt = options.rt;
    let filters = match options.filter {
        None => None,
        Some(Json::Array(list)) => Some(Json::Array(list)),
        Some(one) => Some(json!([one])),
    };
    let format = match options.format {
        Format::Csv => "csv",
        Format::Ndjson => "ndjson",
    };
    let mut body = json!({"format": format});
    if let Some(f) = &filters {
        body["filters"] = f.clone();
    }
    // The bar's length: the server's estimate of how many match (a bounded count).
    let total = if options.progress {
        let mut count = json!({"limit": 1, "count": "estimated"});
        if let Some(f) = &filters {
            count["filters"] = f.clone();
        }
        let page = api.json("POST", &format!("/api/v2/{}/_query", rt.api_name()), Some(&count)).await?;
        page["meta"]["total"].as_u64()
    } else {
        None
    };
    let progress =
        progress_bar(total, options.progress, "{elapsed_precise} [{wide_bar}] {pos}/{len} {per_sec} ETA {eta}");
    let path = format!("/api/v2/{}/_export", rt.api_name());
    let (status, mut reply) =
        api.send("POST", &path, "application/json", Payload::Bytes(Bytes::from(body.to_string()))).await?;
    if status >= 400 {
        let doc: Json = serde_json::from_slice(&reply.bytes().await?).unwrap_or(Json::Null);
        bail!("POST {path}: {status} {}: {}", doc["error"]["code"], doc["error"]["message"]);
    }
    let mut counter = RowCounter { format: options.format, in_quotes: false, ends: 0 };
    while let Some(chunk) = reply.chunk().await.with_context(|| {
        format!("the export stopped after {} records; nothing after them was written", counter.records())
    })? {
        out.write_all(&chunk)?;
        counter.feed(&chunk);
        progress.set_position(counter.records());
    }
    out.flush()?;
    progress.finish_and_clear();
    Ok(counter.records())
}

/// Reads a `--filter` value: JSON text, or `@FILE` for JSON in a file.
pub fn read_filter(raw: &str) -> Result<Json> {
    let text = match raw.strip_prefix('@') {
        Some(file) => {
            let mut s = String::new();
            std::fs::File::open(file).with_context(|| format!("cannot open {file}"))?.read_to_string(&mut s)?;
            s
        }
        None => raw.to_owned(),
    };
    serde_json::from_str(&text).context("--filter is not valid JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn converter(rt: RecordType, m: Option<&str>) -> Converter {
        let mut attrs = HashMap::new();
        attrs.insert("tags".to_owned(), ("string".to_owned(), true, false));
        attrs.insert("vip".to_owned(), ("checkbox".to_owned(), false, true));
        Converter { rt, match_field: m.map(str::to_owned), attributes: Attributes(attrs) }
    }

    #[test]
    fn rows_become_asserts_by_their_match_key() {
        let c = converter(RecordType::Account, Some("domain_name"));
        let row = vec![
            ("id".to_owned(), json!("x")),
            ("name".to_owned(), json!("Acme")),
            ("domain".to_owned(), json!("acme.com")),
            ("tags".to_owned(), c.cell("tags", "a; b;").unwrap()),
            ("vip".to_owned(), c.cell("vip", "Yes").unwrap()),
        ];
        assert_eq!(
            c.line(row),
            json!({"op": "assert", "match": {"domain_name": "acme.com"},
                   "attributes": {"display_name": "Acme", "tags": ["a", "b"], "vip": true}})
        );
        assert_eq!(c.cell("name", ""), None);
        let c = converter(RecordType::Contact, None);
        let row = vec![("email".to_owned(), json!("a@b.c")), ("job_title".to_owned(), json!("CTO"))];
        assert_eq!(c.line(row), json!({"op": "create", "attributes": {"title": "CTO", "primary_email": "a@b.c"}}));
    }

    #[test]
    fn csv_rows_are_numbered_by_the_line_they_start_on() {
        let newlines = Rc::new(RefCell::new(Newlines::default()));
        let text = "a,b\r\n\"x\ny\",1\r\nz,2\n\nw,3\n";
        let mut reader =
            csv::Reader::from_reader(LineCounter { inner: text.as_bytes(), offset: 0, newlines: newlines.clone() });
        let lines: Vec<u64> =
            reader.records().map(|r| newlines.borrow_mut().line_at(r.unwrap().position().unwrap().byte())).collect();
        assert_eq!(lines, [2, 4, 6]);
    }

    #[test]
    fn export_rows_are_counted_across_chunks_and_quoted_newlines() {
        let mut csv = RowCounter { format: Format::Csv, in_quotes: false, ends: 0 };
        for chunk in [&b"id,name\n1,\"a\nb\"\n2,"[..], b"\"x \"\"q\"\"\"\n"] {
            csv.feed(chunk);
        }
        assert_eq!(csv.records(), 2);
        let mut ndjson = RowCounter { format: Format::Ndjson, in_quotes: false, ends: 0 };
        ndjson.feed(b"{\"a\":\"x\\ny\"}\n{");
        ndjson.feed(b"}\n");
        assert_eq!(ndjson.records(), 2);
    }
}
