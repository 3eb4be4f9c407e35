"""Reads the user's training text out of the encrypted store, as the plain values `dataset.build` takes.

Documents come from `store.documents.chunk_texts()` (chunk text in order; the sentence overlap between
consecutive chunks is removed so no text is learnt twice), conversations from `store.chats`: the user's
messages and the assistant replies that completed (interrupted or failed replies are not what the user kept).
"""

from __future__ import annotations

from typing import Any

from personalize.dataset import Conversation, Document


def read_training_data(store: Any) -> tuple[list[Document], list[Conversation]]:
    return read_documents(store), read_conversations(store)


def read_documents(store: Any) -> list[Document]:
    rows = store.documents.chunk_texts()
    documents: list[Document] = []
    current: int | None = None
    previous = ""
    for document_id, text in rows:
        if document_id != current:
            current, previous = document_id, ""
        documents.append((str(document_id), strip_overlap(previous, text)))
        previous = text
    return documents


def read_conversations(store: Any) -> list[Conversation]:
    conversations: list[Conversation] = []
    for conversation in store.chats.list():
        messages = [
            {"role": m["role"], "content": m["content"]}
            for m in store.chats.messages(conversation["id"])
            if m["role"] in ("user", "assistant") and m.get("status", "complete") == "complete"
        ]
        if messages:
            conversations.append((str(conversation["id"]), messages))
    return conversations


def strip_overlap(previous: str, text: str, longest: int = 400) -> str:
    """`text` minus its longest prefix that is also a suffix of `previous` (the chunker's overlap)."""
    for size in range(min(longest, len(previous), len(text)), 0, -1):
        if previous.endswith(text[:size]):
            return text[size:].lstrip()
    return text
