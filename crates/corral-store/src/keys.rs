//! Per-tenant unique keys kept beside the record tables: account domains and contact emails
//! (docs/CONTRACT.md §3, §5.3). One index row per key; a partial unique index over the rows not
//! `released` makes a key belong to at most one active record, and archiving a record
//! releases its keys. One mechanism serves both kinds of key.

use crate::StoreResult;
use crate::db::{Conn, DbError, SqlValue};
use corral_core::TenantId;
use corral_core::{Actor, CoreError, Record, RecordId, RecordType, normalize};

/// One kind of unique key.
pub(crate) struct KeyIndex {
    table: &'static str,
    owner_column: &'static str,
    key_column: &'static str,
    owner_table: &'static str,
    owner_type: RecordType,
    /// The field named in conflict errors.
    field: &'static str,
    /// `$1` tenant, `$2` owner, `$3` key, `$4` is_primary, `$5` added_at, `$6` released.
    insert: &'static str,
    /// The index rows a record should have: (key, is_primary, added_at).
    rows: fn(&Record) -> Vec<(String, bool, i64)>,
}

const DOMAINS: KeyIndex = KeyIndex {
    table: "account_domains",
    owner_column: "account_id",
    key_column: "domain",
    owner_table: "accounts",
    owner_type: RecordType::Account,
    field: "domain",
    insert: "INSERT INTO account_domains (tenant_id, account_id, domain, is_primary, added_at, released) \
             VALUES ($1, $2, $3, $4, $5, $6)",
    rows: |r| r.domains.iter().map(|d| (d.domain_name.clone(), d.is_primary, d.added_at)).collect(),
};

const EMAILS: KeyIndex = KeyIndex {
    table: "contact_emails",
    owner_column: "contact_id",
    key_column: "email_key",
    owner_table: "contacts",
    owner_type: RecordType::Contact,
    field: "email",
    insert: "INSERT INTO contact_emails (tenant_id, contact_id, email_key, is_primary, added_at, released, email_domain) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
    rows: |r| r.emails.iter().map(|e| (normalize::email_key(&e.value), e.is_primary, e.added_at)).collect(),
};

/// The key indexes of a record type.
fn indexes(rt: RecordType) -> &'static [KeyIndex] {
    match rt {
        RecordType::Account => &[DOMAINS],
        RecordType::Contact => &[EMAILS],
        RecordType::User => &[],
    }
}

/// Refuses `key` if another active record holds it: 409 `conflict`, naming the holder only
/// when the caller may see it.
async fn check_free<C: Conn>(c: &mut C, actor: &Actor, index: &KeyIndex, key: &str, own: RecordId) -> StoreResult<()> {
    let sql = format!(
        "SELECT d.{owner}, r.app_id FROM {table} d JOIN {owners} r ON r.tenant_id = d.tenant_id AND r.id = d.{owner} \
         WHERE d.tenant_id = $1 AND d.{key} = $2 AND {unreleased} AND d.{owner} <> $3",
        owner = index.owner_column,
        table = index.table,
        owners = index.owner_table,
        key = index.key_column,
        unreleased = c.dialect().unreleased("d"),
    );
    let params = [SqlValue::text(actor.tenant.clone()), SqlValue::text(key), SqlValue::text(own.canonical())];
    if let Some(mut row) = c.query_opt(&sql, &params).await? {
        let holder = row.text(0).and_then(|s| RecordId::parse(index.owner_type, &s));
        let visible = actor.app.is_none() || actor.app == row.text(1);
        let shown = holder.filter(|_| visible).map(|id| id.v1(index.owner_type));
        return Err(CoreError::conflict(index.field, key, shown).into());
    }
    Ok(())
}

/// Makes the index rows of `record` match its items, refusing keys another active record
/// holds. `before` is the record as it was (`None` on create).
pub(crate) async fn sync<C: Conn>(
    c: &mut C,
    actor: &Actor,
    record: &Record,
    before: Option<&Record>,
) -> StoreResult<()> {
    for index in indexes(record.record_type) {
        let rows = (index.rows)(record);
        let old = before.map(index.rows).unwrap_or_default();
        if rows == old {
            continue;
        }
        for (key, _, _) in rows.iter().filter(|(k, _, _)| !old.iter().any(|(o, _, _)| o == k)) {
            check_free(c, actor, index, key, record.meta.id).await?;
        }
        let tenant = SqlValue::text(actor.tenant.clone());
        let owner = SqlValue::text(record.meta.id.canonical());
        // A record being created has no rows yet (its id is new): one statement less per create.
        if before.is_some() {
            let delete = format!("DELETE FROM {} WHERE tenant_id = $1 AND {} = $2", index.table, index.owner_column);
            c.execute(&delete, &[tenant.clone(), owner.clone()]).await?;
        }
        for (key, is_primary, added_at) in rows {
            let mut params = vec![
                tenant.clone(),
                owner.clone(),
                SqlValue::text(key.clone()),
                SqlValue::Bool(is_primary),
                SqlValue::Int(added_at),
                SqlValue::Bool(record.is_deleted()),
            ];
            if index.table == EMAILS.table {
                params.push(SqlValue::text(normalize::email_domain(&key)));
            }
            match c.execute(index.insert, &params).await {
                // Claimed by a concurrent transaction after our check.
                Err(DbError::UniqueViolation(_)) => return Err(CoreError::conflict(index.field, &key, None).into()),
                other => {
                    other?;
                }
            }
        }
    }
    Ok(())
}

/// Releases (archive) or reclaims (restore) a record's keys. Reclaiming checks each key is
/// still free: 409 `conflict` if one was claimed while the record was archived.
pub(crate) async fn set_released<C: Conn>(
    c: &mut C,
    actor: &Actor,
    record: &Record,
    released: bool,
) -> StoreResult<()> {
    for index in indexes(record.record_type) {
        if !released {
            for (key, _, _) in (index.rows)(record) {
                check_free(c, actor, index, &key, record.meta.id).await?;
            }
        }
        let sql =
            format!("UPDATE {} SET released = $3 WHERE tenant_id = $1 AND {} = $2", index.table, index.owner_column);
        let params = [
            SqlValue::text(actor.tenant.clone()),
            SqlValue::text(record.meta.id.canonical()),
            SqlValue::Bool(released),
        ];
        c.execute(&sql, &params).await?;
    }
    Ok(())
}

/// Deletes a record's index rows (purge).
pub(crate) async fn remove<C: Conn>(c: &mut C, tenant: &TenantId, rt: RecordType, id: RecordId) -> StoreResult<()> {
    for index in indexes(rt) {
        let sql = format!("DELETE FROM {} WHERE tenant_id = $1 AND {} = $2", index.table, index.owner_column);
        c.execute(&sql, &[SqlValue::text(tenant), SqlValue::text(id.canonical())]).await?;
    }
    Ok(())
}

/// The active record of type `owner_type` visible to `actor` that holds `key`, if any.
pub(crate) async fn holder<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    key: &str,
) -> StoreResult<Option<RecordId>> {
    let Some(index) = indexes(rt).first() else { return Ok(None) };
    let mut sql = format!(
        "SELECT r.id FROM {table} d JOIN {owners} r ON r.tenant_id = d.tenant_id AND r.id = d.{owner} \
         WHERE d.tenant_id = $1 AND d.{key} = $2 AND {unreleased} AND r.deleted_at IS NULL",
        table = index.table,
        owners = index.owner_table,
        owner = index.owner_column,
        key = index.key_column,
        unreleased = c.dialect().unreleased("d"),
    );
    let mut params = vec![SqlValue::text(actor.tenant.clone()), SqlValue::text(key)];
    if let Some(app) = &actor.app {
        sql.push_str(" AND r.app_id = $3");
        params.push(SqlValue::text(app.clone()));
    }
    let row = c.query_opt(&sql, &params).await?;
    Ok(row.and_then(|mut r| r.text(0)).and_then(|s| RecordId::parse(rt, &s)))
}

/// Keeps `record_tags` (one row per tag key) in step with the record's tags, for indexed
/// any-tag filters.
pub(crate) async fn sync_tags<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    record: &Record,
    before: Option<&Record>,
) -> StoreResult<()> {
    let tags = |r: &Record| -> Vec<String> {
        let index = r.fields().iter().position(|f| f.api_name == "tags");
        match index.map(|i| &r.values[i]) {
            Some(corral_core::Value::List(items)) => items.iter().map(|t| t.to_ascii_lowercase()).collect(),
            _ => Vec::new(),
        }
    };
    let now = tags(record);
    if before.is_some_and(|b| tags(b) == now) {
        return Ok(());
    }
    let params = [
        SqlValue::text(tenant),
        SqlValue::text(record.record_type.api_name()),
        SqlValue::text(record.meta.id.canonical()),
    ];
    c.execute("DELETE FROM record_tags WHERE tenant_id = $1 AND record_type = $2 AND record_id = $3", &params).await?;
    for tag in now {
        c.execute(
            "INSERT INTO record_tags (tenant_id, record_type, record_id, tag_key) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[params[0].clone(), params[1].clone(), params[2].clone(), SqlValue::text(tag)],
        )
        .await?;
    }
    Ok(())
}

/// Deletes a purged record's tag rows.
pub(crate) async fn remove_tags<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    rt: RecordType,
    id: RecordId,
) -> StoreResult<()> {
    c.execute(
        "DELETE FROM record_tags WHERE tenant_id = $1 AND record_type = $2 AND record_id = $3",
        &[SqlValue::text(tenant), SqlValue::text(rt.api_name()), SqlValue::text(id.canonical())],
    )
    .await?;
    Ok(())
}
