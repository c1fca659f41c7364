"""URL converters: an id in a path is checked before any view, or query, sees it."""

from __future__ import annotations

from django.urls import register_converter

from apsara.validation import PUBLIC_ID_PATTERN


class PublicIdConverter:
    """A public id in a path (``conv_…``, ``msg_…``): ASCII letters, digits, ``_`` and ``-``, at most 40 characters.

    Anything else (a NUL byte, ``%``, non-ASCII text, an over-long id) cannot name a row, so the URL matches no
    route: the answer is the same 404 as for an id that does not exist, and no query is made.
    """

    regex = PUBLIC_ID_PATTERN

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


# Imported by every urls module that uses <public_id:…>, registered once however they are loaded.
register_converter(PublicIdConverter, "public_id")
