"""The voice UI's AudioWorklets, measured in Chromium with an OfflineAudioContext: the capture worklet resamples
to 16 kHz PCM16 without changing pitch or level and filters what 16 kHz cannot carry; the playback worklet plays
24 kHz PCM16 at the context's rate, gaplessly, and counts every sample.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page

pytestmark = pytest.mark.e2e

CAPTURE = """
async ([rate, freq, seconds]) => {
  const ctx = new OfflineAudioContext(1, Math.round(rate * seconds), rate);
  await ctx.audioWorklet.addModule("/static/js/audio-capture-worklet.js");
  const node = new AudioWorkletNode(ctx, "pcm16-capture", {numberOfInputs: 1, numberOfOutputs: 0,
    processorOptions: {frameMs: 40}});
  const frames = [];
  node.port.onmessage = ({data}) => frames.push(new Int16Array(data.pcm));
  const osc = new OscillatorNode(ctx, {frequency: freq});
  const gain = new GainNode(ctx, {gain: 0.5});
  osc.connect(gain).connect(node);
  osc.start();
  await ctx.startRendering();
  await new Promise((r) => setTimeout(r, 200));  // let the last port messages arrive
  const pcm = frames.flatMap((f) => Array.from(f));
  const body = pcm.slice(1600, pcm.length - 800);  // skip the filter's start-up
  let crossings = 0;
  for (let i = 1; i < body.length; i++) if ((body[i - 1] < 0) !== (body[i] < 0)) crossings++;
  const rms = Math.sqrt(body.reduce((a, v) => a + v * v, 0) / body.length) / 32768;
  return {frames: frames.length, frameSizes: [...new Set(frames.map((f) => f.length))], samples: pcm.length,
          freq: crossings / 2 / (body.length / 16000), rms};
}
"""

PLAYBACK = """
async ([rate, freq, seconds, chunkMs]) => {
  const ctx = new OfflineAudioContext(1, Math.round(rate * (seconds + 1)), rate);
  await ctx.audioWorklet.addModule("/static/js/audio-playback-worklet.js");
  const node = new AudioWorkletNode(ctx, "pcm16-playback", {numberOfInputs: 0, numberOfOutputs: 1,
    outputChannelCount: [1]});
  let stats = null;
  node.port.onmessage = ({data}) => { stats = data.stats; };
  node.connect(ctx.destination);
  const total = Math.round(24000 * seconds);
  const chunk = Math.round(24000 * chunkMs / 1000);
  for (let start = 0; start < total; start += chunk) {
    const pcm = new Int16Array(Math.min(chunk, total - start));
    for (let i = 0; i < pcm.length; i++) {
      pcm[i] = Math.round(16384 * Math.sin(2 * Math.PI * freq * (start + i) / 24000));
    }
    node.port.postMessage({type: "audio", pcm: pcm.buffer}, [pcm.buffer]);
  }
  node.port.postMessage({type: "end"});
  await new Promise((r) => setTimeout(r, 100));  // the worklet has the audio before rendering starts
  const out = (await ctx.startRendering()).getChannelData(0);
  await new Promise((r) => setTimeout(r, 200));
  let first = out.findIndex((v) => Math.abs(v) > 1e-4);
  let last = out.length - 1;
  while (last > 0 && Math.abs(out[last]) <= 1e-4) last--;
  const body = out.slice(first + 480, last - 480);
  let crossings = 0, gaps = 0, run = 0;
  for (let i = 1; i < body.length; i++) {
    if ((body[i - 1] < 0) !== (body[i] < 0)) crossings++;
    run = Math.abs(body[i]) < 1e-3 ? run + 1 : 0;
    if (run === 24) gaps++;  // half a millisecond of silence inside a continuous tone
  }
  const peak = body.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
  return {stats, playedSeconds: (last - first + 1) / rate, freq: crossings / 2 / (body.length / rate), gaps, peak};
}
"""


@pytest.mark.parametrize("rate", [48000, 44100, 16000])
def test_capture_worklet_resamples_to_16k_keeping_pitch_and_level(page: Page, server_url: str, rate: int) -> None:
    """A 440 Hz tone at the device rate comes out as 40 ms frames of 16 kHz PCM16 at 440 Hz and the same level."""
    page.goto("/login/")
    result: dict[str, Any] = page.evaluate(CAPTURE, [rate, 440, 2.0])
    assert result["frameSizes"] == [640]
    assert result["samples"] == pytest.approx(32000, abs=640)
    assert result["freq"] == pytest.approx(440, rel=0.01)
    assert result["rms"] == pytest.approx(0.5 / 2**0.5, rel=0.03)


def test_capture_worklet_filters_above_8k(page: Page, server_url: str) -> None:
    """A 12 kHz tone (beyond what 16 kHz audio can carry) is filtered out, not folded back as a 4 kHz alias."""
    page.goto("/login/")
    passed: dict[str, Any] = page.evaluate(CAPTURE, [48000, 6000, 1.0])
    blocked: dict[str, Any] = page.evaluate(CAPTURE, [48000, 12000, 1.0])
    assert passed["rms"] > 0.25
    assert blocked["rms"] < 0.02, blocked


@pytest.mark.parametrize("rate", [48000, 44100])
def test_playback_worklet_plays_24k_gaplessly_at_the_context_rate(page: Page, server_url: str, rate: int) -> None:
    """Two seconds of 24 kHz audio in 100 ms chunks play for two seconds at 300 Hz, without gaps, every sample."""
    page.goto("/login/")
    result: dict[str, Any] = page.evaluate(PLAYBACK, [rate, 300, 2.0, 100])
    assert result["stats"]["received"] == result["stats"]["played"] == 48000
    assert result["stats"]["underruns"] == 0
    assert result["playedSeconds"] == pytest.approx(2.0, abs=0.005)
    assert result["freq"] == pytest.approx(300, rel=0.01)
    assert result["gaps"] == 0
    assert result["peak"] == pytest.approx(0.5, rel=0.02)
