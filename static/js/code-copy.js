// A Copy button on every code block of the rendered messages (the server highlights them; see markdown.py).
// Buttons cannot come from the server: the sanitiser allows no <button> in message HTML, and should not.

const COPIED_MS = 1600;

/** Wrap one `<pre>` in `.codeblock` with its language label and a Copy button (once). */
function decorate(pre) {
  if (pre.parentElement?.classList.contains("codeblock")) return;
  const wrapper = document.createElement("div");
  wrapper.className = "codeblock";
  pre.replaceWith(wrapper);
  const lang = pre.dataset.lang;
  if (lang) {
    const label = document.createElement("span");
    label.className = "code-lang";
    label.textContent = lang; // text, never HTML
    label.setAttribute("aria-hidden", "true");
    wrapper.append(label);
  }
  const button = document.createElement("button");
  button.type = "button";
  button.className = "code-copy";
  button.textContent = "Copy";
  button.setAttribute("aria-label", lang ? `Copy ${lang} code` : "Copy code");
  wrapper.append(button, pre);
}

/** Add Copy buttons to the code blocks under `root`. */
export function decorateCodeBlocks(root) {
  for (const pre of root.querySelectorAll(".md pre")) decorate(pre);
}

async function copy(button) {
  const code = button.parentElement.querySelector("pre code, pre")?.textContent ?? "";
  const label = button.getAttribute("aria-label");
  try {
    await navigator.clipboard.writeText(code);
    button.textContent = "Copied";
    button.dataset.copied = "";
    button.setAttribute("aria-label", "Copied");
  } catch {
    button.textContent = "Copy failed";
  }
  setTimeout(() => {
    button.textContent = "Copy";
    delete button.dataset.copied;
    button.setAttribute("aria-label", label);
  }, COPIED_MS);
}

/** Keep `list`'s code blocks decorated as messages are added or re-rendered, and handle the clicks. */
export function watchCodeBlocks(list) {
  decorateCodeBlocks(list);
  new MutationObserver(() => decorateCodeBlocks(list)).observe(list, { childList: true, subtree: true });
  list.addEventListener("click", (event) => {
    const button = event.target.closest?.(".code-copy");
    if (button && list.contains(button)) copy(button);
  });
}
