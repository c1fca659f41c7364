// The call's turns in the message list: live transcript bubbles ("pending", as Gemini's transcriptions arrive),
// then the server's rendering of each saved message (with its recording) in their place. The server is the
// record; the bubbles only bridge the seconds until it has saved the turn.
import { audioPlayer } from "../audio-player.js";
import { fetchRenderedMessages, withId } from "../conversation-api.js";
import { pendingMessage } from "../message-element.js";
import { threadScroll } from "../thread-scroll.js";

export class Transcripts {
  /**
   * @param {{list: HTMLElement, messagesUrlTemplate: string | undefined}} options
   *   `messagesUrlTemplate`: `#chat[data-messages-url-template]`, the conversation's rendered message list.
   */
  constructor({ list, messagesUrlTemplate }) {
    this.list = list;
    this.messagesUrlTemplate = messagesUrlTemplate;
    this.pending = { user: [], model: [] }; // bubbles waiting for message_saved, oldest first
    this.savedQueue = [];
    this.refreshing = false;
    this.refreshAgain = false;
    this.scroll = threadScroll(list); // follows new bubbles unless the person scrolled up
  }

  /** A new bubble for `role`, labelled "spoken" or "typed" as the server's rendering will be. */
  bubble(role, { typed = false } = {}) {
    const { article, meta, content } = pendingMessage(role, {
      extraClasses: "msg-live talk-pending",
      contentClasses: "talk-transcript",
    });
    article.dataset.pendingRole = role;
    article.dataset.input = typed ? "typed" : "spoken";
    const badge = document.createElement("span");
    badge.className = typed ? "badge badge-typed" : "badge badge-live badge-spoken";
    badge.textContent = typed ? "typed" : "spoken";
    meta.append(badge);
    this.list.querySelector("[data-empty]")?.remove();
    // What the person said goes before the model's answer even when its transcript arrives late.
    const before = role === "user" ? this.pending.model.find((b) => !b.classList.contains("talk-done")) : null;
    if (before) before.before(article);
    else this.list.append(article);
    this.pending[role].push(article);
    article.content = content;
    return article;
  }

  /** Add transcribed text to the turn under way for `role` ("" opens its bubble before any text arrives). */
  append(role, text) {
    let bubble = this.pending[role].at(-1);
    if (!bubble || bubble.classList.contains("talk-done") || bubble.classList.contains("talk-orphan")) {
      bubble = this.bubble(role);
    }
    bubble.content.textContent += text; // followed by thread-scroll.js unless the person scrolled up
  }

  /** Typed text sent into the session: shown at once, and the list follows it even if scrolled up. */
  appendTyped(text) {
    this.bubble("user", { typed: true }).content.textContent = text;
    this.scroll.follow();
  }

  /** Barge-in: the model's latest bubble was cut short. */
  markInterrupted() {
    this.pending.model.at(-1)?.classList.add("talk-interrupted");
  }

  /** The turn is over: the next transcript text opens new bubbles. */
  markTurnDone() {
    for (const bubble of [...this.pending.model, ...this.pending.user]) bubble.classList.add("talk-done");
  }

  /** The call ended: what is left waits for the final read of the list (`settle`), which removes it. */
  orphanAll() {
    for (const bubble of [...this.pending.user, ...this.pending.model]) bubble.classList.add("talk-orphan");
  }

  /** `message_saved` for this conversation: bring in the server's rendering (bursts coalesce into one request). */
  saved(summary, conversationId) {
    this.savedQueue.push(summary ?? {});
    this.refresh(conversationId);
  }

  async refresh(conversationId) {
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = true;
    try {
      do {
        this.refreshAgain = false;
        const saved = this.savedQueue;
        this.savedQueue = [];
        const ok = await this.merge(conversationId);
        if (!ok) for (const summary of saved) this.insertSummary(summary);
        for (const summary of saved) this.retire(summary);
      } while (this.refreshAgain);
    } finally {
      this.refreshing = false;
    }
  }

  /** Insert the server's rendering of messages not on the page yet, in the server's order. */
  async merge(conversationId) {
    if (!this.messagesUrlTemplate || !conversationId) return false;
    const fragment = await fetchRenderedMessages(withId(this.messagesUrlTemplate, conversationId));
    if (!fragment) return false;
    let previous = null;
    for (const article of fragment.querySelectorAll("article[data-message-id]")) {
      const existing = this.byId(article.dataset.messageId);
      if (existing) {
        previous = existing;
        continue;
      }
      article.classList.add("talk-new");
      if (previous) previous.after(article);
      else this.list.prepend(article);
      previous = article;
    }
    this.list.querySelector("[data-empty]")?.remove();
    return true;
  }

  /**
   * After a call: read the list once more (the last turns are saved as the session ends, and their
   * message_saved may not have arrived) and drop the orphaned bubbles the saved messages replace.
   */
  async settle(conversationId) {
    if (!(await this.merge(conversationId))) return;
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
    if (!summary.id || this.byId(summary.id)) return;
    const article = document.createElement("article");
    article.className = `msg msg-${summary.role} msg-live`;
    article.id = summary.id;
    article.dataset.messageId = summary.id;
    article.dataset.role = summary.role;
    const body = document.createElement("div");
    body.className = "msg-body";
    if (summary.hasAudio) {
      body.append(audioPlayer(`/api/files/${encodeURIComponent(summary.id)}/download`, summary.audioDuration));
    }
    const text = document.createElement("div");
    text.textContent = summary.text ?? "";
    body.append(text);
    article.append(body);
    const firstPending = this.list.querySelector(".talk-pending");
    if (firstPending) firstPending.before(article);
    else this.list.append(article);
  }

  /** The saved message replaces the oldest transcript bubble of its role. */
  retire(summary) {
    const role = summary.role;
    if (role !== "user" && role !== "model") return;
    if (!this.byId(summary.id ?? "")) return;
    this.pending[role].shift()?.remove();
  }

  byId(id) {
    return this.list.querySelector(`[data-message-id="${CSS.escape(id)}"]`);
  }
}
