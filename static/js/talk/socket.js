// The /live WebSocket of one call (docs/live-protocol.md): opening it with create_session or, after a drop,
// resume_session; JSON and binary frames in and out; what a close code means; the reconnect backoff. It knows
// the wire, not the page: the controller decides what a closed socket means for the call. When to try again is
// reconnect.js's (backoff with jitter within a window); this module only keeps the timers.
import { ReconnectTimers } from "./reconnect.js";

/** ~8 s of 16 kHz PCM16 waiting in the socket: past this, adding more only makes the delay grow. */
const MAX_BUFFERED_BYTES = 256 * 1024;
/**
 * A reconnect attempt that has not resumed the session by then is abandoned and the next one scheduled: a
 * connection to a server that went away can hang rather than fail (a half-open TCP connection, a stuck proxy).
 * Longer than a resume can take on the server (waiting out a crashed server's lease, then Gemini's connect).
 */
const ATTEMPT_TIMEOUT_MS = 20_000;

/**
 * Close codes the server uses (docs/live-protocol.md), the one a browser reports for a connection that died
 * without a close frame (a crashed worker, a network cut), and the one the page uses to simulate a network drop.
 */
export const CLOSE = {
  NORMAL: 1000,
  ABNORMAL: 1006,
  SERVICE_RESTART: 1012, // the server is restarting on purpose (a rolling deploy): resume at once elsewhere
  SIMULATED_DROP: 4000,
  ATTEMPT_TIMEOUT: 4001, // the page gave up on a reconnect attempt that hung
  LOGGED_OUT: 4401,
  BACKPRESSURE: 4408,
};

function websocketUrl() {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/live`;
}

/** create_session's data without settings: earlier messages loaded, answers in audio. */
const DEFAULT_CREATE = { loadConversationContext: true, config: { responseModalities: ["AUDIO"] } };

export class LiveSocket extends ReconnectTimers {
  /**
   * @param {{onMessage(message: object): void, onAudio(buffer: ArrayBuffer): void,
   *          onClose(event: CloseEvent, opened: boolean): void, reconnectWindowMs?: number}} options
   *   `onClose` is called only for a socket that went away by itself, never for one `close()` shut.
   *   `reconnectWindowMs`: how long after a drop reconnecting goes on (the server's LIVE_RECONNECT_WINDOW_SECONDS).
   */
  constructor({ onMessage, onAudio, onClose, reconnectWindowMs }) {
    super(reconnectWindowMs);
    this.handlers = { onMessage, onAudio, onClose };
    this.socket = null;
  }

  /** True when frames can be sent now. */
  get open() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  /**
   * Open a socket and, once open, either resume `sessionId` (a reconnect) or create a session for
   * `conversationId` (null: a new conversation) with the `create` data of the person's settings (settings.js),
   * asking for binary audio both ways.
   */
  connect({ sessionId = null, conversationId = null, create = DEFAULT_CREATE } = {}) {
    const socket = new WebSocket(websocketUrl());
    clearTimeout(this.attemptTimer);
    if (sessionId) {
      this.attemptTimer = setTimeout(() => {
        if (socket === this.socket) socket.close(CLOSE.ATTEMPT_TIMEOUT, "reconnect attempt timed out");
      }, ATTEMPT_TIMEOUT_MS);
    }
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      if (sessionId) {
        this.send({ type: "resume_session", data: { sessionId, binaryAudio: true } });
      } else {
        const data = { ...create, config: { ...create.config, binaryAudio: true } };
        if (conversationId) data.conversationId = conversationId;
        this.send({ type: "create_session", data });
      }
    };
    socket.onmessage = (event) => {
      if (socket !== this.socket) return;
      if (typeof event.data === "string") {
        const message = parseJson(event.data);
        if (message) this.handlers.onMessage(message);
      } else {
        this.handlers.onAudio(event.data);
      }
    };
    socket.onclose = (event) => {
      if (socket !== this.socket) return; // an old socket already replaced or closed
      this.socket = null;
      this.handlers.onClose(event, opened);
    };
  }

  send(message) {
    if (this.open) this.socket.send(JSON.stringify(message));
  }

  /**
   * Send a microphone frame unless the network is not keeping up (old audio is worth less than new).
   * @param {ArrayBuffer} pcm
   * @param {{backlog?: boolean}} [options] `backlog`: a frame from the reconnect queue, never dropped here
   * @returns {boolean} whether it was sent
   */
  sendAudio(pcm, { backlog = false } = {}) {
    // Speech queued during a reconnect is sent whole: the queue already bounded it, and it is what was said.
    const limit = backlog ? Infinity : MAX_BUFFERED_BYTES;
    if (!this.open || this.socket.bufferedAmount > limit) return false;
    this.socket.send(pcm);
    return true;
  }

  /** Close on purpose: no `onClose` follows, and no reconnect stays scheduled. */
  close() {
    this.cancelReconnect();
    const socket = this.socket;
    this.socket = null;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(CLOSE.NORMAL);
  }

  /** Close so that `onClose` follows, as when the server hung up (the controller then reconnects). */
  hangUp(code = CLOSE.NORMAL, reason = "") {
    this.socket?.close(code, reason);
  }
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
