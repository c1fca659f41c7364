"""The production topology: nginx load-balancing HTTP and ``/live`` over several ``apsara.serve`` workers.

``python -m deploy.cluster`` runs it on one machine (``docs/deploy.md``); ``tests/deploy/`` drives it.
"""
