"""Reaching people where they are: Slack messages and signed outbound webhooks.

- :mod:`~app.notify.events` — the workflow's hooks: moments become stored outbound messages.
- :mod:`~app.notify.outbox` — the outbound queue's workers: send, retry, give up, disable.
- :mod:`~app.notify.slack` — message content (Block Kit), the Web API client, request signatures.
- :mod:`~app.notify.webhooks` — subscriber events and the ``X-Tessera-Signature-256`` signature.
- :mod:`~app.notify.interactions` — ``POST /slack/interactions`` (the Acknowledge button).
- :mod:`~app.notify.ssrf` — the guard every outbound call goes through.

Tables and queries: :mod:`app.store.notify`. API: :mod:`app.api.subscriptions`.
"""
