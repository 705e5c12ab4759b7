"""Schemathesis hooks for scripts/contract-check, loaded through `hooks` in schemathesis.toml.

Each hook expresses something of the API that an OpenAPI document cannot say, and is as narrow
as that thing. None of them may hide a mismatch between the document and the server.
"""

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
