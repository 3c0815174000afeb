"""Writing a benchmark's section of bench/RESULTS.md, leaving every other section as it is."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(heading: str, body: str, path: Path = RESULTS) -> None:
    """Replace the ``## heading`` section (up to the next ``## ``) with ``body``, which starts with
    that heading; append it when the file has none yet."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    marker = f"## {heading}"
    if marker in text:
        head, _, rest = text.partition(marker)
        tail = rest.split("\n## ", 1)
        text = head + body + ("\n## " + tail[1] if len(tail) > 1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + body
    path.write_text(text)
