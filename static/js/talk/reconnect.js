// When to try the /live socket again after it went away mid-call, and when to stop trying. Pure arithmetic on a
// clock and a random source (both injectable), no timers and no DOM, so the policy can be reasoned about (and
// tested) apart from the socket that follows it. docs/live-protocol.md ("Reconnecting") is the contract.

/** The first backoff delay; each failed attempt doubles it, up to MAX_DELAY_MS. */
export const BASE_DELAY_MS = 250;
/** Past this, waiting longer only delays the person: servers come back in seconds (rolling deploys, a crash). */
export const MAX_DELAY_MS = 5000;
/** A server restarting on purpose (close 1012) has a successor ready: go at once, spread by at most this much. */
export const RESTART_JITTER_MS = 250;
/** How long to keep trying when the page was not told (the server renders the real value into the Talk slot). */
export const DEFAULT_WINDOW_MS = 90_000;

/**
 * Exponential backoff with jitter, bounded by a reconnect window counted from the drop.
 *
 * Each delay is random in [d/2, d] where d = min(MAX_DELAY_MS, BASE_DELAY_MS · 2^attempt): half of it is jitter,
 * so that the pages of every person on a worker that went away do not come back in lockstep, and half a floor, so
 * that a page never hammers a server that is down. After the window (measured from the first drop since a
 * session was last open, not from the last attempt) the call is given up.
 */
export class ReconnectPolicy {
  /**
   * @param {{windowMs?: number, now?: () => number, random?: () => number}} [options]
   *   `now` in milliseconds (performance.now by default: a clock the wall-clock time cannot jump).
   */
  constructor({ windowMs = DEFAULT_WINDOW_MS, now = () => performance.now(), random = Math.random } = {}) {
    this.windowMs = windowMs;
    this.now = now;
    this.random = random;
    this.attempt = 0;
    this.droppedAt = null; // when the current outage began (null: a session is open)
  }

  /** Milliseconds since the outage began (0 when there is none). */
  get elapsedMs() {
    return this.droppedAt === null ? 0 : this.now() - this.droppedAt;
  }

  /**
   * The wait before the next attempt, or null when the window is used up (the call is lost).
   * @param {{immediate?: boolean, notBeforeMs?: number}} [options]
   *   `immediate`: the server said it is restarting (1012 / SERVER_RESTART): 0–RESTART_JITTER_MS, and the
   *   exponential sequence starts over. `notBeforeMs`: the server asked to wait at least this long (retryAfter).
   * @returns {number | null}
   */
  nextDelay({ immediate = false, notBeforeMs = 0 } = {}) {
    if (this.droppedAt === null) this.droppedAt = this.now();
    if (this.elapsedMs >= this.windowMs) return null;
    let delay;
    if (immediate) {
      this.attempt = 0;
      delay = this.random() * RESTART_JITTER_MS;
    } else {
      const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt);
      this.attempt += 1;
      delay = ceiling / 2 + this.random() * (ceiling / 2);
    }
    return Math.round(Math.max(delay, notBeforeMs));
  }

  /** A session is open again (session_created / session_resumed): the next drop starts a fresh window. */
  reset() {
    this.attempt = 0;
    this.droppedAt = null;
  }
}

/**
 * The reconnect timers a call's transport keeps (LiveSocket's /live socket, DirectSession's Gemini socket): the next
 * attempt, scheduled by the policy, and the time limit of the attempt under way (`attemptTimer`, set by the
 * transport). Both transports extend it, so the controller drives them the same way.
 */
export class ReconnectTimers {
  /** @param {number} [windowMs] how long after a drop reconnecting goes on */
  constructor(windowMs) {
    this.policy = new ReconnectPolicy({ windowMs });
    this.timer = null;
    this.attemptTimer = null;
  }

  /**
   * Call `reconnect` after the next delay of the policy.
   * @param {() => void} reconnect
   * @param {{immediate?: boolean, notBeforeMs?: number}} [options] see `ReconnectPolicy.nextDelay`
   * @returns {number | null} the delay chosen, or null when the reconnect window is used up
   */
  scheduleReconnect(reconnect, options = {}) {
    const delay = this.policy.nextDelay(options);
    if (delay === null) return null;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      reconnect();
    }, delay);
    return delay;
  }

  cancelReconnect() {
    clearTimeout(this.timer);
    this.timer = null;
    clearTimeout(this.attemptTimer);
    this.attemptTimer = null;
  }

  /** A session is open (created or resumed): the next drop starts a new window from the shortest delay. */
  resetBackoff() {
    clearTimeout(this.attemptTimer);
    this.attemptTimer = null;
    this.policy.reset();
  }
}
