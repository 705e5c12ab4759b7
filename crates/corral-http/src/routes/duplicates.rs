//! `POST /api/v2/{account|contact}/_duplicates` (docs/API.md, "Duplicate candidates"): groups
//! of likely duplicate records with a score and reasons, scoped by the `_query` filter tree.
//! The search itself lives in the store (`corral_store::duplicates`); this handler parses the
//! body, continues cursors and renders the records as `_query` does.

use crate::auth::{Permission, Principal};
use crate::error::ApiResult;
use crate::extract::JsonBody;
use crate::routes::shared::{
    body_cursor, body_fields, body_filters, body_limit, continue_query, json_response, next_cursor, object,
    resolve_plan,
};
use crate::routes::v2_records::writable;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use corral_core::CoreError;
use corral_core::list::{Dialect as ListDialect, ListQuery};
use corral_core::v2::{self, RenderContext};
use corral_store::duplicates::{MAX_LIMIT, Position};
use serde_json::{Value as Json, json};

/// Groups per page when the body names no `limit`.
pub const DEFAULT_LIMIT: usize = 20;

/// Marks the position a `_duplicates` cursor carries, so a `_query` cursor is refused here.
const CURSOR_TAG: &str = "duplicates";

/// The page answer: `{"data": [{"reasons", "records", "score"}], "next_cursor"}`.
#[derive(serde::Serialize)]
struct DuplicatesPage<'a> {
    data: Vec<GroupOut<'a>>,
    next_cursor: Option<String>,
}

#[derive(serde::Serialize)]
struct GroupOut<'a> {
    reasons: &'a [&'static str],
    records: Vec<v2::RenderedRecord<'a>>,
    score: f64,
}

/// A cursor's position: the last block read and the `min_score` of the search.
fn open_position(after: &[Json]) -> ApiResult<(Position, f64)> {
    match after {
        [Json::String(tag), Json::String(kind), Json::String(key), Json::Number(min)] if tag == CURSOR_TAG => {
            Ok(((kind.clone(), key.clone()), min.as_f64().unwrap_or(0.0)))
        }
        _ => Err(CoreError::invalid_cursor().into()),
    }
}

/// `POST /api/v2/{rt}/_duplicates`: `filters` (the `_query` filter tree), `min_score` (0..1),
/// `limit` (1..100 groups), `cursor` (alone, or with the same body) and `fields`.
pub async fn duplicates(
    State(state): State<AppState>,
    principal: Principal,
    Path(rt): Path<String>,
    body: JsonBody,
) -> ApiResult<Response> {
    let rt = writable(&rt, "")?;
    principal.require(Permission::read(rt))?;
    let obj = object(&body.value, &["filters", "min_score", "limit", "cursor", "fields"])?;
    let mut query = ListQuery { dialect: ListDialect::V2, ..ListQuery::default() };
    let mut given = false;
    if let Some(filters) = body_filters(obj)? {
        given = true;
        query.filters = filters;
    }
    let min_score = match obj.get("min_score").filter(|m| !m.is_null()) {
        None => None,
        Some(m) => Some(
            m.as_f64()
                .filter(|s| (0.0..=1.0).contains(s))
                .ok_or_else(|| CoreError::invalid_value("min_score", "expected a number from 0 to 1"))?,
        ),
    };
    let limit = body_limit(obj, DEFAULT_LIMIT, MAX_LIMIT)?;
    let cursor = body_cursor(obj)?;
    let fields = body_fields(obj)?;
    let actor = &principal.actor;
    let schema = state.schema(&actor.tenant, rt).await?;
    if let Some(bad) = fields.iter().flatten().find(|w| !v2::attribute_names_in(rt, &schema).contains(w)) {
        return Err(CoreError::invalid_value("fields", format!("unknown attribute `{bad}`")).into());
    }
    // A cursor sent with a body must carry the same filters and minimum score.
    let (query, after) = continue_query(&state, actor, rt, (given || cursor.is_none()).then_some(query), cursor)?;
    let (after, min_score) = match after {
        Some(after) => {
            let (position, carried) = open_position(&after)?;
            if min_score.is_some_and(|m| m != carried) {
                return Err(CoreError::invalid_cursor().into());
            }
            (Some(position), carried)
        }
        None => (None, min_score.unwrap_or(0.0)),
    };
    let (plan, _) = resolve_plan(&state, actor, rt, &query).await?;
    let (groups, next) =
        state.store().duplicate_candidates(actor, rt, plan.filter.as_ref(), min_score, after, limit).await?;
    let next = next.map(|(kind, key)| vec![json!(CURSOR_TAG), json!(kind), json!(key), json!(min_score)]);
    let ctx = RenderContext { schema: &schema, only: fields.as_deref() };
    let page = DuplicatesPage {
        data: groups
            .iter()
            .map(|g| GroupOut {
                reasons: &g.reasons,
                records: g.records.iter().map(|r| v2::rendered(r, &ctx)).collect(),
                score: g.score,
            })
            .collect(),
        next_cursor: next_cursor(&state, actor, rt, query, next),
    };
    Ok(json_response(StatusCode::OK, serde_json::to_string(&page).expect("a page serialises"), None))
}
