"""Shared fixtures. Each concern keeps its fixtures in its own module; they are gathered here."""

from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from aiohttp.typedefs import StrOrURL

import rules.build
import rules.infer
from tests import openapi_responses
from tests.fixtures_app import *  # noqa: F401,F403  (settings, store, running server)
from tests.fixtures_app import BACKENDS, BOTH_BACKENDS
from tests.fixtures_github import *  # noqa: F401,F403  (fake GitHub, App key)
from tests.pg import postgres_server  # noqa: F401  (a throwaway real PostgreSQL, session-scoped)

# Every answer of the engine's fast path for ancestor types is checked against sqlglot's own
# qualify + annotate_types in every test that builds a snapshot: a difference fails the test.
rules.infer.CHECK_FAST_PATH = True


@pytest.fixture
def inference_jobs(monkeypatch: pytest.MonkeyPatch) -> list[rules.build.InferenceJob]:
    """Every inference the engine runs during the test, in order (what a speed property is about:
    which models are inferred, and how often)."""
    jobs: list[rules.build.InferenceJob] = []
    real = rules.build.infer_one

    def recording(job: rules.build.InferenceJob) -> Any:
        jobs.append(job)
        return real(job)

    monkeypatch.setattr(rules.build, "infer_one", recording)
    return jobs


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The store, queue and workflow tests run on SQLite and on PostgreSQL (``store_backend``)."""
    if "store_backend" not in metafunc.fixturenames:
        return
    path = metafunc.definition.path.relative_to(metafunc.config.rootpath).as_posix()
    if path.startswith(BOTH_BACKENDS):
        metafunc.parametrize("store_backend", BACKENDS, indirect=True)


@pytest.fixture(autouse=True)
def api_answers_match_the_openapi_document(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every ``/api/v1`` answer a test receives through aiohttp's TestClient is checked against
    ``/api/v1/openapi.json`` (see :mod:`tests.openapi_responses`); a mismatch fails the test."""
    found: list[str] = []
    original = TestClient._request

    async def checked(self: TestClient, method: str, path: StrOrURL, **kwargs: Any) -> ClientResponse:
        response = await original(self, method, path, **kwargs)
        if response.url.path.startswith(openapi_responses.PREFIX + "/"):
            text = (await response.read()).decode("utf-8", "replace")
            found.extend(
                openapi_responses.problems(method, response.url.path, response.status, response.content_type, text)
            )
        return response

    monkeypatch.setattr(TestClient, "_request", checked)
    yield found
    assert not found, "answers that break the OpenAPI document:\n" + "\n".join(dict.fromkeys(found))
