// The voice ("Talk") UI of the chat view: a live session with Gemini over the /live WebSocket
// (docs/live-protocol.md). The microphone streams 16 kHz PCM16 as binary frames; Gemini's 24 kHz speech comes
// back as binary frames and plays through a jitter buffer; transcripts show as they arrive, and each turn joins
// the message list (server-rendered, with its recording) when the server says it was saved.
import { pendingMessage } from "./message-element.js";
import { AudioEngine, FrameSource, MediaProblem } from "./talk-media.js";

const slot = document.getElementById("talk-slot");
const chat = document.getElementById("chat");
const list = document.getElementById("messages");

const RECONNECT_DELAYS_MS = [300, 1000, 2000, 4000, 8000, 8000];
const MAX_QUEUED_FRAMES = 75; // ~3 s of microphone audio kept while the socket is not ready
const END_TIMEOUT_MS = 5000;
const MAX_BUFFERED_BYTES = 256 * 1024; // ~8 s of 16 kHz PCM16 waiting in the socket: stop adding to it
const RELEASE_TAIL_MS = 300; // push-to-talk: keep sending this long after release so the last word is not cut

const ICONS = {
  mic: '<svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true"><path d="M12 15a3.5 3.5 0 0 0 3.5-3.5v-6a3.5 3.5 0 1 0-7 0v6A3.5 3.5 0 0 0 12 15Zm6.5-3.5a.9.9 0 1 0-1.8 0 4.7 4.7 0 0 1-9.4 0 .9.9 0 1 0-1.8 0 6.5 6.5 0 0 0 5.6 6.43V20H8.8a.9.9 0 1 0 0 1.8h6.4a.9.9 0 1 0 0-1.8h-2.3v-2.07a6.5 6.5 0 0 0 5.6-6.43Z"/></svg>',
  micOff:
    '<svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true"><path d="M3.3 2.7a.9.9 0 0 0-1.27 1.27l18 18a.9.9 0 0 0 1.27-1.27l-4.2-4.2A6.47 6.47 0 0 0 18.5 11.5a.9.9 0 1 0-1.8 0c0 1-.3 1.93-.84 2.7l-1.3-1.3c.3-.4.44-.9.44-1.4v-6a3.5 3.5 0 0 0-6.93-.7ZM12 15c.2 0 .4-.02.6-.05L8.5 10.86v.64A3.5 3.5 0 0 0 12 15Zm-5.6-4.4a.9.9 0 0 0-1.1.9 6.5 6.5 0 0 0 5.6 6.43V20H8.8a.9.9 0 1 0 0 1.8h6.4a.9.9 0 1 0 0-1.8h-2.3v-2.07c.67-.09 1.3-.28 1.9-.55l-1.4-1.4a4.7 4.7 0 0 1-6-4.48.9.9 0 0 0-.9-.9Z"/></svg>',
  camera:
    '<svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true"><path d="M4 6.5A2.5 2.5 0 0 0 1.5 9v7A2.5 2.5 0 0 0 4 18.5h10a2.5 2.5 0 0 0 2.5-2.5v-1.6l4.4 2.9a.9.9 0 0 0 1.4-.75V7.45a.9.9 0 0 0-1.4-.75l-4.4 2.9V9A2.5 2.5 0 0 0 14 6.5Z"/></svg>',
  screen:
    '<svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true"><path d="M4 3.5A2.5 2.5 0 0 0 1.5 6v9A2.5 2.5 0 0 0 4 17.5h7.1v1.7H8a.9.9 0 1 0 0 1.8h8a.9.9 0 1 0 0-1.8h-3.1v-1.7H20a2.5 2.5 0 0 0 2.5-2.5V6A2.5 2.5 0 0 0 20 3.5Zm0 1.8h16c.39 0 .7.31.7.7v9a.7.7 0 0 1-.7.7H4a.7.7 0 0 1-.7-.7V6c0-.39.31-.7.7-.7Z"/></svg>',
  hand: '<svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true"><path d="M12 2.5a1.5 1.5 0 0 0-1.5 1.5v7h-.9V5.5a1.5 1.5 0 0 0-3 0V14l-1.6-1.9a1.6 1.6 0 0 0-2.5 2l4 5.4A5 5 0 0 0 10.5 21.5h3.3a5.7 5.7 0 0 0 5.7-5.7V7.5a1.5 1.5 0 0 0-3 0V11h-.9V5a1.5 1.5 0 0 0-3 0v6h-.1V4A1.5 1.5 0 0 0 12 2.5Z"/></svg>',
  end: '<svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true"><rect x="5" y="5" width="14" height="14" rx="2.5"/></svg>',
  close:
    '<svg width="16" height="16" viewBox="0 0 20 20" aria-hidden="true"><path d="M5 5l10 10M15 5 5 15" stroke="currentColor" stroke-width="2" stroke-linecap="round" fill="none"/></svg>',
};

const STATUS_TEXT = {
  connecting: "Connecting…",
  listening: "Listening — speak any time",
  holdToTalk: "Hold the talk button while you speak",
  holding: "Talking — release to send",
  muted: "Muted — Gemini cannot hear you",
  speaking: "Gemini is speaking — talk to interrupt",
  reconnecting: "Connection lost — reconnecting…",
  ending: "Ending…",
  ended: "Voice session ended.",
};

const ENDED_TEXT = {
  client: "Voice session ended.",
  admin: "An administrator ended this voice session.",
  upstream: "Gemini ended the voice session. Press Talk to start a new one.",
  backpressure: "The voice session was closed because audio arrived faster than real time.",
};

function button({ id, label, icon, text, className = "btn", pressed }) {
  const el = document.createElement("button");
  el.type = "button"; // inside the composer form: never submit it
  el.className = className;
  if (id) el.id = id;
  el.setAttribute("aria-label", label);
  el.title = label;
  el.innerHTML = ICONS[icon]; // static markup from this file
  if (text) {
    const span = document.createElement("span");
    span.className = "talk-btn-text";
    span.textContent = text;
    el.append(span);
  }
  if (pressed !== undefined) el.setAttribute("aria-pressed", String(pressed));
  return el;
}

function websocketUrl() {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/live`;
}

const withId = (template, id) => template.replace("CONVERSATION_ID", encodeURIComponent(id));

class TalkController {
  constructor() {
    this.state = "idle";
    this.socket = null;
    this.engine = null;
    this.sessionId = null;
    this.conversationId = slot.dataset.conversationId || null;
    this.muted = false;
    this.pushToTalk = false; // voice activity detection off: the person holds a button while speaking
    this.holding = false;
    this.tailUntil = 0;
    this.modelTurn = false; // the model is producing a turn (audio or transcript arriving)
    this.endRequested = false;
    this.reconnectAttempt = 0;
    this.reconnectTimer = null;
    this.endTimer = null;
    this.queuedFrames = [];
    this.frameSource = null;
    this.pending = { user: [], model: [] }; // live transcript bubbles waiting for message_saved
    this.refreshing = null;
    this.refreshAgain = false;
    this.stats = {
      framesCaptured: 0,
      framesSent: 0,
      samplesSent: 0, // 16 kHz microphone samples sent
      framesDropped: 0,
      audioFramesReceived: 0,
      samplesReceived: 0, // 24 kHz model samples received from the server
      videoFramesSent: 0,
      messagesSaved: 0,
      reconnects: 0,
      events: [],
    };
    this.build();
  }

  // -- the page ----------------------------------------------------------------------------------------------------

  build() {
    this.talkButton = button({
      id: "talk-start",
      label: "Talk with Gemini by voice",
      icon: "mic",
      text: "Talk",
      className: "btn talk-btn",
    });
    this.talkButton.addEventListener("click", () => this.start());
    slot.append(this.talkButton);

    const panel = document.createElement("section");
    panel.className = "talk-panel";
    panel.id = "talk-panel";
    panel.hidden = true;
    panel.setAttribute("aria-label", "Voice session");
    this.panel = panel;

    const status = document.createElement("div");
    status.className = "talk-status";
    status.setAttribute("role", "status");
    status.setAttribute("aria-live", "polite");
    const dot = document.createElement("span");
    dot.className = "talk-dot";
    dot.setAttribute("aria-hidden", "true");
    this.statusText = document.createElement("span");
    this.statusText.className = "talk-status-text";
    this.statusText.id = "talk-status";
    status.append(dot, this.statusText);

    this.meter = document.createElement("span");
    this.meter.className = "talk-meter";
    this.meter.setAttribute("aria-hidden", "true");
    this.meter.append(document.createElement("span"));

    this.previews = document.createElement("div");
    this.previews.className = "talk-previews";
    this.previews.hidden = true;

    this.info = document.createElement("p");
    this.info.className = "talk-info";
    this.info.id = "talk-info";
    this.info.hidden = true;

    this.notice = document.createElement("p");
    this.notice.className = "talk-notice";
    this.notice.id = "talk-notice";
    this.notice.setAttribute("role", "alert");
    this.notice.hidden = true;

    const controls = document.createElement("div");
    controls.className = "talk-controls";
    this.controls = controls;
    this.muteButton = button({
      id: "talk-mute",
      label: "Mute microphone",
      icon: "mic",
      text: "Mute",
      pressed: false,
      className: "btn talk-ctl",
    });
    this.muteButton.addEventListener("click", () => this.setMuted(!this.muted));
    this.cameraButton = button({
      id: "talk-camera",
      label: "Share camera",
      icon: "camera",
      text: "Camera",
      pressed: false,
      className: "btn talk-ctl",
    });
    this.cameraButton.addEventListener("click", () => this.toggleFrames("camera"));
    this.screenButton = button({
      id: "talk-screen",
      label: "Share screen",
      icon: "screen",
      text: "Screen",
      pressed: false,
      className: "btn talk-ctl",
    });
    this.screenButton.addEventListener("click", () => this.toggleFrames("screen"));
    // Push-to-talk, for speakerphones whose echo makes Gemini interrupt itself.
    this.modeButton = button({
      id: "talk-mode",
      label: "Hold to talk instead of automatic turns",
      icon: "hand",
      text: "Hold mode",
      pressed: false,
      className: "btn talk-ctl",
    });
    this.modeButton.addEventListener("click", () => this.setPushToTalk(!this.pushToTalk));
    this.holdButton = button({
      id: "talk-hold",
      label: "Hold to talk",
      icon: "mic",
      text: "Hold to talk",
      className: "btn btn-primary talk-hold",
    });
    this.holdButton.hidden = true;
    this.holdButton.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      this.holdButton.setPointerCapture?.(event.pointerId);
      this.beginActivity();
    });
    for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
      this.holdButton.addEventListener(type, () => this.finishActivity());
    }
    this.holdButton.addEventListener("contextmenu", (event) => event.preventDefault()); // long-press on phones
    this.holdButton.addEventListener("keydown", (event) => {
      if ((event.key === " " || event.key === "Enter") && !event.repeat) {
        event.preventDefault();
        this.beginActivity();
      }
    });
    this.holdButton.addEventListener("keyup", (event) => {
      if (event.key === " " || event.key === "Enter") {
        event.preventDefault();
        this.finishActivity();
      }
    });
    this.cameraButton.hidden = !FrameSource.supported("camera");
    this.screenButton.hidden = !FrameSource.supported("screen");
    this.endButton = button({
      id: "talk-end",
      label: "End voice session",
      icon: "end",
      text: "End",
      className: "btn btn-danger talk-ctl",
    });
    this.endButton.addEventListener("click", () => this.end());
    this.dismissButton = button({
      id: "talk-dismiss",
      label: "Close",
      icon: "close",
      className: "btn btn-quiet btn-icon talk-dismiss",
    });
    this.dismissButton.addEventListener("click", () => this.dismiss());
    controls.append(
      this.holdButton,
      this.muteButton,
      this.modeButton,
      this.cameraButton,
      this.screenButton,
      this.endButton,
    );

    const head = document.createElement("div");
    head.className = "talk-head";
    head.append(status, this.meter, this.dismissButton);
    panel.append(head, this.info, this.notice, this.previews, controls);
    const form = document.getElementById("composer");
    form.parentElement.insertBefore(panel, form);

    // Typed text during a live session goes to Gemini through the session (chat.js asks first).
    chat.addEventListener("chat:submit", (event) => {
      if (this.active && this.socket?.readyState === WebSocket.OPEN) {
        event.preventDefault();
        this.sendText(event.detail.text);
      }
    });
    window.addEventListener("pagehide", () => {
      if (this.sessionId && this.socket?.readyState === WebSocket.OPEN) this.send({ type: "end_session" });
    });
  }

  get active() {
    return ["connecting", "listening", "speaking", "reconnecting"].includes(this.state);
  }

  setState(state, message = "") {
    this.state = state;
    slot.dataset.state = state;
    this.panel.dataset.state = state;
    chat.dataset.talk = state;
    this.stats.events.push(state);
    const live = this.active || state === "ending";
    this.panel.hidden = state === "idle";
    this.talkButton.hidden = live;
    this.talkButton.disabled = live;
    for (const el of [this.muteButton, this.modeButton, this.cameraButton, this.screenButton, this.endButton]) {
      el.disabled = !live || state === "ending";
    }
    this.controls.hidden = !live;
    this.dismissButton.hidden = live;
    this.meter.hidden = !live;
    this.holdButton.hidden = !this.pushToTalk || !live;
    this.holdButton.disabled = !["listening", "speaking"].includes(state);
    let text = message || STATUS_TEXT[state] || "";
    if (state === "listening" && this.pushToTalk) text = this.holding ? STATUS_TEXT.holding : STATUS_TEXT.holdToTalk;
    if (state === "listening" && this.muted) text = STATUS_TEXT.muted;
    this.statusText.textContent = text;
  }

  refreshSpeaking() {
    if (this.state !== "listening" && this.state !== "speaking") return;
    const speaking = this.modelTurn || Boolean(this.engine?.playing);
    this.setState(speaking ? "speaking" : "listening");
  }

  showNotice(message) {
    this.notice.textContent = message;
    this.notice.hidden = !message;
  }

  showInfo(message) {
    this.info.textContent = message;
    this.info.hidden = !message;
  }

  dismiss() {
    this.showNotice("");
    this.setState("idle");
    this.talkButton.focus();
  }

  // -- starting and ending -------------------------------------------------------------------------------------------

  async start() {
    if (this.active) return;
    this.showNotice("");
    this.showInfo("");
    this.conversationId = slot.dataset.conversationId || null; // the typed chat may have created one since
    this.endRequested = false;
    this.sessionId = null;
    this.reconnectAttempt = 0;
    this.queuedFrames = [];
    this.muted = false;
    this.updateMuteButton();
    this.pushToTalk = this.holding = false;
    this.updateModeButton();
    this.setState("connecting");
    this.engine = new AudioEngine({
      onFrame: (pcm) => this.onMicFrame(pcm),
      onLevel: (level) => this.meter.style.setProperty("--level", Math.min(1, level * 4).toFixed(3)),
      onPlayback: () => this.refreshSpeaking(),
    });
    try {
      await this.engine.start(); // the microphone first: no session is opened that could not hear anyone
    } catch (error) {
      this.fail(error instanceof MediaProblem ? error.message : "The microphone could not be started.");
      return;
    }
    if (this.state !== "connecting") return; // ended meanwhile
    this.endButton.focus();
    this.connect();
  }

  end() {
    if (!this.active) return;
    this.endRequested = true;
    this.engine?.flush();
    this.stopFrames();
    if (this.sessionId && this.socket?.readyState === WebSocket.OPEN) {
      this.setState("ending");
      this.send({ type: "end_session", sessionId: this.sessionId });
      this.endTimer = setTimeout(() => this.finish("ended", ENDED_TEXT.client), END_TIMEOUT_MS);
    } else {
      this.finish("ended", ENDED_TEXT.client);
    }
  }

  /** Tear everything down and show the final state. */
  finish(state, message) {
    clearTimeout(this.endTimer);
    clearTimeout(this.reconnectTimer);
    this.endTimer = this.reconnectTimer = null;
    clearTimeout(this.tailTimer);
    this.holding = false;
    this.holdButton.classList.remove("holding");
    this.stopFrames();
    const socket = this.socket;
    this.socket = null;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000);
    const engine = this.engine;
    this.engine = null;
    if (engine) this.lastPlaybackStats = engine.playbackStats;
    engine?.stop();
    this.showNotice("");
    this.showInfo("");
    this.modelTurn = false;
    this.sessionId = null;
    this.queuedFrames = [];
    for (const role of ["user", "model"]) {
      for (const bubble of this.pending[role]) bubble.classList.add("talk-orphan");
    }
    // The last turns are saved as the session ends; their message_saved may not have made it before the socket
    // closed, so read the list once more and let the saved messages replace what is left of the transcripts.
    if (this.conversationId && state !== "error") setTimeout(() => this.settleList(), 400);
    this.meter.style.setProperty("--level", "0");
    this.setState(state, message);
    if (document.activeElement === document.body || this.panel.contains(document.activeElement)) {
      this.talkButton.focus();
    }
  }

  fail(message) {
    this.finish("error", message);
  }

  // -- the socket ----------------------------------------------------------------------------------------------------

  connect() {
    const socket = new WebSocket(websocketUrl());
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      if (this.sessionId) {
        this.send({ type: "resume_session", data: { sessionId: this.sessionId, binaryAudio: true } });
      } else {
        const data = { loadConversationContext: true, config: { responseModalities: ["AUDIO"], binaryAudio: true } };
        if (this.conversationId) data.conversationId = this.conversationId;
        this.send({ type: "create_session", data });
      }
    };
    socket.onmessage = (event) => {
      if (socket !== this.socket) return;
      if (typeof event.data === "string") this.onJson(event.data);
      else this.onAudio(event.data);
    };
    socket.onclose = (event) => {
      if (socket !== this.socket) return; // an old socket we already replaced or closed
      this.onClose(event, opened);
    };
  }

  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  onClose(event, opened) {
    this.socket = null;
    if (event.code === 4401) {
      this.fail("You are no longer logged in. Reload the page, log in, and press Talk again.");
    } else if (event.code === 4408) {
      this.fail(ENDED_TEXT.backpressure);
    } else if (this.endRequested || !this.active) {
      if (this.state === "ending") this.finish("ended", ENDED_TEXT.client);
    } else if (!this.sessionId && !opened) {
      this.fail("Could not reach the voice server. Check your connection and press Talk again.");
    } else if (!this.sessionId) {
      this.fail("The connection closed before the voice session started. Press Talk to try again.");
    } else {
      this.scheduleReconnect();
    }
  }

  scheduleReconnect() {
    if (this.reconnectAttempt >= RECONNECT_DELAYS_MS.length) {
      this.fail("The connection to the voice server was lost and could not be restored. Press Talk to start again.");
      return;
    }
    this.engine?.flush(); // what was playing belongs to a turn that may not continue
    this.modelTurn = false;
    this.setState("reconnecting");
    const delay = RECONNECT_DELAYS_MS[this.reconnectAttempt++];
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.state === "reconnecting") this.connect();
    }, delay);
  }

  /** For the browser tests: drop the socket as a network failure would (the page reconnects and resumes). */
  dropConnection() {
    this.socket?.close(4000, "test: simulated drop");
  }

  // -- microphone → server -----------------------------------------------------------------------------------------

  onMicFrame(pcm) {
    this.stats.framesCaptured += 1;
    if (this.endRequested) return; // audio after end_session would only be refused (NO_ACTIVE_SESSION)
    const ready = this.sessionId && this.socket?.readyState === WebSocket.OPEN && this.state !== "reconnecting";
    if (!ready) {
      // Keep the start of what was said while the session opens or the socket comes back (bounded).
      if (this.state === "connecting" || this.state === "reconnecting") {
        this.queuedFrames.push(pcm);
        if (this.queuedFrames.length > MAX_QUEUED_FRAMES) {
          this.queuedFrames.shift();
          this.stats.framesDropped += 1;
        }
      }
      return;
    }
    if (this.pushToTalk && !this.holding && performance.now() > this.tailUntil) return; // not talking
    this.flushQueuedFrames();
    this.sendFrame(pcm);
  }

  sendFrame(pcm) {
    if (this.socket.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.stats.framesDropped += 1; // the network is not keeping up: old audio is worth less than new
      return;
    }
    this.socket.send(pcm);
    this.stats.framesSent += 1;
    this.stats.samplesSent += pcm.byteLength / 2;
  }

  flushQueuedFrames() {
    const frames = this.queuedFrames;
    this.queuedFrames = [];
    for (const pcm of frames) this.sendFrame(pcm);
  }

  /** Switch between automatic turns (Gemini's voice activity detection) and holding a button to talk. */
  setPushToTalk(on) {
    if (!this.sessionId) return;
    this.send({ type: "configure_vad", sessionId: this.sessionId, data: { enabled: !on } });
    this.modeButton.disabled = true; // until vad_configured says it took effect
  }

  updateModeButton() {
    this.modeButton.setAttribute("aria-pressed", String(this.pushToTalk));
    const label = this.pushToTalk ? "Use automatic turns instead of holding to talk" : "Hold to talk instead of automatic turns";
    this.modeButton.setAttribute("aria-label", label);
    this.modeButton.title = label;
  }

  onVadConfigured(vad) {
    this.pushToTalk = vad?.enabled === false;
    this.holding = false;
    this.modeButton.disabled = false;
    this.updateModeButton();
    this.setState(this.state);
    if (this.pushToTalk) this.holdButton.focus();
  }

  beginActivity() {
    if (!this.pushToTalk || this.holding || !this.sessionId) return;
    if (this.state !== "listening" && this.state !== "speaking") return;
    this.holding = true;
    clearTimeout(this.tailTimer);
    this.engine?.flush(); // the person is talking over the model: stop it now, not one round trip later
    this.modelTurn = false;
    this.send({ type: "activity_start", sessionId: this.sessionId });
    this.holdButton.classList.add("holding");
    this.setState("listening");
  }

  finishActivity() {
    if (!this.holding) return;
    this.holding = false;
    this.holdButton.classList.remove("holding");
    this.tailUntil = performance.now() + RELEASE_TAIL_MS;
    this.tailTimer = setTimeout(() => this.send({ type: "activity_end", sessionId: this.sessionId }), RELEASE_TAIL_MS);
    this.setState(this.state);
  }

  setMuted(muted) {
    this.muted = muted;
    this.engine?.setMuted(muted);
    this.updateMuteButton();
    if (this.state === "listening") this.setState("listening");
  }

  updateMuteButton() {
    const label = this.muted ? "Unmute microphone" : "Mute microphone";
    this.muteButton.setAttribute("aria-pressed", String(this.muted));
    this.muteButton.setAttribute("aria-label", label);
    this.muteButton.title = label;
    this.muteButton.querySelector("svg").outerHTML = this.muted ? ICONS.micOff : ICONS.mic;
    this.muteButton.querySelector(".talk-btn-text").textContent = this.muted ? "Unmute" : "Mute";
  }

  sendText(text) {
    this.send({ type: "send_message", sessionId: this.sessionId, data: { text, turnComplete: true } });
    this.pendingBubble("user", { typed: true }).content.textContent = text;
    this.scrollToEnd(true);
  }

  async toggleFrames(kind) {
    const current = this.frameSource?.kind;
    this.stopFrames();
    if (current === kind) return;
    const source = new FrameSource({
      kind,
      maxSide: kind === "screen" ? 1024 : 768,
      onFrame: (jpeg) => {
        if (!this.sessionId || this.state === "reconnecting") return;
        const key = kind === "screen" ? "screenData" : "videoFrame";
        this.send({ type: "send_message", sessionId: this.sessionId, data: { [key]: jpeg, imageMimeType: "image/jpeg" } });
        this.stats.videoFramesSent += 1;
      },
      onEnded: () => this.stopFrames(),
    });
    this.frameSource = source;
    this.updateFrameButtons();
    try {
      await source.start();
    } catch (error) {
      if (this.frameSource === source) this.stopFrames();
      this.showNotice(error instanceof MediaProblem ? error.message : `The ${kind} could not be shared.`);
      return;
    }
    if (this.frameSource !== source || !this.active) {
      source.stop();
      return;
    }
    source.video.className = "talk-preview";
    source.video.setAttribute("aria-label", kind === "screen" ? "Your shared screen" : "Your camera");
    this.previews.replaceChildren(source.video);
    this.previews.hidden = false;
  }

  stopFrames() {
    this.frameSource?.stop();
    this.frameSource = null;
    this.previews.replaceChildren();
    this.previews.hidden = true;
    this.updateFrameButtons();
  }

  updateFrameButtons() {
    const kind = this.frameSource?.kind;
    for (const [button, name, label] of [
      [this.cameraButton, "camera", "camera"],
      [this.screenButton, "screen", "screen"],
    ]) {
      const on = kind === name;
      button.setAttribute("aria-pressed", String(on));
      const text = on ? `Stop sharing ${label}` : `Share ${label}`;
      button.setAttribute("aria-label", text);
      button.title = text;
    }
  }

  // -- server → page -----------------------------------------------------------------------------------------------

  onAudio(buffer) {
    if (!buffer.byteLength || !this.engine) return;
    this.stats.audioFramesReceived += 1;
    this.stats.samplesReceived += buffer.byteLength / 2;
    this.engine.play(buffer);
    if (!this.modelTurn) {
      this.modelTurn = true;
      this.appendTranscript("model", ""); // a bubble for the answer at once; its transcript fills it in
      this.refreshSpeaking();
    }
  }

  onJson(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    switch (message.type) {
      case "session_created":
        this.onSessionOpen(message);
        this.adoptConversation(message.conversationId);
        break;
      case "session_resumed":
        if (this.state === "reconnecting") this.stats.reconnects += 1;
        this.onSessionOpen(message);
        if (message.config?.vad) this.onVadConfigured(message.config.vad); // the server's setting is the truth
        break;
      case "session_reconnecting":
        this.engine?.flush();
        this.modelTurn = false;
        this.setState("reconnecting", "Reconnecting to Gemini…");
        break;
      case "session_message":
        this.onSessionMessage(message.data ?? {});
        break;
      case "message_saved":
        this.onMessageSaved(message);
        break;
      case "session_ended":
        this.onSessionEnded(message);
        break;
      case "session_error":
        this.onSessionError(message.error ?? {});
        break;
      case "vad_configured":
        this.onVadConfigured(message.vad);
        break;
      case "context_loaded": {
        const count = message.messagesLoaded;
        this.showInfo(`Gemini has the last ${count} message${count === 1 ? "" : "s"} of this conversation.`);
        break;
      }
      case "audio_error":
        this.showNotice(message.error?.message ?? "The server could not use the microphone audio.");
        break;
      default:
        break; // context_load_skipped, pong: nothing to show
    }
  }

  onSessionOpen(message) {
    this.sessionId = message.sessionId;
    this.reconnectAttempt = 0;
    this.showNotice("");
    this.setState("listening");
    this.flushQueuedFrames();
  }

  onSessionMessage(data) {
    const content = data.serverContent;
    if (!content) return;
    if (content.interrupted) {
      // Barge-in: the person spoke over the model; silence it at once.
      this.engine?.flush();
      this.modelTurn = false;
      const bubble = this.pending.model.at(-1);
      bubble?.classList.add("talk-interrupted");
    }
    const heard = content.inputTranscription?.text;
    if (heard) this.appendTranscript("user", heard);
    const said = content.outputTranscription?.text;
    if (said) {
      this.modelTurn = true;
      this.appendTranscript("model", said);
    }
    for (const part of content.modelTurn?.parts ?? []) {
      if (part.inlineData?.data && part.inlineData.mimeType?.startsWith("audio/pcm")) {
        const bytes = Uint8Array.from(atob(part.inlineData.data), (c) => c.charCodeAt(0));
        this.onAudio(bytes.buffer);
      } else if (typeof part.text === "string" && !said) {
        this.modelTurn = true;
        this.appendTranscript("model", part.text);
      }
    }
    if (content.turnComplete || content.interrupted) {
      this.engine?.endOfTurn();
      this.modelTurn = false;
      for (const bubble of this.pending.model) bubble.classList.add("talk-done");
      for (const bubble of this.pending.user) bubble.classList.add("talk-done");
    }
    this.refreshSpeaking();
  }

  onSessionEnded(message) {
    const reason = message.reason;
    if (reason === "error" && this.state === "error") return;
    if (reason === "error") {
      this.finish("error", this.lastError || "The voice session ended because of an error. Press Talk to try again.");
      return;
    }
    this.finish("ended", ENDED_TEXT[reason] ?? ENDED_TEXT.client);
  }

  onSessionError(error) {
    const code = error.code ?? "";
    const message = error.message || "The voice session failed.";
    this.lastError = message;
    if (code === "SESSION_IN_USE" && this.sessionId) {
      // The server has not noticed the old socket is gone yet: try again shortly.
      this.socket?.close(1000);
      return;
    }
    if (!this.sessionId || code === "SESSION_NOT_FOUND" || code === "RESUME_FAILED") {
      // Nothing was opened (or it cannot be resumed): this is final.
      const socket = this.socket;
      this.fail(message);
      socket?.close(1000);
      return;
    }
    // A problem within a running session (e.g. BACKPRESSURE): show it; session_ended follows if it is fatal.
    this.showNotice(message);
  }

  // -- transcripts and saved messages --------------------------------------------------------------------------------

  pendingBubble(role, { typed = false } = {}) {
    const { article, meta, content } = pendingMessage(role, {
      extraClasses: "msg-live talk-pending",
      contentClasses: "talk-transcript",
    });
    article.dataset.pendingRole = role;
    if (!typed) {
      const badge = document.createElement("span");
      badge.className = "badge badge-live";
      badge.textContent = "voice";
      meta.append(badge);
    }
    list.querySelector("[data-empty]")?.remove();
    // What the person said goes before the model's answer even when its transcript arrives late.
    const before = role === "user" ? this.pending.model.find((b) => !b.classList.contains("talk-done")) : null;
    if (before) before.before(article);
    else list.append(article);
    this.pending[role].push(article);
    article.content = content;
    return article;
  }

  appendTranscript(role, text) {
    let bubble = this.pending[role].at(-1);
    if (!bubble || bubble.classList.contains("talk-done") || bubble.classList.contains("talk-orphan")) {
      bubble = this.pendingBubble(role);
    }
    bubble.content.textContent += text;
    this.scrollToEnd();
  }

  onMessageSaved(message) {
    if (!message.conversationId || message.conversationId !== this.conversationId) return; // another chat's
    this.stats.messagesSaved += 1;
    this.savedQueue = this.savedQueue ?? [];
    this.savedQueue.push(message.message ?? {});
    this.refreshList();
  }

  /** Bring in the server's rendering of newly saved messages (coalescing bursts into one request). */
  async refreshList() {
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = true;
    try {
      do {
        this.refreshAgain = false;
        const saved = this.savedQueue ?? [];
        this.savedQueue = [];
        const ok = await this.mergeServerList();
        if (!ok) for (const summary of saved) this.insertSummary(summary);
        for (const summary of saved) this.retirePending(summary);
      } while (this.refreshAgain);
    } finally {
      this.refreshing = false;
    }
  }

  async mergeServerList() {
    const template = chat.dataset.messagesUrlTemplate;
    if (!template || !this.conversationId) return false;
    let html;
    try {
      const response = await fetch(withId(template, this.conversationId), {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      });
      if (!response.ok) return false;
      html = await response.text();
    } catch {
      return false;
    }
    const holder = document.createElement("template");
    holder.innerHTML = html; // server-rendered, escaped and sanitised
    let previous = null;
    for (const article of holder.content.querySelectorAll("article[data-message-id]")) {
      const existing = list.querySelector(`[data-message-id="${CSS.escape(article.dataset.messageId)}"]`);
      if (existing) {
        previous = existing;
        continue;
      }
      article.classList.add("talk-new");
      if (previous) previous.after(article);
      else list.prepend(article);
      previous = article;
    }
    list.querySelector("[data-empty]")?.remove();
    this.scrollToEnd();
    return true;
  }

  async settleList() {
    if (this.active || !(await this.mergeServerList())) return;
    for (const role of ["user", "model"]) {
      this.pending[role] = this.pending[role].filter((bubble) => {
        if (!bubble.classList.contains("talk-orphan")) return true;
        bubble.remove();
        return false;
      });
    }
  }

  /** Without the server's rendering (offline?), show a saved message from its summary. */
  insertSummary(summary) {
    if (!summary.id || list.querySelector(`[data-message-id="${CSS.escape(summary.id)}"]`)) return;
    const article = document.createElement("article");
    article.className = `msg msg-${summary.role} msg-live`;
    article.id = summary.id;
    article.dataset.messageId = summary.id;
    article.dataset.role = summary.role;
    const body = document.createElement("div");
    body.className = "msg-body";
    if (summary.hasAudio) {
      const audio = document.createElement("audio");
      audio.className = "msg-audio";
      audio.controls = true;
      audio.preload = "none";
      audio.src = `/api/files/${encodeURIComponent(summary.id)}/download`;
      body.append(audio);
    }
    const text = document.createElement("div");
    text.textContent = summary.text ?? "";
    body.append(text);
    article.append(body);
    const firstPending = list.querySelector(".talk-pending");
    if (firstPending) firstPending.before(article);
    else list.append(article);
  }

  /** The saved message replaces the live transcript bubble it came from. */
  retirePending(summary) {
    const role = summary.role;
    if (role !== "user" && role !== "model") return;
    if (!list.querySelector(`[data-message-id="${CSS.escape(summary.id ?? "")}"]`)) return;
    const bubble = this.pending[role].shift();
    bubble?.remove();
  }

  scrollToEnd(force = false) {
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 160;
    if (force || nearBottom) list.scrollTop = list.scrollHeight;
  }

  async adoptConversation(id) {
    if (!id || id === this.conversationId) return;
    this.conversationId = id;
    slot.dataset.conversationId = id;
    let conversation = null;
    try {
      const response = await fetch(`/api/conversations/${encodeURIComponent(id)}`, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (response.ok) conversation = await response.json();
    } catch {
      // the title can wait for the next page load
    }
    chat.dispatchEvent(new CustomEvent("talk:conversation", { detail: { id, conversation } }));
  }
}

if (slot && chat && list) {
  const controller = new TalkController();
  // Read-only view for the browser tests and for people debugging audio: state, counters, playback numbers.
  window.apsaraTalk = {
    get state() {
      return controller.state;
    },
    get sessionId() {
      return controller.sessionId;
    },
    get stats() {
      const playback = controller.engine?.playbackStats ?? controller.lastPlaybackStats ?? {};
      return { ...controller.stats, playback: { ...playback } };
    },
    dropConnection: () => controller.dropConnection(),
  };
}
