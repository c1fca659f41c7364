// Turns Gemini ended with nothing (`turn_silent`: no audio, no text): "No answer" in the thread, with a Retry that
// asks the server to send the turn again (`retry_turn`, docs/live-protocol.md). Kept apart from transcripts.js:
// these bubbles are never saved messages, so the transcript bookkeeping never has to know about them.
import { pendingMessage } from "../message-element.js";

export class SilentTurns {
  /**
   * @param {{list: HTMLElement, retry: (turnId: string) => boolean}} options
   *   `retry` sends `retry_turn` for a turn id; false if it could not be sent (no session).
   */
  constructor({ list, retry }) {
    this.list = list;
    this.retry = retry;
  }

  /** Show a `turn_silent`: "No answer", and Retry while the session lasts. */
  show(turnId) {
    const { article, body, content } = pendingMessage("model", { extraClasses: "msg-live talk-silent" });
    article.classList.remove("pending");
    article.dataset.silentTurn = turnId;
    content.textContent = "No answer";
    content.classList.add("no-answer");
    const row = document.createElement("div");
    row.className = "msg-error-row";
    const note = document.createElement("div");
    note.className = "muted small";
    note.setAttribute("role", "status");
    note.textContent = "Gemini ended its turn without saying anything.";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "btn msg-retry";
    button.textContent = "Retry";
    button.setAttribute("aria-label", "Retry: ask Gemini again");
    button.addEventListener("click", () => {
      // The answer arrives as any other turn does; this bubble has nothing more to say.
      if (this.retry(turnId)) article.remove();
    });
    row.append(note, button);
    body.append(row);
    this.list.querySelector("[data-empty]")?.remove();
    this.list.append(article);
    const list = this.list;
    if (list.scrollHeight - list.scrollTop - list.clientHeight < 240) list.scrollTop = list.scrollHeight;
  }

  /** Gemini answered after all (a newer turn), or the session ended: the server would refuse a retry now. */
  expire() {
    for (const button of this.list.querySelectorAll(".talk-silent .msg-retry")) button.remove();
  }
}
