// The message list follows new turns (typed or spoken, streaming or saved) unless the person has scrolled up to
// read; then a "New messages" button appears above the composer and takes them down when pressed.
// One follower per list, shared by chat.js and the Talk UI: it watches the list itself (content added, the list
// resized when the Talk panel opens), so neither script has to remember to scroll.

const NEAR_END_PX = 48; // this close to the end counts as reading the end
const followers = new WeakMap();

class ThreadScroll {
  /** @param {HTMLElement} list the scrolling message list (`#messages`) */
  constructor(list) {
    this.list = list;
    this.following = true;
    this.lastTop = list.scrollTop;
    this.pill = this.buildPill();
    list.addEventListener("scroll", () => this.onScroll(), { passive: true });
    // Content added or changed (a bubble, a streamed word, the server's rendering): follow it, or say it is there.
    new MutationObserver((records) => this.onChange(records)).observe(list, {
      childList: true,
      subtree: true,
      characterData: true,
    });
    // The list got shorter (the Talk panel opened, the composer grew, a phone keyboard): keep its end in view.
    new ResizeObserver(() => {
      if (this.following) this.toEnd();
    }).observe(list);
  }

  buildPill() {
    const pill = document.createElement("button");
    pill.type = "button";
    pill.className = "new-messages";
    pill.id = "new-messages";
    pill.hidden = true;
    pill.setAttribute("aria-controls", this.list.id || "messages");
    pill.innerHTML =
      '<svg width="14" height="14" viewBox="0 0 16 16" aria-hidden="true"><path d="M8 12.5 3 7.5l1.1-1.1L7.2 9.5V2h1.6v7.5l3.1-3.1L13 7.5z"/></svg>';
    pill.append("New messages");
    pill.addEventListener("click", () => {
      this.following = true;
      this.toEnd();
      // Keyboard and screen-reader users land on the newest message rather than on a button that went away.
      const last = this.list.querySelector("article.msg:last-of-type");
      if (last) {
        last.tabIndex = -1;
        last.focus({ preventScroll: true });
      }
    });
    // Above the composer (and the Talk panel in it), centred over the list.
    const wrap = this.list.parentElement?.querySelector(".composer-wrap");
    if (wrap) wrap.prepend(pill);
    else this.list.after(pill);
    return pill;
  }

  get atEnd() {
    const list = this.list;
    return list.scrollHeight - list.scrollTop - list.clientHeight < NEAR_END_PX;
  }

  onScroll() {
    const top = this.list.scrollTop;
    if (this.atEnd) {
      this.following = true;
      this.pill.hidden = true;
    } else if (top < this.lastTop) {
      this.following = false; // the person scrolled up (scrolling to the end only ever moves down)
    }
    this.lastTop = top;
  }

  onChange(records) {
    // A player's clock ticking is not a new message.
    records = records.filter((r) => !(r.target.parentElement ?? r.target).closest?.("[data-player]"));
    if (!records.length) return;
    if (this.following) {
      this.toEnd();
      return;
    }
    const added = records.some((r) => r.type === "characterData" || r.addedNodes.length);
    if (added && !this.atEnd) this.pill.hidden = false;
  }

  /** Show the end of the list now (instant: a smooth scroll still under way would read as "not at the end"). */
  toEnd() {
    const list = this.list;
    list.scrollTo({ top: list.scrollHeight, behavior: "instant" });
    this.lastTop = list.scrollTop;
    this.pill.hidden = true;
  }

  /** New content the person caused (a prompt they sent): follow it even if they had scrolled up. */
  follow() {
    this.following = true;
    this.toEnd();
  }
}

/** The list's follower (created on first use). */
export function threadScroll(list) {
  let follower = followers.get(list);
  if (!follower) {
    follower = new ThreadScroll(list);
    followers.set(list, follower);
  }
  return follower;
}
