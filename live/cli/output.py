"""What ``manage.py live_test`` prints: each event as a line of JSON (``--json``), or as text for people (the seed's
configuration summary, the reply streamed as it comes, the result with its cause and fix)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Write = Callable[[str], None]  # writes exactly the text given (no newline added)


class Printer:
    """Print events as JSON Lines or as text; text streams a turn's pieces on one line."""

    def __init__(self, write: Write, *, as_json: bool, verbosity: int = 1) -> None:
        self.write = write
        self.as_json = as_json
        self.verbosity = verbosity
        self._line: str | None = None  # who the open line belongs to ("user", "model"), if a line is open

    def __call__(self, event: dict[str, Any]) -> None:
        """Print one event."""
        if self.as_json:
            self.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")
            return
        kind = event["type"]
        handler = getattr(self, f"_{kind}", None)
        if handler is not None:
            handler(event)
        elif self.verbosity >= 2:
            self._say(f"   {kind}: {json.dumps({k: v for k, v in event.items() if k != 'type'})}")

    def _open(self, owner: str, prefix: str) -> None:
        if self._line != owner:
            self._close()
            self.write(prefix)
            self._line = owner

    def _close(self) -> None:
        if self._line is not None:
            self.write("\n")
            self._line = None

    def _say(self, text: str) -> None:
        self._close()
        self.write(text + "\n")

    # -- one method per event type -----------------------------------------------------------------------------

    def _config(self, e: dict[str, Any]) -> None:
        voice = e["voice"] or "default"
        self._say(
            "\n📋 Configuration Summary:\n========================\n"
            f"🤖 Model: {e['model']}\n"
            f"📡 Response Modalities: {', '.join(e['responseModalities'])}\n"
            f"🎥 Media Resolution: {e['mediaResolution']}\n"
            f"🎤 Voice: {voice}\n"
            f"🔗 Load Context: {'Yes' if e['loadContext'] else 'No'}\n"
            f"👤 User ID: {e['user']} ({e['userId']})\n"
            f"💬 Conversation ID: {e['conversationId'] or '(a new conversation)'}"
        )
        for note in e.get("notes") or []:
            self._say(f"   note: {note}")
        self._say("")

    def _session_created(self, e: dict[str, Any]) -> None:
        self._say(f"🟢 Session {e['sessionId']} open: {e['model']}, conversation {e['conversationId']}")
        for notice in e.get("notices") or []:
            self._say(f"   notice: {notice}")

    def _context_loaded(self, e: dict[str, Any]) -> None:
        self._say(f"🔗 Context loaded: {e.get('messagesLoaded')} messages as {e.get('turnsLoaded')} turns")

    def _context_load_skipped(self, e: dict[str, Any]) -> None:
        self._say(f"🔗 No context loaded: {e.get('reason')}")

    def _user_text(self, e: dict[str, Any]) -> None:
        if not e.get("typed"):  # a typed line is on the screen already, after its prompt
            self._say(f"👤 You: {e['text']}")

    def _user_audio(self, e: dict[str, Any]) -> None:
        self._say(f"👤 You (audio): {e['file']}, {e['seconds']:.1f} s")

    def _input_transcription(self, e: dict[str, Any]) -> None:
        self._open("user", "   heard: ")
        self.write(e["text"])

    def _model_text(self, e: dict[str, Any]) -> None:
        self._open("model", "🤖 Gemini: ")
        self.write(e["text"])

    def _turn_complete(self, e: dict[str, Any]) -> None:
        if self._line != "model":
            self._open("model", "🤖 Gemini: ")
            self.write("(no text)")
        self._close()
        if e.get("audioSeconds"):
            self._say(f"   ({e['audioSeconds']:.1f} s of audio)")

    def _tool_call(self, e: dict[str, Any]) -> None:
        self._say(f"   🔧 tool call: {e['name']}({json.dumps(e.get('args') or {})})")

    def _interrupted(self, e: dict[str, Any]) -> None:
        self._say("   (interrupted)")

    def _message_saved(self, e: dict[str, Any]) -> None:
        if self.verbosity >= 2:
            self._say(f"   💾 saved {e['role']} message {e['id']}")

    def _error(self, e: dict[str, Any]) -> None:
        self._say(f"⚠️  {e['code']}: {e['message']}")

    def _session_reconnecting(self, e: dict[str, Any]) -> None:
        self._say(f"   reconnecting to Gemini ({e.get('reason')})…")

    def _session_resumed(self, e: dict[str, Any]) -> None:
        self._say("   resumed")

    def _session_ended(self, e: dict[str, Any]) -> None:
        self._say(f"🔴 Session ended ({e.get('reason')})")

    def _result(self, e: dict[str, Any]) -> None:
        if e["ok"]:
            stored = e.get("stored") or []
            self._say(
                f"✅ The session worked: {e['turns']} turn(s) answered; {len(stored)} message(s) stored in "
                f"conversation {e['conversationId']}."
            )
            if e.get("savedAudio"):
                self._say(f"   Model audio ({e['audioSeconds']:.1f} s, 24 kHz) saved to {e['savedAudio']}.")
            return
        self._say(f"❌ The live test failed: {e['message']}")
        if e.get("explanation"):
            self._say(f"   cause: {e['explanation']}")
        if e.get("fix"):
            self._say(f"   fix: {e['fix']}")
        if e.get("geminiSaid") and self.verbosity >= 1:
            self._say(f"   Gemini said: {e['geminiSaid']}")
