"""The Store facade: documents, search and ingest through `store`, as the CLI, the window and personalize use it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from personalize.store_io import read_documents


def test_ingest_list_search_and_training_text_through_the_store(store: Any, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "garden.md").write_text("# Garden\n\nThe quokka tomatoes need water every morning in July.\n", "utf-8")
    (folder / "boat.txt").write_text("The boat called Zanzibar sails on Tuesdays.\n", "utf-8")

    summary = store.ingest([folder], embed=False)
    assert summary.counts()["added"] == 2
    assert sorted(Path(f.path).name for f in store.documents.list()) == ["boat.txt", "garden.md"]
    hits = store.search("Zanzibar boat", k=3)
    assert hits and Path(hits[0].source).name == "boat.txt"
    texts = [text for _, text in read_documents(store)]
    assert any("quokka tomatoes" in text for text in texts) and any("Zanzibar" in text for text in texts)
    assert store.documents.forget(str(folder / "boat.txt"))
    assert [Path(f.path).name for f in store.documents.list()] == ["garden.md"]
