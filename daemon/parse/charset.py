"""Which character encodings a feed may use, decided before its prolog is checked for entity declarations.

The prolog check (``daemon.parse.feed.clean_prolog``) reads bytes: it sees ``<!DOCTYPE x [`` only where those characters
are written as their ASCII bytes. That holds for UTF-8, for UTF-16 and UTF-32 (the check reads them too), and for the
legacy encodings that write ASCII as ASCII (Latin-1, Windows-1252, Shift_JIS, GB18030, KOI8-R...). It does not hold
for UTF-7 (``+ADwAIQ-`` is ``<!``) nor for the EBCDIC code pages (``<`` is byte 0x4C): a parser that believed the
label would read markup the check never saw. Such documents are refused here, before anything else reads them. (A
UTF-16 or UTF-32 label on a document without zero bytes hides nothing: those encodings need them to write ASCII.)
"""

from __future__ import annotations

import codecs
import functools
import re
from collections.abc import Mapping

from daemon.errors import FeedError
from daemon.states import ErrorKind

__all__ = ["check_encoding", "ascii_compatible"]

# The characters markup is made of, and the whitespace between them.
_ASCII = "".join(chr(i) for i in range(32, 127)) + "\t\r\n"
_XML_DECL_ENCODING = re.compile(
    rb"^(?:\xef\xbb\xbf)?[ \t\r\n]*<\?xml\b[^>]{0,200}?\bencoding[ \t\r\n]*=[ \t\r\n]*"
    rb"[\"']([A-Za-z0-9._:+-]{1,60})[\"']"
)
_HTTP_CHARSET = re.compile(r"""charset[ \t]*=[ \t]*["']?([A-Za-z0-9._:+-]{1,60})""", re.IGNORECASE)
# "<?xm" in the EBCDIC code pages: how an EBCDIC XML document starts (XML 1.0, appendix F)
_EBCDIC_START = b"\x4c\x6f\xa7\x94"
_WIDE_FAMILIES = ("utf-16", "utf-32")


@functools.lru_cache(maxsize=256)
def ascii_compatible(name: str) -> bool | None:
    """Whether the encoding writes every ASCII character as that ASCII byte; None for a name Python does not know."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    if info.name == "utf-8-sig":
        return True
    try:
        return info.encode(_ASCII)[0] == _ASCII.encode("ascii")
    except (UnicodeError, TypeError, LookupError):  # a bytes-to-bytes codec (base64, zlib): not a text encoding
        return False


def _wide(data: bytes) -> bool:
    head = data[:4]
    return head[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in head


def _family(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return name.lower()


def _refuse(url: str, why: str) -> None:
    raise FeedError(url, f"refused: {why}", kind=ErrorKind.REFUSED_XML)


def check_encoding(data: bytes, url: str, headers: Mapping[str, str] | None = None) -> bytes:
    """``data`` unchanged when its declared encodings (the XML declaration, the HTTP charset) are ones the prolog
    check can read; FeedError otherwise."""
    if data[:4] == _EBCDIC_START:
        _refuse(
            url,
            "the feed is encoded in EBCDIC; wiredesk reads feeds in UTF-8, UTF-16, UTF-32 or an encoding "
            "that writes ASCII as ASCII",
        )
    wide = _wide(data)
    declared = []
    match = _XML_DECL_ENCODING.match(data[:512]) if not wide else None
    if match:
        declared.append(("its XML declaration", match.group(1).decode("ascii")))
    content_type = next((v for k, v in (headers or {}).items() if k.lower() == "content-type"), "")
    charset = _HTTP_CHARSET.search(content_type or "")
    if charset:
        declared.append(("its Content-Type header", charset.group(1)))
    for where, name in declared:
        family = _family(name)
        if family.startswith(_WIDE_FAMILIES):
            continue
        if ascii_compatible(name) is False:
            _refuse(
                url,
                f"{where} says {name}, an encoding whose markup the entity check cannot see (UTF-7, "
                "EBCDIC and the like); wiredesk reads feeds in UTF-8, UTF-16, UTF-32 or an encoding that "
                "writes ASCII as ASCII",
            )
    return data
