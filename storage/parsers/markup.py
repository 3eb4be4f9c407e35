"""HTML: visible text split at h1-h6, so citations can name the section a passage sits under."""

from __future__ import annotations

from storage.parsers.model import ParsedDoc, Section

_BLOCKS = {"p", "li", "pre", "blockquote", "td", "th", "dd", "dt", "figcaption", "caption", "div", "section"}
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_DROP = ("script", "style", "noscript", "template", "head", "nav", "svg")


def parse_html(text: str, title: str) -> list[ParsedDoc]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    page_title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(_DROP):
        tag.decompose()
    root = soup.body or soup
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    buf: list[str] = []

    def flush() -> None:
        body = "\n\n".join(b for b in buf if b)
        if body.strip():
            sections.append(Section(body, tuple(h for _, h in path)))
        buf.clear()

    for el in root.find_all(list(_HEADINGS) + list(_BLOCKS)):
        name = el.name
        if name in _HEADINGS:
            flush()
            level = _HEADINGS[name]
            while path and path[-1][0] >= level:
                path.pop()
            path.append((level, el.get_text(" ", strip=True)))
            continue
        # Only leaf-ish blocks: a div holding paragraphs is reached through its children.
        if el.find(list(_BLOCKS) + list(_HEADINGS)):
            own = "".join(s for s in el.find_all(string=True, recursive=False)).strip()
            if own:
                buf.append(own)
            continue
        buf.append(el.get_text(" " if name not in ("pre",) else "", strip=name != "pre"))
    flush()
    if not sections:
        loose = root.get_text("\n", strip=True)
        sections = [Section(loose)] if loose else []
    return [ParsedDoc(title=page_title or title, sections=sections)]
