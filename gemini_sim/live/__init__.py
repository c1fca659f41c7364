"""The Live API (BidiGenerateContent) over WebSocket: auth, setup validation, turns, audio, VAD, tools, resumption.

Connection: the upgrade is accepted on the Live paths (else HTTP 404, ``v1`` included: see ``route``); the first
client frame must be ``setup``. Sources for every rule here: ``docs/gemini-fidelity.md``.
Then credentials and setup are checked, and failures close the socket the way the service does:

====================================================================  =====  ======================================
situation                                                              code   reason
====================================================================  =====  ======================================
no API key (Gemini API)                                                1008   Method doesn't allow unregistered …
bad key, or an ``auth_tokens/…`` token on the non-Constrained path     1007   API key not valid. Please pass a …
unknown/expired ephemeral token; no new sessions after newSession…     1007   (see ``gemini_sim.tokens``)
ephemeral token used up                                                1011   Token has been used too many times
Vertex without ``Authorization: Bearer``                               1008   Request is missing required …
unknown model, or not a Live model / not on this API                   1008   models/X is not found for API …
TEXT on a native-audio model, AUDIO on transcribe-live                 1007   The requested combination of …
unknown voice, malformed JSON, first frame not ``setup``, more than    1007   Request contains an invalid argument.
one field per message, empty text part, activityStart/End while
automatic activity detection is on, a clientContent turn without a
role (3.x), tools or typed input on transcribe/translate models
realtimeInput.mediaChunks on 3.x models                                1007   realtime_input.media_chunks is …
unknown/expired resumption handle, or resuming with another model      1007   Request contains an invalid argument.
(or a transcribe-live session past its 10 minutes)
connection lifetime or model session cap reached (after ``goAway``)    1011   Deadline expired before operation …
the session's ephemeral token expires                                  1007   The ephemeral token has expired.
injected faults (``Simulator.add_fault``)                              any    as injected; ``drop`` gives 1006
====================================================================  =====  ======================================

Server messages are camelCase JSON in binary frames: ``setupComplete {sessionId}`` first, then per reply
``[inputTranscription]`` → ``modelTurn`` (24 kHz PCM chunks, each with its ``outputTranscription`` piece, or text
parts for TEXT) → ``generationComplete`` → ``turnComplete`` + ``usageMetadata`` → ``sessionResumptionUpdate``
(when ``sessionResumption`` was set up; also one right after ``setupComplete``). A barge-in sends
``interrupted`` then ``turnComplete`` (and ``toolCallCancellation`` for pending function calls).

Voice activity detection runs on the input PCM energy, in audio time (so tests may send audio as fast as they
like): speech (mean |sample| ≥ ``vad_threshold`` for ``prefixPaddingMs``, default 20 ms, 60 ms with LOW start
sensitivity) then ``silenceDurationMs`` of silence ends the turn; ``audioStreamEnd`` ends it at once (not on 3.8,
where only the silence does). Speech
while the model is answering interrupts it unless ``activityHandling`` is ``NO_INTERRUPTION`` (then the turn waits
for the reply to finish). With ``automaticActivityDetection.disabled``, ``activityStart``/``activityEnd`` bound
the turn and ``activityStart`` interrupts. The input transcription describes what was heard, e.g.
``(1.2 seconds of speech)``; like Gemini's, it streams while the speech is heard (automatic detection): ``(`` as
the speech begins, the rest (``finished``) when the turn ends, the pieces joined being the whole text.

Tools: when a request names a declared function, the model sends ``toolCall`` (ids ``function-call-…``) and waits
for the ``toolResponse``, then answers with the result. NON_BLOCKING functions (declared so, or by default on 3.8)
don't wait: the model says "Let me check that for you." and ends its turn; the result is answered as its
``scheduling`` says (WHEN_IDLE, the default: after the current reply; INTERRUPT: at once; SILENT: no reply).
3.8 Extended Thinking also reports ``interactionStatus`` IN_PROGRESS/IDLE.

Modules, one job each: ``routes`` (handshake paths and API versions), ``auth`` (keys, bearers, ephemeral tokens),
``setup`` (validating ``setup``), ``session`` (one connection's lifecycle and message loop), ``inputs`` (client
messages after setup), ``vad`` (voice activity detection), ``replies`` (model turns, audio, transcriptions, usage),
``tools`` (function calls), ``resumption`` (handles, ``goAway``, session caps, token expiry), ``errors`` (close
reasons).
"""

from __future__ import annotations

from .errors import Close
from .resumption import Snapshot
from .routes import Route, route
from .session import LiveSession

__all__ = ["Close", "LiveSession", "Route", "Snapshot", "route"]
