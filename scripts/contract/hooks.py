"""Schemathesis hooks for scripts/contract-check, loaded through `hooks` in schemathesis.toml.

Each hook expresses something of the API that an OpenAPI document cannot say, and is as narrow
as that thing. None of them may hide a mismatch between the document and the server.
Credentials are not set here: headers from schemathesis's configuration win over a hook's, so
schemathesis.toml sets them (including the scratch tenant's token for schema changes).
"""

import datetime
import json
import os
import uuid

import schemathesis


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
        if isinstance(container, dict) and isinstance(container.get("cursor"), str) and container["cursor"]:
            del container["cursor"]
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


def _point_references(obj, targets):
    for name, record_type in _REFERENCES.items():
        if name in obj and obj[name] is not None and record_type in targets:
            obj[name] = targets[record_type]


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
    Only requests generated to be valid are changed; invalid ones are sent as generated.
    """
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return case
    targets = _targets()
    headers = case.headers if isinstance(case.headers, dict) else None
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
    _point_references(body, targets)
    if isinstance(body.get("attributes"), dict):
        attributes = body["attributes"]
        for name, record_type in _REFERENCES.items():
            value = attributes.get(name)
            if value is None or record_type not in targets:
                continue
            if isinstance(value, dict) and "value_type" in value:
                if value.get("value") is not None:
                    value["value"] = targets[record_type]
            else:
                attributes[name] = targets[record_type]
    if "/relationship/" in path and ("related_record_id" in body or "related_record_match" in body):
        other = "contact" if path.startswith("/api/v2/account/") else "account"
        body.pop("related_record_match", None)
        body["related_record_id"] = targets.get(other, body.get("related_record_id"))
    return case
