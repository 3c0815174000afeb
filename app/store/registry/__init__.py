"""The registry's tables: teams, API keys, assets, columns, exposures, edges, registrations, WAP audits.

The registry is what the REST API serves and what a ``push`` (or a dbt manifest upload) refreshes:
one repository's assets, columns, exposures and edges are replaced together, in one transaction,
so a reader never sees half a sync. Edges are named by asset fqn, so an edge may point into
another repository's asset. ``graph_version`` goes up on every change to the graph: the API's
in-memory reverse index (see :mod:`app.api.graph`) rebuilds when it moves.

Every function takes a :class:`~app.store.db.Database` (either engine) and runs through ``Store.read`` /
``Store.write``. The tables are split by family into the modules of this package; this module
names them all, so callers keep ``from app.store import registry``.
Contract versions live in :mod:`app.store.contracts`; proposals, acks and the audit log in
:mod:`app.store.proposals`.
"""

from __future__ import annotations

from app.store.registry.assets import (  # noqa: F401
    AssetClaim,
    AssetRow,
    EdgeRow,
    ExposureRow,
    all_edges,
    all_exposures,
    asset_claims,
    asset_owners,
    bump_graph_version,
    direct_readers,
    exposures_of,
    forget_repo,
    get_asset,
    graph_version,
    known_assets,
    last_sync,
    replace_repo,
    repo_owner_teams,
    repo_spelling,
    search_assets,
)
from app.store.registry.audits import (  # noqa: F401
    RunIdTaken,
    audit_runs,
    audit_runs_since,
    audited_assets,
    failing_audits,
    record_audit_run,
)
from app.store.registry.keys import (  # noqa: F401
    SCOPES,
    ApiKey,
    get_key,
    insert_key,
    key_by_prefix,
    list_all_keys,
    list_keys,
    revoke_key,
    touch_key,
)
from app.store.registry.registrations import (  # noqa: F401
    all_registrations,
    create_registration,
    delete_registration,
    get_registration,
    list_registrations,
    registration_rows,
    registrations_for,
    replace_sql_registrations,
)
from app.store.registry.schema import (  # noqa: F401
    m0030_registry,
    m0035_repo_teams,
    m0045_column_names,
)
from app.store.registry.teams import (  # noqa: F401
    Team,
    create_team,
    delete_team,
    get_team,
    github_teams,
    list_teams,
    update_team,
)
