"""E-mail to sections: an EML message, or each message of an MBOX mailbox, as a section
headed by its subject, its text starting with "From: … / Date: … / Subject: …" lines
(so a question about who wrote, or when, finds it), then its body (text/plain when the
message has it, else its HTML as text).

Attachments are indexed as documents of their own kind: each is detected by its content
and file name (retrievers.detect) and read by that kind's parser, its sections cited
"attachment <name> › …" (in a mailbox "message N › attachment <name> › …") with
metadata `attachment`. An attachment that cannot be read, or is of a kind not indexed,
is named in `notes`; the message itself is still indexed. Attachments nested inside
attached messages are read down to _MAX_DEPTH levels. See retrievers.loaders.
"""

from __future__ import annotations

import contextvars
import os
import tempfile
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from pathlib import Path

from langchain_core.documents import Document

from assistant.errors import InputFileError
from assistant.settings import DocumentSettings
from retrievers.sections import HEADING_SEPARATOR, section

__all__ = ["parse_eml", "parse_mbox"]

# A parser of retrievers.loaders, passed in: loaders imports this module.
Parser = Callable[[Path, bytes, DocumentSettings, list[str]], list[Document]]

_MAX_DEPTH = 3  # a message attached to a message attached to a message ...
_depth: contextvars.ContextVar[int] = contextvars.ContextVar("mail_depth", default=0)
_KNOWN_HEADERS = ("from", "to", "subject", "date", "message-id")


def _read(data: bytes) -> EmailMessage:
    from email import message_from_bytes, policy

    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)  # policy.default makes EmailMessage objects
    return message


def _header(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name)
    except (ValueError, TypeError, IndexError):  # a malformed header the policy cannot parse
        raw = message.get_all(name, failobj=[])
        value = raw[0] if raw else None
    return " ".join(str(value).split()) if value is not None else ""


def _html_text(html: str, options: DocumentSettings) -> str:
    """An HTML body as text, its blocks as lines (the project's HTML parser)."""
    from retrievers.html import parse_html

    try:
        sections = parse_html(Path("body.html"), html.encode("utf-8"), options, [])
    except InputFileError:
        return ""
    return "\n".join(s.page_content for s in sections)


def _content(part: EmailMessage) -> str:
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):  # an unknown charset or a broken encoding
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else ""


def _body(message: EmailMessage, options: DocumentSettings) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if not isinstance(part, EmailMessage):
        return ""
    text = _content(part)
    if part.get_content_subtype() == "html":
        text = _html_text(text, options)
    return text.strip()


def _attachment_bytes(part: EmailMessage) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else inner
        return inner.as_bytes() if isinstance(inner, EmailMessage) else b""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _attachments(
    path: Path,
    message: EmailMessage,
    where: str,
    heading: str,
    options: DocumentSettings,
    notes: list[str],
    parsers: Mapping[str, Parser],
) -> list[Document]:
    from retrievers.detect import BINARY, detect_kind

    out: list[Document] = []
    names: set[str] = set()
    for number, part in enumerate(message.iter_attachments(), start=1):
        assert isinstance(part, EmailMessage)
        default = "message.eml" if part.get_content_type() == "message/rfc822" else f"part-{number}"
        name = Path(part.get_filename() or default).name or default
        if name in names:  # two attachments of one name: cited apart
            name = f"{Path(name).stem} ({number}){Path(name).suffix}"
        names.add(name)
        label = f"{where}attachment {name}"
        if _depth.get() >= _MAX_DEPTH:
            notes.append(f"{label}: left out, nested more than {_MAX_DEPTH} messages deep")
            continue
        data = _attachment_bytes(part)
        if not data.strip():
            continue
        kind = detect_kind(Path(name), data)
        if kind == BINARY or kind not in parsers:
            notes.append(f"{label}: left out, its type ({part.get_content_type()}) is not indexed")
            continue
        inner: list[str] = []
        token = _depth.set(_depth.get() + 1)
        try:
            sections = parsers[kind](path.parent / name, data, options, inner)
        except InputFileError as exc:
            notes.append(f"{label}: left out, it {exc.reason}")
            continue
        except Exception as exc:  # one odd attachment must not cost the message its index
            notes.append(f"{label}: left out, it could not be parsed ({type(exc).__name__}: {exc})")
            continue
        finally:
            _depth.reset(token)
        # A nested attachment's note already names where it is: its path goes on from ours.
        notes.extend(f"{label}{HEADING_SEPARATOR if note.startswith('attachment ') else ': '}{note}" for note in inner)
        for each in sections:
            location = str(each.metadata.get("location") or "")
            each.metadata["location"] = HEADING_SEPARATOR.join(p for p in (label, location) if p)
            inner_heading = str(each.metadata.get("heading") or "")
            each.metadata["heading"] = HEADING_SEPARATOR.join(p for p in (heading, name, inner_heading) if p)
            each.metadata.setdefault("attachment", name)  # the innermost file that holds the text
            out.append(each)
    return out


def _message_sections(
    path: Path,
    mail: EmailMessage,
    prefix: str,
    options: DocumentSettings,
    notes: list[str],
    parsers: Mapping[str, Parser],
    **extra: object,
) -> list[Document]:
    subject = _header(mail, "subject")
    lines = [f"{name}: {value}" for name in ("From", "To", "Date", "Subject") if (value := _header(mail, name))]
    body = _body(mail, options)
    text = "\n".join(lines) + (f"\n\n{body}" if body else "")
    title = subject or "(no subject)"
    location = f"{prefix}{title}"
    out = [section(text, location, heading=title, **extra)]
    out.extend(_attachments(path, mail, prefix, title, options, notes, parsers))
    for each in out[1:]:
        for key, known in extra.items():
            each.metadata.setdefault(key, known)
    return out


def _not_mail(message: EmailMessage) -> bool:
    return not any(message.get_all(name) for name in _KNOWN_HEADERS)


def parse_eml(
    path: Path, data: bytes, options: DocumentSettings, notes: list[str], parsers: Mapping[str, Parser]
) -> list[Document]:
    """One message; its attachments are read by `parsers` (retrievers.loaders.PARSERS)."""
    if not data.strip():
        raise InputFileError(str(path), "is empty: no message in it; save the message again from the mail program")
    message = _read(data)
    if _not_mail(message) or b"\x00" in data[:8192]:
        raise InputFileError(
            str(path),
            "is not a readable e-mail message (no From, To, Subject or Date header at its start); "
            "save the message again from the mail program as .eml",
        )
    return _message_sections(path, message, "", options, notes, parsers)


def parse_mbox(
    path: Path, data: bytes, options: DocumentSettings, notes: list[str], parsers: Mapping[str, Parser]
) -> list[Document]:
    import mailbox

    if not data.startswith(b"From ") or b"\x00" in data[:8192]:
        raise InputFileError(
            str(path),
            'is not a readable MBOX mailbox (it does not start with a "From " line); '
            "export it again from the mail program",
        )
    # mailbox reads files only: a private copy of the bytes already read and hashed.
    handle, name = tempfile.mkstemp(suffix=".mbox")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        box = mailbox.mbox(name, create=False)
        try:
            raw = [box.get_bytes(key) for key in box.iterkeys()]
        finally:
            box.close()
    finally:
        os.unlink(name)
    sections: list[Document] = []
    for number, message_bytes in enumerate(raw, start=1):
        message = _read(message_bytes)
        if _not_mail(message):
            notes.append(f"message {number}: left out, it has no From, To, Subject or Date header")
            continue
        prefix = f"message {number}{HEADING_SEPARATOR}"
        sections.extend(_message_sections(path, message, prefix, options, notes, parsers, message=number))
    return sections
