"""The page tests' fixtures: the browser (see :mod:`tests.web.browser`)."""

from tests.web.browser import browser  # noqa: F401  (a fixture)
