// Turns Gemini ended with nothing (`turn_silent`: no audio, no text): "No answer" in the thread, with a Retry that
// asks the server to send the turn again (`retry_turn`, docs/live-protocol.md). Kept apart from transcripts.js:
// these bubbles are never saved messages, so the transcript bookkeeping never has to know about them.
import { pendingMessage, retryRow } from "../message-element.js";

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
    body.append(
      retryRow({
        message: "Gemini ended its turn without saying anything.",
        noteClass: "muted small",
        role: "status",
        // The answer arrives as any other turn does; this bubble has nothing more to say.
        onRetry: () => {
          if (this.retry(turnId)) article.remove();
        },
      }),
    );
    this.list.querySelector("[data-empty]")?.remove();
    this.list.append(article); // followed (or announced) by thread-scroll.js, as every new turn is
  }

  /** Gemini answered after all (a newer turn), or the session ended: the server would refuse a retry now. */
  expire() {
    for (const button of this.list.querySelectorAll(".talk-silent .msg-retry")) button.remove();
  }
}
