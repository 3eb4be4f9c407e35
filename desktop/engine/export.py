"""Chat export: one saved conversation as Markdown or JSON, for the window's Export and `hearth history export`.

This is the only way chat text leaves the encrypted store, and only into a file the user named.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FORMATS = ("md", "json")
NAMES = {"user": "You", "assistant": "Hearth", "system": "System", "tool": "Tool"}


def load(store: Any, conversation_id: int) -> dict[str, Any]:
    """The conversation's row with its `messages` (the branch shown) and its `tree` (every branch);
    KnownError for an unknown id, from the store."""
    chats = store.chats
    return {
        **chats.get(conversation_id),
        "messages": chats.messages(conversation_id),
        "tree": chats.tree(conversation_id),
    }


def to_markdown(conversation: dict[str, Any]) -> str:
    lines = [f"# {conversation['title'] or 'Conversation'}", ""]
    if conversation.get("system_prompt"):
        lines += [f"> System prompt: {conversation['system_prompt']}", ""]
    for message in conversation["messages"]:
        lines += [f"## {NAMES.get(message['role'], message['role'])}", "", message["content"].rstrip(), ""]
    hidden = len(conversation.get("tree") or []) - len(conversation["messages"])
    if hidden > 0:
        lines += [f"*{hidden} messages on other branches are not shown; the JSON export keeps every branch.*", ""]
    return "\n".join(lines)


def to_json(conversation: dict[str, Any]) -> str:
    keys = ("id", "title", "system_prompt", "created", "updated")
    data = {key: conversation.get(key) for key in keys}
    data["messages"] = [{k: m[k] for k in ("role", "content", "created", "status")} for m in conversation["messages"]]
    # Every branch (edits and regenerated answers): each message names its parent; `messages` above is the
    # branch that was shown, `leaf_id` where it ends.
    tree_keys = ("id", "parent_id", "role", "content", "created", "status")
    data["tree"] = [{k: m[k] for k in tree_keys} for m in conversation.get("tree") or conversation["messages"]]
    data["leaf_id"] = conversation["messages"][-1]["id"] if conversation["messages"] else None
    return json.dumps(data, ensure_ascii=False, indent=2)


def render(conversation: dict[str, Any], fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    return to_json(conversation) if fmt == "json" else to_markdown(conversation)


def write(store: Any, conversation_id: int, path: Path, fmt: str) -> None:
    path.write_text(render(load(store, conversation_id), fmt), encoding="utf-8")
