// Direct mode (docs/live-direct.md): the page talks to Gemini Live itself, with an ephemeral token the server mints,
// and posts each finished turn back so the conversation stays whole. DirectSession has LiveSocket's interface as
// the controller uses it (connect, send, sendAudio, close, hangUp, open, the reconnect timers; onMessage, onAudio,
// onClose) and speaks Gemini's own protocol underneath, translating it to and from the /live messages the
// controller already handles (docs/live-protocol.md), so the page looks and behaves the same in both modes.
// Turns are assembled by direct-recorder.js and posted by outbox.js. The long-lived API key never reaches the page.
import { arrayBufferToBase64, base64ToArrayBuffer } from "./base64.js";
import { currentCsrfToken } from "../csrf.js";
import { TurnRecorder } from "./direct-recorder.js";
import { ReconnectTimers } from "./reconnect.js";

const TOKEN_URL = "/api/live/token";
const PROTOCOL_VERSION = "1.0";
/** ~8 s of 16 kHz PCM16 as base64 JSON waiting in the socket: past this, more only makes the delay grow. */
const MAX_BUFFERED_BYTES = 350 * 1024;
/** A resume that has not reached setupComplete by then is abandoned (a hung connection), as in socket.js. */
const ATTEMPT_TIMEOUT_MS = 20_000;
/** A token this close to its expiresAt is renewed before a resume rather than refused halfway. */
const TOKEN_MARGIN_MS = 15_000;
/** goAway without a usable timeLeft: switch within this long. */
const GO_AWAY_DEFAULT_MS = 10_000;
/** Switch this long before Gemini's deadline when the model is still answering. */
const GO_AWAY_MARGIN_MS = 2_000;
/** At the end of a call, wait at most this long for its turns to be stored before telling the server it ended. */
const END_WAIT_MS = 5000;
const ATTEMPT_TIMEOUT_CODE = 4001; // socket.js's CLOSE.ATTEMPT_TIMEOUT
const ABNORMAL = 1006;

const DEFAULT_CREATE = { loadConversationContext: true, config: { responseModalities: ["AUDIO"] } };

/** A refused token request: the API's error (docs/live-direct.md) and whether a later attempt may succeed. */
export class TokenProblem extends Error {
  constructor(message, { code = "GEMINI_ERROR", status = 0, retryAfter = 0 } = {}) {
    super(message);
    this.code = code;
    this.status = status;
    this.retryAfter = retryAfter;
  }

  /** The network, a 5xx or throttling: trying again later may work. */
  get passing() {
    return this.status === 0 || this.status >= 500 || this.status === 429;
  }
}

/** One Gemini frame as an object: text, or JSON text in a binary frame (Gemini sends binary). */
function decodeFrame(data) {
  try {
    if (typeof data === "string") return JSON.parse(data);
    return JSON.parse(new TextDecoder().decode(data));
  } catch {
    return null;
  }
}

function now() {
  return new Date().toISOString();
}

/** A proto Duration ("50s", "1.5s") in milliseconds, or null. */
function durationMs(value) {
  const match = /^\s*(\d+(?:\.\d+)?)s\s*$/.exec(String(value ?? ""));
  return match ? Number(match[1]) * 1000 : null;
}

export class DirectSession extends ReconnectTimers {
  /**
   * @param {{onMessage(message: object): void, onAudio(buffer: ArrayBuffer): void,
   *   onClose(event: {code: number, reason: string}, opened: boolean): void, reconnectWindowMs?: number,
   *   csrfToken: string, outbox: import("./outbox.js").TurnOutbox, textViaRealtimeInput?: (model: string) => boolean}}
   *   options `onClose` as LiveSocket's: only for a connection that went away by itself, never one `close()` shut.
   */
  constructor({ onMessage, onAudio, onClose, reconnectWindowMs, csrfToken, outbox, textViaRealtimeInput }) {
    super(reconnectWindowMs);
    this.handlers = { onMessage, onAudio, onClose };
    this.csrfToken = csrfToken;
    this.outbox = outbox;
    this.textViaRealtimeInput = textViaRealtimeInput ?? (() => true);
    this.goAwayTimer = null;
    this.attempt = 0; // each connect() is one attempt; async answers of an older one are ignored
    this.ws = null;
    this.ready = false; // setupComplete received on this.ws
    this.grant = null; // the token answer in use
    this.create = DEFAULT_CREATE;
    this.sessionId = null;
    this.conversationId = null;
    this.handle = null; // the newest resumption handle
    this.switchPending = false; // goAway: move to a new connection after the model's turn
    this.renewToken = false; // Gemini refused the last resume: ask for a new token before the next
    this.renewedForHandle = false; // the token in use was asked for to resume with the current handle
    this.ended = true;
    this.recorder = null;
    this.turnsRecorded = 0; // turns of this session handed to the outbox: none, and its end may give back the conversation
    this.clockSkewMs = 0; // the server's clock minus this device's (the grant's serverTime): turns' startedAt use it
    this.leaving = false; // the page is going away (pagehide): its end cannot wait for the turns' posts
    this.finished = Promise.resolve(); // settles once the server was told the session ended (turns stored first)
    this.backlog = []; // control messages for Gemini waiting for setupComplete (tool responses, typed text)
  }

  /** True when frames can be sent now. */
  get open() {
    return this.ready && this.ws?.readyState === WebSocket.OPEN;
  }

  /**
   * Start a session (a token for `conversationId`, null: a new conversation, with the `create` data of the person's
   * settings) or, with `sessionId`, resume the one under way after a drop (its handle, or a new token for it).
   */
  connect({ sessionId = null, conversationId = null, create = DEFAULT_CREATE } = {}) {
    const attempt = ++this.attempt;
    if (sessionId && sessionId === this.sessionId) {
      this.resume(attempt, { timeout: true });
    } else {
      this.start(attempt, { conversationId, create });
    }
  }

  async start(attempt, { conversationId, create }) {
    this.create = create;
    this.sessionId = null;
    this.conversationId = conversationId;
    this.handle = null;
    this.renewToken = this.renewedForHandle = false;
    this.ended = false;
    this.backlog = [];
    this.turnsRecorded = 0;
    this.recorder = new TurnRecorder({
      onTurn: (turn) => this.turnFinished(turn),
      now: () => Date.now() + this.clockSkewMs, // the server's time: startedAt orders the thread there
    });
    let grant;
    try {
      grant = await this.requestToken({ conversationId });
    } catch (problem) {
      if (attempt === this.attempt) this.emitError(problem.code, problem.message, { retryAfter: problem.retryAfter });
      return;
    }
    if (attempt !== this.attempt || this.ended) {
      this.postEnd(grant.sessionId); // closed while the token was on its way: that session never starts
      return;
    }
    this.useGrant(grant);
    this.openGemini({ handle: null, fresh: true });
  }

  /** A new connection for the session under way: with the handle (same token until it expires), else afresh. */
  async resume(attempt, { timeout = false } = {}) {
    clearTimeout(this.attemptTimer);
    if (timeout) {
      this.attemptTimer = setTimeout(() => {
        if (attempt === this.attempt && !this.ready) this.hangUp(ATTEMPT_TIMEOUT_CODE, "reconnect attempt timed out");
      }, ATTEMPT_TIMEOUT_MS);
    }
    const expiresAt = Date.parse(this.grant?.expiresAt ?? "") || 0;
    if (!this.handle || this.renewToken || expiresAt - TOKEN_MARGIN_MS < Date.now()) {
      this.renewToken = false;
      this.renewedForHandle = Boolean(this.handle);
      // Without a handle the session starts afresh on Gemini, which takes a new token (each is single use).
      let grant;
      try {
        grant = await this.requestToken({ conversationId: this.conversationId, sessionId: this.sessionId });
      } catch (problem) {
        if (attempt !== this.attempt) return;
        if (problem.passing) {
          // The controller keeps "Reconnecting…" and tries again (after retryAfter when the server gave one).
          if (problem.retryAfter) this.emitError(problem.code, problem.message, { retryAfter: problem.retryAfter });
          else this.dropped({ code: ABNORMAL, reason: problem.message }, false);
        } else {
          const code = problem.status === 404 ? "SESSION_NOT_FOUND" : "RESUME_FAILED";
          this.emitError(code, problem.message);
        }
        return;
      }
      if (attempt !== this.attempt || this.ended) return;
      this.useGrant(grant);
    }
    this.openGemini({ handle: this.handle, fresh: false });
  }

  useGrant(grant) {
    this.grant = grant;
    const maxTurnSeconds = Number(grant.limits?.maxTurnSeconds);
    if (maxTurnSeconds > 0) this.recorder?.setMaxTurnSeconds(maxTurnSeconds);
    this.sessionId = grant.sessionId;
    this.conversationId = grant.conversationId ?? this.conversationId;
  }

  /** A connection to Gemini: `fresh` for the session's first, `handle` to resume where the last one ended. */
  openGemini({ handle, fresh }) {
    const grant = this.grant;
    const ws = new WebSocket(`${grant.url}?access_token=${encodeURIComponent(grant.token)}`);
    ws.binaryType = "arraybuffer"; // Gemini's JSON arrives in binary frames: decoded in order, synchronously
    this.ws = ws;
    this.ready = false;
    ws.onopen = () => {
      if (ws !== this.ws) return;
      const setup = structuredClone(grant.setup);
      // Only the handle may be added: the rest of the setup is locked in the token.
      if (handle) setup.setup.sessionResumption = { ...(setup.setup.sessionResumption ?? {}), handle };
      ws.send(JSON.stringify(setup));
    };
    ws.onmessage = (event) => {
      if (ws !== this.ws) return;
      const message = decodeFrame(event.data);
      if (message) this.onGemini(message, { fresh, handle });
    };
    ws.onclose = (event) => {
      if (ws !== this.ws) return; // replaced (goAway) or closed on purpose
      this.ws = null;
      const wasReady = this.ready;
      this.ready = false;
      if (this.ended) return;
      if (!wasReady && fresh) {
        // Gemini refused the new session (its setup, the token): nothing to resume.
        const reason = event.reason ? `: ${event.reason}` : "";
        this.emitError("GEMINI_ERROR", `Gemini refused the voice session (${event.code}${reason}).`);
        return;
      }
      if (!wasReady && handle) {
        // Refused: the next attempt takes a new token for the same handle; refused with a new one too, the handle is
        // what Gemini will not take, and the session starts afresh.
        if (this.renewedForHandle) this.handle = null;
        else this.renewToken = true;
      }
      this.recorder?.connectionLost();
      this.dropped({ code: event.code, reason: event.reason }, true);
    };
  }

  // -- Gemini → page -----------------------------------------------------------------------------------------------

  onGemini(message, { fresh, handle }) {
    if (message.setupComplete) {
      this.setupComplete({ fresh, handle });
      return;
    }
    const data = {};
    if (message.usageMetadata) {
      this.recorder?.usage(message.usageMetadata);
      data.usageMetadata = message.usageMetadata;
    }
    if (message.serverContent) {
      const content = this.serverContent(message.serverContent);
      if (content) data.serverContent = content;
    }
    if (message.toolCall) {
      data.toolCall = message.toolCall;
      this.recorder?.activityEnd(); // the person's turn ends where the model calls a function
      this.runTools(message.toolCall.functionCalls ?? []);
    }
    if (message.toolCallCancellation) data.toolCallCancellation = message.toolCallCancellation;
    if (Object.keys(data).length) this.emit({ type: "session_message", data });
    if (message.serverContent?.turnComplete && this.switchPending) this.switchConnection();
    const update = message.sessionResumptionUpdate;
    if (update?.resumable && update.newHandle) this.handle = update.newHandle;
    if (message.goAway) this.goAway(durationMs(message.goAway.timeLeft) ?? GO_AWAY_DEFAULT_MS);
  }

  setupComplete({ fresh, handle }) {
    this.ready = true;
    this.renewedForHandle = false;
    clearTimeout(this.attemptTimer);
    const base = { sessionId: this.sessionId, conversationId: this.conversationId, timestamp: now() };
    const model = this.grant.setup?.setup?.model?.replace(/^models\//, "") ?? this.create.model ?? "";
    const reload = !handle; // a new Gemini session: it hears the conversation's history first
    if (fresh) {
      this.emit({
        type: "session_created",
        ...base,
        model,
        provider: "google",
        protocolVersion: PROTOCOL_VERSION,
        config: this.grant.effective,
        notices: this.grant.notices ?? [],
      });
    }
    if (reload && this.grant.history) {
      this.sendGemini(this.grant.history);
      if (fresh) {
        const turns = this.grant.history.clientContent?.turns?.length ?? 0;
        this.emit({ type: "context_loaded", ...base, messagesLoaded: turns, turnsLoaded: turns, batches: 1 });
      }
    }
    if (!fresh) {
      this.emit({
        type: "session_resumed",
        ...base,
        model,
        contextReloaded: reload,
        config: this.grant.effective,
      });
    }
    const backlog = this.backlog;
    this.backlog = [];
    for (const frame of backlog) this.sendGemini(frame);
  }

  /** Record what the content carries, play its audio, and return it as the proxied bridge relays it (no audio). */
  serverContent(content) {
    const recorder = this.recorder;
    const out = { ...content };
    const parts = [];
    for (const part of content.modelTurn?.parts ?? []) {
      const blob = part.inlineData;
      if (blob?.data && (blob.mimeType ?? "audio/pcm").startsWith("audio/")) {
        const pcm = base64ToArrayBuffer(blob.data.replace(/-/g, "+").replace(/_/g, "/"));
        recorder?.modelAudio(pcm);
        this.handlers.onAudio(pcm);
      } else if (typeof part.text === "string" && !part.thought) {
        if (!content.outputTranscription) recorder?.modelText(part.text);
        parts.push({ text: part.text });
      }
    }
    if (parts.length) out.modelTurn = { role: "model", parts };
    else delete out.modelTurn;
    if (content.inputTranscription?.text) recorder?.inputTranscription(content.inputTranscription.text);
    if (content.outputTranscription?.text) recorder?.modelText(content.outputTranscription.text);
    if (content.interrupted) recorder?.interrupted();
    if (content.turnComplete) recorder?.turnComplete();
    return Object.keys(out).length ? out : null;
  }

  async runTools(calls) {
    if (!calls.length) return;
    const sessionId = this.sessionId;
    let responses;
    try {
      const answer = await this.post(`/api/live/sessions/${encodeURIComponent(sessionId)}/tool-calls`, {
        calls: calls.map(({ id, name, args }) => ({ id, name, args: args ?? {} })),
      });
      responses = answer.responses;
    } catch (error) {
      // Gemini waits for an answer to every call: tell it the tool failed rather than leave it hanging.
      responses = calls.map(({ id, name }) => ({ id, name, response: { error: `The tool could not be run: ${error.message}` } }));
    }
    if (sessionId !== this.sessionId || this.ended) return;
    this.sendGemini({ toolResponse: { functionResponses: responses } });
  }

  /** Gemini will close this connection: move to a new one, after the model's turn (so no answer is cut). */
  goAway(timeLeftMs) {
    if (this.switchPending) return;
    this.switchPending = true;
    clearTimeout(this.goAwayTimer);
    this.goAwayTimer = setTimeout(() => this.switchConnection(), Math.max(0, timeLeftMs - GO_AWAY_MARGIN_MS));
    if (!this.recorder?.model) this.switchConnection();
  }

  switchConnection() {
    if (!this.switchPending || this.ended) return;
    this.switchPending = false;
    clearTimeout(this.goAwayTimer);
    const old = this.ws;
    this.ws = null; // its close is not a drop
    this.ready = false;
    old?.close(1000);
    this.recorder?.connectionLost();
    this.emit({ type: "session_reconnecting", sessionId: this.sessionId, reason: "GO_AWAY", timestamp: now() });
    this.resume(++this.attempt, { timeout: false });
  }

  // -- page → Gemini -----------------------------------------------------------------------------------------------

  /** A /live client message from the controller, done the direct way. */
  send(message) {
    const data = message.data ?? {};
    switch (message.type) {
      case "send_message":
        if (typeof data.text === "string" && data.text) {
          this.recorder?.typed(data.text);
          if (this.textViaRealtimeInput(this.create.model)) this.sendGemini({ realtimeInput: { text: data.text } });
          else {
            const turns = [{ role: "user", parts: [{ text: data.text }] }];
            this.sendGemini({ clientContent: { turns, turnComplete: data.turnComplete ?? true } });
          }
        }
        for (const key of ["videoFrame", "screenData"]) {
          if (data[key] && this.open) {
            const video = { data: data[key], mimeType: data.imageMimeType ?? "image/jpeg" };
            this.ws.send(JSON.stringify({ realtimeInput: { video } }));
          }
        }
        break;
      case "activity_start":
        this.sendGemini({ realtimeInput: { activityStart: {} } });
        break;
      case "activity_end":
        this.recorder?.activityEnd();
        this.sendGemini({ realtimeInput: { activityEnd: {} } });
        break;
      case "end_session":
        this.end();
        break;
      case "configure_vad":
        // The whole setup is locked in the token: turn detection changes from the next call.
        this.emitError("INVALID_STATE", "In direct mode, turn detection changes from your next call.");
        this.emit({ type: "vad_configured", sessionId: this.sessionId, vad: this.grant?.effective?.vad ?? { enabled: true }, timestamp: now() });
        break;
      default:
        break; // retry_turn and the rest have no direct counterpart
    }
  }

  /**
   * Send a microphone frame (16 kHz PCM16) unless the network is not keeping up; it joins the person's turn.
   * @returns {boolean} whether it was sent
   */
  sendAudio(pcm, { backlog = false } = {}) {
    const limit = backlog ? Infinity : MAX_BUFFERED_BYTES;
    if (!this.open || this.ws.bufferedAmount > limit) return false;
    const audio = { data: arrayBufferToBase64(pcm), mimeType: "audio/pcm;rate=16000" };
    this.ws.send(JSON.stringify({ realtimeInput: { audio } }));
    this.recorder?.userAudio(pcm);
    return true;
  }

  /** A control frame for Gemini: now, or once the connection under way is set up. */
  sendGemini(frame) {
    if (this.open) this.ws.send(JSON.stringify(frame));
    else this.backlog.push(frame);
  }

  // -- ending --------------------------------------------------------------------------------------------------------

  /** The person ended the call (Stop, or the page is going away): turns handed on, the server told, Gemini closed. */
  end() {
    if (this.ended) return;
    const sessionId = this.sessionId;
    this.finishSession();
    setTimeout(() => this.emit({ type: "session_ended", sessionId, reason: "client", timestamp: now() }), 0);
  }

  finishSession() {
    this.ended = true;
    this.attempt += 1;
    this.switchPending = false;
    clearTimeout(this.goAwayTimer);
    clearTimeout(this.attemptTimer);
    this.recorder?.flush(); // the last turns go to the outbox
    if (this.sessionId) this.finished = this.endAfterTurns(this.sessionId);
    const ws = this.ws;
    this.ws = null;
    this.ready = false;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000);
  }

  /** Close on purpose: no `onClose` follows, no reconnect stays scheduled, and the session is ended. */
  close() {
    this.cancelReconnect();
    if (!this.ended) this.finishSession();
  }

  /** Close so that `onClose` follows, as when Gemini hung up (the controller then reconnects). */
  hangUp(code = 1000, reason = "") {
    const ws = this.ws;
    if (ws) {
      ws.close(code, reason);
      return;
    }
    // No connection (a token request failed or is on its way): abandon the attempt and say it closed.
    this.attempt += 1;
    setTimeout(() => this.dropped({ code, reason }, false), 0);
  }

  dropped(event, opened) {
    if (this.ended) return;
    this.handlers.onClose({ wasClean: false, ...event }, opened);
  }

  /**
   * Tell the server the session ended once its turns are stored (bounded: END_WAIT_MS), so an end never overtakes
   * them; a call that recorded no turn at all asks for the conversation it created to be given back.
   */
  async endAfterTurns(sessionId) {
    const used = this.turnsRecorded > 0;
    if (used && !this.leaving) await this.outbox.drained(sessionId, END_WAIT_MS);
    await this.postEnd(sessionId, { used });
  }

  /** `used`: the session recorded a turn (then its conversation stays, whether or not the turns are stored yet). */
  postEnd(sessionId, { used = false } = {}) {
    return fetch(`/api/live/sessions/${encodeURIComponent(sessionId)}/end`, {
      method: "POST",
      keepalive: true, // the page may be going away
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": currentCsrfToken(this.csrfToken) },
      body: JSON.stringify(used ? {} : { discardIfUnused: true }),
    }).catch(() => {}); // the server ends sessions it hears nothing of (token expiry) on its own
  }

  // -- helpers -------------------------------------------------------------------------------------------------------

  turnFinished(turn) {
    if (!this.conversationId || !this.sessionId) return;
    this.turnsRecorded += 1;
    this.outbox.add(turn, { conversationId: this.conversationId, sessionId: this.sessionId });
  }

  emit(message) {
    this.handlers.onMessage(message);
  }

  emitError(code, message, { retryAfter = 0 } = {}) {
    const error = { code, message };
    if (retryAfter) error.retryAfter = retryAfter;
    this.emit({ type: "session_error", sessionId: this.sessionId, error, timestamp: now() });
  }

  async requestToken({ conversationId, sessionId = null }) {
    const { model, config, loadConversationContext } = this.create;
    // A new token for a session keeps its settings: then only its id is sent.
    const body = sessionId
      ? { sessionId }
      : { conversationId: conversationId || null, config: config ?? {}, loadConversationContext };
    if (model && !sessionId) body.model = model;
    try {
      const grant = await this.post(TOKEN_URL, body);
      // The server's clock when it minted (absent: no correction), against this device's as the answer arrived.
      const serverTime = Date.parse(grant.serverTime ?? "");
      this.clockSkewMs = Number.isFinite(serverTime) ? serverTime - Date.now() : 0;
      return grant;
    } catch (error) {
      if (error instanceof TokenProblem) throw error;
      throw new TokenProblem("Could not reach the voice server. Check your connection and press Talk again.");
    }
  }

  async post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": currentCsrfToken(this.csrfToken),
      },
      body: JSON.stringify(body),
    });
    let answer = null;
    try {
      answer = await response.json();
    } catch {
      answer = null;
    }
    if (response.ok && answer) return answer;
    const problem = answer?.error ?? {};
    throw new TokenProblem(problem.message || `The server answered HTTP ${response.status}.`, {
      code: String(problem.code ?? (response.status === 401 ? "UNAUTHENTICATED" : "GEMINI_ERROR")).toUpperCase(),
      status: response.status,
      retryAfter: Number(response.headers.get("Retry-After")) || 0,
    });
  }
}
