// A direct call's finished turns on their way to the server (POST /api/conversations/<id>/live-turns,
// docs/live-direct.md), in order. A post that fails for a reason that passes (the network, a 5xx, 401 until the
// person logs in again, a 403 refusing a stale CSRF token, 429) stays in IndexedDB (every turn is written there
// first, keyed by its message id, the server's idempotency key) and is sent again with backoff: when the browser is
// back online, on the next page load, or after the delay. Any other 4xx will never succeed: it is logged and
// dropped. Each person has their own database (several people may use one browser): a page sends only the turns of
// the person logged in. Nothing about Gemini here.
import { currentCsrfToken, isCsrfFailure } from "../csrf.js";

const DB_PREFIX = "apsara-talk-user-"; // + the user's id (data-user-id)
const STORE = "live-turns";
const BASE_DELAY_MS = 1000;
const MAX_DELAY_MS = 60_000;

/** The URL a turn is posted to. */
export function liveTurnsUrl(conversationId) {
  return `/api/conversations/${encodeURIComponent(conversationId)}/live-turns`;
}

/** IndexedDB, or null where it is unavailable (then kept turns last as long as the page). */
function openDb(name) {
  return new Promise((resolve) => {
    let request;
    try {
      request = indexedDB.open(name, 1);
    } catch {
      resolve(null);
      return;
    }
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "id" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => resolve(null);
  });
}

function run(db, mode, action) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const result = action(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(result?.result);
    tx.onerror = () => reject(tx.error);
  });
}

/** Why a post failed: `retry` when trying again later can succeed. */
class PostFailed extends Error {
  constructor(message, { retry, retryAfterMs = 0 }) {
    super(message);
    this.retry = retry;
    this.retryAfterMs = retryAfterMs;
  }
}

export class TurnOutbox {
  /**
   * @param {{userId: string, csrfToken: string, onSaved(entry: object, message: object): void}} options
   *   `userId`: the person logged in (only their turns are kept and sent here); `csrfToken`: the form's, used when
   *   the cookie is missing; `onSaved`: a turn was stored (its entry, and the message as the server answered it).
   */
  constructor({ userId, csrfToken, onSaved }) {
    this.userId = String(userId ?? "");
    this.csrfToken = csrfToken;
    this.onSaved = onSaved;
    this.queue = []; // entries in order, sent one at a time
    this.sending = false;
    this.attempt = 0;
    this.timer = null;
    this.seq = Date.now();
    this.db = openDb(`${DB_PREFIX}${this.userId}`);
    this.waiters = new Set(); // drained(): each waits until no entry of its session is left
    this.memory = new Map(); // kept entries when IndexedDB is unavailable
    this.kept = new Map(); // id → the write of a new entry into IndexedDB
    window.addEventListener("online", () => this.retryNow());
  }

  /**
   * Post one finished turn (direct-recorder.js) of `sessionId` in `conversationId`, after those before it.
   */
  add(turn, { conversationId, sessionId }) {
    const entry = {
      id: turn.id,
      seq: (this.seq += 1),
      userId: this.userId,
      conversationId,
      fields: {
        id: turn.id,
        sessionId,
        role: turn.role,
        transcript: turn.transcript,
        startedAt: turn.startedAt,
        interrupted: turn.interrupted ? "true" : "false",
        ...(turn.usage ? { usage: JSON.stringify(turn.usage) } : {}),
      },
      audio: turn.audio,
    };
    // Written ahead: a page closed while the post is on its way loses nothing (the next load sends it again).
    this.kept.set(entry.id, this.keep(entry));
    this.queue.push(entry);
    this.pump();
  }

  /** Send what an earlier page (or an earlier failure) kept: on load and when the network comes back. */
  async resend() {
    const kept = await this.keptEntries();
    const known = new Set(this.queue.map((e) => e.id));
    for (const entry of kept.sort((a, b) => a.seq - b.seq)) {
      if (!known.has(entry.id) && entry.userId === this.userId) this.queue.push(entry);
    }
    this.pump();
  }

  retryNow() {
    clearTimeout(this.timer);
    this.timer = null;
    this.attempt = 0;
    this.resend();
  }

  /** Whether turns are still waiting to be stored (for tests and the end of a call). */
  get pending() {
    return this.queue.length;
  }

  /**
   * Wait until every turn of `sessionId` handed to the outbox has been stored (or dropped), at most `timeoutMs`.
   * @returns {Promise<boolean>} true when none is left, false when some still wait (a failure being retried)
   */
  drained(sessionId, timeoutMs) {
    const waiting = () => this.queue.some((entry) => entry.fields.sessionId === sessionId);
    if (!waiting()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = {
        check: () => {
          if (waiting()) return;
          done(true);
        },
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      const done = (value) => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve(value);
      };
      this.waiters.add(waiter);
    });
  }

  settled() {
    for (const waiter of [...this.waiters]) waiter.check();
  }

  async pump() {
    if (this.sending || this.timer) return;
    this.sending = true;
    try {
      while (this.queue.length) {
        const entry = this.queue[0];
        await this.kept.get(entry.id);
        this.kept.delete(entry.id);
        try {
          const message = await this.post(entry);
          this.queue.shift();
          this.attempt = 0;
          await this.forget(entry.id);
          this.onSaved(entry, message);
          this.settled();
        } catch (error) {
          if (!(error instanceof PostFailed) || !error.retry) {
            console.error(`Apsara: a spoken turn (${entry.id}) could not be stored and was dropped:`, error.message);
            this.queue.shift();
            await this.forget(entry.id);
            this.settled();
            continue;
          }
          // It stays kept (those after it wait: turns go in order) and is tried again later.
          const delay = Math.max(error.retryAfterMs, Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt));
          this.attempt += 1;
          this.timer = setTimeout(() => {
            this.timer = null;
            this.pump();
          }, delay);
          return;
        }
      }
    } finally {
      this.sending = false;
    }
  }

  async post(entry) {
    const body = new FormData();
    for (const [key, value] of Object.entries(entry.fields)) body.append(key, value);
    if (entry.audio) body.append("audio", entry.audio, `${entry.id}.wav`);
    let response;
    try {
      response = await fetch(liveTurnsUrl(entry.conversationId), {
        method: "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": currentCsrfToken(this.csrfToken) },
        body,
      });
    } catch (error) {
      throw new PostFailed(`the server could not be reached (${error.message})`, { retry: true });
    }
    if (response.ok) return response.json().catch(() => ({}));
    let detail = `HTTP ${response.status}`;
    let problem = null;
    try {
      problem = (await response.json())?.error;
      if (problem?.message) detail += `: ${problem.field ? `${problem.field}: ` : ""}${problem.message}`;
    } catch {
      // not JSON
    }
    // 401: until the person logs in again; a refused CSRF token: until the cookie holds the current one.
    const status = response.status;
    const retry = status >= 500 || status === 401 || status === 429 || isCsrfFailure(status, problem);
    const retryAfterMs = (Number(response.headers.get("Retry-After")) || 0) * 1000;
    throw new PostFailed(detail, { retry, retryAfterMs });
  }

  // -- IndexedDB ---------------------------------------------------------------------------------------------------

  async keep(entry) {
    const db = await this.db;
    if (!db) {
      this.memory.set(entry.id, entry);
      return;
    }
    try {
      await run(db, "readwrite", (store) => store.put(entry));
    } catch {
      this.memory.set(entry.id, entry);
    }
  }

  async forget(id) {
    this.memory.delete(id);
    const db = await this.db;
    if (!db) return;
    try {
      await run(db, "readwrite", (store) => store.delete(id));
    } catch {
      // gone already
    }
  }

  async keptEntries() {
    const db = await this.db;
    let stored = [];
    if (db) {
      try {
        stored = (await run(db, "readonly", (store) => store.getAll())) ?? [];
      } catch {
        stored = [];
      }
    }
    const ids = new Set(stored.map((e) => e.id));
    return [...stored, ...[...this.memory.values()].filter((e) => !ids.has(e.id))];
  }
}
