"""Mail (.eml, .mbox): one document per message, titled by subject, with from/date kept for citations."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage, Message

from storage.parsers.model import ParsedDoc, ParseError, Section

MAX_MESSAGES = 100_000


def parse_eml(data: bytes, title: str) -> list[ParsedDoc]:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    if not msg.keys():
        raise ParseError("not an e-mail message (no headers)")
    return [_doc(msg, title, "")]  # type: ignore[arg-type]


def parse_mbox(data: bytes, title: str) -> list[ParsedDoc]:
    """Split an mbox in memory (mboxo/mboxrd 'From ' lines); `mailbox.mbox` would need a file on disk."""
    if not data.startswith(b"From "):
        raise ParseError("not an mbox file (it must start with a 'From ' line)")
    raw_messages = re.split(rb"(?m)^From [^\n]*\n", data)[1:]
    if len(raw_messages) > MAX_MESSAGES:
        raise ParseError(f"mbox has over {MAX_MESSAGES} messages")
    docs = []
    for n, raw in enumerate(raw_messages):
        raw = re.sub(rb"(?m)^>(>*From )", rb"\1", raw)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        doc = _doc(msg, f"{title} #{n + 1}", f"msg-{n}", n + 1)
        if not doc.is_empty():
            docs.append(doc)
    if not docs:
        raise ParseError("mbox holds no readable messages")
    return docs


def _doc(msg: EmailMessage | Message, fallback: str, part: str, number: int = 0) -> ParsedDoc:
    """One message; in a mailbox its citation names it by position and subject ("message 4: Re: keys")."""
    subject = _header(msg, "subject") or "(no subject)"
    sender = _header(msg, "from")
    date = _header(msg, "date")
    body = _body(msg)
    head = f"Subject: {subject}\nFrom: {sender}\nDate: {date}".strip()
    return ParsedDoc(
        title=subject if subject != "(no subject)" else fallback,
        sections=[
            Section(
                f"{head}\n\n{body}".strip(),
                heading=(subject,),
                location=f"message {number}: {subject}" if number else "",
            )
        ],
        part=part,
        meta={"subject": subject, "from": sender, "date": date},
    )


def _header(msg: Message, name: str) -> str:
    try:
        return str(msg.get(name, "") or "").strip()
    except (ValueError, TypeError, IndexError):  # malformed encoded-words
        return ""


def _body(msg: Message) -> str:
    """Prefer text/plain parts; fall back to the visible text of text/html; skip attachments."""
    plain: list[str] = []
    html: list[str] = []
    for part in msg.walk() if msg.is_multipart() else [msg]:
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html"):
            continue
        try:
            payload = part.get_payload(decode=True) or b""
            text = payload.decode(part.get_content_charset() or "utf-8", errors="replace")
        except (LookupError, ValueError):
            continue
        (plain if ctype == "text/plain" else html).append(text)
    if plain:
        return "\n\n".join(t.strip() for t in plain)
    if html:
        from storage.parsers.markup import html_text

        return "\n\n".join(html_text(h) for h in html)
    return ""
