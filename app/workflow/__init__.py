"""The PR workflow: what a producer and the teams that read their data meet in a pull request.

- :mod:`~app.workflow.pulls` — ``pull_request`` / ``check_run`` / ``check_suite`` handlers; one
  analysis: check run, proposal, verdict.
- :mod:`~app.workflow.checkout` — which pull request (``PullRef``), both sides' files and
  ``.tessera.yml`` from the base, read within a budget; the installation's client.
- :mod:`~app.workflow.analysis` — the engine on a pull request, in an analysis worker.
- :mod:`~app.workflow.publishing` — ``publish_outcome``: comment, check and store after an analysis
  or an answer (also used by the slash commands, Slack, the pages and the registry API).
- :mod:`~app.workflow.github_source` — the engine's ``FileSource`` over git trees and blobs, with
  the store's SHA-keyed caches and an 8-wide prefetch.
- :mod:`~app.workflow.slash` — ``issue_comment`` handler: the `/tessera …` commands, who may say
  them, reactions and replies; :mod:`~app.workflow.commands` parses them (pure).
- :mod:`~app.workflow.acks` — each team's state and the check's conclusion (pure).
- :mod:`~app.workflow.checkrun` — the check's title, summary, annotations and Re-check action (pure).
- :mod:`~app.workflow.comment` — the single impact comment, found by its hidden marker.
- :mod:`~app.workflow.contracts` — contract versions published when a pull request merges.
- :mod:`~app.workflow.pages` — the signed ``/checks/{id}`` links (the page is :mod:`app.web.proposals`).
- :mod:`~app.workflow.serialize` — an analysis to JSON and back, losslessly, for the store.

Tables and queries: :mod:`app.store.proposals` and :mod:`app.store.contracts`.
"""
