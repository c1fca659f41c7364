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
