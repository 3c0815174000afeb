"""Consumer discovery: who reads what, from warehouse query logs and BI tools.

Each source streams rows (``logs`` for query-log exports and JSON lines, ``postgres`` for a live
``pg_stat_statements``, ``snowflake`` and ``bigquery`` for their query history read live over
their REST APIs, ``bi`` for LookML, Metabase and Tableau) into an
:class:`~app.discovery.aggregate.Aggregator` that keeps one entry per (asset, reader), never the
rows themselves; ``run`` ties a source to the store (watermarks, observed consumers) for
``tessera discover`` and the App's schedule; ``remap`` maps a reader to a team and has the open
pull requests it reads analysed again.
"""
