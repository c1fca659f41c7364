"""``manage.py live_test``: seed 002's interactive live test, through the web page's own bridge (see ``live.cli``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from live.cli.choices import ChoiceError, LiveTestChoices, Prompter, choose
from live.cli.output import Printer
from live.cli.session import EXIT_REFUSED, LiveTestFailed, Turn, live_test, read_speech

MAX_TIMEOUT_SECONDS = 600.0


class _TurnAction(argparse.Action):
    """``--text`` and ``--audio`` append to one list, so turns keep the order they were given in."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None
    ) -> None:
        turns = list(getattr(namespace, self.dest) or [])
        turns.append((self.const, values))
        setattr(namespace, self.dest, turns)


class Command(BaseCommand):
    help = (
        "Hold a live session from the terminal through the same bridge the web page uses (seed 002's interactive "
        "Live API test): choose the model, response modalities (1-3), media resolution (1-3), voice and whether to "
        "load the conversation's context, see the configuration summary, then type lines (each a turn) or speak WAV "
        "files (--audio). The reply streams as it comes, the turns are stored in the conversation, --save-audio "
        "writes what the model said. Every question has a flag; with --user and a --text or --audio nothing is "
        "asked. Exits 0 if the session worked, 1 if it failed (with its cause and fix), 2 if it was refused."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", help="Live model (default: GEMINI_LIVE_MODEL)")
        parser.add_argument("--modality", help="response modalities: 1 TEXT, 2 AUDIO, 3 TEXT + AUDIO (default 3)")
        parser.add_argument("--resolution", help="media resolution: 1 LOW, 2 MEDIUM, 3 HIGH (default 2)")
        parser.add_argument("--voice", help="'default' (Gemini's) or a prebuilt voice name such as Aoede")
        parser.add_argument("--load-context", help="load the conversation's recent messages first: y or n (default y)")
        parser.add_argument("--user", help="whose session it is: username, email address or numeric id")
        parser.add_argument("--conversation", help="an existing conversation of the user (conv_…; default: a new one)")
        parser.add_argument(
            "--text", action=_TurnAction, const="text", dest="turns", help="a typed turn (repeatable, in order)"
        )
        parser.add_argument(
            "--audio",
            action=_TurnAction,
            const="audio",
            dest="turns",
            metavar="FILE.wav",
            help="a spoken turn from a WAV file (any rate and channels; sent as 16 kHz mono in real time; repeatable)",
        )
        parser.add_argument("--save-audio", metavar="OUT.wav", help="write what the model said (24 kHz mono WAV)")
        parser.add_argument(
            "--timeout", default="60", help="seconds to wait for the session and for each answer (default 60)"
        )
        parser.add_argument(
            "--no-input", action="store_true", help="ask nothing: flags or defaults only (--user is then required)"
        )
        parser.add_argument("--json", action="store_true", help="print one JSON event per line (JSON Lines)")

    def handle(self, *args: Any, **options: Any) -> None:
        stdin: IO[str] = options.get("stdin") or sys.stdin
        printer = Printer(self._write, as_json=options["json"], verbosity=options["verbosity"])
        timeout = _timeout(options["timeout"])
        flagged: list[tuple[str, str]] = options["turns"] or []
        interactive = not options["no_input"] and not (options["user"] and flagged)
        try:
            prompter = Prompter(stdin, self._write) if interactive and not options["json"] else None
            if interactive and options["json"]:
                prompter = Prompter(stdin, lambda text: None)  # answers still come from standard input
            choices = choose(options, prompter)
            turns = [_turn(kind, value) for kind, value in flagged]
            save_audio = _save_audio(options["save_audio"], choices)
        except (ChoiceError, LiveTestFailed) as exc:
            if options["json"]:
                printer(
                    {"type": "result", "ok": False, "exitStatus": EXIT_REFUSED, "code": "REFUSED", "message": str(exc)}
                )
            raise CommandError(str(exc), returncode=EXIT_REFUSED) from None
        source = _given(turns) if turns or not interactive else _typed(stdin, self._write)
        status = asyncio.run(
            live_test(choices, turns=source, emit=printer, turn_timeout=timeout, save_audio=save_audio)
        )
        if status:
            raise CommandError("The live test failed.", returncode=status)

    def _write(self, text: str) -> None:
        self.stdout.write(text, ending="")
        self.stdout.flush()


async def _given(turns: Sequence[Turn]) -> AsyncIterator[Turn]:
    for turn in turns:
        yield turn


async def _typed(stdin: IO[str], write: Any) -> AsyncIterator[Turn]:
    """Lines typed on standard input, each a turn, until an empty line, ``/quit`` or the end of input."""
    write("\nType a message and press Enter (an empty line or /quit ends the session).\n")
    while True:
        write("👤 You: ")
        line = await asyncio.to_thread(stdin.readline)
        text = line.strip()
        if not text or text == "/quit":
            write("\n" if not line else "")
            return
        yield Turn("text", text, typed=True)


def _turn(kind: str, value: str) -> Turn:
    if kind == "audio":
        return Turn("audio", value, pcm=read_speech(value))  # read now: a bad file is refused before the session
    if not value.strip():
        raise ChoiceError("--text needs some text.")
    return Turn("text", value)


def _save_audio(value: str | None, choices: LiveTestChoices) -> Path | None:
    if not value:
        return None
    if "AUDIO" not in choices.modalities:
        raise ChoiceError("--save-audio needs AUDIO in the response modalities (--modality 2 or 3).")
    path = Path(value)
    if not path.parent.is_dir():
        raise ChoiceError(f"--save-audio {value}: there is no directory {path.parent}.")
    return path


def _timeout(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise CommandError(f"--timeout must be a number of seconds, not {value[:20]!r}.", returncode=2) from None
    if not 0 < seconds <= MAX_TIMEOUT_SECONDS:
        raise CommandError(f"--timeout must be more than 0 and at most {MAX_TIMEOUT_SECONDS:g} seconds.", returncode=2)
    return seconds
