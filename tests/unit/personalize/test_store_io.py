"""Reading training text from the store's chunks: the chunker's sentence overlap is not learnt twice."""

from personalize.store_io import strip_overlap


def test_overlap_between_consecutive_chunks_is_removed() -> None:
    first = "One sentence here. Two sentences there."
    second = "Two sentences there. Three at last."
    assert strip_overlap(first, second) == "Three at last."


def test_no_overlap_keeps_the_chunk() -> None:
    assert strip_overlap("Alpha beta.", "Gamma delta.") == "Gamma delta."
    assert strip_overlap("", "Gamma.") == "Gamma."
