"""A live session: one browser socket ⇄ one Gemini Live session, spanning as many Gemini connections as it needs.

See ``docs/architecture.md`` for the module map: ``client`` (the socket's messages), ``run`` (the lifecycle),
``link`` (the connection and its state machine), ``ledger`` (exactly once across connections), ``outbound`` and
``inbound`` (the two directions), ``tool_calls``, ``row`` (the database row), ``media``, ``stats``.
"""

from live.session.client import LiveClient, Outlet

__all__ = ["LiveClient", "Outlet"]
