//! `POST /api/v2/{rt}/_merge` (docs/API.md "Merging records"): the v2 body of a merge — which
//! records, and which side each attribute takes — parsed into a [`MergeSpec`], and the
//! outcome (the winner, and every change made or, dry run, that would be made) rendered.

use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::{IfMatch, JsonBody};
use crate::routes::shared::{json_response, object};
use crate::routes::v2_records::{named_for_v2, writable};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use corral_core::custom::TenantSchema;
use corral_core::schema::field_by_api_name;
use corral_core::v2::{self, RenderContext, WriteMode};
use corral_core::{CoreError, RecordId, RecordType};
use corral_store::merge::{MergeOutcome, MergeSpec, Pick, Slot};
use serde_json::{Map, Value as Json, json};

fn parse_id(rt: RecordType, field: &str, raw: &Json) -> ApiResult<RecordId> {
    raw.as_str()
        .and_then(|s| RecordId::parse(rt, s))
        .ok_or_else(|| CoreError::invalid_value(field, "expected a record id").into())
}

/// Whether a merge's `fields` may choose a value for this attribute name: a stored field or a
/// custom attribute, not an item list or a server-stamped attribute (the OpenAPI document
/// offers exactly these).
pub(crate) fn choosable(rt: RecordType, name: &str) -> bool {
    field_by_api_name(rt, name).is_some() || !v2::attribute_names(rt).contains(&name)
}

/// The slot an attribute name chooses a value for; item lists and server-stamped attributes
/// are not chosen (the losers' items all move to the winner).
fn slot(rt: RecordType, schema: &TenantSchema, name: &str) -> ApiResult<Slot> {
    if let Some((index, _)) = field_by_api_name(rt, name) {
        return Ok(Slot::Field(index));
    }
    if schema.custom(name).is_some() {
        return Ok(Slot::Custom(name.to_owned()));
    }
    if v2::attribute_names(rt).contains(&name) {
        let mut e = CoreError::field_not_updatable(name);
        e.message = format!(
            "`{name}` is not chosen in a merge: server-stamped attributes are the winner's, and the \
             losers' domains, emails and phone numbers all move to the winner"
        );
        return Err(e.into());
    }
    Err(CoreError::unknown_field(name).into())
}

/// Parses a merge body into a spec (the caller's `If-Match` applies to the winner).
fn parse(rt: RecordType, schema: &TenantSchema, body: &Json, pre: IfMatch) -> ApiResult<(MergeSpec, bool)> {
    let obj = object(body, &["winner", "losers", "fields", "dry_run"])?;
    let winner = match obj.get("winner") {
        None | Some(Json::Null) => return Err(CoreError::required_missing("winner").into()),
        Some(raw) => parse_id(rt, "winner", raw)?,
    };
    let losers = match obj.get("losers") {
        Some(Json::Array(items)) => items.iter().map(|i| parse_id(rt, "losers", i)).collect::<ApiResult<Vec<_>>>()?,
        None | Some(Json::Null) => return Err(CoreError::required_missing("losers").into()),
        Some(_) => return Err(CoreError::invalid_value("losers", "expected an array of record ids").into()),
    };
    let dry_run = match obj.get("dry_run") {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => *b,
        Some(_) => return Err(CoreError::invalid_value("dry_run", "expected true or false").into()),
    };
    let mut spec = MergeSpec { winner: Some(winner), losers, pre: pre.0, ..MergeSpec::default() };
    let mut values = Map::new();
    match obj.get("fields") {
        None | Some(Json::Null) => {}
        Some(Json::Object(fields)) => {
            for (name, choice) in fields {
                let slot = slot(rt, schema, name)?;
                match choice.as_str() {
                    Some("winner") => spec.picks.push((slot, Pick::Winner)),
                    Some(s) if s.starts_with("loser:") => {
                        let id = RecordId::parse(rt, &s["loser:".len()..])
                            .filter(|id| spec.losers.contains(id))
                            .ok_or_else(|| {
                                CoreError::invalid_value(
                                    &format!("fields.{name}"),
                                    "`loser:<id>` must name one of `losers`",
                                )
                            })?;
                        spec.picks.push((slot, Pick::Loser(id)));
                    }
                    // Any other value is the attribute's new value, as a v2 PATCH takes it.
                    _ => {
                        values.insert(name.clone(), choice.clone());
                        spec.written.push(slot);
                    }
                }
            }
        }
        Some(_) => return Err(CoreError::invalid_value("fields", "expected an object of attribute choices").into()),
    }
    spec.write = v2::parse_write(rt, &json!({"attributes": values}), WriteMode::Patch, schema)?;
    Ok((spec, dry_run))
}

/// The outcome as the response's `merge` object.
fn outcome_json(rt: RecordType, o: &MergeOutcome, dry_run: bool) -> Json {
    let other = if rt == RecordType::Account { RecordType::Contact } else { RecordType::Account };
    json!({
        "id": o.merge_id,
        "dry_run": dry_run,
        "winner_id": o.winner.meta.id.canonical(),
        "loser_ids": o.losers.iter().map(|l| l.meta.id.canonical()).collect::<Vec<_>>(),
        "relationships": o.edges.iter().map(|e| json!({
            "loser_id": e.loser.canonical(),
            "related_record_type": other.api_name(),
            "related_record_id": e.other.canonical(),
            "role": e.role,
            "collapsed": e.collapsed,
        })).collect::<Vec<_>>(),
        "items": o.items.iter().map(|i| json!({
            "loser_id": i.loser.canonical(), "attribute": i.attribute, "value": i.value, "duplicate": i.duplicate,
        })).collect::<Vec<_>>(),
        "references": o.references.iter().map(|r| json!({
            "record_type": r.record_type.api_name(),
            "record_id": r.record_id.canonical(),
            "attribute": r.attribute,
            "loser_id": r.loser.canonical(),
        })).collect::<Vec<_>>(),
        "conflicts": o.conflicts.iter().map(|c| json!({
            "attribute": c.attribute,
            "winner_value": c.winner,
            "loser_values": c.losers.iter().map(|(id, v)| json!({"id": id.canonical(), "value": v})).collect::<Vec<_>>(),
            "resolution": c.resolution,
        })).collect::<Vec<_>>(),
        "changes": o.events.iter().map(|e| json!({
            "record_type": e.record_type.api_name(),
            "record_id": e.record_id.canonical(),
            "action": e.action.as_str(),
            "changes": e.changes,
        })).collect::<Vec<_>>(),
    })
}

/// `POST /api/v2/{rt}/_merge`: 200 with the winner as it is (or, dry run, would be) and the
/// merge's changes.
pub async fn merge(
    State(state): State<AppState>,
    principal: Principal,
    Path(rt): Path<String>,
    if_match: IfMatch,
    body: Result<JsonBody, ApiError>,
) -> ApiResult<Response> {
    let rt = writable(&rt, "")?;
    let body = body?;
    principal.require(Permission::write(rt))?;
    let schema = state.schema(&principal.actor.tenant, rt).await?;
    let (spec, dry_run) = parse(rt, &schema, &body.value, if_match)?;
    let outcome = state
        .store()
        .merge_records(&principal.actor, rt, &spec, dry_run)
        .await
        .map_err(|e| named_for_v2(rt, e.into()))?;
    let data = v2::render(&outcome.winner, &RenderContext { schema: &schema, only: None });
    let body = json!({"data": data, "merge": outcome_json(rt, &outcome, dry_run)});
    // A dry run's winner is not stored: no ETag for it.
    let version = (!dry_run).then_some(outcome.winner.meta.version);
    Ok(json_response(StatusCode::OK, body.to_string(), version))
}

/// `POST /api/v2/{rt}/_unmerge` (`{"merge_id"}`): 200 with the winner, the restored losers and
/// the changes made.
pub async fn unmerge(
    State(state): State<AppState>,
    principal: Principal,
    Path(rt): Path<String>,
    body: Result<JsonBody, ApiError>,
) -> ApiResult<Response> {
    let rt = writable(&rt, "")?;
    let body = body?;
    principal.require(Permission::write(rt))?;
    let obj = object(&body.value, &["merge_id"])?;
    let merge_id = match obj.get("merge_id") {
        None | Some(Json::Null) => return Err(CoreError::required_missing("merge_id").into()),
        Some(Json::String(s)) if uuid::Uuid::try_parse(s).is_ok() => s.to_ascii_lowercase(),
        Some(_) => return Err(CoreError::invalid_value("merge_id", "expected the id a merge answered with").into()),
    };
    let schema = state.schema(&principal.actor.tenant, rt).await?;
    let outcome =
        state.store().unmerge_records(&principal.actor, rt, &merge_id).await.map_err(|e| named_for_v2(rt, e.into()))?;
    let ctx = RenderContext { schema: &schema, only: None };
    let body = json!({
        "data": v2::render(&outcome.winner, &ctx),
        "restored": outcome.restored.iter().map(|r| v2::render(r, &ctx)).collect::<Vec<_>>(),
        "changes": outcome.events.iter().map(|e| json!({
            "record_type": e.record_type.api_name(),
            "record_id": e.record_id.canonical(),
            "action": e.action.as_str(),
            "changes": e.changes,
        })).collect::<Vec<_>>(),
    });
    Ok(json_response(StatusCode::OK, body.to_string(), Some(outcome.winner.meta.version)))
}
