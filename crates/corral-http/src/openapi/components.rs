//! Component schemas of the OpenAPI document: per record type (typed from the tenant's
//! `_schema` documents through [`super::values`]), and the fixed shapes of errors,
//! sub-resources, relationships and admin routes.

use super::values::{
    Attribute, ConditionShape, DOMAIN, EMAIL, PHONE, TEXT, address, condition_schema, filter_conditions, nullable,
    pascal, raw_write_value, read_envelope, shared_components, text, write_value,
};
use corral_core::custom::TenantSchema;
use corral_core::filter::Relation;
use corral_core::list::{MAX_SORT_KEYS, V2_MAX_LIMIT};
use corral_core::record::ITEM_LABELS;
use corral_core::{ErrorCode, RecordType, v1, v2};
use serde_json::{Map, Value as Json, json};

/// `#/components/schemas/<name>`.
pub fn reference(name: &str) -> Json {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// A closed object: only `properties`, the `required` ones required.
pub fn object(properties: Json, required: &[&str]) -> Json {
    json!({"type": "object", "additionalProperties": false, "properties": properties, "required": required})
}

/// The body of a webhook create (or, with `patch`, update) request.
fn webhook_input(patch: bool) -> Json {
    let mut p = json!({
        "url": {"type": "string", "format": "uri", "minLength": 1, "maxLength": 2000, "description": "an absolute http:// or https:// URL; private, loopback and link-local addresses are refused (422 webhook_target_not_allowed) unless CORRAL_WEBHOOKS_ALLOW_PRIVATE_TARGETS"},
        "types": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": ["account", "contact"]}},
        "actions": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": ["created", "updated", "archived", "restored", "purged", "merged", "merged_into", "unmerged"]}},
        "fields": {"type": ["array", "null"], "minItems": 1, "items": {"type": "string"}, "description": "change keys whose change triggers an `updated` delivery; null: any"},
    });
    if patch {
        p["enabled"] = json!({"type": "boolean"});
    }
    p
}

/// A webhook subscription; `with_secret` only in the create response.
fn webhook(with_secret: bool) -> Json {
    let mut p = webhook_input(false);
    for (k, v) in [
        ("id", json!({"type": "string"})),
        ("enabled", json!({"type": "boolean"})),
        ("disabled_reason", json!({"type": ["string", "null"]})),
        ("created_at", json!({"type": "string", "format": "date-time"})),
        ("updated_at", json!({"type": "string", "format": "date-time"})),
    ] {
        p[k] = v;
    }
    let mut required =
        vec!["id", "url", "types", "actions", "fields", "enabled", "disabled_reason", "created_at", "updated_at"];
    if with_secret {
        p["secret"] = json!({"type": "string", "pattern": "^whsec_"});
        required.push("secret");
    }
    object(p, &required)
}

fn data(inner: Json) -> Json {
    object(json!({"data": inner}), &["data"])
}

/// The component-name stem of a record type (`Account`, `Contact`, `User`).
pub fn stem(rt: RecordType) -> &'static str {
    match rt {
        RecordType::Account => "Account",
        RecordType::Contact => "Contact",
        RecordType::User => "User",
    }
}

/// An attribute of `owner` as a filter sees it: a record's own `id` (a uuid) refers to its
/// own type, so its filter value takes that type's v1 spelling too (`con-…` on contacts).
fn owned_by(mut attribute: Json, owner: RecordType) -> Json {
    if attribute["api_name"] == "id" {
        attribute["type_info"]["target"] = json!(owner.api_name());
    }
    attribute
}

/// The v2 components of one record type: the record, its attributes, its writes, `_query`
/// and (for accounts and contacts) `_assert`.
fn v2_record_type(rt: RecordType, schema: &TenantSchema, other: Option<&TenantSchema>, out: &mut Map<String, Json>) {
    let p = stem(rt);
    let doc = v2::schema_document(rt, schema);
    let entries = doc["attributes"].as_array().cloned().unwrap_or_default();
    let attributes: Vec<Attribute<'_>> = entries.iter().map(Attribute).collect();
    // Relationship fields (`accounts.industry`, docs/API.md "Filters across relationships"):
    // every attribute of the related type, with its operators, under the relation's name.
    let related_entries: Vec<Json> = Relation::of(rt)
        .flat_map(|relation| {
            let target = relation.target();
            let target_schema = if target == rt { Some(schema) } else { other };
            let doc = target_schema.map(|s| v2::schema_document(target, s)).unwrap_or_default();
            doc["attributes"].as_array().cloned().unwrap_or_default().into_iter().map(move |a| {
                let mut a = owned_by(a, target);
                a["api_name"] = json!(format!("{}.{}", relation.name(), a["api_name"].as_str().unwrap_or_default()));
                a
            })
        })
        .collect();
    let own_entries: Vec<Json> = entries.iter().cloned().map(|a| owned_by(a, rt)).collect();
    let filterable: Vec<Attribute<'_>> = own_entries.iter().chain(&related_entries).map(Attribute).collect();
    let names: Vec<&str> = attributes.iter().map(Attribute::name).collect();

    let read: Map<String, Json> = attributes.iter().map(|a| (a.name().to_owned(), read_envelope(a))).collect();
    out.insert(format!("{p}Attributes"), json!({"type": "object", "additionalProperties": false, "properties": read,
        "description": "Every attribute, each as {value_type, value} (arrays as lists of them); `fields` trims the set."}));
    out.insert(
        p.to_owned(),
        object(
            json!({"id": {"type": "string", "format": "uuid"}, "record_type": {"type": "string", "enum": [rt.api_name()]},
                   "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"},
                   "attributes": reference(&format!("{p}Attributes"))}),
            &["id", "record_type", "created_at", "updated_at", "attributes"],
        ),
    );
    out.insert(format!("{p}Response"), data(reference(p)));

    // `_query`: filters typed per attribute, sort keys and fields from the schema.
    // Conditions are grouped by shape (operators and value schema), each shape a named
    // component listing the fields that take it: generators need named union members.
    let mut shapes: Vec<(String, ConditionShape, Vec<String>)> = Vec::new();
    for attr in &filterable {
        for shape in filter_conditions(attr) {
            let key = format!("{}|{:?}|{}", shape.kind, shape.operators, shape.value.clone().unwrap_or_default());
            match shapes.iter_mut().find(|(k, _, _)| *k == key) {
                Some((_, _, fields)) => fields.push(attr.name().to_owned()),
                None => shapes.push((key, shape, vec![attr.name().to_owned()])),
            }
        }
    }
    let mut members = Vec::new();
    for (_, shape, fields) in &shapes {
        let mut name = format!("{p}{}{}", pascal(&fields[0]), shape.kind);
        if fields.len() > 1 {
            name = format!("{p}{}{}Condition", pascal(&fields[0]), shape.kind);
        }
        out.insert(name.clone(), condition_schema(fields, shape));
        members.push(reference(&name));
    }
    let filter = reference(&format!("{p}Filter"));
    for key in ["and", "or", "not"] {
        let name = format!("{p}Filter{}", pascal(key));
        out.insert(
            name.clone(),
            // A list of nodes; an empty one is allowed (`and` holds, `or` and `not` do not;
            // docs/API.md).
            object(json!({key: {"type": "array", "items": filter.clone()}}), &[key]),
        );
        members.push(reference(&name));
    }
    out.insert(format!("{p}Filter"), json!({"anyOf": members,
        "description": "A condition {field, operator, value} or a group {and|or|not: [filter…]}; at most 8 levels and 100 nodes."}));
    let sortable: Vec<&str> = attributes.iter().filter(|a| a.sortable()).map(Attribute::name).collect();
    out.insert(
        format!("{p}Query"),
        object(
            json!({
                "filters": {"type": ["array", "null"], "maxItems": 100, "items": filter},
                "sort": {"type": ["array", "null"], "maxItems": MAX_SORT_KEYS, "items": object(json!({
                    "field": {"type": "string", "enum": sortable}, "direction": {"type": "string", "enum": ["asc", "desc"]}}), &["field"])},
                "limit": {"type": ["integer", "null"], "minimum": 1, "maximum": V2_MAX_LIMIT, "description": "default 50"},
                "cursor": {"type": ["string", "null"], "minLength": 1, "description": "next_cursor of the previous page; alone or with the same body"},
                "include_archived": {"type": ["boolean", "null"]},
                "count": {"type": ["string", "null"], "enum": ["exact", "estimated", null]},
                "fields": {"type": ["array", "null"], "items": {"type": "string", "enum": names}},
            }),
            &[],
        ),
    );
    let mut result =
        json!({"data": {"type": "array", "items": reference(p)}, "next_cursor": {"type": ["string", "null"]}});
    if rt == RecordType::User {
        // User queries do not count.
        if let Some(props) = out.get_mut(&format!("{p}Query")).and_then(|q| q["properties"].as_object_mut()) {
            props.remove("count");
        }
    } else {
        result["meta"] = object(
            json!({"total": {"type": "integer"}, "total_is_estimate": {"type": "boolean"}}),
            &["total", "total_is_estimate"],
        );
    }
    out.insert(format!("{p}QueryResult"), object(result, &["data", "next_cursor"]));
    if rt == RecordType::User {
        return;
    }

    // `_export`: the `_query` filters and a format.
    out.insert(
        format!("{p}Export"),
        object(
            json!({
                "filters": {"type": ["array", "null"], "maxItems": 100, "items": reference(&format!("{p}Filter"))},
                "include_archived": {"type": ["boolean", "null"], "description": "archived records too; default false"},
                "format": {"type": ["string", "null"], "enum": ["ndjson", "csv", null], "description": "default ndjson"},
            }),
            &[],
        ),
    );

    // `_duplicates`: the `_query` filters, a minimum score, groups of records.
    let reasons: &[&str] = match rt {
        RecordType::Account => {
            &["same_name", "same_name_without_legal_suffix", "same_domain", "same_phone", "similar_name"]
        }
        _ => &["same_name_at_account", "same_phone", "similar_name"],
    };
    out.insert(
        format!("{p}Duplicates"),
        object(
            json!({
                "filters": {"type": ["array", "null"], "maxItems": 100, "items": reference(&format!("{p}Filter"))},
                "min_score": {"type": ["number", "null"], "minimum": 0, "maximum": 1, "description": "only groups scoring at least this; default 0"},
                "limit": {"type": ["integer", "null"], "minimum": 1, "maximum": corral_store::duplicates::MAX_LIMIT, "description": "groups per page, default 20"},
                "cursor": {"type": ["string", "null"], "minLength": 1, "description": "next_cursor of the previous page; alone or with the same body"},
                "fields": {"type": ["array", "null"], "items": {"type": "string", "enum": names}},
            }),
            &[],
        ),
    );
    let group = object(
        json!({
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "reasons": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": reasons}},
            "records": {"type": "array", "minItems": 2, "maxItems": corral_store::duplicates::MAX_GROUP_RECORDS, "items": reference(p)},
        }),
        &["score", "reasons", "records"],
    );
    out.insert(
        format!("{p}DuplicatesResult"),
        object(
            json!({"data": {"type": "array", "items": group}, "next_cursor": {"type": ["string", "null"]}}),
            &["data", "next_cursor"],
        ),
    );

    // Writes: raw or enveloped values of the writable attributes.
    let writable: Map<String, Json> =
        attributes.iter().filter(|a| a.writable()).map(|a| (a.name().to_owned(), write_value(a))).collect();
    let required: Vec<&str> = attributes.iter().filter(|a| a.required_on_create()).map(Attribute::name).collect();
    out.insert(
        format!("{p}WriteAttributes"),
        json!({"type": "object", "additionalProperties": false, "properties": writable}),
    );
    let patch_attributes = reference(&format!("{p}WriteAttributes"));
    let mut required = required;
    let mut create_rule = json!({});
    if rt == RecordType::Account {
        // v2 creates cannot set domains, so an account needs its name.
        required.push("display_name");
        create_rule = json!({"properties": {"display_name": {"anyOf": [
            {"type": "string", "pattern": "\\S"},
            {"type": "object", "required": ["value"], "properties": {"value": {"type": "string", "pattern": "\\S"}}}]}}});
    }
    create_rule["required"] = json!(required);
    let create_attributes = json!({"allOf": [patch_attributes, create_rule]});
    let body = |attrs: Json, required: bool| {
        let attrs = if required { attrs } else { json!({"anyOf": [attrs, {"type": "null"}]}) };
        object(json!({"attributes": attrs}), if required { &["attributes"] } else { &[] })
    };
    out.insert(format!("{p}Create"), body(create_attributes, !required.is_empty()));
    out.insert(format!("{p}Patch"), body(patch_attributes.clone(), false));
    let match_keys = match rt {
        RecordType::Account => {
            json!({"id": {"type": "string", "format": "uuid"}, "domain_name": text(DOMAIN, corral_core::normalize::MAX_DOMAIN_INPUT_CHARS)})
        }
        _ => json!({"id": {"type": "string", "format": "uuid"}, "primary_email": text(EMAIL, 320),
                    "contact_emails": text(EMAIL, 320)}),
    };
    out.insert(
        format!("{p}Assert"),
        object(
            json!({"match": {"type": "object", "additionalProperties": false, "minProperties": 1, "properties": match_keys},
                   "attributes": {"anyOf": [patch_attributes, {"type": "null"}]}}),
            &["match"],
        ),
    );
    out.insert(
        format!("{p}AssertResult"),
        object(
            json!({"data": reference(p), "meta": object(json!({"action": {"type": "string", "enum": ["created", "updated"]}}), &["action"])}),
            &["data", "meta"],
        ),
    );
    let id = json!({"type": "string", "format": "uuid"});
    // Per writable attribute: the winner's value, one loser's, or a value as a PATCH takes it.
    let choices: Map<String, Json> = writable
        .iter()
        .filter(|(name, _)| crate::routes::merge::choosable(rt, name))
        .map(|(name, value)| {
            let choice = json!({"anyOf": [
                {"type": "string", "enum": ["winner"]},
                {"type": "string", "pattern": "^loser:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
                 "description": "`loser:` and the id of one of `losers`"},
                value]});
            (name.clone(), choice)
        })
        .collect();
    out.insert(
        format!("{p}Merge"),
        object(
            json!({
                "winner": id,
                "losers": {"type": "array", "minItems": 1, "maxItems": corral_store::merge::MAX_LOSERS, "uniqueItems": true,
                           "items": id, "description": "the records merged into the winner, each once; the winner is not one of them"},
                "fields": {"anyOf": [{"type": "object", "additionalProperties": false, "properties": choices,
                                      "description": "attribute name → `\"winner\"`, `\"loser:<id>\"`, or a value as a PATCH takes it (an envelope for a literal `winner`)"},
                                     {"type": "null"}]},
                "dry_run": {"anyOf": [{"type": "boolean"}, {"type": "null"}]},
            }),
            &["winner", "losers"],
        ),
    );
    out.insert(
        format!("{p}UnmergeResult"),
        object(
            json!({"data": reference(p), "restored": {"type": "array", "items": reference(p)},
                   "changes": reference("MergeChanges")}),
            &["data", "restored", "changes"],
        ),
    );
    out.insert(
        format!("{p}MergeResult"),
        object(json!({"data": reference(p), "merge": reference("MergeReport")}), &["data", "merge"]),
    );
}

/// The v1 components of accounts or contacts: the document, its write body and a page.
fn v1_record_type(rt: RecordType, schema: &TenantSchema, out: &mut Map<String, Json>) {
    let p = stem(rt);
    let mut document = v1::json_schema(rt, schema);
    if let Some(obj) = document.as_object_mut() {
        obj.remove("$schema");
        obj.remove("$id");
        obj.remove("x-cpod-domain");
        obj.insert("title".into(), json!(format!("{p}V1")));
    }
    // The write body: the same fields, with the value shapes writes accept (the v2 write
    // shapes of the same attributes, raw); server-stamped fields are accepted and ignored.
    let v2_doc = v2::schema_document(rt, schema);
    let attrs = v2_doc["attributes"].as_array().cloned().unwrap_or_default();
    let by_name = |name: &str| attrs.iter().find(|a| a["api_name"] == name).cloned();
    let mut props = Map::new();
    for (name, read) in document["properties"].as_object().cloned().unwrap_or_default() {
        let write = if read.get("readOnly") == Some(&Json::Bool(true)) {
            json!({"description": "server-stamped: accepted and ignored"})
        } else if let Some(f) = corral_core::schema::fields(rt).iter().find(|f| f.v1_name == name) {
            match by_name(f.api_name) {
                Some(a) => raw_write(&Attribute(&a), &read),
                None => read,
            }
        } else {
            match name.as_str() {
                "version" => {
                    json!({"type": ["integer", "null"], "minimum": 1, "description": "precondition: write only at this version"})
                }
                "domain" => nullable(text(DOMAIN, corral_core::normalize::MAX_DOMAIN_INPUT_CHARS)),
                "email" => nullable(text(EMAIL, 320)),
                "phone" => nullable(text(PHONE, 64)),
                "account_id" => {
                    nullable(json!({"type": "string", "description": "an account id (acc-… or a bare uuid)"}))
                }
                "custom_fields" => {
                    let custom: Map<String, Json> = schema
                        .custom
                        .iter()
                        .filter_map(|d| {
                            by_name(&d.api_name).map(|a| (d.api_name.clone(), raw_write_value(&Attribute(&a))))
                        })
                        .collect();
                    json!({"type": ["object", "null"], "additionalProperties": false, "properties": custom})
                }
                _ => read,
            }
        };
        props.insert(name, write);
    }
    let write = json!({"type": "object", "additionalProperties": false, "properties": props});
    let required_custom: Vec<&str> =
        schema.custom.iter().filter(|d| d.is_required_on_create).map(|d| d.api_name.as_str()).collect();
    let mut create = write.clone();
    let mut replace = write.clone();
    if rt == RecordType::Account {
        // A name, or a primary domain the name is taken from.
        let named = json!({"anyOf": [
            {"required": ["name"], "properties": {"name": {"type": "string", "pattern": "\\S", "maxLength": corral_core::normalize::MAX_STRING_CHARS}}},
            {"required": ["domain"], "properties": {"domain": {"type": "string"}}}
        ]});
        create["allOf"] = json!([named]);
        replace["allOf"] = json!([named]);
    }
    if !required_custom.is_empty() {
        let needs = json!({"required": ["custom_fields"], "properties": {"custom_fields": {"type": "object", "required": required_custom}}});
        create["allOf"]
            .as_array_mut()
            .map(|a| a.push(needs.clone()))
            .unwrap_or_else(|| create["allOf"] = json!([needs]));
    }
    out.insert(format!("{p}V1"), document);
    out.insert(format!("{p}V1Create"), create);
    out.insert(format!("{p}V1Replace"), replace);
    out.insert(format!("{p}V1Patch"), write);
    out.insert(
        format!("{p}V1List"),
        object(
            json!({"data": {"type": "array", "items": reference(&format!("{p}V1"))},
                   "next_cursor": {"type": ["string", "null"]}, "has_more": {"type": "boolean"},
                   "total": {"type": "integer"}, "total_is_estimate": {"type": "boolean"}}),
            &["data", "next_cursor", "has_more"],
        ),
    );
}

fn raw_write(attr: &Attribute<'_>, read: &Json) -> Json {
    match attr.value_type() {
        // v1 shows one address list (`addresses`) where v2 shows its first entry.
        "address" if read["type"] == "array" => {
            json!({"type": ["array", "null"], "maxItems": 100, "items": address()})
        }
        _ => raw_write_value(attr),
    }
}

/// Every component schema, typed for the given account and contact schemas.
pub fn schemas(account: &TenantSchema, contact: &TenantSchema, user: &TenantSchema) -> Map<String, Json> {
    let mut out = shared_components();
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    out.insert(
        "Error".into(),
        object(
            json!({"error": object(json!({
                "code": {"type": "string", "enum": codes, "description": "stable error code (docs/CONTRACT.md §9)"},
                "message": {"type": "string"}, "details": {"type": "object"}, "request_id": {"type": "string"}}),
                &["code", "message", "details", "request_id"])}),
            &["error"],
        ),
    );
    v2_record_type(RecordType::Account, account, Some(contact), &mut out);
    v2_record_type(RecordType::Contact, contact, Some(account), &mut out);
    v2_record_type(RecordType::User, user, None, &mut out);
    v1_record_type(RecordType::Account, account, &mut out);
    v1_record_type(RecordType::Contact, contact, &mut out);
    for (rt, schema) in [(RecordType::Account, account), (RecordType::Contact, contact), (RecordType::User, user)] {
        out.insert(format!("{}Schema", stem(rt)), schema_document(rt, schema));
    }
    fixed(&mut out);
    out
}

/// The `_schema` document of a record type: its fixed shape, the attribute names it lists.
fn schema_document(rt: RecordType, schema: &TenantSchema) -> Json {
    let names: Vec<String> = v2::attribute_names_in(rt, schema);
    let attribute = json!({"type": "object", "required": ["api_name", "display_name", "type_info", "is_creatable", "is_updatable",
            "is_required_on_create", "is_unique", "is_custom", "is_sortable", "is_filterable", "filter_operators"],
        "properties": {"api_name": {"type": "string", "enum": names}, "display_name": {"type": "string"},
            "description": {"type": ["string", "null"]}, "type_info": {"type": "object", "required": ["value_type", "is_array"],
            "properties": {"value_type": {"type": "string"}, "is_array": {"type": "boolean"}, "target": {"type": "string"}, "options": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "object"}]}}}},
            "is_creatable": {"type": "boolean"}, "is_updatable": {"type": "boolean"}, "is_required_on_create": {"type": "boolean"},
            "is_unique": {"type": "boolean"}, "is_custom": {"type": "boolean"}, "is_sortable": {"type": "boolean"},
            "is_filterable": {"type": "boolean"}, "filter_operators": {"type": "array", "items": {"type": "string"}}}});
    object(
        json!({"api_name": {"type": "string", "enum": [rt.api_name()]}, "display_name": {"type": "string"}, "description": {"type": "string"},
               "is_custom": {"type": "boolean"}, "is_junction": {"type": "boolean"}, "supports_custom_fields": {"type": "boolean"},
               "attributes": {"type": "array", "items": attribute}, "relationships": {"type": "array", "items": {"type": "object"}}}),
        &["api_name", "display_name", "attributes", "relationships"],
    )
}

/// Shapes that do not depend on the tenant.
/// What a merge did or, dry run, would do (docs/API.md "Merging records").
fn merge_report(out: &mut Map<String, Json>) {
    let id = json!({"type": "string", "format": "uuid"});
    let list = |item: Json| json!({"type": "array", "items": item});
    let record_type = json!({"type": "string", "enum": ["account", "contact"]});
    let change = object(json!({"old": {}, "new": {}}), &["old", "new"]);
    out.insert(
        "MergeChanges".into(),
        list(object(
            json!({"record_type": record_type, "record_id": id,
                "action": {"type": "string", "enum": ["created", "updated", "archived", "restored", "purged", "merged", "merged_into", "unmerged"]},
                "changes": {"type": "object", "additionalProperties": change}}),
            &["record_type", "record_id", "action", "changes"],
        )),
    );
    out.insert("Unmerge".into(), object(json!({"merge_id": id}), &["merge_id"]));
    out.insert(
        "MergeReport".into(),
        object(
            json!({
                "id": {"type": ["string", "null"], "format": "uuid", "description": "the merge (what `_unmerge` takes); null for a dry run"},
                "dry_run": {"type": "boolean"},
                "winner_id": id,
                "loser_ids": list(id.clone()),
                "relationships": list(object(json!({"loser_id": id, "related_record_type": record_type, "related_record_id": id,
                    "role": {"type": ["string", "null"]}, "collapsed": {"type": "boolean"}}),
                    &["loser_id", "related_record_type", "related_record_id", "role", "collapsed"])),
                "items": list(object(json!({"loser_id": id, "attribute": {"type": "string", "enum": ["domains", "contact_emails", "contact_phone_numbers"]},
                    "value": {"type": "string"}, "duplicate": {"type": "boolean"}}), &["loser_id", "attribute", "value", "duplicate"])),
                "references": list(object(json!({"record_type": record_type, "record_id": id, "attribute": {"type": "string"}, "loser_id": id}),
                    &["record_type", "record_id", "attribute", "loser_id"])),
                "conflicts": list(object(json!({"attribute": {"type": "string"}, "winner_value": {},
                    "loser_values": list(object(json!({"id": id, "value": {}}), &["id", "value"])),
                    "resolution": {"type": "string", "pattern": "^(winner|value|loser:[0-9a-f-]{36})$"}}),
                    &["attribute", "winner_value", "loser_values", "resolution"])),
                "changes": reference("MergeChanges"),
            }),
            &["id", "dry_run", "winner_id", "loser_ids", "relationships", "items", "references", "conflicts", "changes"],
        ),
    );
}

/// Change events (feed and history) in both dialects.
fn change_events(out: &mut Map<String, Json>) {
    let change = object(json!({"old": {}, "new": {}}), &["old", "new"]);
    let common = |v1: bool| {
        let mut props = json!({
            "id": {"type": "string", "format": "uuid"},
            "record_type": {"type": "string", "enum": ["account", "contact"]},
            "record_id": {"type": "string"},
            "app_id": {"type": ["string", "null"]},
            "action": {"type": "string", "enum": ["created", "updated", "archived", "restored", "purged", "merged", "merged_into", "unmerged"]},
            "version": {"type": "integer"},
            "changed_fields": {"type": "object", "additionalProperties": change.clone(),
                "description": "changed field → its old and new value (docs/API.md, Change feed)"},
            "request_id": {"type": ["string", "null"]},
            "occurred_at": {"type": "string", "format": "date-time"},
        });
        let mut required = vec![
            "id",
            "record_type",
            "record_id",
            "app_id",
            "action",
            "version",
            "changed_fields",
            "request_id",
            "occurred_at",
        ];
        let kinds = json!({"type": "string", "enum": ["user", "api_key", "system"]});
        if v1 {
            props["actor_type"] = kinds;
            props["actor_id"] = json!({"type": "string"});
            required.extend(["actor_type", "actor_id"]);
        } else {
            props["record_id"] = json!({"type": "string", "format": "uuid"});
            props["actor"] = object(json!({"type": kinds, "id": {"type": "string"}}), &["type", "id"]);
            required.push("actor");
        }
        object(props, &required)
    };
    for (suffix, v1) in [("", false), ("V1", true)] {
        out.insert(format!("ChangeEvent{suffix}"), common(v1));
        let items = json!({"type": "array", "items": reference(&format!("ChangeEvent{suffix}"))});
        out.insert(
            format!("ChangeFeed{suffix}"),
            object(json!({"data": items, "next_cursor": {"type": "string"}}), &["data", "next_cursor"]),
        );
        out.insert(
            format!("ChangeHistory{suffix}"),
            object(json!({"data": items, "next_cursor": {"type": ["string", "null"]}}), &["data", "next_cursor"]),
        );
    }
}

fn fixed(out: &mut Map<String, Json>) {
    change_events(out);
    merge_report(out);
    let labels = json!({"type": "array", "maxItems": 3, "items": {"type": "string", "enum": ITEM_LABELS}});
    let string =
        |max: usize| json!({"type": "string", "pattern": "^[^\\u0000]*[^\\u0000\\s][^\\u0000]*$", "maxLength": max});
    let nullable_string = json!({"type": ["string", "null"]});
    let option = object(
        json!({"id": {"type": ["string", "null"]}, "api_name": {"type": "string"}, "display_value": {"type": "string"}, "color": {"type": ["string", "null"]}}),
        &["api_name"],
    );
    let api_key = object(
        json!({"id": {"type": "string"}, "scopes": {"type": "array", "items": {"type": "string"}},
               "app": nullable_string, "name": nullable_string, "created_at": {"type": "string", "format": "date-time"},
               "expires_at": {"type": ["string", "null"], "format": "date-time"}, "revoked_at": {"type": ["string", "null"], "format": "date-time"},
               "key": {"type": "string", "description": "crl_<id>_<secret>; only in the create response"}}),
        &["id", "scopes", "app", "name", "created_at", "expires_at", "revoked_at"],
    );
    let admin_user = object(
        json!({"id": {"type": "string"}, "email": nullable_string, "display_name": nullable_string, "is_active": {"type": "boolean"},
               "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"}, "version": {"type": "integer"}}),
        &["id", "email", "display_name", "is_active", "created_at", "updated_at", "version"],
    );
    let settings = object(
        json!({"auto_associate_contacts": {"type": "boolean"}, "rate_limit_per_second": {"type": ["integer", "null"], "minimum": 1, "maximum": 1_000_000,
            "description": "requests per second for all the tenant's callers together (on each instance); null: the server default"}}),
        &[],
    );
    let edge = |target: &str| {
        object(
            json!({"related_record_id": {"type": "string", "format": "uuid"}, "related_record_type": {"type": "string", "enum": [target]},
                   "through": object(json!({"attributes": object(json!({
                       "role": object(json!({"value_type": {"type": "string", "enum": ["string"]}, "value": nullable_string}), &["value_type", "value"]),
                       "is_primary": object(json!({"value_type": {"type": "string", "enum": ["boolean"]}, "value": {"type": "boolean"}}), &["value_type", "value"])}),
                       &["role", "is_primary"])}), &["attributes"])}),
            &["related_record_id", "related_record_type", "through"],
        )
    };
    let parent = |rt: &str| {
        object(
            json!({"id": {"type": "string", "format": "uuid"}, "record_type": {"type": "string", "enum": [rt]}}),
            &["id", "record_type"],
        )
    };
    for (rt, name, target, stem) in
        [("account", "contacts", "contact", "AccountContacts"), ("contact", "accounts", "account", "ContactAccounts")]
    {
        out.insert(
            format!("{stem}Edge"),
            object(
                json!({"parent": parent(rt), "api_name": {"type": "string", "enum": [name]}, "item": edge(target)}),
                &["parent", "api_name", "item"],
            ),
        );
        out.insert(format!("{stem}EdgeList"), object(
            json!({"parent": parent(rt), "api_name": {"type": "string", "enum": [name]}, "items": {"type": "array", "items": edge(target)},
                   "next_cursor": nullable_string}),
            &["parent", "api_name", "items", "next_cursor"]));
    }
    let role = json!({"anyOf": [{"type": ["string", "null"], "maxLength": 1000, "pattern": TEXT},
        object(json!({"value_type": {"type": "string", "enum": ["string"]}, "value": {"type": ["string", "null"], "maxLength": 1000, "pattern": TEXT}}), &["value_type"])]});
    let is_primary = json!({"anyOf": [{"type": ["boolean", "null"]},
        object(json!({"value_type": {"type": "string", "enum": ["boolean"]}, "value": {"type": ["boolean", "null"]}}), &["value_type"])]});
    out.insert("EdgeAdd".into(), json!({"type": "object", "additionalProperties": false,
        "properties": {"related_record_id": {"type": "string", "format": "uuid"},
            "related_record_match": {"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": {"type": "string", "minLength": 1}},
            "role": role, "is_primary": is_primary},
        "oneOf": [{"required": ["related_record_id"]}, {"required": ["related_record_match"]}]}));
    out.insert("EdgePatch".into(), object(json!({"role": role, "is_primary": is_primary}), &[]));
    let domain = object(
        json!({"domain_name": {"type": "string"}, "is_primary": {"type": "boolean"}}),
        &["domain_name", "is_primary"],
    );
    let entries = [
        ("DomainItem", data(domain)),
        (
            "DomainAdd",
            object(
                json!({"domain_name": text(DOMAIN, corral_core::normalize::MAX_DOMAIN_INPUT_CHARS)}),
                &["domain_name"],
            ),
        ),
        ("DomainPatch", object(json!({"is_primary": {"type": "boolean"}}), &["is_primary"])),
        (
            "ContactEmailItem",
            data(nullable(object(
                json!({"id": {"type": "string"}, "envelope": object(json!({
            "id": {"type": "string"}, "email": {"type": "string"}, "is_primary": {"type": "boolean"}, "labels": labels}),
            &["id", "email", "is_primary", "labels"])}),
                &["id", "envelope"],
            ))),
        ),
        (
            "ContactEmailAdd",
            object(json!({"email": text(EMAIL, 320), "is_primary": {"type": "boolean"}, "labels": labels}), &["email"]),
        ),
        (
            "ContactEmailPatch",
            object(json!({"email": text(EMAIL, 320), "is_primary": {"type": "boolean"}, "labels": labels}), &[]),
        ),
        (
            "ContactPhoneNumberItem",
            data(nullable(object(
                json!({"id": {"type": "string"}, "envelope": object(json!({
            "id": {"type": "string"}, "phone_number": {"type": "string"}, "is_primary": {"type": "boolean"}, "labels": labels}),
            &["id", "phone_number", "is_primary", "labels"])}),
                &["id", "envelope"],
            ))),
        ),
        (
            "ContactPhoneNumberAdd",
            object(
                json!({"phone_number": text(PHONE, 64), "is_primary": {"type": "boolean"}, "labels": labels}),
                &["phone_number"],
            ),
        ),
        (
            "ContactPhoneNumberPatch",
            object(json!({"phone_number": text(PHONE, 64), "is_primary": {"type": "boolean"}, "labels": labels}), &[]),
        ),
        (
            "CustomAttributeCreate",
            object(
                // A null display name, like none, is the api_name.
                json!({"api_name": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,62}$"}, "display_name": {"anyOf": [string(1000), {"type": "null"}]},
                   "description": {"type": ["string", "null"], "maxLength": 1000, "pattern": TEXT},
                   "value_type": {"type": "string", "enum": ["string", "long_text", "number", "percent", "currency", "boolean", "timestamp",
                       "date", "email", "url", "phone_number", "select", "record_reference"]},
                   "is_array": {"type": "boolean"}, "is_required_on_create": {"type": "boolean"}, "is_unique": {"type": "boolean", "enum": [false]},
                   "target": {"type": "string", "enum": ["account", "contact", "user"]},
                   "options": {"type": ["array", "null"], "items": reference("OptionCreate")}}),
                &["api_name", "value_type"],
            ),
        ),
        (
            "CustomAttributePatch",
            object(
                json!({"display_name": string(1000), "description": {"type": ["string", "null"], "maxLength": 1000, "pattern": TEXT}}),
                &[],
            ),
        ),
        ("CustomAttribute", data(json!({"type": "object", "description": "the attribute as _schema lists it"}))),
        ("Option", option.clone()),
        (
            "OptionCreate",
            object(
                json!({"api_name": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,62}$"}, "display_value": {"type": ["string", "null"], "maxLength": 1000, "pattern": TEXT},
            "color": {"type": ["string", "null"], "maxLength": 1000, "pattern": TEXT}}),
                &["api_name"],
            ),
        ),
        (
            "OptionPatch",
            object(
                json!({"display_value": {"type": ["string", "null"], "maxLength": 1000, "pattern": TEXT}, "color": {"type": ["string", "null"], "maxLength": 1000, "pattern": TEXT}}),
                &[],
            ),
        ),
        ("OptionResponse", data(option)),
        (
            "TokenRequest",
            object(
                json!({"grant_type": {"type": "string", "enum": ["client_credentials"]},
            "client_id": {"type": "string", "minLength": 1, "description": "the key id; optional when client_secret is the whole key"},
            "client_secret": {"type": "string", "minLength": 1, "description": "the key's secret, or the whole key (crl_…) as printed"}}),
                &["grant_type", "client_secret"],
            ),
        ),
        (
            "TokenRequestForm",
            object(
                json!({"grant_type": {"type": "string", "enum": ["client_credentials"]},
            "client_id": {"type": "string", "minLength": 1, "description": "the key id; optional when client_secret is the whole key"},
            "client_secret": {"type": "string", "minLength": 1, "description": "the key's secret, or the whole key (crl_…) as printed"}}),
                &["grant_type", "client_secret"],
            ),
        ),
        (
            "TokenResponse",
            object(
                json!({"access_token": {"type": "string"}, "token_type": {"type": "string", "enum": ["Bearer"]},
            "expires_in": {"type": "integer", "minimum": 1, "maximum": crate::auth::EXCHANGED_TOKEN_SECONDS, "description": "seconds: an hour, or less when the key expires sooner"}}),
                &["access_token", "token_type", "expires_in"],
            ),
        ),
        (
            "ApiKeyCreate",
            object(
                json!({"scopes": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": crate::auth::scope_names()}},
            "app": {"type": ["string", "null"], "pattern": "^[A-Za-z0-9_-]{1,100}$"}, "name": {"type": ["string", "null"], "maxLength": 1000, "pattern": TEXT},
            "expires_at": {"type": ["string", "null"], "format": "date-time", "description": "must be in the future"}}),
                &["scopes"],
            ),
        ),
        ("WebhookCreate", object(webhook_input(false), &["url"])),
        ("WebhookPatch", object(webhook_input(true), &[])),
        ("Webhook", data(webhook(false))),
        ("WebhookCreated", data(webhook(true))),
        ("WebhookList", object(json!({"data": {"type": "array", "items": webhook(false)}}), &["data"])),
        (
            "WebhookDeliveryList",
            object(
                json!({"data": {"type": "array", "items": object(json!({
                    "id": {"type": "string"}, "event_id": {"type": "string"},
                    "status": {"type": "string", "enum": ["pending", "delivered", "failed"]},
                    "attempts": {"type": "integer", "minimum": 0},
                    "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
                    "last_status": {"type": ["integer", "null"]}, "last_error": {"type": ["string", "null"]},
                    "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"}}),
                    &["id", "event_id", "status", "attempts", "next_attempt_at", "last_status", "last_error", "created_at", "updated_at"])}}),
                &["data"],
            ),
        ),
        ("WebhookReplay", object(json!({"from_event_id": {"type": "string", "minLength": 1}}), &["from_event_id"])),
        ("ApiKey", data(api_key.clone())),
        ("ApiKeyList", object(json!({"data": {"type": "array", "items": api_key}}), &["data"])),
        (
            "AdminUserCreate",
            object(
                json!({"email": text(EMAIL, 320),
            "display_name": {"type": ["string", "null"], "maxLength": 1000, "pattern": TEXT}, "is_active": {"type": "boolean"}}),
                &["email"],
            ),
        ),
        (
            "AdminUserPatch",
            object(
                // A blank email clears it, like null.
                json!({"email": {"anyOf": [text(EMAIL, 320), {"type": "string", "pattern": "^\\s*$", "maxLength": 320}, {"type": "null"}]},
            "display_name": {"type": ["string", "null"], "maxLength": 1000, "pattern": TEXT}, "is_active": {"type": "boolean"}}),
                &[],
            ),
        ),
        ("AdminUser", data(admin_user.clone())),
        ("AdminUserList", object(json!({"data": {"type": "array", "items": admin_user}}), &["data"])),
        ("Settings", data(settings.clone())),
        ("SettingsPatch", settings),
        (
            "OpenApiDocument",
            json!({"type": "object", "required": ["openapi", "info", "paths"], "description": "an OpenAPI 3.1 document"}),
        ),
        ("JsonSchema", json!({"type": "object", "description": "a JSON Schema 2020-12 document"})),
        ("Manifest", object(json!({"resources": {"type": "array", "items": {"type": "object"}}}), &["resources"])),
        ("Liveness", object(json!({"status": {"type": "string", "enum": ["ok"]}}), &["status"])),
        ("Readiness", object(json!({"status": {"type": "string", "enum": ["ready"]}}), &["status"])),
        (
            "HealthV1",
            object(
                json!({"status": {"type": "string", "enum": ["ok"]}, "database": {"type": "string", "enum": ["connected"]}}),
                &["status", "database"],
            ),
        ),
        ("HealthV2", data(object(json!({"status": {"type": "string", "enum": ["healthy"]}}), &["status"]))),
    ];
    out.extend(entries.into_iter().map(|(k, v)| (k.to_owned(), v)));
    // Rules between fields of a custom attribute definition, as the registry checks them.
    const NO_ARRAYS: [&str; 7] = ["long_text", "number", "percent", "currency", "boolean", "timestamp", "date"];
    out["CustomAttributeCreate"]["allOf"] = json!([
        {"if": {"required": ["value_type"], "properties": {"value_type": {"enum": ["select"]}}},
         "then": {"required": ["options"], "properties": {"options": {"type": "array", "minItems": 1}}},
         "else": {"properties": {"options": {"type": "null"}}}},
        {"if": {"required": ["value_type"], "properties": {"value_type": {"enum": ["record_reference"]}}},
         "then": {"required": ["target"]}},
        {"if": {"required": ["value_type"], "properties": {"value_type": {"enum": NO_ARRAYS}}},
         "then": {"properties": {"is_array": {"enum": [false]}}}},
    ]);
    // The key id may be left out when the secret is the whole key.
    for name in ["TokenRequest", "TokenRequestForm"] {
        out[name]["anyOf"] = json!([
            {"required": ["client_id"]},
            {"properties": {"client_secret": {"pattern": "^crl_[0-9a-f]{16}_[0-9a-f]{64}$"}}},
        ]);
    }
}
