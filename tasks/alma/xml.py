"""Alma's XML user form (rest_user.xsd): read into the same objects as the JSON form, and written back.

The mapping is Alma's own, applied generically so that fields never seen survive too:
- a code is an element with a `desc` attribute: `<user_group desc="Staff">08</user_group>` is
  {"value": "08", "desc": "Staff"};
- a list is a plural wrapper: `<user_identifiers><user_identifier>…` is "user_identifier": [...]
  (`addresses`/`address`, `rs_libraries`/`rs_library`, …);
- other attributes are fields of their element (`<address preferred="true" segment_type="Internal">`);
- `<middle_name/>` is "" and a missing element is null; everything else is text (the format's
  checks read "true"/"false", amounts and times from text).

Untrusted input: a document with a DOCTYPE is refused before parsing, so no entity can be declared,
expanded or fetched (what defusedxml's forbid_dtd does); the parser is the standard library's expat.
`<users>` files are parsed incrementally, each `<user>` freed once read.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Any, Iterator, TextIO

from tasks.errors import InvalidInput

# Root elements of the sub-resource responses, and the list each stands for.
SUB_RESOURCE_ROOTS = {
    "item_loans": "item_loan", "item_loan": "item_loan",
    "fees": "fee", "fee": "fee",
    "user_requests": "user_request", "user_request": "user_request",
}
# Lists whose wrapper may be empty (`<user_roles/>`): an empty wrapper is then [] rather than "".
KNOWN_LISTS = (
    "address", "email", "phone", "address_type", "email_type", "phone_type", "user_identifier", "user_note",
    "user_role", "user_block", "user_statistic", "proxy_for_user", "attachment", "item_loan", "user_request",
    "fee", "transaction", "parameter", "rs_library", "user",
)
# Fields Alma writes as attributes of their element (rest_user.xsd).
ATTRIBUTES = {
    "address": ("preferred", "segment_type"),
    "email": ("preferred", "segment_type"),
    "phone": ("preferred", "preferred_sms", "segment_type"),
    "user_identifier": ("segment_type",),
    "user_note": ("segment_type", "user_viewable", "popup_note", "created_by", "created_date"),
    "user_block": ("segment_type", "created_by", "created_date"),
    "user_statistic": ("segment_type",),
}
PROLOG_LIMIT = 65536


def plural(name: str) -> str:
    if name.endswith("y") and name[-2:-1] not in "aeiou":
        return name[:-1] + "ies"
    if name.endswith(("s", "x", "ch", "sh")):
        return name + "es"
    return name + "s"


_PLURALS = {plural(name): name for name in KNOWN_LISTS}
_ELEMENT_START = re.compile(rb"<[A-Za-z_]")


def _check_prolog(path: str) -> None:
    with open(path, "rb") as handle:
        head = handle.read(PROLOG_LIMIT)
    match = _ELEMENT_START.search(head)
    prolog = head[: match.start()] if match else head
    if b"<!DOCTYPE" in prolog.upper() or b"<!ENTITY" in prolog.upper():
        raise InvalidInput(f"{path}: XML with a DOCTYPE is refused (entities are not expanded in files from "
                           f"outside); Alma's own XML has none")
    if not match:
        raise InvalidInput(f"{path}: no XML element in the first {PROLOG_LIMIT} bytes")


def read_users(path: str) -> tuple[str, Iterator[tuple[str, Any]]]:
    """The root element's name and its records: each `<user>` of `<users>` (or the one `<user>`),
    or the items of a loans / fees / requests response, as JSON-like objects."""
    _check_prolog(path)
    events = _events(path)
    try:
        _, root = next(events)
    except StopIteration:
        raise InvalidInput(f"{path}: no XML element") from None
    tag = root.tag
    if tag == "user" or tag in SUB_RESOURCE_ROOTS and tag == SUB_RESOURCE_ROOTS[tag]:
        def single() -> Iterator[tuple[str, Any]]:
            for event, element in events:
                if event == "end" and element is root:
                    yield "record 1", element_value(root)
        return tag, single()
    if tag == "users" or tag in SUB_RESOURCE_ROOTS:
        item = "user" if tag == "users" else SUB_RESOURCE_ROOTS[tag]

        def many() -> Iterator[tuple[str, Any]]:
            depth, number = 0, 0
            for event, element in events:
                if event == "start":
                    depth += 1
                    continue
                depth -= 1
                if depth == 0 and element.tag == item:
                    number += 1
                    yield f"record {number}", element_value(element)
                    root.remove(element)
        return tag, many()
    raise InvalidInput(f"{path}: the root element is <{tag}>; expected <user> or <users> (Alma's rest_user.xsd), "
                       f"or a loans, fees or requests response")


def _events(path: str) -> Iterator[tuple[str, ET.Element]]:
    try:
        for event, element in ET.iterparse(path, events=("start", "end")):
            yield event, element
    except ET.ParseError as exc:
        line, column = getattr(exc, "position", (0, 0))
        raise InvalidInput(f"{path}: not well-formed XML at line {line} column {column + 1}: "
                           f"{str(exc).split(':')[0]}") from None


# Boolean attributes of list items: in XML an attribute left out says nothing (null), as Alma always
# writes them; in JSON a missing boolean is false.
NULL_WHEN_ABSENT = {
    "address": ("preferred",), "email": ("preferred",), "phone": ("preferred", "preferred_sms"),
    "user_note": ("user_viewable", "popup_note"),
}


def _as_list(element: ET.Element) -> str | None:
    """The item name when `element` is a plural wrapper (`<user_roles>` of `<user_role>`), else None."""
    if element.attrib:
        return None
    children = list(element)
    if not children:
        return _PLURALS.get(element.tag) if not (element.text or "").strip() else None
    first = children[0].tag
    if plural(first) == element.tag and all(child.tag == first for child in children):
        return first
    return None


def element_value(element: ET.Element) -> Any:
    """One element as the JSON form's value (a wrapper's items are read by its parent)."""
    attrs = element.attrib
    if len(element) == 0:
        text = element.text or ""
        if not attrs:
            return text
        if set(attrs) == {"desc"}:
            return {"value": text, "desc": attrs["desc"]}
        out: dict[str, Any] = dict(attrs)
        if text.strip():
            out["value"] = text
        return out
    out = dict(attrs)
    repeated: set[str] = set()
    for child in element:
        item = _as_list(child)
        if item is not None:
            key, value = item, [_item_value(c) for c in child]
        else:
            key, value = child.tag, element_value(child)
        if key in out and key not in repeated and item is None:  # repeated without a wrapper: a list
            out[key] = [out[key]]
            repeated.add(key)
        if key in repeated:
            out[key].append(value)
        else:
            out[key] = value
    return out


def _item_value(element: ET.Element) -> Any:
    value = element_value(element)
    if isinstance(value, dict):
        for name in NULL_WHEN_ABSENT.get(element.tag, ()):
            value.setdefault(name, None)
    return value


# ------------------------------------------------------------------ writing


def _text(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, float):  # a number outside the spec, as the fast JSON reader gives it
        value = Decimal(repr(value))
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _is_code(value: dict) -> bool:
    return "value" in value and set(value) <= {"value", "desc"} and not isinstance(value["value"], (dict, list))


def _add(parent: ET.Element, name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, list):
        wrapper = ET.SubElement(parent, plural(name))
        for item in value:
            _add(wrapper, name, item)
        return
    element = ET.SubElement(parent, name)
    if isinstance(value, dict):
        if _is_code(value):
            if value["value"] is None and value.get("desc") is None:
                parent.remove(element)  # {"value": null, "desc": null}: XML has no null; left out
                return
            if value["value"] is not None:
                element.text = _text(value["value"])
            if value.get("desc") is not None:
                element.set("desc", _text(value["desc"]))
            return
        attributes = ATTRIBUTES.get(name, ())
        for key, item in value.items():
            if key in attributes and not isinstance(item, (dict, list)):
                if item is not None:
                    element.set(key, _text(item))
            else:
                _add(element, key, item)
        return
    element.text = _text(value)


def user_element(document: dict) -> ET.Element:
    root = ET.Element("user")
    for key, value in document.items():
        _add(root, key, value)
    return root


def write_user(document: dict, out: TextIO) -> None:
    root = user_element(document)
    ET.indent(root)
    out.write('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n')
    out.write(ET.tostring(root, encoding="unicode") + "\n")


USERS_HEAD = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<users>\n'
USERS_TAIL = b"</users>\n"


def user_lines(documents: list[dict]) -> bytes:
    """The `<user>` elements of `<users>`, one a line, in UTF-8 (without a declaration each: USERS_HEAD has it)."""
    return b"".join(ET.tostring(user_element(d), encoding="utf-8") + b"\n" for d in documents)
