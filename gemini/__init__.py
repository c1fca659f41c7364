"""Everything that speaks to Gemini.

- ``client``: the one client factory (API key, Vertex/OAuth, simulator) and the API versions;
- ``catalogue``: the Live models Apsara knows, and the voices;
- ``errors``: the one classifier of Gemini failures (Live, REST and the diagnosis use it);
- ``wire``: the fast path for Live audio on the SDK's own socket;
- ``diagnostics`` (with ``report``, ``explanations`` and ``live_steps``): ``manage.py gemini_check``;
- ``checks``: system checks on the Gemini settings.
"""
