"""Names, identity keys and stable ids (the "Names" and "Papers" rules of the input contract)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

from authorgraph.transforms.parse import has_odd_whitespace

# Han ideographs, kana, Hangul and their compatibility / extension blocks.
_CJK = re.compile(
    r"^[\u2e80-\u2fdf\u3005\u3040-\u30ff\u3100-\u312f\u3190-\u31ff\u3400-\u4dbf"
    r"\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f]+$"
)
_ARXIV_SOURCE = re.compile(r"^arxiv\.org\s+(?P<subject>\S.*)$", re.IGNORECASE)
ID_HEX_CHARS = 16


@dataclass(frozen=True, slots=True)
class PersonName:
    """An author's name split into parts, with the display form and identity key."""

    name_raw: str
    display_name: str
    family_name: str | None
    given_name: str | None
    suffix: str | None


def _is_cjk(text: str) -> bool:
    return bool(_CJK.match(text.replace(" ", "")))


def parse_person_name(name_raw: str) -> PersonName:
    """Split 'Family, Given' or 'Family, Suffix, Given'; never guess an order without a comma."""
    raw = " ".join(name_raw.split())
    parts = [p.strip() for p in raw.split(",")]
    family = given = suffix = None
    if len(parts) == 2 and all(parts):
        family, given = parts
    elif len(parts) == 3 and all(parts):
        family, suffix, given = parts
    if family is None or given is None:
        return PersonName(raw, raw, None, None, None)
    display = family + given if _is_cjk(family) and _is_cjk(given) else f"{given} {family}"
    if suffix:
        display = f"{display} {suffix}"
    return PersonName(raw, display, family, given, suffix)


def identity_key(text: str | None) -> str:
    """Casefolded, NFC, whitespace-folded text: what two copies must share to be the same."""
    if not text:
        return ""
    key = text.casefold()
    # Parsed fields are folded already (one space, no edges): skip the split in that case.
    if "\n" in key or key[0] == " " or key[-1] == " " or has_odd_whitespace(key):
        key = " ".join(key.split())
    if not unicodedata.is_normalized("NFC", key):
        key = unicodedata.normalize("NFC", key)
    return key


def stable_id(*keys: str) -> str:
    """A short, stable hex id for identity keys (same on every run and machine)."""
    digest = hashlib.sha256("\x1f".join(keys).encode("utf-8")).hexdigest()
    return digest[:ID_HEX_CHARS]


def author_id_for(display_name: str) -> str:
    """Stable author id: pages name the same author when casefolded display names match."""
    return stable_id(identity_key(display_name))


def paper_id_for(title: str, abstract: str | None) -> str:
    """Stable paper id from casefolded title and abstract (the source is not part of it)."""
    return stable_id(identity_key(title), identity_key(abstract))


def paper_id_of_parsed(title: str, abstract: str | None) -> str:
    """`paper_id_for` for fields the parser produced (already folded): the fast path."""
    key_title = title.casefold()
    key_abstract = abstract.casefold().replace("\n\n", " ") if abstract else ""
    if not (key_title.isascii() and key_abstract.isascii()):
        key_title = unicodedata.normalize("NFC", key_title)
        key_abstract = unicodedata.normalize("NFC", key_abstract)
    return stable_id(key_title, key_abstract)


def subject_of(source: str) -> str | None:
    """'arXiv.org Machine Learning' → 'Machine Learning'; any other source → None."""
    match = _ARXIV_SOURCE.match(source)
    return match.group("subject") if match else None
