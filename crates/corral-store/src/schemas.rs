//! The per-tenant schema registry in the database (docs/CONTRACT.md §6): custom attribute definitions,
//! the option lists of select and stage attributes, and the indexes that serve filters on
//! custom attributes.

use crate::db::{Conn, SqlValue};
use crate::{StoreResult, records};
use corral_core::TenantId;
use corral_core::custom::{CustomAttribute, MAX_CUSTOM_ATTRIBUTES, TenantSchema, options_from_json, options_to_json};
use corral_core::filter::{Kind, custom_kind};
use corral_core::schema::{Stage, ValueType, fields};
use corral_core::{CoreError, ErrorCode, RecordType, Timestamp};

/// The built-in stage attribute of a record type, if it has one.
pub fn stage_attribute(rt: RecordType) -> Option<&'static str> {
    fields(rt).iter().find(|f| f.value_type == ValueType::Stage).map(|f| f.api_name)
}

async fn options<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    rt: RecordType,
    api_name: &str,
) -> StoreResult<Option<Vec<Stage>>> {
    let row = c
        .query_opt(
            "SELECT options FROM attribute_options WHERE tenant_id = $1 AND record_type = $2 AND api_name = $3",
            &[SqlValue::text(tenant), SqlValue::text(rt.api_name()), SqlValue::text(api_name)],
        )
        .await?;
    Ok(row.and_then(|mut r| r.text(0)).map(|s| options_from_json(&serde_json::from_str(&s).unwrap_or_default())))
}

async fn put_options<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    rt: RecordType,
    api_name: &str,
    list: &[Stage],
) -> StoreResult<()> {
    c.execute(
        "INSERT INTO attribute_options (tenant_id, record_type, api_name, options) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, record_type, api_name) DO UPDATE SET options = excluded.options",
        &[
            SqlValue::text(tenant),
            SqlValue::text(rt.api_name()),
            SqlValue::text(api_name),
            SqlValue::text(options_to_json(list).to_string()),
        ],
    )
    .await?;
    Ok(())
}

/// Custom attribute rows: (definition, archived).
async fn definitions<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    rt: RecordType,
) -> StoreResult<Vec<(CustomAttribute, bool)>> {
    let rows = c
        .query(
            "SELECT definition, archived_at FROM custom_attributes WHERE tenant_id = $1 AND record_type = $2 ORDER BY created_at, api_name",
            &[SqlValue::text(tenant), SqlValue::text(rt.api_name())],
        )
        .await?;
    // Every option list of the record type in one query, not one per attribute.
    let mut lists: std::collections::HashMap<String, Vec<Stage>> = c
        .query(
            "SELECT api_name, options FROM attribute_options WHERE tenant_id = $1 AND record_type = $2",
            &[SqlValue::text(tenant), SqlValue::text(rt.api_name())],
        )
        .await?
        .into_iter()
        .filter_map(|mut r| {
            let name = r.text(0)?;
            Some((name, options_from_json(&serde_json::from_str(&r.text(1)?).unwrap_or_default())))
        })
        .collect();
    let mut out = Vec::new();
    for mut row in rows {
        let Some(json) = row.text(0).and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok()) else { continue };
        let archived = row.int(1).is_some();
        let opts = json["api_name"].as_str().and_then(|name| lists.remove(name)).unwrap_or_default();
        if let Some(def) = CustomAttribute::from_json(rt, &json, opts) {
            out.push((def, archived));
        }
    }
    Ok(out)
}

/// A record type as a tenant sees it: its stage options and active custom attributes.
pub async fn load<C: Conn>(c: &mut C, tenant: &TenantId, rt: RecordType) -> StoreResult<TenantSchema> {
    let mut schema = TenantSchema::builtin(tenant, rt);
    if rt == RecordType::User {
        return Ok(schema);
    }
    if let Some(stage) = stage_attribute(rt)
        && let Some(list) = options(c, tenant, rt, stage).await?
    {
        schema.stages = list;
    }
    schema.custom =
        definitions(c, tenant, rt).await?.into_iter().filter(|(_, archived)| !archived).map(|(d, _)| d).collect();
    Ok(schema)
}

/// Adds a custom attribute. Its api_name may not be in use, archived or not (values of an
/// archived attribute are kept).
pub async fn create<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    rt: RecordType,
    def: &CustomAttribute,
    now: Timestamp,
) -> StoreResult<()> {
    let existing = definitions(c, tenant, rt).await?;
    if existing.iter().any(|(d, _)| d.api_name == def.api_name) {
        return Err(CoreError::conflict("api_name", &def.api_name, None).into());
    }
    if existing.iter().filter(|(_, archived)| !archived).count() >= MAX_CUSTOM_ATTRIBUTES {
        return Err(CoreError::invalid_value(
            "api_name",
            format!("at most {MAX_CUSTOM_ATTRIBUTES} custom attributes per record type"),
        )
        .into());
    }
    c.execute(
        "INSERT INTO custom_attributes (tenant_id, record_type, api_name, definition, created_at) VALUES ($1, $2, $3, $4, $5)",
        &[
            SqlValue::text(tenant),
            SqlValue::text(rt.api_name()),
            SqlValue::text(def.api_name.clone()),
            SqlValue::text(def.to_json(rt).to_string()),
            SqlValue::Int(now.millis()),
        ],
    )
    .await?;
    if def.value_type == ValueType::Select {
        put_options(c, tenant, rt, &def.api_name, &def.options).await?;
    }
    if let Some(index) = CustomIndex::of(rt, def) {
        index.create(c).await?;
    }
    Ok(())
}

/// An active custom attribute (404 `record_not_found` otherwise).
pub async fn get<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    rt: RecordType,
    api_name: &str,
) -> StoreResult<CustomAttribute> {
    load(c, tenant, rt)
        .await?
        .custom
        .into_iter()
        .find(|d| d.api_name == api_name)
        .ok_or_else(|| not_found(api_name).into())
}

fn not_found(api_name: &str) -> CoreError {
    CoreError::new(ErrorCode::RecordNotFound, format!("no custom attribute `{api_name}`")).with("api_name", api_name)
}

/// Saves a changed definition (display name, description).
pub async fn update<C: Conn>(c: &mut C, tenant: &TenantId, rt: RecordType, def: &CustomAttribute) -> StoreResult<()> {
    c.execute(
        "UPDATE custom_attributes SET definition = $4 WHERE tenant_id = $1 AND record_type = $2 AND api_name = $3",
        &[
            SqlValue::text(tenant),
            SqlValue::text(rt.api_name()),
            SqlValue::text(def.api_name.clone()),
            SqlValue::text(def.to_json(rt).to_string()),
        ],
    )
    .await?;
    Ok(())
}

/// Archives a custom attribute: hidden from records and the schema, values kept.
pub async fn archive<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    rt: RecordType,
    api_name: &str,
    now: Timestamp,
) -> StoreResult<()> {
    let n = c
        .execute(
            "UPDATE custom_attributes SET archived_at = $4 WHERE tenant_id = $1 AND record_type = $2 AND api_name = $3 AND archived_at IS NULL",
            &[SqlValue::text(tenant), SqlValue::text(rt.api_name()), SqlValue::text(api_name), SqlValue::Int(now.millis())],
        )
        .await?;
    if n == 0 {
        return Err(not_found(api_name).into());
    }
    let def = definitions(c, tenant, rt).await?.into_iter().find(|(d, _)| d.api_name == api_name);
    if let Some(index) = def.and_then(|(d, _)| CustomIndex::of(rt, &d)) {
        index.drop_if_unused(c).await?;
    }
    Ok(())
}

/// The index serving filters on one custom attribute: one per record table, attribute name
/// and comparison kind, shared by every tenant with an active attribute of that name and kind
/// (`tenant_id` leads it), and partial: only records holding a value are in it. Its key is
/// exactly what a filter compares ([`crate::records::compared`] of the attribute's value
/// expression), and its condition (`value IS NOT NULL`) is a term of every positive filter
/// on the attribute, so both databases can use it for `eq`, `in`, ranges, `starts_with` (on
/// SQLite's `LIKE` only with case-insensitive matching, which `lower()` gives) and `exists`.
/// Created with the attribute (in the same transaction), dropped when the last attribute it
/// serves is archived, and made for attributes defined earlier at startup ([`index_all`]).
/// Arrays and long text are not indexed (arrays are matched element by element).
struct CustomIndex {
    name: String,
    rt: RecordType,
    attribute: String,
    kind: Kind,
}

impl CustomIndex {
    fn of(rt: RecordType, def: &CustomAttribute) -> Option<CustomIndex> {
        if rt == RecordType::User || def.is_array || def.value_type == ValueType::LongText {
            return None;
        }
        let kind = custom_kind(def);
        let code = match kind {
            Kind::Int => "i",
            Kind::Real => "r",
            Kind::Bool => "b",
            Kind::Exact => "x",
            Kind::Text => "t",
        };
        let mut name = format!("custom_{}_{code}_{}", records::table_name(rt), def.api_name);
        // PostgreSQL cuts identifiers at 63 bytes: a long name keeps a prefix and a hash of all of it.
        if name.len() > 63 {
            let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ b as u32).wrapping_mul(0x0100_0193));
            name = format!("{}_{hash:08x}", &name[..54]);
        }
        Some(CustomIndex { name, rt, attribute: def.api_name.clone(), kind })
    }

    async fn create<C: Conn>(&self, c: &mut C) -> StoreResult<()> {
        let value = c.dialect().custom_value(&self.attribute, self.kind);
        let key = records::compared(&value, self.kind);
        let table = records::table_name(self.rt);
        c.execute_batch(&format!(
            "CREATE INDEX IF NOT EXISTS {} ON {table} (tenant_id, {key}) WHERE {value} IS NOT NULL",
            self.name
        ))
        .await?;
        Ok(())
    }

    /// Drops the index unless another tenant's active attribute still needs it.
    async fn drop_if_unused<C: Conn>(&self, c: &mut C) -> StoreResult<()> {
        let rows = c
            .query(
                "SELECT definition FROM custom_attributes WHERE record_type = $1 AND api_name = $2 AND archived_at IS NULL",
                &[SqlValue::text(self.rt.api_name()), SqlValue::text(self.attribute.clone())],
            )
            .await?;
        let needed = rows.into_iter().filter_map(|mut r| r.text(0)).any(|text| {
            serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|json| CustomAttribute::from_json(self.rt, &json, Vec::new()))
                .and_then(|def| CustomIndex::of(self.rt, &def))
                .is_some_and(|other| other.name == self.name)
        });
        if !needed {
            c.execute_batch(&format!("DROP INDEX IF EXISTS {}", self.name)).await?;
        }
        Ok(())
    }
}

/// Makes the index of every active custom attribute that lacks one (attributes defined
/// before the indexes existed); run at startup, a no-op when all are there.
pub(crate) async fn index_all<C: Conn>(c: &mut C) -> StoreResult<()> {
    let rows = c
        .query("SELECT DISTINCT record_type, definition FROM custom_attributes WHERE archived_at IS NULL", &[])
        .await?;
    let mut made = std::collections::HashSet::new();
    for mut row in rows {
        let (Some(rt), Some(text)) = (row.text(0).and_then(|t| RecordType::from_api_name(&t)), row.text(1)) else {
            continue;
        };
        let Some(def) =
            serde_json::from_str(&text).ok().and_then(|json| CustomAttribute::from_json(rt, &json, Vec::new()))
        else {
            continue;
        };
        if let Some(index) = CustomIndex::of(rt, &def)
            && made.insert(index.name.clone())
        {
            index.create(c).await?;
        }
    }
    Ok(())
}

/// The options of a select or stage attribute, to edit (404 for other attributes).
pub async fn option_list<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    rt: RecordType,
    api_name: &str,
) -> StoreResult<Vec<Stage>> {
    let schema = load(c, tenant, rt).await?;
    if stage_attribute(rt) == Some(api_name) {
        return Ok(schema.stages);
    }
    match schema.custom(api_name) {
        Some(def) if def.value_type == ValueType::Select => Ok(def.options.clone()),
        // Like a built-in attribute without options: there is no option list to edit.
        Some(_) => Err(CoreError::new(ErrorCode::RecordNotFound, format!("`{api_name}` has no options"))
            .with("api_name", api_name)
            .into()),
        None => Err(not_found(api_name).into()),
    }
}

/// Saves an edited option list.
pub async fn save_options<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    rt: RecordType,
    api_name: &str,
    list: &[Stage],
) -> StoreResult<()> {
    put_options(c, tenant, rt, api_name, list).await
}
