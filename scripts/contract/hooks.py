"""Schemathesis hooks for scripts/contract-check, loaded through `hooks` in schemathesis.toml.

Each hook expresses something of the API that an OpenAPI document cannot say, and is as narrow
as that thing. None of them may hide a mismatch between the document and the server.
Credentials are not set here: headers from schemathesis's configuration win over a hook's, so
schemathesis.toml sets them (including the scratch tenant's token for schema changes).
"""

import collections.abc
import datetime
import json
import os
import time
import urllib.error
import urllib.request
import uuid

import schemathesis

# The `_bulk` bodies are NDJSON byte streams: the document types them as binary strings
# (`format: binary`, the line schema in `x-item-schema`; docs/API.md, "The OpenAPI document"),
# and a byte stream is sent as is, like any `application/octet-stream` body. Schemathesis has no
# serializer of its own for the media type and would otherwise send no request at all.
schemathesis.serializer.alias("application/x-ndjson", "application/octet-stream")


@schemathesis.hook
def map_case(context, case):
    """Valid requests carry no made-up pagination cursor.

    A cursor is an opaque token that the server issues (`next_cursor`) and seals with an HMAC
    over its query and tenant; a cursor it did not issue, or one that was altered, is
    `400 invalid_cursor` (docs/API.md, "Cursors"). No schema can say "only a value this server
    issued", so every cursor schemathesis makes up for a request it means to be valid is in
    fact invalid, and the 400 it gets is right. Such requests lose their cursor (the rest of
    the request is still sent and checked). Only non-empty strings are dropped: whether an
    empty cursor is allowed is for the document to say (`minLength: 1`), and requests generated
    to be invalid keep theirs, so a cursor of the wrong type is still expected to be refused.
    """
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return case
    for container in (case.query, case.body):  # GET lists: query; POST …/_query: body
        for name in ("cursor", "after"):  # the change feeds' cursor is `after`
            if isinstance(container, dict) and isinstance(container.get(name), str) and container[name]:
                del container[name]
    return case


# Attributes and fields that name another record, by the record type they name.
_REFERENCES = {
    "owner_user_id": "user", "owner_id": "user",
    "parent_account_id": "account", "account_id": "account",
    "reports_to_contact_id": "contact",
}
_TARGETS = None


def _targets():
    global _TARGETS
    if _TARGETS is None:
        path = os.environ.get("CORRAL_CONTRACT_REFERENCE_TARGETS")
        _TARGETS = json.load(open(path)) if path else {}
    return _TARGETS


def _point_references(obj, targets, own_id=None):
    for name, record_type in _REFERENCES.items():
        if name in obj and obj[name] is not None and record_type in targets:
            # A record cannot be its own parent or manager (422, docs/API.md): when the record
            # written is the target itself, the reference is cleared instead.
            obj[name] = None if targets[record_type] == own_id else targets[record_type]


@schemathesis.hook("map_case")
def map_case_state(context, case):
    """Valid requests meet the state they need, which no schema can say.

    - References (`owner_user_id`, `parent_account_id`, `reports_to_contact_id`, v1 `owner_id`,
      `account_id`, relationship targets) must name records that exist: a well-formed id of a
      missing record is `422 target_record_not_found` (docs/API.md, Errors). Generated ones are
      pointed at records scripts/contract-check made for the purpose.
    - An `Idempotency-Key` replays the first request made with it, and the same key with another
      body is `422 idempotency_key_reused` (docs/API.md): each generated create gets its own key.
    - An API key's `expires_at` must be in the future (`422 field_value_invalid`, docs/API.md);
      a schema cannot say "after now", so a generated one is moved a day past the run.
    - A webhook's target must resolve, to a public address unless the server allows private
      ones (`422`, docs/API.md, Webhooks): a generated host name resolves nowhere, so valid
      webhook writes target a closed port on 127.0.0.1 (scripts/contract-check starts the
      server with `CORRAL_WEBHOOKS_ALLOW_PRIVATE_TARGETS=true`, so deliveries stay on loopback).
    - A tenant rate limit applies to every later request of the tenant: a generated limit of a
      few requests per second would turn the rest of the run's scratch-tenant requests into
      `429`s, so they would test nothing (schemathesis warns "mostly returned 429"). Valid
      settings changes keep their limit at 1,000 per second or more (the limit itself is tested
      in crates/corral-http/tests/api/ratelimit.rs).
    - A webhook replay starts from a change event that exists (`422 field_value_invalid`
      otherwise, docs/API.md, Webhooks): valid replays name one scratch-tenant event
      scripts/contract-check made (webhook writes go to that tenant).
    - A merge's winner is not one of its losers, and a `loser:<id>` choice names one of the
      losers (`422`, docs/API.md, "Merging records"): a schema cannot relate two members of a
      body, so valid merges drop the winner from the losers and point such choices at the first
      loser.
    - The options of a select attribute have distinct `api_name`s (`422`, docs/API.md, Custom
      attributes): JSON Schema's `uniqueItems` compares whole items, not one key of them, so
      a repeated name gets a suffix.
    Only requests generated to be valid are changed; invalid ones are sent as generated.
    """
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return case
    targets = _targets()
    # Headers are a case-insensitive mapping, not a dict.
    headers = case.headers if isinstance(case.headers, collections.abc.MutableMapping) else None
    if headers is not None:
        for name in list(headers):
            if name.lower() == "idempotency-key":
                headers[name] = str(uuid.uuid4())
    body = case.body
    if not isinstance(body, dict):
        return case
    path = case.path
    if path == "/api/admin/api-keys" and case.method.upper() == "POST" and body.get("expires_at") is not None:
        tomorrow = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
        body["expires_at"] = tomorrow.strftime("%Y-%m-%dT%H:%M:%SZ")
    if path.startswith("/api/admin/webhooks") and isinstance(body.get("url"), str):
        body["url"] = WEBHOOK_TARGET
    if path == "/api/admin/settings" and isinstance(body.get("rate_limit_per_second"), int):
        body["rate_limit_per_second"] = max(body["rate_limit_per_second"], RUN_RATE_LIMIT_FLOOR)
    if path.endswith("/_merge"):
        _distinct_merge_records(body)
    if path.endswith("/replay") and "from_event_id" in body and "scratch_event" in targets:
        body["from_event_id"] = targets["scratch_event"]
    if path.startswith("/api/v2/_schema/") and isinstance(body.get("options"), list):
        _distinct_option_names(body["options"])
    own_id = _bare_id(str((case.path_parameters or {}).get("id", "")))
    _point_references(body, targets, own_id)
    if isinstance(body.get("attributes"), dict):
        attributes = body["attributes"]
        for name, record_type in _REFERENCES.items():
            value = attributes.get(name)
            if value is None or record_type not in targets:
                continue
            target = None if targets[record_type] == own_id else targets[record_type]
            if isinstance(value, dict) and "value_type" in value:
                if value.get("value") is not None:
                    value["value"] = target
            else:
                attributes[name] = target
    if "/relationship/" in path and ("related_record_id" in body or "related_record_match" in body):
        other = "contact" if path.startswith("/api/v2/account/") else "account"
        body.pop("related_record_match", None)
        body["related_record_id"] = targets.get(other, body.get("related_record_id"))
    return case


# The lowest tenant rate limit a valid settings change sets during the run.
RUN_RATE_LIMIT_FLOOR = 1000

# Where valid webhook subscriptions point: loopback, a port nothing listens on.
WEBHOOK_TARGET = "http://127.0.0.1:9/corral-contract-check"


def _distinct_option_names(options):
    seen = set()
    for option in options:
        if isinstance(option, dict) and isinstance(option.get("api_name"), str):
            name, n = option["api_name"], 1
            while name in seen:  # the suffixed name still matches `^[a-z][a-z0-9_]{0,62}$`
                name, n = f"{option['api_name'][:55]}_{n}", n + 1
            option["api_name"] = name
            seen.add(name)


def _distinct_merge_records(body):
    winner, losers = body.get("winner"), body.get("losers")
    if not isinstance(losers, list):
        return
    losers = [l for l in losers if l != winner] or [str(uuid.uuid4())]
    body["losers"] = losers
    fields = body.get("fields")
    if isinstance(fields, dict):
        for name, choice in fields.items():
            if isinstance(choice, str) and choice.startswith("loser:"):
                fields[name] = f"loser:{losers[0]}"


# Record deletions, by operation path: the record type each removes.
_RECORD_DELETES = {
    "/api/v1/crm/accounts/{id}": "account", "/api/v2/account/{id}": "account",
    "/api/v1/crm/contacts/{id}": "contact", "/api/v2/contact/{id}": "contact",
}


# Ids (bare) of the records a successful generated DELETE archived or purged during the run.
_GONE = set()


@schemathesis.hook
def before_call(context, case, kwargs):
    """A valid write does not name a record the run itself archived.

    `map_case_state` points generated references at live records, but the stateful phase fills
    references in from earlier responses too (links: a `_query` with `include_archived`, a create
    that a later step archived). A reference to an archived or purged record is
    `422 target_record_not_found` (docs/API.md, Errors): right for the server, a state the run
    made for the request. Just before a valid request is sent, such a reference moves to the
    live target; references to records still active keep the value the link gave them.
    """
    meta = case.meta
    if not _GONE or meta is None or not meta.generation.mode.is_positive or not isinstance(case.body, dict):
        return
    targets = _targets()
    containers = [case.body]
    if isinstance(case.body.get("attributes"), dict):
        containers.append(case.body["attributes"])
    for container in containers:
        for name, record_type in _REFERENCES.items():
            value = container.get(name)
            holder, key = (value, "value") if isinstance(value, dict) else (container, name)
            current = holder.get(key)
            if isinstance(current, str) and _bare_id(current) in _GONE and record_type in targets:
                holder[key] = targets[record_type]
    related = case.body.get("related_record_id")
    if "/relationship/" in case.path and isinstance(related, str) and _bare_id(related) in _GONE:
        other = "contact" if case.path.startswith("/api/v2/account/") else "account"
        case.body["related_record_id"] = targets.get(other, related)


@schemathesis.hook
def after_call(context, case, response):
    """A reference target that a generated DELETE removed is replaced by a new record.

    The stateful phase follows ids from list and query responses into DELETE (archive, or purge
    with `?purge=true`), so it can archive the records `map_case_state` points references at;
    every later valid write naming one would then meet `422 target_record_not_found`, which is
    right for the server and wrong for the run. The DELETE and its response are checked as sent
    (nothing is restored: a later read of the deleted record must still be 404); only the
    targets later cases are pointed at move to a fresh record, made the way scripts/contract-check
    made the first (v1 POST with the run's token). Every record a DELETE removed is remembered
    (`_GONE`) for `before_call`.
    """
    record_type = _RECORD_DELETES.get(case.operation.path)
    if case.method.upper() != "DELETE" or record_type is None or not 200 <= response.status_code < 300:
        return
    targets = _targets()
    deleted = _bare_id(str((case.path_parameters or {}).get("id", "")))
    _GONE.add(deleted)
    if targets.get(record_type) != deleted:
        return
    base = response.request.url.split("/api/", 1)[0]
    token = os.environ["CORRAL_CONTRACT_TOKEN"]
    collection, body = {
        "account": ("accounts", {"name": "Reference Target"}),
        "contact": ("contacts", {"first_name": "Ref", "last_name": "Target"}),
    }[record_type]
    request = urllib.request.Request(
        f"{base}/api/v1/crm/{collection}", method="POST", data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    # The run's own requests can use up the credential's rate limit (a 429 is a valid answer
    # to them); this request waits as a client should, for `Retry-After`, and tries again.
    for _ in range(30):
        try:
            with urllib.request.urlopen(request, timeout=30) as created:
                targets[record_type] = _bare_id(json.load(created)["id"])
                return
        except urllib.error.HTTPError as e:
            if e.code != 429:
                raise
            time.sleep(float(e.headers.get("Retry-After") or 1))
    raise RuntimeError("the reference target could not be recreated: still rate limited")


def _bare_id(record_id):
    """A record id without its v1 prefix (`acc-…`, `con-…`, `usr-…`), as the targets hold it."""
    prefix, _, rest = record_id.partition("-")
    return rest if prefix in ("acc", "con", "usr") else record_id


@schemathesis.hook
def before_call(context, case, kwargs):
    """Every valid request with an `Idempotency-Key` sends a key of its own.

    `map_case_state` gives each generated create its own key, but phases also send variants of
    one case (the coverage phase's, and a check's re-sends), which would reuse it with another
    body: `422 idempotency_key_reused` (docs/API.md), right for the server and not a finding.
    A fresh key right before each call keeps every request a first one. Requests generated to
    be invalid keep the key they were generated with.
    """
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    headers = kwargs.get("headers")
    for container in (headers, case.headers):
        if isinstance(container, collections.abc.MutableMapping):
            for name in list(container):
                if name.lower() == "idempotency-key":
                    container[name] = str(uuid.uuid4())
