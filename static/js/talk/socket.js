// The /live WebSocket of one call (docs/live-protocol.md): opening it with create_session or, after a drop,
// resume_session; JSON and binary frames in and out; what a close code means; the reconnect backoff. It knows
// the wire, not the page: the controller decides what a closed socket means for the call.

/** Waits before each reconnect attempt; after the last one the call is given up. */
const RECONNECT_DELAYS_MS = [300, 1000, 2000, 4000, 8000, 8000];
/** ~8 s of 16 kHz PCM16 waiting in the socket: past this, adding more only makes the delay grow. */
const MAX_BUFFERED_BYTES = 256 * 1024;

/** Close codes the server uses (docs/live-protocol.md) and the one the page uses to simulate a network drop. */
export const CLOSE = { NORMAL: 1000, SIMULATED_DROP: 4000, LOGGED_OUT: 4401, BACKPRESSURE: 4408 };

function websocketUrl() {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/live`;
}

export class LiveSocket {
  /**
   * @param {{onMessage(message: object): void, onAudio(buffer: ArrayBuffer): void,
   *          onClose(event: CloseEvent, opened: boolean): void}} handlers
   *   `onClose` is called only for a socket that went away by itself, never for one `close()` shut.
   */
  constructor({ onMessage, onAudio, onClose }) {
    this.handlers = { onMessage, onAudio, onClose };
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
  }

  /** True when frames can be sent now. */
  get open() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  /**
   * Open a socket and, once open, either resume `sessionId` (a reconnect) or create a session for
   * `conversationId` (null: a new conversation), asking for binary audio both ways.
   */
  connect({ sessionId = null, conversationId = null } = {}) {
    const socket = new WebSocket(websocketUrl());
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      if (sessionId) {
        this.send({ type: "resume_session", data: { sessionId, binaryAudio: true } });
      } else {
        const data = { loadConversationContext: true, config: { responseModalities: ["AUDIO"], binaryAudio: true } };
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
   * @returns {boolean} whether it was sent
   */
  sendAudio(pcm) {
    if (!this.open || this.socket.bufferedAmount > MAX_BUFFERED_BYTES) return false;
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

  /**
   * Call `reconnect` after the next backoff delay.
   * @returns {boolean} false when every attempt is used up
   */
  scheduleReconnect(reconnect) {
    if (this.attempt >= RECONNECT_DELAYS_MS.length) return false;
    const delay = RECONNECT_DELAYS_MS[this.attempt++];
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      reconnect();
    }, delay);
    return true;
  }

  cancelReconnect() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  /** A session is open again: the next drop starts the backoff from its shortest delay. */
  resetBackoff() {
    this.attempt = 0;
  }
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
