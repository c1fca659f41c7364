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
