"""Browser → Gemini: the bounded queue of input and the task that sends it, in order, across connections."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from google.genai import types

from gemini.wire import GeminiWire
from live import metrics
from live.protocol import INPUT_SAMPLE_RATE, ErrorCode, ProtocolError
from live.recorder import Recorder
from live.server_messages import ServerMessage, session_error
from live.session.ledger import Item, Ledger
from live.session.link import Link
from live.session.media import pcm_seconds
from live.session.stats import Counters, ReplyClock
from live.session_plan import SessionPlan

CONTROL_HEADROOM = 64  # queue places kept for non-audio items
TRAILING_SILENCE_MS = 1200  # after a 3.8 audioStreamEnd: more than Gemini's default end-of-speech silence
SILENCE_100_MS = bytes(INPUT_SAMPLE_RATE // 10 * 2)
DROP_WARNING_EVERY_SECONDS = 2.0


class Outbound:
    """Everything for Gemini goes through one bounded queue and one sender task, so order holds across switches."""

    def __init__(
        self,
        *,
        link: Link,
        ledger: Ledger,
        plan: SessionPlan,
        public_id: str,
        counters: Counters,
        reply_clock: ReplyClock,
        recorder: Recorder,
        send: Callable[[ServerMessage], Awaitable[None]],
        tell_browser: Callable[[ServerMessage], object],
        spawn: Callable[[Awaitable[Any]], object],
    ) -> None:
        self.link = link
        self.ledger = ledger
        self.plan = plan
        self.public_id = public_id
        self.counters = counters
        self.reply_clock = reply_clock
        self.recorder = recorder
        self.send = send  # to the browser, in order with what the session sends
        self.tell_browser = tell_browser  # the same, from synchronous code (a task of the session's)
        self.spawn = spawn
        # Audio may fill the queue up to its bound; text, push-to-talk and tool results have room of their own on
        # top, so a flood of audio never costs a typed message or a turn boundary.
        self._audio_bound = settings.LIVE_INBOUND_QUEUE_ITEMS
        self.queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=self._audio_bound + CONTROL_HEADROOM)
        self._resend: collections.deque[Item] = collections.deque()  # replayed before anything newer
        self._drops_warned = 0.0

    def user_audio(self, pcm: bytes) -> None:
        """Record and forward one frame of microphone audio."""
        seconds = pcm_seconds(pcm)
        self.counters.audio_seconds_in += seconds
        metrics.audio_seconds("in", seconds)
        if self.recorder.user_audio(pcm):
            self.reply_clock.user_finished()  # the reply is timed from the end of speech
        self.enqueue(Item("audio", pcm))

    def activity(self, *, start: bool) -> None:
        """Push-to-talk: the user pressed (start) or released the talk button."""
        if self.plan.vad_enabled:
            raise ProtocolError(
                ErrorCode.INVALID_STATE,
                "Push-to-talk needs voice activity detection off: send configure_vad {enabled: false} first.",
            )
        if not start:
            self.reply_clock.user_finished()
            self.spawn(self.recorder.user_activity_end())
        self.enqueue(Item("activity_start" if start else "activity_end"))

    def enqueue(self, item: Item) -> None:
        """Queue something for Gemini; when full, audio is dropped and the browser told (BACKPRESSURE)."""
        media = item.kind in ("audio", "video")
        full = self.queue.qsize() >= self._audio_bound if media else self.queue.full()
        if not full:
            self.queue.put_nowait(item)
            self.counters.messages_in += 1
            return
        if not media:
            raise ProtocolError(
                ErrorCode.BACKPRESSURE,
                "Gemini is not keeping up (or is reconnecting); this message was not delivered. Try again shortly.",
            )
        now = time.monotonic()
        if now - self._drops_warned > DROP_WARNING_EVERY_SECONDS:
            self._drops_warned = now
            self.tell_browser(
                session_error(
                    self.public_id,
                    ErrorCode.BACKPRESSURE,
                    "Gemini is not keeping up (or is reconnecting); audio and video are being dropped. Slow down.",
                )
            )

    async def put(self, item: Item) -> None:
        """Queue an item the server itself produced (a tool result), waiting for room."""
        await self.queue.put(item)

    def replay_first(self, items: list[Item]) -> None:
        """Send ``items`` on the next connection before anything newer."""
        self._resend.extendleft(reversed(items))
        if self._resend and self.queue.empty():
            self.queue.put_nowait(Item("wake"))  # the sender may be idle, waiting for new input

    def drop_history_replay(self) -> None:
        """The new connection started afresh with the conversation reloaded, which holds the answered turns."""
        self._resend = collections.deque(item for item in self._resend if item.kind != "history")

    async def run(self) -> None:
        """Send queued input whenever the link lets input flow; what a lost connection did not take goes again."""
        held: Item | None = None  # taken from the queue, not yet sent
        while True:
            if held is None and not self._resend:
                held = await self.queue.get()
                if held.kind == "wake":
                    held = None
                    continue
            await self.link.input_flows.wait()
            # What the last connection did not consume goes first, in order, before anything newer.
            replayed = bool(self._resend)
            if replayed:
                item = self._resend.popleft()
            else:
                assert held is not None
                item, held = held, None
            wire = self.link.wire
            assert wire is not None
            try:
                await self._send(wire, item)
            except (ValueError, TypeError) as exc:  # the SDK refused it before sending: drop it, say why
                await self.send(
                    session_error(self.public_id, ErrorCode.INVALID_MESSAGE, f"Gemini cannot take this: {exc}")
                )
                continue
            except Exception:
                # The connection is going away; the session resumes it and this item goes again, in its place: after
                # whatever the old connection had not consumed (all of which was sent before it).
                if self.link.wire is wire:
                    self.link.send_failed()
                    self.ledger.send_failed(item)
                elif replayed:
                    self._resend.appendleft(item)
                else:
                    self._resend.append(item)
                continue
            self.ledger.sent(item)

    async def _send(self, wire: GeminiWire, item: Item) -> None:
        kind = item.kind
        session = wire.session
        if kind == "audio":
            await wire.send_audio(item.data)
        elif kind == "text":
            self.reply_clock.user_finished()
            self.ledger.heard(item.data)
            if self.plan.model.text_via_realtime_input:
                await session.send_realtime_input(text=item.data)
            else:
                await session.send_client_content(
                    turns=types.Content(role="user", parts=[types.Part(text=item.data)]),
                    turn_complete=item.turn_complete,
                )
        elif kind == "video":
            await session.send_realtime_input(video=types.Blob(data=item.data, mime_type=item.mime))
        elif kind in ("activity_start", "activity_end") and self.link.vad_enabled:
            pass  # push-to-talk from before a switch back to automatic detection: Gemini would refuse it (1007)
        elif kind == "audio_stream_end" and not self.link.vad_enabled:
            pass  # only with automatic detection; in push-to-talk activity_end ends the turn
        elif kind == "activity_start":
            await session.send_realtime_input(activity_start=types.ActivityStart())
        elif kind == "activity_end":
            await session.send_realtime_input(activity_end=types.ActivityEnd())
        elif kind == "audio_stream_end":
            if not self.plan.model.stream_end_ends_turn:
                # 3.8 ends the turn on trailing silence only: give it the silence a paused microphone would.
                silence_ms = int(self.plan.vad.get("silenceThreshold") or 0) + TRAILING_SILENCE_MS
                for _ in range(0, silence_ms, 100):
                    await wire.send_audio(SILENCE_100_MS)
            await session.send_realtime_input(audio_stream_end=True)
        elif kind == "tool_response":
            await session.send_tool_response(function_responses=[item.data])
        elif kind == "history":
            await session.send_client_content(turns=item.data, turn_complete=False)
