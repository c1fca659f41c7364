// What the chat and the Talk UI fetch about a conversation: its pages' URLs, the server's rendering of its
// messages, and its JSON summary. One place, so both scripts ask the server the same way.

/** Fill a `data-*-url-template` (Django's `{% url … 'CONVERSATION_ID' %}`) with a conversation's public id. */
export const withId = (template, id) => template.replace("CONVERSATION_ID", encodeURIComponent(id));

/**
 * The server's rendering of a conversation's messages (Markdown sanitised server-side), as a fragment to insert;
 * null if it could not be read (an HTTP error, or no network), so callers fall back rather than fail.
 */
export async function fetchRenderedMessages(url) {
  try {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (!response.ok) return null;
    const holder = document.createElement("template");
    holder.innerHTML = await response.text(); // server-rendered, escaped and sanitised
    return holder.content;
  } catch {
    return null;
  }
}

/** The conversation's JSON (`GET /api/conversations/<id>`), or null: a title can wait for the next page load. */
export async function fetchConversation(id) {
  try {
    const response = await fetch(`/api/conversations/${encodeURIComponent(id)}`, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    return response.ok ? await response.json() : null;
  } catch {
    return null;
  }
}

/** False only when the server says the conversation is gone (404); true when it is there or the answer is unknown. */
export async function conversationExists(id) {
  try {
    const response = await fetch(`/api/conversations/${encodeURIComponent(id)}`, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    return response.status !== 404;
  } catch {
    return true;
  }
}

/**
 * After a conversation's first reply the server names it in the background (conversations/titles.py): ask a few
 * times, less often as time goes (1.5 s, then ×1.5: about half a minute in all, for a title model that is slow or
 * fails and falls back to the person's first words), and show the new title in the header, the tab and the sidebar
 * once it is there.
 */
export async function followTitle(chat, id, { tries = 6, firstMs = 1500, growth = 1.5 } = {}) {
  const heading = chat.querySelector(".chat-title");
  const before = heading?.textContent ?? "";
  for (let i = 0; i < tries; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, firstMs * growth ** i));
    if (chat.dataset.conversationId !== id) return; // the page moved on
    const title = (await fetchConversation(id))?.title;
    if (title && title !== before) {
      if (heading) heading.textContent = title;
      document.title = `${title} · Apsara`;
      const current = document.querySelector("#side-list a.current");
      if (current) current.textContent = title;
      const input = chat.querySelector(".chat-head details.menu input[name=title]");
      if (input) input.value = title;
      return;
    }
  }
}
