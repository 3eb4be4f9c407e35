"""Markdown from the model, rendered to the HTML subset Qt's rich-text labels understand.

markdown-it-py parses (CommonMark + tables); raw HTML in the model's output is escaped and images are not
rendered, so an answer can never make the window load anything. Code blocks become one-cell tables (Qt's
rich text pads table cells, not `<pre>`) with Pygments colours inlined, plus a "Copy code" link whose href
indexes `Rendered.code_blocks`. Rendering the whole message again on every streamed batch is fine: a
2,000-token answer renders in a few milliseconds, and an unclosed fence simply renders as code so far.
Saved messages go through `render_cached`: switching back to a chat then costs no parsing or highlighting
(the cache lives in memory only, like the widgets showing the same text).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

COPY_CODE_SCHEME = "copy-code"


@dataclass(frozen=True)
class Palette:
    """The few colours the HTML needs, taken from the Qt palette so light and dark both read well."""

    code_background: str = "#f3f3f3"
    code_border: str = "#dddddd"
    link: str = "#2a6cc4"
    dark: bool = False


@dataclass
class Rendered:
    html: str
    code_blocks: list[str] = field(default_factory=list)


@lru_cache(maxsize=1)
def _parser() -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False})
    md.enable("table").enable("strikethrough").disable("image")
    return md


def render(text: str, palette: Palette) -> Rendered:
    md = _parser()
    blocks: list[str] = []
    env: dict[str, Any] = {}
    tokens = md.parse(text, env)
    for token in tokens:
        if token.type in ("fence", "code_block"):
            blocks.append(token.content)
            lang = token.info.strip().split(" ")[0] if token.type == "fence" else ""
            token.type = "html_block"  # our own markup, emitted verbatim by the renderer
            token.content = _code_html(token.content, lang, len(blocks) - 1, palette)
    body = md.renderer.render(tokens, md.options, env)
    body = body.replace(
        "<table>\n",
        f'<table border="1" cellspacing="0" cellpadding="4" style="border-color: {palette.code_border}">\n',
    )
    return Rendered(html=f'<div style="line-height: 135%">{body}</div>', code_blocks=blocks)


@lru_cache(maxsize=1024)
def render_cached(text: str, palette: Palette) -> Rendered:
    """`render` for text that no longer changes (saved messages); callers must not modify the result."""
    return render(text, palette)


def _code_html(code: str, lang: str, index: int, palette: Palette) -> str:
    code = code.rstrip("\n")
    label = html.escape(lang) if lang else "code"
    header = (
        f'<span style="color: gray; font-size: small">{label}</span>'
        f'&nbsp;&nbsp;<a href="{COPY_CODE_SCHEME}:{index}" style="font-size: small; color: {palette.link}">'
        f"Copy code</a>"
    )
    body = _highlight(code, lang, palette.dark)
    return (
        f'<table width="100%" cellspacing="0" cellpadding="8" '
        f'style="background-color: {palette.code_background};'
        f' border: 1px solid {palette.code_border}; margin-top: 4px; margin-bottom: 4px">'
        f"<tr><td>{header}"
        f'<pre style="font-family: monospace; margin: 0">{body}</pre></td></tr></table>\n'
    )


def _highlight(code: str, lang: str, dark: bool) -> str:
    """Pygments spans with inline colours, or plain escaped text for an unknown language."""
    tools = _pygments(lang, dark) if lang else None
    if tools is None:
        return html.escape(code)
    from pygments import highlight

    lexer, formatter = tools
    return highlight(code, lexer, formatter).rstrip("\n")


@lru_cache(maxsize=64)
def _pygments(lang: str, dark: bool) -> tuple[Any, Any] | None:
    """(lexer, formatter) per language and theme, built once: looking a lexer up and building a styled
    formatter cost more than highlighting a short block, and a chat opens many blocks of one language."""
    try:
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import get_lexer_by_name
        from pygments.util import ClassNotFound
    except ImportError:  # pygments is optional: plain code still reads fine
        return None
    try:
        lexer = get_lexer_by_name(lang)
    except ClassNotFound:
        return None
    return lexer, HtmlFormatter(nowrap=True, noclasses=True, style="github-dark" if dark else "default")


def plain_text(text: str) -> str:
    """What "Copy" puts on the clipboard: the Markdown source, which pastes well almost everywhere."""
    return text
