// The CSRF token to send with a write: Django's `csrftoken` cookie as it is now (a login in another tab rotates it,
// and a token read once when the page loaded would then be refused), else the one the page was rendered with.

const COOKIE = "csrftoken"; // Django's CSRF_COOKIE_NAME (readable by scripts: CSRF_COOKIE_HTTPONLY is off)

/** @param {string} fallback the form's token (csrfmiddlewaretoken), for a page without the cookie */
export function currentCsrfToken(fallback = "") {
  for (const part of document.cookie.split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === COOKIE && value.length) return decodeURIComponent(value.join("="));
  }
  return fallback;
}

/** Whether an API error (docs/api.md's shape) is a refused CSRF token: the request may succeed with the current one. */
export function isCsrfFailure(status, problem) {
  return status === 403 && problem?.code === "permission_denied" && /^CSRF Failed/i.test(String(problem?.message ?? ""));
}
