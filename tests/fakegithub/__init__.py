"""The tests' fake GitHub: the one in ``app.demo.fakegithub``, checking every request it answers.

The fake ships in the package because ``tessera demo`` runs the App against it; the tests keep
importing it from here, and here it always validates requests against GitHub's REST description
subset kept with the test data, so a request GitHub would refuse fails the test that made it.
"""

from __future__ import annotations

from pathlib import Path

from app.demo import fakegithub
from app.demo.fakegithub import *  # noqa: F403  (every public name, as before the move)

OPENAPI_SUBSET = Path(__file__).resolve().parents[1] / "data" / "github" / "openapi" / "subset.json"


class FakeGitHub(fakegithub.FakeGitHub):
    """The packaged fake with request validation on (``openapi`` defaults to the tests' subset)."""

    def __init__(self, *, openapi: Path | None = OPENAPI_SUBSET, **options: object) -> None:
        super().__init__(openapi=openapi, **options)  # type: ignore[arg-type]
