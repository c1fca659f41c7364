"""``manage.py live_test``: a live session held from a terminal through the web page's own bridge (seed 002 §7).

``choices`` asks the seed's questions (or reads their flags) and makes the page's ``create_session``; ``session``
runs it on a ``live.session.LiveClient`` with an in-process outlet; ``output`` prints what happens, as text or JSON
Lines, each failure explained with its fix.
"""
