//! Per-tenant unique keys kept beside the record tables: account domains and contact emails
//! (docs/CONTRACT.md §3, §5.3). One index row per key; a partial unique index over the rows not
//! `released` makes a key belong to at most one active record, and archiving a record
//! releases its keys. One mechanism serves both kinds of key.

use crate::StoreResult;
use crate::db::{Conn, DbError, SqlValue, insert_rows, texts_in};
use corral_core::TenantId;
use corral_core::{Actor, CoreError, Record, RecordId, RecordType, normalize};
use std::collections::HashSet;

/// One kind of unique key.
pub(crate) struct KeyIndex {
    table: &'static str,
    owner_column: &'static str,
    key_column: &'static str,
    owner_table: &'static str,
    owner_type: RecordType,
    /// The field named in conflict errors.
    field: &'static str,
    /// The INSERT up to its VALUES: tenant, owner, key, is_primary, added_at, released (and
    /// for emails, the email's domain); see [`KeyIndex::row`].
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
    insert: "INSERT INTO account_domains (tenant_id, account_id, domain, is_primary, added_at, released)",
    rows: |r| r.domains.iter().map(|d| (d.domain_name.clone(), d.is_primary, d.added_at)).collect(),
};

const EMAILS: KeyIndex = KeyIndex {
    table: "contact_emails",
    owner_column: "contact_id",
    key_column: "email_key",
    owner_table: "contacts",
    owner_type: RecordType::Contact,
    field: "email",
    insert: "INSERT INTO contact_emails (tenant_id, contact_id, email_key, is_primary, added_at, released, email_domain)",
    rows: |r| r.emails.iter().map(|e| (normalize::email_key(&e.value), e.is_primary, e.added_at)).collect(),
};

impl KeyIndex {
    /// The values of one index row of `record` ([`KeyIndex::insert`]'s columns).
    fn row(
        &self,
        tenant: &TenantId,
        record: &Record,
        (key, is_primary, added_at): (String, bool, i64),
    ) -> Vec<SqlValue> {
        let email_domain = (self.table == EMAILS.table).then(|| SqlValue::text(normalize::email_domain(&key)));
        let mut row = vec![
            SqlValue::text(tenant),
            SqlValue::text(record.meta.id.canonical()),
            SqlValue::text(key),
            SqlValue::Bool(is_primary),
            SqlValue::Int(added_at),
            SqlValue::Bool(record.is_deleted()),
        ];
        row.extend(email_domain);
        row
    }
}

/// The key indexes of a record type.
fn indexes(rt: RecordType) -> &'static [KeyIndex] {
    match rt {
        RecordType::Account => &[DOMAINS],
        RecordType::Contact => &[EMAILS],
        RecordType::User => &[],
    }
}

/// The unique keys of a record (those of its index rows): account domains, contact email keys.
pub(crate) fn unique_keys(record: &Record) -> Vec<String> {
    indexes(record.record_type).iter().flat_map(|i| (i.rows)(record)).map(|(key, _, _)| key).collect()
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
        // A record being created has no rows yet (its id is new): one statement less per create.
        if before.is_some() {
            let delete = format!("DELETE FROM {} WHERE tenant_id = $1 AND {} = $2", index.table, index.owner_column);
            let params = [SqlValue::text(actor.tenant.clone()), SqlValue::text(record.meta.id.canonical())];
            c.execute(&delete, &params).await?;
        }
        // One row per statement: a unique violation then names its key.
        for row in rows {
            let key = row.0.clone();
            match insert_rows(c, index.insert, "", vec![index.row(&actor.tenant, record, row)]).await {
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

/// Which of `wanted` (keys of `rt`'s index: account domains, contact email keys) a record of
/// the tenant holds and has not released: the keys a new record could not take. Records of
/// every app count, as in the unique index.
pub(crate) async fn claimed<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    rt: RecordType,
    wanted: &[String],
) -> StoreResult<HashSet<String>> {
    let Some(index) = indexes(rt).first() else { return Ok(HashSet::new()) };
    let unreleased = c.dialect().unreleased("d");
    Ok(texts_in(c, wanted, |q, list| {
        let t = q.bind(SqlValue::text(tenant));
        format!(
            "SELECT d.{key} FROM {table} d WHERE d.tenant_id = {t} AND d.{key} IN {list} AND {unreleased}",
            key = index.key_column,
            table = index.table,
        )
    })
    .await?)
}

/// Inserts the index rows of new records of one type, whose keys are known to be free
/// ([`claimed`]): a few multi-row statements for all of them. A key claimed meanwhile by a
/// concurrent transaction fails the statement (a unique violation).
pub(crate) async fn insert_many<C: Conn>(c: &mut C, tenant: &TenantId, records: &[Record]) -> StoreResult<()> {
    let Some(index) = records.first().and_then(|r| indexes(r.record_type).first()) else { return Ok(()) };
    let rows: Vec<Vec<SqlValue>> =
        records.iter().flat_map(|r| (index.rows)(r).into_iter().map(|row| index.row(tenant, r, row))).collect();
    insert_rows(c, index.insert, "", rows).await?;
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

const INSERT_TAGS: &str = "INSERT INTO record_tags (tenant_id, record_type, record_id, tag_key)";

/// The `record_tags` rows of a record: one per tag, lowercased (duplicates are skipped by the
/// insert's `ON CONFLICT DO NOTHING`).
fn tag_rows(tenant: &TenantId, record: &Record) -> Vec<Vec<SqlValue>> {
    let index = record.fields().iter().position(|f| f.api_name == "tags");
    let Some(corral_core::Value::List(items)) = index.map(|i| &record.values[i]) else { return Vec::new() };
    let (rt, id) = (record.record_type.api_name(), record.meta.id.canonical());
    items
        .iter()
        .map(|t| {
            vec![
                SqlValue::text(tenant),
                SqlValue::text(rt),
                SqlValue::text(id.as_str()),
                SqlValue::text(t.to_ascii_lowercase()),
            ]
        })
        .collect()
}

/// Keeps `record_tags` (one row per tag key) in step with the record's tags, for indexed
/// any-tag filters.
pub(crate) async fn sync_tags<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    record: &Record,
    before: Option<&Record>,
) -> StoreResult<()> {
    let now = tag_rows(tenant, record);
    if before.is_some_and(|b| tag_rows(tenant, b) == now) {
        return Ok(());
    }
    let params = [
        SqlValue::text(tenant),
        SqlValue::text(record.record_type.api_name()),
        SqlValue::text(record.meta.id.canonical()),
    ];
    // A new record (a new id) has no rows to delete.
    if before.is_some() {
        c.execute("DELETE FROM record_tags WHERE tenant_id = $1 AND record_type = $2 AND record_id = $3", &params)
            .await?;
    }
    insert_rows(c, INSERT_TAGS, " ON CONFLICT DO NOTHING", now).await?;
    Ok(())
}

/// Inserts the tag rows of new records: a few multi-row statements for all of them.
pub(crate) async fn insert_tags_many(c: &mut impl Conn, tenant: &TenantId, records: &[Record]) -> StoreResult<()> {
    let rows: Vec<Vec<SqlValue>> = records.iter().flat_map(|r| tag_rows(tenant, r)).collect();
    insert_rows(c, INSERT_TAGS, " ON CONFLICT DO NOTHING", rows).await?;
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
