//! `corral duplicates`: prints the duplicate candidate groups of a record type (docs/API.md,
//! "Duplicate candidates"), page after page of `POST /api/v2/{type}/_duplicates`, from the
//! local database or a server (the same [`Api`] as `corral import` / `export`).

use crate::transfer::Api;
use anyhow::Result;
use corral_core::RecordType;
use serde_json::{Value as Json, json};
use std::io::Write;

/// What `corral duplicates` searches.
pub struct DuplicatesOptions {
    pub rt: RecordType,
    pub min_score: Option<f64>,
    /// A `_query` filter tree (an array of filters).
    pub filters: Option<Json>,
    /// Most groups to print; all when `None`.
    pub max_groups: Option<u64>,
}

/// The name a record is shown by: its display name, else its id.
fn display_name(record: &Json) -> &str {
    record["attributes"]["display_name"]["value"].as_str().unwrap_or("(no name)")
}

/// Prints one line per group (score and reasons) and one indented line per record (id and
/// name). Returns how many groups were printed.
pub async fn print(api: &Api, options: DuplicatesOptions, out: &mut dyn Write) -> Result<u64> {
    let path = format!("/api/v2/{}/_duplicates", options.rt.api_name());
    let mut body = json!({"limit": 100, "fields": ["display_name"]});
    if let Some(min) = options.min_score {
        body["min_score"] = json!(min);
    }
    if let Some(filters) = &options.filters {
        body["filters"] = filters.clone();
    }
    let mut printed = 0;
    loop {
        let page = api.json("POST", &path, Some(&body)).await?;
        for group in page["data"].as_array().into_iter().flatten() {
            if options.max_groups.is_some_and(|max| printed >= max) {
                return Ok(printed);
            }
            let reasons: Vec<&str> =
                group["reasons"].as_array().into_iter().flatten().filter_map(Json::as_str).collect();
            writeln!(out, "{:.3}  {}", group["score"].as_f64().unwrap_or(0.0), reasons.join(", "))?;
            for record in group["records"].as_array().into_iter().flatten() {
                writeln!(out, "    {}  {}", record["id"].as_str().unwrap_or_default(), display_name(record))?;
            }
            printed += 1;
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => body["cursor"] = json!(cursor),
            None => return Ok(printed),
        }
    }
}
