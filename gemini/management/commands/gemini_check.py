"""``manage.py gemini_check``: diagnose the configured Gemini step by step (see gemini.diagnostics)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from gemini.diagnostics import DEFAULT_TIMEOUT_SECONDS, Report, gemini_diagnose

MODEL_NAME = re.compile(r"^(models/)?[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_TIMEOUT_SECONDS = 300.0
MARKS = {"ok": "ok  ", "warning": "warn", "failed": "FAIL", "skipped": "skip"}


class Command(BaseCommand):
    help = (
        "Diagnose the configured Gemini: which mode, endpoints, API versions (REST and Live) and authentication the "
        "SDK uses; list models and run one generateContent (REST); open a Live session, run a text turn (and with "
        "--audio a spoken one; only a spoken one for audio-input-only models). Every failure is explained with its "
        "cause and its fix. Exits 1 if a step failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", help="Live model to connect to (default: GEMINI_LIVE_MODEL)")
        parser.add_argument("--text-model", help="model for the REST generateContent (default: GEMINI_TEXT_MODEL)")
        parser.add_argument(
            "--modality",
            help="response modality to ask the Live model for: AUDIO or TEXT (default: what the model serves)",
        )
        parser.add_argument(
            "--audio", action="store_true", help="also send 1 s of speech-like tone and 1 s of silence, expect a turn"
        )
        parser.add_argument(
            "--ephemeral",
            action="store_true",
            help="also mint a one-use ephemeral token (auth_tokens, v1alpha) and open a Live session with it",
        )
        parser.add_argument(
            "--timeout",
            default=str(DEFAULT_TIMEOUT_SECONDS),
            help=f"seconds allowed for each network step (default {DEFAULT_TIMEOUT_SECONDS:g})",
        )
        parser.add_argument("--skip-rest", action="store_true", help="skip the REST steps")
        parser.add_argument("--skip-live", action="store_true", help="skip the Live steps")
        parser.add_argument("--json", action="store_true", help="print the report as JSON (for machines)")

    def handle(self, *args: Any, **options: Any) -> None:
        model = _model_option(options["model"] or settings.GEMINI_LIVE_MODEL, "--model")
        text_model = _model_option(options["text_model"] or settings.GEMINI_TEXT_MODEL, "--text-model")
        timeout = _timeout_option(options["timeout"])
        modality = (options["modality"] or "").upper() or None
        if modality not in (None, "AUDIO", "TEXT"):
            raise CommandError(f"--modality must be AUDIO or TEXT, not {options['modality']!r}.")
        if options["skip_rest"] and options["skip_live"]:
            raise CommandError("--skip-rest and --skip-live together leave nothing to check.")
        for flag in ("audio", "ephemeral"):
            if options[flag] and options["skip_live"]:
                raise CommandError(f"--{flag} needs the Live steps; drop --skip-live.")
        report = asyncio.run(
            gemini_diagnose(
                model=model,
                text_model=text_model,
                timeout_seconds=timeout,
                modality=modality,
                audio=options["audio"],
                ephemeral=options["ephemeral"],
                rest=not options["skip_rest"],
                live=not options["skip_live"],
            )
        )
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            self._print(report, options["verbosity"])
        if not report.ok:
            failed = [s.name for s in report.steps if s.status == "failed"]
            raise CommandError(f"Gemini check failed at: {', '.join(failed)}.", returncode=1)

    def _print(self, report: Report, verbosity: int) -> None:
        if verbosity >= 1 and report.connection:
            conn = report.connection
            self.stdout.write(f"Mode:        {conn.mode}")
            self.stdout.write(
                f"REST:        {conn.rest_url} (API version {conn.api_version}, {conn.api_version_source})"
            )
            self.stdout.write(
                f"Live:        {conn.live_url} (API version {conn.live_api_version}, {conn.live_api_version_source})"
            )
            self.stdout.write(f"Auth:        {conn.auth}; credential {conn.credential}")
            self.stdout.write("")
        for step in report.steps:
            failed = step.status == "failed"
            if verbosity < 1 and not failed:
                continue
            line = f"[{MARKS[step.status]}] {step.name:<14} {step.summary}"
            self.stdout.write(self.style.ERROR(line) if failed else line)
            if step.explanation:
                self.stdout.write(f"       {'cause' if failed else 'note'}: {step.explanation}")
            if step.fix:
                self.stdout.write(f"       fix: {step.fix}")
            if step.gemini_said and (failed or verbosity >= 2):
                self.stdout.write(f"       Gemini said: {step.gemini_said}")
            if verbosity >= 2:
                for key, value in step.details.items():
                    self.stdout.write(f"       {key}: {value}")
        if verbosity >= 1:
            self.stdout.write(self.style.SUCCESS("All checks passed.") if report.ok else "Some checks failed.")


def _model_option(value: str, flag: str) -> str:
    if not MODEL_NAME.match(value):
        raise CommandError(f"{flag} must be a model name such as gemini-3.1-flash-live-preview, not {value[:60]!r}.")
    return value


def _timeout_option(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise CommandError(f"--timeout must be a number of seconds, not {value[:20]!r}.") from None
    if not 0 < seconds <= MAX_TIMEOUT_SECONDS:
        raise CommandError(f"--timeout must be more than 0 and at most {MAX_TIMEOUT_SECONDS:g} seconds.")
    return seconds
