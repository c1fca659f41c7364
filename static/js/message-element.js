// The one client-side builder of a pending message bubble, shaped like the server's `_message.html`.

/**
 * Build `<article class="msg msg-{role} pending …">` with its "You"/"Gemini" label and an empty plain-text body.
 * Text goes in with `content.textContent`: it is never parsed as HTML.
 */
export function pendingMessage(role, { extraClasses = "", contentClasses = "" } = {}) {
  const article = document.createElement("article");
  article.className = `msg msg-${role} pending ${extraClasses}`.trim();
  article.dataset.role = role;
  const meta = document.createElement("div");
  meta.className = "msg-meta";
  const who = document.createElement("span");
  who.className = "msg-who";
  who.textContent = role === "user" ? "You" : "Gemini";
  meta.append(who);
  const body = document.createElement("div");
  body.className = "msg-body";
  const content = document.createElement("div");
  content.className = `streaming-text ${contentClasses}`.trim();
  body.append(content);
  article.append(meta, body);
  return { article, meta, body, content };
}

/**
 * The row under a reply that did not come (a failure, or "No answer"): a note and a Retry button. Chat and Talk
 * both use it, so the two look and read the same.
 * @param {{message: string, noteClass: string, role: string, onRetry: () => void}} options
 */
export function retryRow({ message, noteClass, role, onRetry }) {
  const row = document.createElement("div");
  row.className = "msg-error-row";
  const note = document.createElement("div");
  note.className = noteClass;
  note.setAttribute("role", role);
  note.textContent = message;
  const again = document.createElement("button");
  again.type = "button";
  again.className = "btn msg-retry";
  again.textContent = "Retry";
  again.setAttribute("aria-label", "Retry: ask Gemini again");
  again.addEventListener("click", onRetry);
  row.append(note, again);
  return row;
}
