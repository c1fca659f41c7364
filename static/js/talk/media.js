// Audio and video for the voice UI: microphone capture and speech playback through AudioWorklets, and
// camera/screen frames as JPEG snapshots. No network here; the controller wires these to the /live socket.
import { arrayBufferToBase64 } from "./base64.js";

// The worklets are static files of their own (addModule loads them by URL), one folder up from this module.
const WORKLETS = new URL("../", import.meta.url);

/** A media problem worded for the person at the keyboard (what happened and what to do about it). */
export class MediaProblem extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

/** Turn a getUserMedia/getDisplayMedia failure into a MediaProblem a person can act on. */
export function explainMediaError(error, device = "microphone") {
  const name = error?.name ?? "";
  const Device = device[0].toUpperCase() + device.slice(1);
  if (name === "NotAllowedError" || name === "PermissionDeniedError") {
    if (device === "screen") return new MediaProblem("Screen sharing was cancelled or blocked.", "SCREEN_DENIED");
    return new MediaProblem(
      `${Device} access is blocked. Allow the ${device} for this site (the icon in the address bar or the ` +
        "browser's site settings), then press Talk again.",
      "PERMISSION_DENIED",
    );
  }
  if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError") {
    return new MediaProblem(`No ${device} was found. Connect one and try again.`, "NO_DEVICE");
  }
  if (name === "NotReadableError" || name === "TrackStartError" || name === "AbortError") {
    return new MediaProblem(
      `The ${device} could not start; another app may be using it. Close that app and try again.`,
      "DEVICE_BUSY",
    );
  }
  if (name === "SecurityError" || name === "TypeError") {
    return new MediaProblem(
      `This page cannot use the ${device}: open Apsara over https (or on localhost) and try again.`,
      "INSECURE_CONTEXT",
    );
  }
  return new MediaProblem(`The ${device} could not be used (${name || "unknown error"}).`, "MEDIA_ERROR");
}

/**
 * The audio side of a live session: one AudioContext (the device's own rate, created on the click that starts
 * the session so that mobile browsers let it play), microphone → capture worklet → `onFrame(Int16 16 kHz)`,
 * and `play(Int16 24 kHz)` → playback worklet → speakers.
 */
export class AudioEngine {
  /** `deviceId`: the microphone chosen in the settings ("" or missing: the system's default). */
  constructor({ onFrame, onLevel, onPlayback, frameMs = 40, deviceId = "" }) {
    this.deviceId = deviceId;
    this.onFrame = onFrame;
    this.onLevel = onLevel;
    this.onPlayback = onPlayback;
    this.frameMs = frameMs;
    this.context = null;
    this.stream = null;
    this.capture = null;
    this.playback = null;
    this.playing = false;
    this.playbackStats = { received: 0, played: 0, flushed: 0, dropped: 0, underruns: 0, chunks: 0 };
  }

  /** Must be called from a user gesture (click): it creates and resumes the AudioContext before awaiting. */
  async start() {
    const AudioContextClass = window.AudioContext ?? window.webkitAudioContext;
    if (!AudioContextClass || !window.AudioWorkletNode) {
      throw new MediaProblem(
        "This browser cannot process live audio. Use a recent Chrome, Edge, Firefox or Safari.",
        "UNSUPPORTED",
      );
    }
    if (!navigator.mediaDevices?.getUserMedia) {
      throw new MediaProblem(
        "This page cannot use the microphone: open Apsara over https (or on localhost) and try again.",
        "INSECURE_CONTEXT",
      );
    }
    const context = new AudioContextClass({ latencyHint: "interactive" });
    this.context = context;
    const resumed = context.resume(); // inside the gesture: unlocks playback on iOS
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: {
          echoCancellation: true,
          noiseSuppression: true,
          autoGainControl: true,
          channelCount: 1,
          // ideal, not exact: a microphone unplugged since it was chosen falls back to the default, not to an error
          ...(this.deviceId ? { deviceId: { ideal: this.deviceId } } : {}),
        },
      });
    } catch (error) {
      await this.stop();
      throw explainMediaError(error, "microphone");
    }
    // stop() while the permission prompt was open: release the microphone it has just granted.
    if (this.context !== context) {
      for (const track of stream.getTracks()) track.stop();
      throw new MediaProblem("The voice session was ended before the microphone started.", "STOPPED");
    }
    this.stream = stream;
    try {
      await resumed;
      await Promise.all([
        context.audioWorklet.addModule(new URL("audio-capture-worklet.js", WORKLETS)),
        context.audioWorklet.addModule(new URL("audio-playback-worklet.js", WORKLETS)),
      ]);
    } catch {
      const stopped = this.context !== context;
      await this.stop();
      if (stopped) throw new MediaProblem("The voice session was ended before the microphone started.", "STOPPED");
      throw new MediaProblem("The audio processor could not load. Reload the page and try again.", "WORKLET_FAILED");
    }
    if (this.context !== context) {
      throw new MediaProblem("The voice session was ended before the microphone started.", "STOPPED");
    }
    const source = this.context.createMediaStreamSource(this.stream);
    this.capture = new AudioWorkletNode(this.context, "pcm16-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 0,
      channelCount: 1,
      channelCountMode: "explicit",
      processorOptions: { frameMs: this.frameMs },
    });
    this.capture.port.onmessage = ({ data }) => {
      this.onLevel?.(data.level);
      this.onFrame?.(data.pcm);
    };
    source.connect(this.capture);
    this.playback = new AudioWorkletNode(this.context, "pcm16-playback", {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [1],
    });
    this.playback.port.onmessage = ({ data }) => {
      this.playing = data.playing;
      this.playbackStats = data.stats;
      this.onPlayback?.(data);
    };
    this.playback.connect(this.context.destination);
    this.stream.getAudioTracks()[0]?.addEventListener("ended", () => this.onLevel?.(0));
  }

  /** Mute: the track sends silence, so Gemini's voice activity detection still sees the turn end. */
  setMuted(muted) {
    for (const track of this.stream?.getAudioTracks() ?? []) track.enabled = !muted;
  }

  /** Queue model audio (PCM16LE 24 kHz, an ArrayBuffer that is handed over to the worklet). */
  play(buffer) {
    this.playback?.port.postMessage({ type: "audio", pcm: buffer }, [buffer]);
  }

  /** The model's turn is complete: play what is left without waiting for the jitter cushion. */
  endOfTurn() {
    this.playback?.port.postMessage({ type: "end" });
  }

  /** Barge-in: stop speaking now. */
  flush() {
    this.playback?.port.postMessage({ type: "flush" });
  }

  async stop() {
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.capture?.port.close();
    this.capture?.disconnect();
    this.playback?.disconnect();
    this.stream = this.capture = this.playback = null;
    this.playing = false;
    const context = this.context;
    this.context = null;
    if (context && context.state !== "closed") await context.close().catch(() => {});
  }
}

/**
 * Camera or screen snapshots for Gemini: one JPEG about every `intervalMs`, no larger than `maxSide` pixels,
 * given to `onFrame(base64)`. The preview element shows what is being shared.
 */
export class FrameSource {
  constructor({ kind, onFrame, onEnded, intervalMs = 1000, maxSide = 768, quality = 0.7 }) {
    this.kind = kind; // "camera" | "screen"
    this.onFrame = onFrame;
    this.onEnded = onEnded;
    this.intervalMs = intervalMs;
    this.maxSide = maxSide;
    this.quality = quality;
    this.stream = null;
    this.timer = null;
    this.busy = false;
    this.video = document.createElement("video");
    this.video.muted = true;
    this.video.playsInline = true;
    this.video.setAttribute("playsinline", "");
    this.canvas = document.createElement("canvas");
  }

  static supported(kind) {
    const devices = navigator.mediaDevices;
    return kind === "screen" ? typeof devices?.getDisplayMedia === "function" : Boolean(devices?.getUserMedia);
  }

  async start() {
    try {
      this.stream =
        this.kind === "screen"
          ? await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 5 }, audio: false })
          : await navigator.mediaDevices.getUserMedia({
              video: { width: { ideal: 1280 }, height: { ideal: 720 }, facingMode: "user" },
            });
    } catch (error) {
      throw explainMediaError(error, this.kind);
    }
    this.stream.getVideoTracks()[0]?.addEventListener("ended", () => {
      this.stop();
      this.onEnded?.();
    });
    this.video.srcObject = this.stream;
    await this.video.play().catch(() => {});
    this.timer = setInterval(() => this.grab(), this.intervalMs);
    this.grab();
  }

  async grab() {
    const { video, canvas } = this;
    if (this.busy || !video.videoWidth) return;
    this.busy = true;
    try {
      const scale = Math.min(1, this.maxSide / Math.max(video.videoWidth, video.videoHeight));
      canvas.width = Math.round(video.videoWidth * scale);
      canvas.height = Math.round(video.videoHeight * scale);
      canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", this.quality));
      if (blob && this.stream) this.onFrame?.(arrayBufferToBase64(await blob.arrayBuffer()));
    } finally {
      this.busy = false;
    }
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
    this.video.srcObject = null;
  }
}
