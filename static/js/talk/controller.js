// The state of one voice call and the rules between its parts: the microphone and speakers (media.js), the
// /live socket (socket.js), the transcripts in the message list (transcripts.js) and the panel (view.js).
// Each of those does one thing; only this module knows which state the call is in and what an event means in it.
import { conversationExists, fetchConversation, followTitle } from "../conversation-api.js";
import { base64ToArrayBuffer } from "./base64.js";
import { AudioEngine, FrameSource, MediaProblem } from "./media.js";
import { SettingsSheet } from "./settings-sheet.js";
import { TalkSettings } from "./settings.js";
import { CLOSE, LiveSocket } from "./socket.js";
import { DirectSession } from "./direct.js";
import { TurnOutbox } from "./outbox.js";
import { SilentTurns } from "./silent-turns.js";
import { Transcripts } from "./transcripts.js";
import { TalkView } from "./view.js";

// Microphone audio kept while the socket is not ready (40 ms frames): ~10 s, so that what a person says while a
// server restarts or a worker's lease runs out still reaches Gemini after the resume. Past it the oldest goes.
const MAX_QUEUED_FRAMES = 250;
/** A direct call the server will not mint a token for (docs/live-direct.md): the call goes through the server. */
const DIRECT_REFUSED = new Set(["DIRECT_MODE_OFF", "DIRECT_MODE_UNAVAILABLE"]);
const MAX_RECORDED_DELAYS = 50; // reconnect delays kept in the stats (for tests and people debugging)
const LOST_TEXT = "The connection to the voice server was lost and could not be restored. Press Talk to start again.";
const END_TIMEOUT_MS = 5000; // end_session unanswered this long: end anyway
const RELEASE_TAIL_MS = 300; // push-to-talk: keep sending this long after release so the last word is not cut
const MAX_RESTARTED_STARTS = 3; // a call's start sent elsewhere by servers shutting down, at most this often
const SETTLE_DELAY_MS = 400; // after a call, give the server's last message_saved a moment before reading the list

const ENDED_TEXT = {
  client: "Voice session ended.",
  admin: "An administrator ended this voice session.",
  upstream: "Gemini ended the voice session. Press Talk to start a new one.",
  backpressure: "The voice session was closed because audio arrived faster than real time.",
  quota: "Your daily usage quota is reached: the voice session ended, and everything said is saved.",
};

/** States in which a call is open or being opened (not `ending`: then nothing new is sent). */
const ACTIVE_STATES = ["connecting", "listening", "speaking", "reconnecting"];

export class TalkController {
  /** @param {{slot: HTMLElement, chat: HTMLElement, list: HTMLElement}} elements */
  constructor({ slot, chat, list }) {
    this.slot = slot;
    this.chat = chat;
    this.list = list;
    this.state = "idle";
    this.engine = null;
    this.sessionId = null;
    this.conversationId = slot.dataset.conversationId || null;
    this.createdConversation = false; // this call's session created the conversation on screen
    this.muted = false;
    this.pushToTalk = false; // voice activity detection off: the person holds a button while speaking
    this.holding = false;
    this.tailUntil = 0;
    this.tailTimer = null;
    this.modelTurn = false; // the model is producing a turn (audio or transcript arriving)
    this.endRequested = false;
    this.restartedStarts = 0;
    this.endTimer = null;
    this.queuedFrames = [];
    this.frameSource = null;
    this.resuming = false; // a resume_session is on its way or unanswered: its errors are a failed attempt
    this.restartExpected = false; // the server said it is restarting (SERVER_RESTART): reconnect at once
    this.retryAfterMs = 0; // the server asked to wait this long before the next attempt (SESSION_IN_USE)
    this.lastError = "";
    this.lastPlaybackStats = null;
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
      reconnectAttempts: 0, // resume attempts (sockets opened to resume), over the page's life
      reconnectDelays: [], // the waits chosen before them, milliseconds, the latest MAX_RECORDED_DELAYS
      events: [],
    };
    this.csrfToken = chat.querySelector("input[name=csrfmiddlewaretoken]")?.value ?? "";
    // Direct mode (docs/live-direct.md), when the server allows it: turns a direct call (this page's or an earlier
    // one's) could not post yet are sent again now.
    this.outbox =
      slot.dataset.directMode === "allowed"
        ? new TurnOutbox({
            userId: slot.dataset.userId ?? "",
            csrfToken: this.csrfToken,
            onSaved: (entry, message) => this.onTurnStored(entry, message),
          })
        : null;
    this.outbox?.resend();
    this.socket = this.makeSocket(false);
    this.transcripts = new Transcripts({ list, messagesUrlTemplate: chat.dataset.messagesUrlTemplate });
    this.silentTurns = new SilentTurns({ list, retry: (turnId) => this.retryTurn(turnId) });
    this.view = new TalkView({
      slot,
      chat,
      supports: { camera: FrameSource.supported("camera"), screen: FrameSource.supported("screen") },
      actions: {
        start: () => this.start(),
        end: () => this.end(),
        dismiss: () => this.dismiss(),
        toggleMute: () => this.setMuted(!this.muted),
        togglePushToTalk: () => this.setPushToTalk(!this.pushToTalk),
        toggleFrames: (kind) => this.toggleFrames(kind),
        holdStart: () => this.beginActivity(),
        holdEnd: () => this.finishActivity(),
        openSettings: (opener) => this.openSettings(opener),
      },
    });
    this.createData = undefined; // the create_session data of the call being started (from the settings)
    this.settings = TalkSettings.fromPage(this.csrfToken);
    this.sheet = this.settings
      ? new SettingsSheet({
          choices: this.settings.choices,
          onChange: (next) => this.changeSettings(next),
          onMicrophone: (deviceId) => {
            this.settings.microphone = deviceId;
          },
          onOpen: () => this.reloadSettings(),
        })
      : null;
    this.sheet?.render(this.settings.current);
    if (!this.sheet) {
      this.view.settingsAvailable = false;
      this.view.settingsButton.hidden = true;
    }

    // Typed text during a live session goes to Gemini through the session (chat.js asks first).
    chat.addEventListener("chat:submit", (event) => {
      if (this.active && this.sessionId && this.socket.open) {
        event.preventDefault();
        this.sendText(event.detail.text);
      }
    });
    window.addEventListener("pagehide", () => {
      this.socket.leaving = true; // a direct call: say it ended now, the page cannot wait for its turns' posts
      if (this.sessionId) this.socket.send({ type: "end_session", sessionId: this.sessionId });
    });
  }

  /**
   * The transport of a call: Gemini through the server's /live socket (socket.js), or straight from the page with a
   * token the server mints (direct.js). Both speak /live's messages to this controller.
   */
  makeSocket(direct) {
    const options = {
      onMessage: (message) => this.onMessage(message),
      onAudio: (buffer) => this.onAudio(buffer),
      onClose: (event, opened) => this.onClose(event, opened),
      reconnectWindowMs: reconnectWindowMs(this.slot),
    };
    if (!direct) return new LiveSocket(options);
    return new DirectSession({
      ...options,
      csrfToken: this.csrfToken,
      outbox: this.outbox,
      textViaRealtimeInput: (model) => this.settings?.model(model)?.textViaRealtimeInput ?? true,
    });
  }

  /** A direct call's turn was stored (outbox.js): the thread shows it as it shows a proxied call's message_saved. */
  onTurnStored(entry, message) {
    const fields = entry.fields;
    this.onMessage({
      type: "message_saved",
      sessionId: fields.sessionId,
      conversationId: entry.conversationId,
      message: {
        id: message?.id ?? entry.id,
        role: message?.role ?? fields.role,
        messageType: "live",
        text: fields.transcript,
        interrupted: fields.interrupted === "true",
        audioDuration: message?.liveContent?.audioData?.duration ?? null,
        hasAudio: Boolean(entry.audio),
        toolData: null,
        createdAt: message?.createdAt ?? fields.startedAt,
      },
      timestamp: new Date().toISOString(),
    });
  }

  get active() {
    return ACTIVE_STATES.includes(this.state);
  }

  setState(state, message = "") {
    this.state = state;
    this.stats.events.push(state);
    this.view.render(state, { message, pushToTalk: this.pushToTalk, holding: this.holding, muted: this.muted });
  }

  /** Listening or speaking, from whether the model's turn is arriving or its audio still playing. */
  refreshSpeaking() {
    if (this.state !== "listening" && this.state !== "speaking") return;
    const speaking = this.modelTurn || Boolean(this.engine?.playing);
    this.setState(speaking ? "speaking" : "listening");
  }

  dismiss() {
    this.view.showNotice("");
    this.setState("idle");
    this.view.focusTalk();
  }

  // -- starting and ending -------------------------------------------------------------------------------------------

  async start() {
    if (this.active) return;
    this.view.showNotice("");
    this.view.showInfo("");
    this.conversationId = this.slot.dataset.conversationId || null; // the typed chat may have created one since
    this.createdConversation = false;
    this.endRequested = false;
    this.sessionId = null;
    this.socket.resetBackoff();
    this.queuedFrames = [];
    this.muted = false;
    this.view.setMuted(false);
    // Hold to talk from the settings: known now, so no audio is queued that nobody held the button for.
    this.createData = this.settings?.createSession();
    const direct = Boolean(this.outbox) && this.settings?.current.transport === "direct";
    if (direct !== this.socket instanceof DirectSession) this.socket = this.makeSocket(direct);
    this.pushToTalk = this.createData?.config.vad?.enabled === false;
    this.setHolding(false);
    this.view.setPushToTalk(this.pushToTalk);
    this.restartedStarts = 0;
    this.setState("connecting");
    // Talk is hidden now: focus goes to End at once, never to <body> while the microphone and session start.
    this.view.focusEnd();
    const engine = new AudioEngine({
      deviceId: this.settings?.microphone ?? "",
      onFrame: (pcm) => this.onMicFrame(pcm),
      onLevel: (level) => this.view.setLevel(level),
      onPlayback: () => this.refreshSpeaking(),
    });
    this.engine = engine;
    try {
      await engine.start(); // the microphone first: no session is opened that could not hear anyone
    } catch (error) {
      // Ended (or ended and started again) while the microphone was being asked for: that call is not this one.
      if (this.engine !== engine) return;
      this.fail(error instanceof MediaProblem ? error.message : "The microphone could not be started.");
      return;
    }
    if (this.engine !== engine || this.state !== "connecting") return; // ended meanwhile
    this.view.focusEnd();
    this.socket.connect({ conversationId: this.conversationId, create: this.createData });
  }

  end() {
    if (!this.active || this.state === "ending") return; // End stays focusable (and pressable) while ending
    this.endRequested = true;
    this.engine?.flush();
    this.stopFrames();
    if (this.sessionId && this.socket.open) {
      this.setState("ending");
      this.socket.send({ type: "end_session", sessionId: this.sessionId });
      this.endTimer = setTimeout(() => this.finish("ended", ENDED_TEXT.client), END_TIMEOUT_MS);
    } else {
      this.finish("ended", ENDED_TEXT.client);
    }
  }

  /** Tear everything down and show the final state. */
  /** Ask again a turn Gemini answered with nothing; false when there is no open session to ask. */
  retryTurn(turnId) {
    if (!this.sessionId || !this.socket.open || !this.active) return false;
    this.socket.send({ type: "retry_turn", sessionId: this.sessionId, data: { turnId } });
    return true;
  }

  finish(state, message) {
    this.silentTurns.expire();
    clearTimeout(this.endTimer);
    this.endTimer = null;
    clearTimeout(this.tailTimer);
    this.tailTimer = null;
    this.setHolding(false);
    this.stopFrames();
    this.socket.close();
    const ended = this.socket.finished; // a direct call: its turns stored, then the server told (direct.js)
    const engine = this.engine;
    this.engine = null;
    if (engine) this.lastPlaybackStats = engine.playbackStats;
    engine?.stop();
    this.view.showNotice("");
    this.view.showInfo("");
    this.modelTurn = false;
    this.sessionId = null;
    this.queuedFrames = [];
    this.resuming = this.restartExpected = false;
    this.retryAfterMs = 0;
    this.transcripts.orphanAll();
    if (this.conversationId) {
      const id = this.conversationId;
      const created = this.createdConversation;
      setTimeout(async () => {
        await ended;
        if (this.active) return;
        if (state !== "error") await this.transcripts.settle(id);
        // A call in which nothing was said leaves no conversation (the server took back the one it created):
        // the page becomes a new conversation again, so what is typed next starts one.
        if (created && !this.active && this.conversationId === id && !(await conversationExists(id))) {
          this.conversationId = null;
          this.createdConversation = false;
          this.slot.dataset.conversationId = "";
          this.chat.dispatchEvent(new CustomEvent("talk:conversation", { detail: { id: null, conversation: null } }));
        }
      }, SETTLE_DELAY_MS);
    }
    this.view.setLevel(0);
    this.setState(state, message);
    this.view.returnFocus();
  }

  fail(message) {
    this.finish("error", message);
  }

  // -- the socket ----------------------------------------------------------------------------------------------------

  onClose(event, opened) {
    if (event.code === CLOSE.LOGGED_OUT) {
      this.fail("You are no longer logged in. Reload the page, log in, and press Talk again.");
    } else if (event.code === CLOSE.BACKPRESSURE) {
      this.fail(ENDED_TEXT.backpressure);
    } else if (this.endRequested || !this.active) {
      if (this.state === "ending") this.finish("ended", ENDED_TEXT.client);
    } else if (!this.sessionId && event.code === CLOSE.SERVICE_RESTART && this.restartedStarts < MAX_RESTARTED_STARTS) {
      // The server was shutting down as the call began (it started nothing): ask again, another server answers.
      this.restartedStarts += 1;
      setTimeout(() => {
        if (this.state === "connecting" && !this.sessionId) {
          this.socket.connect({ conversationId: this.conversationId, create: this.createData });
        }
      }, Math.random() * 250);
    } else if (!this.sessionId && !opened) {
      this.fail("Could not reach the voice server. Check your connection and press Talk again.");
    } else if (!this.sessionId) {
      this.fail("The connection closed before the voice session started. Press Talk to try again.");
    } else {
      // A server restarting on purpose has handed the session over: go now (a crash or a cut waits its turn).
      this.reconnect({ immediate: event.code === CLOSE.SERVICE_RESTART || this.restartExpected });
    }
  }

  /**
   * The socket went away mid-call (or a resume attempt failed): resume the same session on a new socket after the
   * policy's delay (socket.js, reconnect.js), for as long as the reconnect window lasts, then give the call up.
   * The person sees "Reconnecting…" throughout, never why an attempt failed: that is for the server's logs.
   * @param {{immediate?: boolean}} [options] `immediate`: the server is restarting (1012 / SERVER_RESTART)
   */
  reconnect({ immediate = false } = {}) {
    const notBeforeMs = this.retryAfterMs;
    this.retryAfterMs = 0;
    this.restartExpected = false;
    this.resuming = false;
    const delay = this.socket.scheduleReconnect(
      () => {
        if (this.state !== "reconnecting") return;
        this.stats.reconnectAttempts += 1;
        this.resuming = true;
        this.socket.connect({ sessionId: this.sessionId });
      },
      { immediate, notBeforeMs },
    );
    if (delay === null) {
      this.fail(LOST_TEXT);
      return;
    }
    this.stats.reconnectDelays.push(delay);
    if (this.stats.reconnectDelays.length > MAX_RECORDED_DELAYS) this.stats.reconnectDelays.shift();
    this.engine?.flush(); // what was playing belongs to a turn that may not continue
    this.modelTurn = false;
    // A hold cannot outlive its socket (its activity_end would go nowhere): the person holds again after the resume.
    clearTimeout(this.tailTimer);
    this.tailTimer = null;
    this.setHolding(false);
    this.view.showNotice("");
    this.setState("reconnecting");
  }

  /** For the browser tests: drop the socket as a network failure would (the page reconnects and resumes). */
  dropConnection() {
    this.socket.hangUp(CLOSE.SIMULATED_DROP, "test: simulated drop");
  }

  // -- microphone and camera → server --------------------------------------------------------------------------------

  onMicFrame(pcm) {
    this.stats.framesCaptured += 1;
    if (this.endRequested) return; // audio after end_session would only be refused (NO_ACTIVE_SESSION)
    const ready = this.sessionId && this.socket.open && this.state !== "reconnecting";
    if (!ready) {
      // Keep the start of what was said while the session opens or the socket comes back (bounded). In Hold mode
      // only held speech counts, and a drop ends the hold, so nothing is kept there.
      const waiting = this.state === "connecting" || this.state === "reconnecting";
      if (waiting && (!this.pushToTalk || this.holding)) {
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

  sendFrame(pcm, { backlog = false } = {}) {
    if (!this.socket.sendAudio(pcm, { backlog })) {
      this.stats.framesDropped += 1;
      return;
    }
    this.stats.framesSent += 1;
    this.stats.samplesSent += pcm.byteLength / 2;
  }

  flushQueuedFrames() {
    const frames = this.queuedFrames;
    this.queuedFrames = [];
    for (const pcm of frames) this.sendFrame(pcm, { backlog: true });
  }

  sendText(text) {
    this.socket.send({ type: "send_message", sessionId: this.sessionId, data: { text, turnComplete: true } });
    this.transcripts.appendTyped(text);
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
        this.socket.send({
          type: "send_message",
          sessionId: this.sessionId,
          data: { [key]: jpeg, imageMimeType: "image/jpeg" },
        });
        this.stats.videoFramesSent += 1;
      },
      onEnded: () => {
        if (this.frameSource === source) this.stopFrames();
      },
    });
    this.frameSource = source;
    this.view.setSharing(kind);
    try {
      await source.start();
    } catch (error) {
      if (this.frameSource === source) this.stopFrames();
      this.view.showNotice(error instanceof MediaProblem ? error.message : `The ${kind} could not be shared.`);
      return;
    }
    if (this.frameSource !== source || !this.active) {
      source.stop();
      return;
    }
    this.view.showPreview(source.video, kind);
  }

  stopFrames() {
    this.frameSource?.stop();
    this.frameSource = null;
    this.view.showPreview(null);
    this.view.setSharing(null);
  }

  // -- mute and push-to-talk -----------------------------------------------------------------------------------------

  setMuted(muted) {
    this.muted = muted;
    this.engine?.setMuted(muted);
    this.view.setMuted(muted);
    if (this.state === "listening") this.setState("listening");
  }

  /** Switch between automatic turns (Gemini's voice activity detection) and holding a button to talk. */
  setPushToTalk(on) {
    if (!this.sessionId) return;
    // The sensitivity and silence of the settings stay as they are: only detection goes off or on.
    const vad = { ...(this.settings?.current.vad ?? {}), enabled: !on };
    this.socket.send({ type: "configure_vad", sessionId: this.sessionId, data: vad });
    this.view.setModeBusy(true); // until vad_configured says it took effect
  }

  /**
   * The server's voice activity detection setting, as configured (vad_configured) or as a resumed session has it
   * (session_resumed): the page's mode follows it. `focus`: move focus to Hold (after the person switched modes;
   * after a resume only if focus was lost, since the Hold button was disabled while reconnecting).
   */
  onVadConfigured(vad, { focus = true } = {}) {
    this.pushToTalk = vad?.enabled === false;
    this.setHolding(false);
    this.view.setModeBusy(false);
    this.view.setPushToTalk(this.pushToTalk);
    this.setState(this.state);
    if (this.pushToTalk && (focus || this.view.focusLost())) this.view.focusHold();
  }

  setHolding(holding) {
    this.holding = holding;
    this.view.setHolding(holding);
  }

  beginActivity() {
    if (!this.pushToTalk || this.holding || !this.sessionId) return;
    if (this.state !== "listening" && this.state !== "speaking") return;
    // Pressed again within the release tail: the activity never ended, so carry on with it.
    const continuing = this.tailTimer !== null;
    clearTimeout(this.tailTimer);
    this.tailTimer = null;
    this.setHolding(true);
    this.engine?.flush(); // the person is talking over the model: stop it now, not one round trip later
    this.modelTurn = false;
    if (!continuing) this.socket.send({ type: "activity_start", sessionId: this.sessionId });
    this.setState("listening");
  }

  finishActivity() {
    if (!this.holding) return;
    this.setHolding(false);
    this.tailUntil = performance.now() + RELEASE_TAIL_MS;
    this.tailTimer = setTimeout(() => {
      this.tailTimer = null;
      this.socket.send({ type: "activity_end", sessionId: this.sessionId });
    }, RELEASE_TAIL_MS);
    this.setState(this.state);
  }

  // -- settings ------------------------------------------------------------------------------------------------------

  openSettings(opener) {
    if (!this.sheet) return;
    this.sheet.render(this.settings.current);
    this.sheet.open(opener, { inCall: Boolean(this.sessionId) && this.active, microphone: this.settings.microphone });
  }

  /** The sheet was opened: show what the server has now (the person may have changed it on another device). */
  async reloadSettings() {
    try {
      const fresh = await this.settings.refresh();
      if (this.sheet.isOpen) this.sheet.render(fresh);
    } catch {
      // the page's copy stays; a save says whether the server is reachable
    }
  }

  /**
   * A change in the sheet: saved at once; on failure the previous values come back and the reason is shown. Turn
   * detection also changes in a call under way (configure_vad); the rest applies from the next call.
   */
  async changeSettings(next) {
    const previous = this.settings.current;
    this.sheet.render(next);
    let saved;
    try {
      saved = await this.settings.save(next);
    } catch (error) {
      this.sheet.render(this.settings.current ?? previous);
      this.sheet.failed(error.message, error.field);
      return;
    }
    this.sheet.render(saved);
    this.sheet.saved();
    if (this.sessionId && this.active && JSON.stringify(saved.vad) !== JSON.stringify(previous.vad)) {
      this.socket.send({ type: "configure_vad", sessionId: this.sessionId, data: saved.vad });
      this.view.setModeBusy(true); // until vad_configured says it took effect
    }
  }

  // -- server → page -------------------------------------------------------------------------------------------------

  onAudio(buffer) {
    if (!buffer.byteLength || !this.engine) return;
    this.stats.audioFramesReceived += 1;
    this.stats.samplesReceived += buffer.byteLength / 2;
    this.engine.play(buffer);
    if (!this.modelTurn) {
      this.modelTurn = true;
      this.silentTurns.expire(); // answered now: the server no longer retries an earlier silent turn
      this.transcripts.append("model", ""); // a bubble for the answer at once; its transcript fills it in
      this.refreshSpeaking();
    }
  }

  onMessage(message) {
    switch (message.type) {
      case "session_created":
        this.onSessionOpen(message);
        // The mode the settings asked for, as the server applied it (Hold button included).
        if (message.config?.vad) this.onVadConfigured(message.config.vad, { focus: message.config.vad.enabled === false });
        this.adoptConversation(message.conversationId);
        break;
      case "session_resumed":
        if (this.state === "reconnecting") this.stats.reconnects += 1;
        this.onSessionOpen(message);
        // The server's setting is the truth (the page may have asked for a switch the old socket never answered).
        if (message.config?.vad) this.onVadConfigured(message.config.vad, { focus: false });
        this.frameSource?.grab(); // a camera or screen being shared: Gemini sees it now, not a second later
        break;
      case "session_reconnecting":
        this.engine?.flush();
        this.modelTurn = false;
        if (message.reason === "SERVER_RESTART") {
          // This server is going away and closes the socket next (1012): resume at once on another one.
          this.restartExpected = true;
          this.setState("reconnecting");
        } else {
          this.setState("reconnecting", "Reconnecting to Gemini…"); // the server resumes Gemini; the socket stays
        }
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
        this.onSessionError(message.error ?? {}, message);
        break;
      case "vad_configured":
        this.onVadConfigured(message.vad);
        break;
      case "turn_silent":
        this.silentTurns.show(message.turnId);
        break;
      case "context_loaded": {
        const count = message.messagesLoaded;
        this.view.showInfo(`Gemini has the last ${count} message${count === 1 ? "" : "s"} of this conversation.`);
        break;
      }
      case "audio_error":
        this.view.showNotice(message.error?.message ?? "The server could not use the microphone audio.");
        break;
      default:
        break; // context_load_skipped, pong: nothing to show
    }
  }

  onSessionOpen(message) {
    this.sessionId = message.sessionId;
    this.resuming = false;
    this.restartExpected = false;
    this.retryAfterMs = 0;
    this.socket.resetBackoff();
    this.view.showNotice("");
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
      this.transcripts.markInterrupted();
    }
    const heard = content.inputTranscription?.text;
    if (heard) this.transcripts.append("user", heard);
    const said = content.outputTranscription?.text;
    if (said) {
      this.modelTurn = true;
      this.silentTurns.expire();
      this.transcripts.append("model", said);
    }
    for (const part of content.modelTurn?.parts ?? []) {
      if (part.inlineData?.data && part.inlineData.mimeType?.startsWith("audio/pcm")) {
        this.onAudio(base64ToArrayBuffer(part.inlineData.data));
      } else if (typeof part.text === "string" && !said) {
        this.modelTurn = true;
        this.transcripts.append("model", part.text);
      }
    }
    if (content.turnComplete || content.interrupted) {
      this.engine?.endOfTurn();
      this.modelTurn = false;
      this.transcripts.markTurnDone();
    }
    this.refreshSpeaking();
  }

  onMessageSaved(message) {
    if (!message.conversationId || message.conversationId !== this.conversationId) return; // another chat's
    this.stats.messagesSaved += 1;
    this.transcripts.saved(message.message, this.conversationId);
    // The conversation's first reply: the server names the conversation now (conversations/titles.py).
    if (message.message?.role === "model" && !this.list.querySelector(".msg-model[data-message-id]")) {
      followTitle(this.chat, this.conversationId);
    }
  }

  onSessionEnded(message) {
    const reason = message.reason;
    if (reason === "error" && this.state === "error") return;
    if (reason === "error") {
      this.fail(this.lastError || "The voice session ended because of an error. Press Talk to try again.");
      return;
    }
    this.finish("ended", ENDED_TEXT[reason] ?? ENDED_TEXT.client);
  }

  /**
   * @param {{code?: string, message?: string, retryAfter?: number, retryAfterMs?: number}} error
   * @param {{retryAfterMs?: number}} [envelope] the whole session_error (a retry hint may sit on it)
   */
  onSessionError(error, envelope = {}) {
    const code = error.code ?? "";
    const message = error.message || "The voice session failed.";
    if (this.resuming && code !== "SESSION_NOT_FOUND" && code !== "RESUME_FAILED") {
      // A resume attempt failed, most often SESSION_IN_USE: a crashed worker's lease on the session has not run
      // out yet (2–3 s), or the old socket is not noticed gone. Try again after the delay (or the server's
      // retryAfter); the person keeps seeing "Reconnecting…", never the code (the close reconnects).
      this.retryAfterMs = Number(error.retryAfter ?? error.retryAfterMs ?? envelope.retryAfterMs) || 0;
      this.socket.hangUp();
      return;
    }
    if (!this.sessionId && DIRECT_REFUSED.has(code) && this.socket instanceof DirectSession && this.active) {
      // Direct mode was switched off (or cannot work) since the page loaded: the call goes through the server.
      this.socket.close();
      this.socket = this.makeSocket(false);
      this.view.showInfo("Direct mode is not available on this server now: talking through the server instead.");
      this.socket.connect({ conversationId: this.conversationId, create: this.createData });
      return;
    }
    this.lastError = message;
    if (!this.sessionId || code === "SESSION_NOT_FOUND" || code === "RESUME_FAILED") {
      // Nothing was opened (or it cannot be resumed): this is final.
      this.fail(message);
      return;
    }
    // A problem within a running session (e.g. BACKPRESSURE): show it; session_ended follows if it is fatal.
    this.view.showNotice(message);
  }

  /** A new conversation the session created: the page takes on its id, URL and title (chat.js does the page). */
  async adoptConversation(id) {
    if (!id || id === this.conversationId) return;
    this.conversationId = id;
    this.createdConversation = true;
    this.slot.dataset.conversationId = id;
    const conversation = await fetchConversation(id);
    this.chat.dispatchEvent(new CustomEvent("talk:conversation", { detail: { id, conversation } }));
  }
}

/**
 * How long the page keeps trying to resume a call after its socket went away: the server's
 * LIVE_RECONNECT_WINDOW_SECONDS, rendered into the Talk slot (`data-reconnect-window-seconds`).
 * @returns {number | undefined} milliseconds; undefined (reconnect.js's default) when missing or not a number
 */
function reconnectWindowMs(slot) {
  const seconds = Number.parseFloat(slot.dataset.reconnectWindowSeconds ?? "");
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined;
}
