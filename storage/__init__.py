"""Hearth's encrypted local store: keys, schema, chats, blobs, documents and search.

The lowest layer: it never imports `desktop`, and keeps torch and friends out of its import path.
"""
