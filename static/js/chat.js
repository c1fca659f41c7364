// The chat view: send a prompt, stream the reply into the page, then show the server-rendered (sanitised) result.
import { watchCodeBlocks } from "./code-copy.js";
import { currentCsrfToken } from "./csrf.js";
import { fetchRenderedMessages, followTitle, withId } from "./conversation-api.js";
import { pendingMessage, retryRow } from "./message-element.js";
import { readEventStream } from "./sse.js";
import { threadScroll } from "./thread-scroll.js";

const chat = document.getElementById("chat");
const form = document.getElementById("composer");
const prompt = document.getElementById("prompt");
const sendButton = document.getElementById("send");
const stopButton = document.getElementById("stop");
const list = document.getElementById("messages");
const formCsrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;

let conversationId = chat.dataset.conversationId || null; // null: the first prompt creates the conversation
let busy = false;
let stopReply = null; // while a reply streams: stops it (the Stop button, Escape)

// How long to wait for the server to store a stopped reply before showing the page's own copy of it.
const STOPPED_SAVE_POLLS = 10;
const STOPPED_SAVE_POLL_MS = 300;

class ChatError extends Error {
  constructor(message, code = "") {
    super(message);
    this.code = code;
  }
}

/** Show the end of the list and follow it (thread-scroll.js follows new content unless the person scrolled up). */
function scrollToEnd() {
  threadScroll(list).follow();
}

function autosize() {
  prompt.style.height = "auto";
  prompt.style.height = `${prompt.scrollHeight}px`;
}

/** Build a message element like the server's, with the text set as plain text (never parsed as HTML). */
function messageElement(role, text) {
  const { article, body, content } = pendingMessage(role);
  content.textContent = text;
  return { article, body, content };
}

function typingIndicator() {
  const dots = document.createElement("span");
  dots.className = "typing";
  dots.setAttribute("aria-label", "Gemini is writing");
  dots.append(document.createElement("i"), document.createElement("i"), document.createElement("i"));
  return dots;
}

async function errorFromResponse(response) {
  if (response.status === 403 || response.status === 401) {
    return new ChatError("Your session has expired. Reload the page and log in again.", "FORBIDDEN");
  }
  try {
    const body = await response.json();
    const error = body.error ?? body;
    const message = error.message ?? error.detail ?? `The server answered ${response.status}.`;
    return new ChatError(message, error.code ?? "");
  } catch {
    return new ChatError(`The server answered ${response.status}.`);
  }
}

function parseData(data) {
  try {
    return JSON.parse(data);
  } catch {
    return {};
  }
}

/** Take on the conversation the server created for the first prompt: URL, title, menu, sidebar. */
function adoptConversation(id, conversation) {
  if (id === null) return forgetConversation();
  if (!id || id === conversationId) return;
  conversationId = id;
  chat.dataset.conversationId = id;
  document.getElementById("talk-slot").dataset.conversationId = id;
  const url = withId(chat.dataset.detailUrlTemplate, id);
  history.replaceState(null, "", url);
  const title = conversation?.title || "Untitled conversation";
  chat.querySelector(".chat-title").textContent = title;
  document.title = `${title} · Apsara`;
  const menu = chat.querySelector(".chat-head details.menu");
  for (const menuForm of menu.querySelectorAll("form")) {
    menuForm.action = withId(menuForm.getAttribute("action"), id);
  }
  menu.querySelector("input[name=title]").value = conversation?.title ?? "";
  menu.hidden = false;
  document.dispatchEvent(new CustomEvent("apsara:conversation", { detail: { conversationId: id } }));
  const link = document.createElement("a");
  link.href = url;
  link.className = "current";
  link.setAttribute("aria-current", "page");
  link.textContent = title;
  document.getElementById("side-list")?.prepend(link);
}

/** The conversation on screen is gone (a voice call in which nothing was said): the page is a new one again. */
function forgetConversation() {
  if (!conversationId) return;
  document.querySelector(`#side-list a[href="${CSS.escape(withId(chat.dataset.detailUrlTemplate, conversationId))}"]`)?.remove();
  conversationId = null;
  chat.dataset.conversationId = "";
  document.getElementById("talk-slot").dataset.conversationId = "";
  history.replaceState(null, "", chat.dataset.newUrl);
  chat.querySelector(".chat-title").textContent = "New conversation";
  document.title = "New conversation · Apsara";
  chat.querySelector(".chat-head details.menu").hidden = true;
}

/** A message id for a new prompt (`msg_` + 24 hex, as the server's): asking again with it never saves it twice. */
function newMessageId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `msg_${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The "interrupted" badge the server's `_message.html` shows on a reply that was cut off. */
function markInterrupted(reply) {
  const badge = document.createElement("span");
  badge.className = "badge badge-warn";
  badge.title = "The reply was cut off";
  badge.textContent = "interrupted";
  reply.meta.append(badge);
}

/**
 * Show why a reply did not come, once, where it would have been, with a Retry button that asks again (the prompt
 * keeps its message id, so the server does not store it twice).
 */
function showFailure(reply, { message, noAnswer = false, retry }) {
  reply.article.classList.add(noAnswer ? "no-reply" : "failed");
  if (!reply.content.textContent) {
    reply.content.textContent = noAnswer ? "No answer" : "";
    reply.content.classList.toggle("no-answer", noAnswer);
  }
  const row = retryRow({
    message,
    noteClass: noAnswer ? "muted small" : "msg-error",
    role: "alert",
    onRetry: () => {
      if (busy) return;
      reply.article.remove();
      retry();
    },
  });
  reply.body.append(row);
  return row.querySelector(".msg-retry");
}

/** After Stop: show the server's rendering once it has stored the partial reply (it notices the abort itself). */
async function refreshUntilStored(messageId) {
  for (let i = 0; i < STOPPED_SAVE_POLLS; i++) {
    const fragment = await fetchRenderedMessages(withId(chat.dataset.messagesUrlTemplate, conversationId));
    if (fragment?.getElementById?.(messageId) || fragment?.querySelector?.(`[data-message-id="${messageId}"]`)) {
      list.replaceChildren(fragment);
      scrollToEnd();
      return true;
    }
    await new Promise((resolve) => setTimeout(resolve, STOPPED_SAVE_POLL_MS));
  }
  return false;
}

/**
 * Replace the message list with the server's rendering (Markdown sanitised server-side); false if it could not
 * be read, and the streamed text stays as it is.
 */
async function refreshMessages() {
  const showAll = new URLSearchParams(location.search).get("all") === "1";
  const fragment = await fetchRenderedMessages(
    withId(chat.dataset.messagesUrlTemplate, conversationId) + (showAll ? "?all=1" : ""),
  );
  if (!fragment) return false;
  list.replaceChildren(fragment); // followed (or announced) by thread-scroll.js
  return true;
}

function setStreaming(streaming) {
  busy = streaming;
  sendButton.disabled = streaming;
  sendButton.hidden = streaming;
  stopButton.hidden = !streaming;
  if (!streaming) stopReply = null;
}

/**
 * Send a prompt and stream the reply. `messageId` is the prompt's idempotency key (new for a new prompt, the same
 * for Retry); `userArticle` is the prompt already on the page when asking again.
 */
async function send(text, { messageId = newMessageId(), userArticle = null } = {}) {
  setStreaming(true);
  chat.dataset.state = "streaming";
  list.querySelector("[data-empty]")?.remove();

  if (!userArticle) list.append(messageElement("user", text).article);
  const promptArticle = userArticle ?? list.lastElementChild; // what Retry asks again under
  const reply = pendingMessage("model");
  const dots = typingIndicator();
  reply.body.append(dots);
  list.append(reply.article);
  scrollToEnd();

  const aborter = new AbortController();
  let stopped = false;
  stopReply = () => {
    stopped = true;
    aborter.abort();
  };
  let received = "";
  let finished = false;
  let modelMessageId = null;
  const retry = () => send(text, { messageId, userArticle: promptArticle });
  try {
    const body = { prompt: text, messageId, ...(conversationId ? { conversationId } : {}) };
    const response = await fetch(chat.dataset.generateUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream", "X-CSRFToken": currentCsrfToken(formCsrfToken) },
      body: JSON.stringify(body),
      signal: aborter.signal,
    });
    if (!response.ok || !(response.headers.get("Content-Type") ?? "").includes("text/event-stream")) {
      throw await errorFromResponse(response);
    }
    for await (const { event, data } of readEventStream(response.body)) {
      const payload = parseData(data);
      if (event === "meta") {
        adoptConversation(payload.conversationId, payload.conversation);
        modelMessageId = payload.modelMessageId ?? null;
      } else if (event === "chunk" && typeof payload.text === "string") {
        received += payload.text;
        reply.content.textContent = received;
      } else if (event === "done") {
        finished = true;
      } else if (event === "error") {
        throw new ChatError(payload.message ?? "Gemini could not finish the reply.", payload.code ?? "");
      }
    }
    if (!finished) throw new ChatError("The connection closed before the reply finished.");
    dots.remove();
    chat.dataset.state = "idle";
    // The prompt is answered: a copy kept in the input after an earlier failure is done with.
    if (prompt.value.trim() === text) {
      prompt.value = "";
      autosize();
    }
    setStreaming(false);
    if (!(await refreshMessages())) reply.article.classList.remove("pending");
    if (list.querySelectorAll(".msg-model").length === 1) followTitle(chat, conversationId); // named after the first reply
  } catch (error) {
    dots.remove();
    setStreaming(false);
    if (stopped) {
      // Stopped: what arrived stays, marked as the server stores it (interrupted); nothing is retried by itself.
      chat.dataset.state = "idle";
      reply.article.classList.remove("pending");
      if (received) {
        markInterrupted(reply);
        if (modelMessageId) await refreshUntilStored(modelMessageId);
      } else {
        showFailure(reply, { message: "Stopped before Gemini answered.", noAnswer: true, retry });
      }
      return;
    }
    const noAnswer = error instanceof ChatError && error.code === "EMPTY_REPLY";
    if (received) markInterrupted(reply);
    showFailure(reply, {
      message: error instanceof ChatError ? error.message : "Network error: the reply could not be received.",
      noAnswer,
      retry,
    });
    // Never lose what was typed: it goes back in the input unless the person has started typing something else.
    if (!prompt.value.trim()) {
      prompt.value = text;
      autosize();
    }
    chat.dataset.state = noAnswer ? "no-answer" : "error";
    scrollToEnd();
  } finally {
    if (!busy) prompt.focus();
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = prompt.value.trim();
  if (!text || busy) return;
  // During a voice session the Talk UI (talk/controller.js) takes typed text into the live session (it cancels this event).
  const routed = !chat.dispatchEvent(new CustomEvent("chat:submit", { cancelable: true, detail: { text } }));
  prompt.value = "";
  autosize();
  if (!routed) send(text);
});

stopButton.addEventListener("click", () => stopReply?.());
prompt.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && stopReply) {
    event.preventDefault();
    stopReply();
    return;
  }
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    form.requestSubmit();
  }
});
prompt.addEventListener("input", autosize);
// A voice session (talk/controller.js) that created the conversation hands it over like the first typed prompt does.
chat.addEventListener("talk:conversation", (event) => adoptConversation(event.detail.id, event.detail.conversation));

// Other parts of the page (the Talk UI) ask for the list to be re-rendered after they saved messages.
document.addEventListener("apsara:refresh-messages", () => {
  if (conversationId && !busy) refreshMessages();
});

watchCodeBlocks(list);
scrollToEnd();
if (!list.querySelector(".msg")) prompt.focus();
// Ready: the handlers above are in place, so sending can no longer fall back to a plain form submit.
sendButton.disabled = false;
chat.dataset.ready = "true";
