// The chat view: send a prompt, stream the reply into the page, then show the server-rendered (sanitised) result.
import { fetchRenderedMessages, followTitle, withId } from "./conversation-api.js";
import { pendingMessage } from "./message-element.js";
import { readEventStream } from "./sse.js";
import { threadScroll } from "./thread-scroll.js";

const chat = document.getElementById("chat");
const form = document.getElementById("composer");
const prompt = document.getElementById("prompt");
const sendButton = document.getElementById("send");
const list = document.getElementById("messages");
const errorBox = document.getElementById("chat-error");
const csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;

let conversationId = chat.dataset.conversationId || null; // null: the first prompt creates the conversation
let busy = false;

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

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
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

async function send(text) {
  busy = true;
  sendButton.disabled = true;
  chat.dataset.state = "streaming";
  showError("");
  list.querySelector("[data-empty]")?.remove();

  list.append(messageElement("user", text).article);
  const reply = messageElement("model", "");
  const dots = typingIndicator();
  reply.body.append(dots);
  list.append(reply.article);
  scrollToEnd();

  let received = "";
  let finished = false;
  try {
    const response = await fetch(chat.dataset.generateUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream", "X-CSRFToken": csrfToken },
      body: JSON.stringify(conversationId ? { prompt: text, conversationId } : { prompt: text }),
    });
    if (!response.ok || !(response.headers.get("Content-Type") ?? "").includes("text/event-stream")) {
      throw await errorFromResponse(response);
    }
    for await (const { event, data } of readEventStream(response.body)) {
      const payload = parseData(data);
      if (event === "meta") {
        adoptConversation(payload.conversationId, payload.conversation);
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
    if (!(await refreshMessages())) reply.article.classList.remove("pending");
    if (list.querySelectorAll(".msg-model").length === 1) followTitle(chat, conversationId); // named after the first reply
  } catch (error) {
    dots.remove();
    reply.article.classList.add("failed");
    if (!received) reply.content.textContent = "No reply.";
    const note = document.createElement("div");
    note.className = "msg-error";
    note.textContent = error instanceof ChatError ? error.message : "Network error: the reply could not be received.";
    reply.body.append(note);
    showError(note.textContent);
    chat.dataset.state = "error";
  } finally {
    busy = false;
    sendButton.disabled = false;
    prompt.focus();
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

prompt.addEventListener("keydown", (event) => {
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

scrollToEnd();
if (!list.querySelector(".msg")) prompt.focus();
// Ready: the handlers above are in place, so sending can no longer fall back to a plain form submit.
sendButton.disabled = false;
chat.dataset.ready = "true";
