//! `corral merge` and `corral unmerge` (docs/API.md "Merging records"): the merge routes from
//! the command line, against the local database in-process or a running server (the same
//! [`transfer::Api`] `corral import` / `export` use). A merge is a dry run unless `--apply`.

use crate::transfer::{self, Api};
use anyhow::{Result, bail};
use serde_json::{Map, Value as Json, json};

/// What `corral merge` was asked to do.
pub struct MergeOptions {
    pub record_type: String,
    pub winner: String,
    pub losers: Vec<String>,
    /// `name=winner`, `name=loser:<id>`, or `name=<value>` (JSON, or else a string).
    pub fields: Vec<String>,
    pub apply: bool,
}

/// The `fields` object of a merge body from `--field` arguments.
fn fields(args: &[String]) -> Result<Map<String, Json>> {
    let mut out = Map::new();
    for arg in args {
        let Some((name, value)) = arg.split_once('=') else {
            bail!("--field {arg}: expected NAME=winner, NAME=loser:<id> or NAME=<value>");
        };
        let value = serde_json::from_str(value).unwrap_or_else(|_| Json::String(value.to_owned()));
        out.insert(name.trim().to_owned(), value);
    }
    Ok(out)
}

/// Runs (or with `apply: false` previews) a merge; returns the answer and a summary line.
pub async fn merge(api: &Api, options: MergeOptions) -> Result<(Json, String)> {
    let rt = transfer::record_type(&options.record_type)?;
    let body = json!({
        "winner": options.winner,
        "losers": options.losers,
        "fields": fields(&options.fields)?,
        "dry_run": !options.apply,
    });
    let answer = api.json("POST", &format!("/api/v2/{}/_merge", rt.api_name()), Some(&body)).await?;
    let report = &answer["merge"];
    let count = |key: &str| report[key].as_array().map_or(0, Vec::len);
    let summary = format!(
        "{}: {} relationships, {} items and {} references move to {}; {} conflicts; {} events{}",
        if options.apply { "merged" } else { "dry run (nothing written; --apply merges)" },
        count("relationships"),
        count("items"),
        count("references"),
        report["winner_id"].as_str().unwrap_or_default(),
        count("conflicts"),
        count("changes"),
        report["id"]
            .as_str()
            .map(|id| format!("; undo with `corral unmerge --type {} {id}`", rt.api_name()))
            .unwrap_or_default(),
    );
    Ok((answer, summary))
}

/// Undoes a merge by its id.
pub async fn unmerge(api: &Api, record_type: &str, merge_id: &str) -> Result<Json> {
    let rt = transfer::record_type(record_type)?;
    api.json("POST", &format!("/api/v2/{}/_unmerge", rt.api_name()), Some(&json!({"merge_id": merge_id}))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_arguments_are_choices_json_values_or_strings() {
        let args = ["industry=winner", "display_name=loser:abc", "employee_count=12", "description=one Acme"]
            .map(str::to_owned);
        let f = fields(&args).unwrap();
        assert_eq!(f["industry"], "winner");
        assert_eq!(f["display_name"], "loser:abc");
        assert_eq!(f["employee_count"], 12);
        assert_eq!(f["description"], "one Acme");
        assert!(fields(&["industry".to_owned()]).is_err());
    }
}
