//! Duplicate candidates (docs/API.md, "Duplicate candidates"): the blocking keys of records,
//! kept in step by the write funnel, and the search that turns shared keys into scored groups.
//!
//! Comparing every pair of a tenant's records is quadratic, so each active account and contact
//! gets a few *blocking keys* when it is written ([`keys_of`]): its normalised name, the name
//! without legal suffixes, a consonant sketch of that name (for typos), its phone numbers,
//! its domains and website hosts, and (contacts) its name at its primary account. They live in
//! `duplicate_keys`, with a count per key value in `duplicate_blocks`; a key held by two or more
//! records is a *block*. [`candidates`] walks the blocks in (kind, key) order through a partial
//! index, reads the members of a batch of blocks in one statement (the caller's tenant, app
//! scope and filter applied), and scores each block's records by what they share. Trigram
//! similarity of names is computed only inside a block, never across the tenant.

use crate::db::{Conn, SqlBuilder, SqlValue, insert_rows};
use crate::records;
use crate::{StoreError, StoreResult};
use corral_core::filter::Cond;
use corral_core::schema::fields;
use corral_core::{Actor, Record, RecordType, TenantId, Value, normalize};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// What a blocking key is made of. The code is stored and sorts the blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyKind {
    /// An account's domain or website host (not a free-mail or social host).
    Domain,
    /// A contact's normalised name with its primary account.
    NameAtAccount,
    /// The normalised name without legal suffixes.
    NameCore,
    /// The normalised name.
    Name,
    /// The name without legal suffixes, vowels and repeated letters: only a block to look
    /// in, kept as a group when the names are also similar by trigrams.
    NameSketch,
    /// The last ten digits of a phone number.
    Phone,
}

impl KeyKind {
    /// The stored code; codes sort in the order of the variants.
    pub fn code(self) -> &'static str {
        match self {
            KeyKind::Domain => "domain",
            KeyKind::NameAtAccount => "name_account",
            KeyKind::NameCore => "name_core",
            KeyKind::Name => "name_exact",
            KeyKind::NameSketch => "name_sketch",
            KeyKind::Phone => "phone",
        }
    }

    fn parse(code: &str) -> Option<KeyKind> {
        [KeyKind::Domain, KeyKind::NameAtAccount, KeyKind::NameCore, KeyKind::Name, KeyKind::NameSketch, KeyKind::Phone]
            .into_iter()
            .find(|k| k.code() == code)
    }

    /// The reason a shared key of this kind gives, and its weight in the score (see
    /// [`score`]). The sketch is no reason: it only finds names to compare.
    fn reason(self) -> Option<(&'static str, f64)> {
        match self {
            KeyKind::Name => Some(("same_name", 0.9)),
            KeyKind::NameAtAccount => Some(("same_name_at_account", 0.9)),
            KeyKind::NameCore => Some(("same_name_without_legal_suffix", 0.8)),
            KeyKind::Domain => Some(("same_domain", 0.7)),
            KeyKind::Phone => Some(("same_phone", 0.6)),
            KeyKind::NameSketch => None,
        }
    }
}

/// The `similar_name` reason: every pair of names in the group has at least this trigram
/// similarity (and the names are not already equal without legal suffixes).
pub const SIMILAR_NAME_THRESHOLD: f64 = 0.5;
/// Weight of `similar_name` in the score.
const SIMILAR_NAME_WEIGHT: f64 = 0.5;

/// One blocking key of a record.
pub type Key = (KeyKind, String);

/// Legal-form suffixes dropped from the end of a normalised name (dots already removed:
/// `S.A.` is `sa`).
const LEGAL_SUFFIXES: &[&str] = &[
    "ab",
    "ag",
    "aps",
    "as",
    "asa",
    "bv",
    "bvba",
    "co",
    "company",
    "corp",
    "corporation",
    "cv",
    "eg",
    "ek",
    "gbr",
    "gmbh",
    "inc",
    "incorporated",
    "kft",
    "kg",
    "kk",
    "lda",
    "limited",
    "llc",
    "llp",
    "lp",
    "ltd",
    "ltda",
    "mbh",
    "nv",
    "oy",
    "oyj",
    "plc",
    "pty",
    "pte",
    "sa",
    "sarl",
    "sas",
    "se",
    "sl",
    "spa",
    "sprl",
    "sro",
    "srl",
    "ug",
];

/// Hosts many unrelated organisations share (profile pages, site builders): no evidence.
const SHARED_HOSTS: &[&str] = &[
    "facebook.com",
    "linkedin.com",
    "twitter.com",
    "x.com",
    "instagram.com",
    "youtube.com",
    "github.com",
    "google.com",
    "sites.google.com",
    "wixsite.com",
    "wordpress.com",
    "blogspot.com",
    "medium.com",
    "example.com",
];

/// Lower-cases, drops dots and apostrophes (`S.A.` → `sa`, `O'Neil` → `oneil`), turns every
/// other non-alphanumeric character into a space, and collapses spaces.
pub fn normalise_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for ch in name.chars().flat_map(char::to_lowercase) {
        if ch.is_alphanumeric() {
            out.push(ch);
        } else if matches!(ch, '.' | '\'' | '’') {
            continue;
        } else if !out.ends_with(' ') && !out.is_empty() {
            out.push(' ');
        }
    }
    out.trim_end().to_owned()
}

/// A normalised name without trailing legal suffixes (`acme holdings gmbh co kg` →
/// `acme holdings`) and a leading `the`; the name itself when nothing else would remain.
pub fn name_core(normalised: &str) -> String {
    let mut words: Vec<&str> = normalised.split(' ').filter(|w| !w.is_empty()).collect();
    while words.len() > 1 && words.last().is_some_and(|w| LEGAL_SUFFIXES.contains(w)) {
        words.pop();
    }
    if words.len() > 1 && words[0] == "the" {
        words.remove(0);
    }
    words.join(" ")
}

/// A name core without vowels after each word's first letter, repeated letters and spaces:
/// `globex industries` and `globecs industrys` share `glbxndstrs`-like sketches.
fn sketch(core: &str) -> String {
    let mut out = String::new();
    for word in core.split(' ') {
        let mut last = None;
        for (i, ch) in word.chars().enumerate() {
            let vowel = matches!(ch, 'a' | 'e' | 'i' | 'o' | 'u' | 'y');
            if (i == 0 || !vowel) && last != Some(ch) {
                out.push(ch);
            }
            last = Some(ch);
        }
    }
    out
}

/// The last ten digits of a phone number, so `+1 (555) 010-2030` and `555.010.2030` meet;
/// `None` below seven digits (extensions, fragments).
pub fn phone_key(phone: &str) -> Option<String> {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= 7).then(|| digits[digits.len().saturating_sub(10)..].iter().collect())
}

/// A domain or website's host as a key, unless many organisations share it.
fn host_key(raw: &str) -> Option<String> {
    let host = normalize::domain(raw).ok()?;
    (!normalize::is_free_mail(&host) && !SHARED_HOSTS.contains(&host.as_str())).then_some(host)
}

fn text<'a>(record: &'a Record, column: &str) -> Option<&'a str> {
    let index = fields(record.record_type).iter().position(|f| f.column == column)?;
    record.values.get(index)?.as_text().filter(|s| !s.trim().is_empty())
}

fn list<'a>(record: &'a Record, column: &str) -> Vec<&'a str> {
    let index = fields(record.record_type).iter().position(|f| f.column == column);
    match index.and_then(|i| record.values.get(i)) {
        Some(Value::List(items)) => items.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The names a record is known by, normalised: an account's name and legal name, a contact's
/// display name (or first and last name).
pub fn names(record: &Record) -> Vec<String> {
    let raw: Vec<String> = match record.record_type {
        RecordType::Account => {
            ["name", "legal_name"].iter().filter_map(|c| text(record, c)).map(str::to_owned).collect()
        }
        RecordType::Contact => match text(record, "display_name") {
            Some(d) => vec![d.to_owned()],
            None => {
                let parts: Vec<&str> = ["first_name", "last_name"].iter().filter_map(|c| text(record, c)).collect();
                if parts.is_empty() { Vec::new() } else { vec![parts.join(" ")] }
            }
        },
        RecordType::User => Vec::new(),
    };
    let mut out: Vec<String> = raw.iter().map(|n| normalise_name(n)).filter(|n| !n.is_empty()).collect();
    out.dedup();
    out
}

/// The blocking keys of a record, sorted; none for an archived record (archived records are
/// never candidates) or a user.
pub fn keys_of(record: &Record) -> BTreeSet<Key> {
    let mut keys = BTreeSet::new();
    if record.meta.deleted_at.is_some() {
        return keys;
    }
    match record.record_type {
        RecordType::Account => {
            for name in names(record) {
                let core = name_core(&name);
                let s = sketch(&core);
                if s.chars().count() >= 3 {
                    keys.insert((KeyKind::NameSketch, s));
                }
                keys.insert((KeyKind::NameCore, core));
                keys.insert((KeyKind::Name, name));
            }
            if let Some(p) = text(record, "phone").and_then(phone_key) {
                keys.insert((KeyKind::Phone, p));
            }
            let hosts = record
                .domains
                .iter()
                .map(|d| d.domain_name.as_str())
                .chain(text(record, "website"))
                .chain(list(record, "websites"));
            keys.extend(hosts.filter_map(host_key).map(|h| (KeyKind::Domain, h)));
        }
        RecordType::Contact => {
            if let Some(account) = &record.primary_account {
                for name in names(record) {
                    keys.insert((KeyKind::NameAtAccount, format!("{}|{name}", account.canonical())));
                }
            }
            keys.extend(record.phones.iter().filter_map(|p| phone_key(&p.value)).map(|p| (KeyKind::Phone, p)));
        }
        RecordType::User => {}
    }
    keys
}

/// Trigrams of a normalised name as PostgreSQL's pg_trgm takes them: each word padded with
/// two spaces before and one after.
fn trigrams(name: &str) -> HashSet<[char; 3]> {
    let mut out = HashSet::new();
    for word in name.split(' ').filter(|w| !w.is_empty()) {
        let padded: Vec<char> = "  ".chars().chain(word.chars()).chain(" ".chars()).collect();
        out.extend(padded.windows(3).map(|w| [w[0], w[1], w[2]]));
    }
    out
}

/// Trigram similarity of two normalised names: shared trigrams over all trigrams (0..1).
pub fn similarity(a: &str, b: &str) -> f64 {
    let (ta, tb) = (trigrams(a), trigrams(b));
    let union = ta.union(&tb).count();
    if union == 0 { 0.0 } else { ta.intersection(&tb).count() as f64 / union as f64 }
}

/// The score of a group from the weights of its reasons, combined as independent evidence:
/// `1 - Π(1 - w)`, rounded to three decimals. One reason scores its weight; more reasons
/// score higher, never above 1.
pub fn score(weights: &[f64]) -> f64 {
    let miss: f64 = weights.iter().map(|w| 1.0 - w).product();
    ((1.0 - miss) * 1000.0).round() / 1000.0
}

/// Keeps a record's rows in `duplicate_keys` and the counts in `duplicate_blocks` in step with
/// its new state: called by the write funnel ([`records::commit`]) for every record change, in
/// the same transaction. Keys are written in sorted order, so concurrent writers lock block
/// rows in one order.
pub(crate) async fn sync<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    before: Option<&Record>,
    after: Option<&Record>,
) -> StoreResult<()> {
    let Some(rt) = after.or(before).map(|r| r.record_type).filter(|rt| *rt != RecordType::User) else {
        return Ok(());
    };
    let old = before.map(keys_of).unwrap_or_default();
    let new = after.map(keys_of).unwrap_or_default();
    if old == new {
        return Ok(());
    }
    let id = after.or(before).map(|r| r.meta.id.canonical()).unwrap_or_default();
    apply(c, tenant, rt, &id, &old, &new).await
}

/// Replaces the stored keys `old` of one record by `new`: a fixed number of statements
/// whatever the number of keys (each key set changed in one statement per table; this runs
/// for every record write, bulk imports included).
async fn apply<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    rt: RecordType,
    id: &str,
    old: &BTreeSet<Key>,
    new: &BTreeSet<Key>,
) -> StoreResult<()> {
    for q in sync_statements(tenant, rt, id, old, new) {
        c.execute(&q.sql, &q.params).await?;
    }
    Ok(())
}

/// The statements of [`apply`], in order (public for the query-plan test, which checks that
/// each reads only the rows of the keys it names).
pub fn sync_statements(
    tenant: &TenantId,
    rt: RecordType,
    id: &str,
    old: &BTreeSet<Key>,
    new: &BTreeSet<Key>,
) -> Vec<SqlBuilder> {
    let gone: Vec<&Key> = old.difference(new).collect();
    let added: Vec<&Key> = new.difference(old).collect();
    let scoped = |sql: &str| {
        let mut q = SqlBuilder::new(sql);
        q.params = vec![SqlValue::text(tenant), SqlValue::text(rt.api_name())];
        q
    };
    let mut statements = Vec::new();
    if !gone.is_empty() {
        let mut q =
            scoped("DELETE FROM duplicate_keys WHERE tenant_id = $1 AND record_type = $2 AND record_id = $3 AND ");
        q.params.push(SqlValue::text(id));
        key_pairs(&mut q, gone.iter().copied());
        statements.push(q);
        let mut q =
            scoped("UPDATE duplicate_blocks SET members = members - 1 WHERE tenant_id = $1 AND record_type = $2 AND ");
        key_pairs(&mut q, gone.iter().copied());
        statements.push(q);
        let mut q =
            scoped("DELETE FROM duplicate_blocks WHERE tenant_id = $1 AND record_type = $2 AND members <= 0 AND ");
        key_pairs(&mut q, gone.iter().copied());
        statements.push(q);
    }
    if !added.is_empty() {
        // Rows in key order (the sets are sorted), so concurrent writers take block rows in one order.
        let mut keys = scoped("INSERT INTO duplicate_keys (tenant_id, record_type, kind, key, record_id) VALUES ");
        let mut blocks = scoped("INSERT INTO duplicate_blocks (tenant_id, record_type, kind, key, members) VALUES ");
        let record = keys.bind(SqlValue::text(id));
        for (i, (kind, key)) in added.iter().enumerate() {
            let separator = if i == 0 { "" } else { ", " };
            let (k, v) = (keys.bind(SqlValue::text(kind.code())), keys.bind(SqlValue::text(key.clone())));
            keys.push(&format!("{separator}($1, $2, {k}, {v}, {record})"));
            let (k, v) = (blocks.bind(SqlValue::text(kind.code())), blocks.bind(SqlValue::text(key.clone())));
            blocks.push(&format!("{separator}($1, $2, {k}, {v}, 1)"));
        }
        blocks.push(
            " ON CONFLICT (tenant_id, record_type, kind, key) DO UPDATE SET members = duplicate_blocks.members + 1",
        );
        statements.push(keys);
        statements.push(blocks);
    }
    statements
}

/// Appends a condition true for exactly the (kind, key) pairs `keys` (at least one), in a
/// form whose plan shows the primary-key lookups on both databases: `kind IN (…) AND key IN
/// (…)`, then the pairs themselves, `((kind = … AND key IN (…)) OR …)`, one term per kind.
/// SQLite answers a bare OR of the pairs with one seek per pair too, but on a `WITHOUT ROWID`
/// table (these are, since migration 0012) its plan names only the tenant prefix, the same
/// line a scan of all of the tenant's keys prints, so the query-plan test could not tell the
/// two apart. The IN lists give every (kind, key) combination to probe, and the OR keeps the
/// pairs asked for.
fn key_pairs<'a, K: AsRef<str> + 'a>(q: &mut SqlBuilder, keys: impl IntoIterator<Item = &'a (KeyKind, K)>) {
    let mut by_kind: BTreeMap<KeyKind, BTreeSet<&str>> = BTreeMap::new();
    for (kind, key) in keys {
        by_kind.entry(*kind).or_default().insert(key.as_ref());
    }
    // Each key value is bound once, however many kinds it appears under.
    let mut key_params: BTreeMap<&str, String> = BTreeMap::new();
    let (mut kind_params, mut terms) = (Vec::new(), Vec::new());
    for (kind, values) in &by_kind {
        let k = q.bind(SqlValue::text(kind.code()));
        let list: Vec<String> =
            values.iter().map(|v| key_params.entry(v).or_insert_with(|| q.bind(SqlValue::text(*v))).clone()).collect();
        terms.push(format!("(kind = {k} AND key IN ({}))", list.join(", ")));
        kind_params.push(k);
    }
    let key_list: Vec<&str> = key_params.values().map(String::as_str).collect();
    q.push(&format!(
        "kind IN ({}) AND key IN ({}) AND ({})",
        kind_params.join(", "),
        key_list.join(", "),
        terms.join(" OR ")
    ));
}

/// [`sync`] for many new records of one type at once (the batch write path): their keys in
/// a few multi-row inserts, and each block's count raised once by the number of records
/// joining it (one statement may not update the same block row twice).
pub(crate) async fn add_many<C: Conn>(c: &mut C, tenant: &TenantId, records: &[Record]) -> StoreResult<()> {
    let Some(rt) = records.first().map(|r| r.record_type).filter(|rt| *rt != RecordType::User) else {
        return Ok(());
    };
    let mut rows = Vec::new();
    let mut joining: BTreeMap<Key, i64> = BTreeMap::new();
    for record in records {
        let id = record.meta.id.canonical();
        for (kind, key) in keys_of(record) {
            let row = [tenant.as_str(), rt.api_name(), kind.code(), &key, &id];
            rows.push(row.map(SqlValue::text).to_vec());
            *joining.entry((kind, key)).or_default() += 1;
        }
    }
    insert_rows(c, "INSERT INTO duplicate_keys (tenant_id, record_type, kind, key, record_id)", "", rows).await?;
    // In key order, as [`apply`] takes block rows.
    let blocks: Vec<Vec<SqlValue>> = joining
        .into_iter()
        .map(|((kind, key), n)| {
            let row = [tenant.as_str(), rt.api_name(), kind.code(), &key].map(SqlValue::text);
            row.into_iter().chain([SqlValue::Int(n)]).collect()
        })
        .collect();
    insert_rows(
        c,
        "INSERT INTO duplicate_blocks (tenant_id, record_type, kind, key, members)",
        " ON CONFLICT (tenant_id, record_type, kind, key) DO UPDATE SET members = duplicate_blocks.members + excluded.members",
        blocks,
    )
    .await?;
    Ok(())
}

/// Records given keys per startup batch of the backfill.
const BACKFILL_BATCH: usize = 1_000;

/// One batch of the startup backfill of records written before the keys existed (migration
/// 0010 leaves a position per record type): gives the next records their keys, replacing any
/// stored ones (a record written since has them already), and moves the position on.
/// Returns whether work remains.
pub(crate) async fn backfill_batch<C: Conn>(c: &mut C) -> StoreResult<bool> {
    let Some(mut row) = c
        .query_opt("SELECT record_type, after_tenant, after_id FROM duplicate_key_backfill ORDER BY record_type", &[])
        .await?
    else {
        return Ok(false);
    };
    let code = row.text(0).unwrap_or_default();
    let (after_tenant, after_id) = (row.text(1).unwrap_or_default(), row.text(2).unwrap_or_default());
    let rt = RecordType::from_api_name(&code)
        .ok_or_else(|| StoreError::Internal(format!("unknown record type `{code}` in the key backfill")))?;
    let batch = records::scan_active(c, rt, (&after_tenant, &after_id), BACKFILL_BATCH).await?;
    for record in &batch {
        let id = record.meta.id.canonical();
        let keys = keys_of(record);
        if keys.is_empty() {
            continue;
        }
        // Which of its keys it holds already (a record written since the migration holds all).
        let mut q = SqlBuilder::new(
            "SELECT kind, key FROM duplicate_keys WHERE tenant_id = $1 AND record_type = $2 AND record_id = $3 AND ",
        );
        q.params = vec![
            SqlValue::text(record.meta.tenant_id.clone()),
            SqlValue::text(rt.api_name()),
            SqlValue::text(id.clone()),
        ];
        key_pairs(&mut q, &keys);
        let stored = c
            .query(&q.sql, &q.params)
            .await?
            .into_iter()
            .filter_map(|mut r| Some((KeyKind::parse(&r.text(0)?)?, r.text(1)?)))
            .collect();
        let tenant = TenantId::from(record.meta.tenant_id.clone());
        apply(c, &tenant, rt, &id, &stored, &keys).await?;
    }
    let params = [SqlValue::text(rt.api_name())];
    match batch.last() {
        Some(last) if batch.len() == BACKFILL_BATCH => {
            c.execute(
                "UPDATE duplicate_key_backfill SET after_tenant = $2, after_id = $3 WHERE record_type = $1",
                &[
                    params[0].clone(),
                    SqlValue::text(last.meta.tenant_id.clone()),
                    SqlValue::text(last.meta.id.canonical()),
                ],
            )
            .await?;
        }
        _ => {
            c.execute("DELETE FROM duplicate_key_backfill WHERE record_type = $1", &params).await?;
        }
    }
    Ok(true)
}

/// A group of likely duplicates: its records (oldest first), score and reason codes.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub score: f64,
    pub reasons: Vec<&'static str>,
    pub records: Vec<Record>,
}

/// Where a search stopped: the last block read, as (kind code, key).
pub type Position = (String, String);

/// Most groups of one page.
pub const MAX_LIMIT: usize = 100;
/// Most records shown in one group (the oldest ones).
pub const MAX_GROUP_RECORDS: usize = 100;
/// Blocks read per statement.
const BLOCK_BATCH: usize = 200;
/// Blocks one page reads at most: a page may end short of `limit` (with a cursor) rather
/// than read every block of a tenant whose keys are in scope nowhere.
const BLOCK_BUDGET: usize = 5_000;

/// One page of duplicate candidates among the active records of `rt` visible to `actor` that
/// match `filter`: groups scoring at least `min_score`, after the block `after`. Returns the
/// groups and, when more may follow, the position to continue from.
///
/// Each block (a key value two or more records share) whose in-scope members are two or
/// more is a group, unless all of its members also share a key that sorts before it: that
/// earlier block's group already holds them all, so a set of records is reported once, with
/// every reason its members all share.
pub async fn candidates<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    filter: Option<&Cond>,
    min_score: f64,
    after: Option<Position>,
    limit: usize,
) -> StoreResult<(Vec<Group>, Option<Position>)> {
    let mut groups = Vec::new();
    let mut position = after.unwrap_or_default();
    let mut read = 0;
    while read < BLOCK_BUDGET {
        let rows = c
            .query(
                &format!(
                    "SELECT kind, key FROM duplicate_blocks WHERE tenant_id = $1 AND record_type = $2 AND members > 1 \
                     AND (kind > $3 OR (kind = $3 AND key > $4)) ORDER BY kind, key LIMIT {BLOCK_BATCH}"
                ),
                &[
                    SqlValue::text(&actor.tenant),
                    SqlValue::text(rt.api_name()),
                    SqlValue::text(position.0.clone()),
                    SqlValue::text(position.1.clone()),
                ],
            )
            .await?;
        let blocks: Vec<(KeyKind, String)> =
            rows.into_iter().filter_map(|mut r| Some((KeyKind::parse(&r.text(0)?)?, r.text(1)?))).collect();
        let Some(last) = blocks.last() else { return Ok((groups, None)) };
        read += blocks.len();
        let members = block_members(c, actor, rt, filter, &blocks).await?;
        let keyed: Vec<(BTreeSet<Key>, Record)> = members.into_iter().map(|r| (keys_of(&r), r)).collect();
        for block in &blocks {
            let group: Vec<&(BTreeSet<Key>, Record)> = keyed.iter().filter(|(k, _)| k.contains(block)).collect();
            if group.len() < 2 {
                continue;
            }
            let shared: BTreeSet<&Key> =
                group[0].0.iter().filter(|k| group[1..].iter().all(|(other, _)| other.contains(*k))).collect();
            if shared.first().is_some_and(|first| *first < block) {
                continue;
            }
            let Some(found) = assess(&group, &shared) else { continue };
            if found.score < min_score {
                continue;
            }
            groups.push(found);
            if groups.len() == limit {
                return Ok((groups, Some((block.0.code().to_owned(), block.1.clone()))));
            }
        }
        position = (last.0.code().to_owned(), last.1.clone());
        if blocks.len() < BLOCK_BATCH {
            return Ok((groups, None));
        }
    }
    Ok((groups, Some(position)))
}

/// The ids of the records holding any of `blocks`' keys (public for the query-plan test).
pub fn members_sql(tenant: &TenantId, rt: RecordType, blocks: &[(KeyKind, String)]) -> SqlBuilder {
    let mut q =
        SqlBuilder::new("SELECT DISTINCT record_id FROM duplicate_keys WHERE tenant_id = $1 AND record_type = $2 AND ");
    q.params = vec![SqlValue::text(tenant), SqlValue::text(rt.api_name())];
    key_pairs(&mut q, blocks);
    q
}

/// Ids bound per statement when reading block members.
const IDS_PER_STATEMENT: usize = 500;

/// The active records in scope holding any of `blocks`' keys, oldest first. Two steps, each
/// on one table by its primary key (the keys' ids, then those records with the caller's
/// scope and filter): a join leaves PostgreSQL free to drive it from the tenant's records,
/// which it does without statistics (after a bulk load).
async fn block_members<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    filter: Option<&Cond>,
    blocks: &[(KeyKind, String)],
) -> StoreResult<Vec<Record>> {
    let q = members_sql(&actor.tenant, rt, blocks);
    let ids: Vec<String> = c.query(&q.sql, &q.params).await?.into_iter().filter_map(|mut r| r.text(0)).collect();
    let mut members = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let found = records::select_scoped(c, actor, rt, filter, |q: &mut SqlBuilder| {
            let list: Vec<String> = chunk.iter().map(|id| q.bind(SqlValue::text(id.clone()))).collect();
            format!("id IN ({})", list.join(", "))
        })
        .await?;
        members.extend(found);
    }
    members.sort_by_key(|r| (r.meta.created_at, r.meta.id.canonical()));
    Ok(members)
}

/// The reasons and score of a group of records whose common keys are `shared`; `None` when
/// the only thing they share is a name sketch and their names are not similar.
fn assess(group: &[&(BTreeSet<Key>, Record)], shared: &BTreeSet<&Key>) -> Option<Group> {
    let mut reasons: Vec<(&'static str, f64)> = shared.iter().filter_map(|(kind, _)| kind.reason()).collect();
    reasons.dedup();
    let same_core = shared.iter().any(|(kind, _)| matches!(kind, KeyKind::NameCore | KeyKind::NameAtAccount));
    if !same_core && similar_names(group) {
        reasons.push(("similar_name", SIMILAR_NAME_WEIGHT));
    }
    if reasons.is_empty() {
        return None;
    }
    reasons.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    let weights: Vec<f64> = reasons.iter().map(|r| r.1).collect();
    Some(Group {
        score: score(&weights),
        reasons: reasons.iter().map(|r| r.0).collect(),
        records: group.iter().take(MAX_GROUP_RECORDS).map(|(_, r)| r.clone()).collect(),
    })
}

/// Whether every pair of records in the group has names (cores) at least
/// [`SIMILAR_NAME_THRESHOLD`] similar by trigrams (a record with several names: its closest).
fn similar_names(group: &[&(BTreeSet<Key>, Record)]) -> bool {
    let cores: Vec<Vec<String>> =
        group.iter().map(|(_, r)| names(r).iter().map(|n| name_core(n)).collect::<Vec<_>>()).collect();
    if cores.iter().any(Vec::is_empty) {
        return false;
    }
    cores.iter().enumerate().all(|(i, a)| {
        cores[i + 1..].iter().all(|b| a.iter().any(|x| b.iter().any(|y| similarity(x, y) >= SIMILAR_NAME_THRESHOLD)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise_and_lose_legal_suffixes() {
        assert_eq!(normalise_name("  ACME, Inc. "), "acme inc");
        assert_eq!(normalise_name("Müller & Söhne GmbH"), "müller söhne gmbh");
        assert_eq!(name_core(&normalise_name("Acme Holdings GmbH & Co. KG")), "acme holdings");
        assert_eq!(name_core(&normalise_name("Globex S.A.")), "globex");
        assert_eq!(name_core(&normalise_name("The Initech Corporation")), "initech");
        // A name that is only a suffix keeps it.
        assert_eq!(name_core("co"), "co");
    }

    #[test]
    fn phones_meet_on_their_last_ten_digits() {
        assert_eq!(phone_key("+1 (555) 010-2030"), phone_key("555.010.2030"));
        assert_eq!(phone_key("+44 20 7946 0958"), phone_key("020 7946 0958"));
        assert_eq!(phone_key("ext 12"), None);
    }

    #[test]
    fn sketches_absorb_vowel_typos_and_doubled_letters() {
        assert_eq!(sketch("globex industries"), sketch("globax industries"));
        assert_eq!(sketch("kovalo trendix"), sketch("kovala trendix"));
        assert_eq!(sketch("hammer"), sketch("hamer"));
    }

    #[test]
    fn trigram_similarity_is_one_for_equal_names_and_low_for_unrelated_ones() {
        assert_eq!(similarity("acme", "acme"), 1.0);
        assert!(similarity("kovalo trendix", "kovala trendix") >= SIMILAR_NAME_THRESHOLD);
        assert!(similarity("bata", "beta") < SIMILAR_NAME_THRESHOLD);
        assert_eq!(similarity("", ""), 0.0);
    }

    #[test]
    fn scores_combine_reasons_and_stay_within_one() {
        assert_eq!(score(&[0.9]), 0.9);
        assert_eq!(score(&[0.9, 0.8]), 0.98);
        assert!(score(&[0.9, 0.9, 0.9, 0.9, 0.9, 0.9]) <= 1.0);
        assert_eq!(score(&[]), 0.0);
    }
}
