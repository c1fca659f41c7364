// The Talk UI's DOM: the Talk button in the composer, the session panel above it (status, level meter, notices,
// camera/screen preview, controls). It renders what the controller says and reports clicks as intents; it
// holds no call state of its own, so what the page shows is always derived from the controller's state.

// Inline SVG (no request, no CDN); the markup is static, from this file only.
const ICONS = {
  mic: '<svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true"><path d="M12 15a3.5 3.5 0 0 0 3.5-3.5v-6a3.5 3.5 0 1 0-7 0v6A3.5 3.5 0 0 0 12 15Zm6.5-3.5a.9.9 0 1 0-1.8 0 4.7 4.7 0 0 1-9.4 0 .9.9 0 1 0-1.8 0 6.5 6.5 0 0 0 5.6 6.43V20H8.8a.9.9 0 1 0 0 1.8h6.4a.9.9 0 1 0 0-1.8h-2.3v-2.07a6.5 6.5 0 0 0 5.6-6.43Z"/></svg>',
  micOff:
    '<svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true"><path d="M3.3 2.7a.9.9 0 0 0-1.27 1.27l18 18a.9.9 0 0 0 1.27-1.27l-4.2-4.2A6.47 6.47 0 0 0 18.5 11.5a.9.9 0 1 0-1.8 0c0 1-.3 1.93-.84 2.7l-1.3-1.3c.3-.4.44-.9.44-1.4v-6a3.5 3.5 0 0 0-6.93-.7ZM12 15c.2 0 .4-.02.6-.05L8.5 10.86v.64A3.5 3.5 0 0 0 12 15Zm-5.6-4.4a.9.9 0 0 0-1.1.9 6.5 6.5 0 0 0 5.6 6.43V20H8.8a.9.9 0 1 0 0 1.8h6.4a.9.9 0 1 0 0-1.8h-2.3v-2.07c.67-.09 1.3-.28 1.9-.55l-1.4-1.4a4.7 4.7 0 0 1-6-4.48.9.9 0 0 0-.9-.9Z"/></svg>',
  camera:
    '<svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true"><path d="M4 6.5A2.5 2.5 0 0 0 1.5 9v7A2.5 2.5 0 0 0 4 18.5h10a2.5 2.5 0 0 0 2.5-2.5v-1.6l4.4 2.9a.9.9 0 0 0 1.4-.75V7.45a.9.9 0 0 0-1.4-.75l-4.4 2.9V9A2.5 2.5 0 0 0 14 6.5Z"/></svg>',
  screen:
    '<svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true"><path d="M4 3.5A2.5 2.5 0 0 0 1.5 6v9A2.5 2.5 0 0 0 4 17.5h7.1v1.7H8a.9.9 0 1 0 0 1.8h8a.9.9 0 1 0 0-1.8h-3.1v-1.7H20a2.5 2.5 0 0 0 2.5-2.5V6A2.5 2.5 0 0 0 20 3.5Zm0 1.8h16c.39 0 .7.31.7.7v9a.7.7 0 0 1-.7.7H4a.7.7 0 0 1-.7-.7V6c0-.39.31-.7.7-.7Z"/></svg>',
  hand: '<svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true"><path d="M12 2.5a1.5 1.5 0 0 0-1.5 1.5v7h-.9V5.5a1.5 1.5 0 0 0-3 0V14l-1.6-1.9a1.6 1.6 0 0 0-2.5 2l4 5.4A5 5 0 0 0 10.5 21.5h3.3a5.7 5.7 0 0 0 5.7-5.7V7.5a1.5 1.5 0 0 0-3 0V11h-.9V5a1.5 1.5 0 0 0-3 0v6h-.1V4A1.5 1.5 0 0 0 12 2.5Z"/></svg>',
  end: '<svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true"><rect x="5" y="5" width="14" height="14" rx="2.5"/></svg>',
  gear: '<svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true"><path fill-rule="evenodd" d="M10.3 2.5a1 1 0 0 0-1 .8l-.35 2a7.6 7.6 0 0 0-1.6.93l-1.9-.7a1 1 0 0 0-1.2.44l-1.7 2.95a1 1 0 0 0 .22 1.26l1.57 1.3a7.7 7.7 0 0 0 0 1.85l-1.57 1.3a1 1 0 0 0-.22 1.26l1.7 2.95a1 1 0 0 0 1.2.44l1.9-.7c.5.38 1.03.7 1.6.93l.35 2a1 1 0 0 0 1 .8h3.4a1 1 0 0 0 1-.8l.35-2a7.6 7.6 0 0 0 1.6-.93l1.9.7a1 1 0 0 0 1.2-.44l1.7-2.95a1 1 0 0 0-.22-1.26l-1.57-1.3a7.7 7.7 0 0 0 0-1.85l1.57-1.3a1 1 0 0 0 .22-1.26l-1.7-2.95a1 1 0 0 0-1.2-.44l-1.9.7a7.6 7.6 0 0 0-1.6-.93l-.35-2a1 1 0 0 0-1-.8ZM12 15.3a3.3 3.3 0 1 0 0-6.6 3.3 3.3 0 0 0 0 6.6Z"/></svg>',
  close:
    '<svg width="16" height="16" viewBox="0 0 20 20" aria-hidden="true"><path d="M5 5l10 10M15 5 5 15" stroke="currentColor" stroke-width="2" stroke-linecap="round" fill="none"/></svg>',
};

/** Status line per state; a message given with the state (an error, an ending reason) takes precedence. */
const STATUS_TEXT = {
  connecting: "Connecting…",
  listening: "Listening — speak any time",
  holdToTalk: "Hold the talk button while you speak",
  holding: "Talking — release to send",
  muted: "Muted — Gemini cannot hear you",
  speaking: "Gemini is speaking — talk to interrupt",
  reconnecting: "Reconnecting…", // a dropped socket (any reason, for as long as it takes): never a code or cause
  ending: "Ending…",
  ended: "Voice session ended.",
};

/** States in which a call is under way (the panel's controls are live). */
const LIVE_STATES = ["connecting", "listening", "speaking", "reconnecting", "ending"];

function button({ id, label, icon, text, className = "btn", pressed }) {
  const el = document.createElement("button");
  el.type = "button"; // inside the composer form: never submit it
  el.className = className;
  if (id) el.id = id;
  setLabel(el, label);
  el.innerHTML = ICONS[icon]; // static markup from this file
  if (text) {
    const span = document.createElement("span");
    span.className = "talk-btn-text";
    span.textContent = text;
    el.append(span);
  }
  if (pressed !== undefined) el.setAttribute("aria-pressed", String(pressed));
  return el;
}

/** Icon buttons are named for screen readers and, as a tooltip, for the mouse: keep both the same. */
function setLabel(el, label) {
  el.setAttribute("aria-label", label);
  el.title = label;
}

function element(tag, className, { id, hidden } = {}) {
  const el = document.createElement(tag);
  el.className = className;
  if (id) el.id = id;
  if (hidden) el.hidden = true;
  return el;
}

export class TalkView {
  /**
   * Build the button into `slot` and the panel above the composer.
   * @param {{slot: HTMLElement, chat: HTMLElement, supports: {camera: boolean, screen: boolean}, actions: {
   *   start(): void, end(): void, dismiss(): void, toggleMute(): void, togglePushToTalk(): void,
   *   toggleFrames(kind: "camera" | "screen"): void, holdStart(): void, holdEnd(): void,
   *   openSettings(opener: HTMLElement): void}}} options
   */
  constructor({ slot, chat, supports, actions }) {
    this.slot = slot;
    this.chat = chat;

    this.talkButton = button({
      id: "talk-start",
      label: "Talk with Gemini by voice",
      icon: "mic",
      text: "Talk",
      className: "btn talk-btn",
    });
    this.talkButton.addEventListener("click", () => actions.start());
    // Settings before a call (the panel has its own button during one).
    this.settingsButton = button({
      id: "talk-settings-open",
      label: "Talk settings",
      icon: "gear",
      className: "btn btn-quiet btn-icon talk-settings-btn",
    });
    this.settingsButton.addEventListener("click", () => actions.openSettings(this.settingsButton));
    this.settingsAvailable = true; // false on a page that did not render the settings (the controller says)
    slot.append(this.talkButton, this.settingsButton);

    const panel = element("section", "talk-panel", { id: "talk-panel", hidden: true });
    panel.setAttribute("aria-label", "Voice session");
    this.panel = panel;

    const status = element("div", "talk-status");
    status.setAttribute("role", "status");
    status.setAttribute("aria-live", "polite");
    const dot = element("span", "talk-dot");
    dot.setAttribute("aria-hidden", "true");
    this.statusText = element("span", "talk-status-text", { id: "talk-status" });
    status.append(dot, this.statusText);

    this.meter = element("span", "talk-meter");
    this.meter.setAttribute("aria-hidden", "true");
    this.meter.append(document.createElement("span"));

    this.previews = element("div", "talk-previews", { hidden: true });
    this.info = element("p", "talk-info", { id: "talk-info", hidden: true });
    this.notice = element("p", "talk-notice", { id: "talk-notice", hidden: true });
    this.notice.setAttribute("role", "alert");

    this.controls = element("div", "talk-controls");
    const control = (options) => button({ pressed: false, className: "btn talk-ctl", ...options });
    this.muteButton = control({ id: "talk-mute", label: "Mute microphone", icon: "mic", text: "Mute" });
    this.muteButton.addEventListener("click", () => actions.toggleMute());
    this.cameraButton = control({ id: "talk-camera", label: "Share camera", icon: "camera", text: "Camera" });
    this.cameraButton.addEventListener("click", () => actions.toggleFrames("camera"));
    this.cameraButton.hidden = !supports.camera;
    this.screenButton = control({ id: "talk-screen", label: "Share screen", icon: "screen", text: "Screen" });
    this.screenButton.addEventListener("click", () => actions.toggleFrames("screen"));
    this.screenButton.hidden = !supports.screen;
    // Push-to-talk, for speakerphones whose echo makes Gemini interrupt itself.
    this.modeButton = control({
      id: "talk-mode",
      // The visible text ("Hold mode") starts the name, so speech control ("click Hold mode") finds it (WCAG 2.5.3).
      label: "Hold mode: hold to talk instead of automatic turns",
      icon: "hand",
      text: "Hold mode",
    });
    this.modeButton.addEventListener("click", () => {
      if (this.modeButton.getAttribute("aria-disabled") !== "true") actions.togglePushToTalk();
    });
    this.holdButton = this.buildHoldButton(actions);
    this.panelSettingsButton = control({ id: "talk-panel-settings", label: "Talk settings", icon: "gear", text: "Settings" });
    this.panelSettingsButton.removeAttribute("aria-pressed"); // it opens a dialog, it is not a toggle
    this.panelSettingsButton.setAttribute("aria-haspopup", "dialog");
    this.settingsButton.setAttribute("aria-haspopup", "dialog");
    this.panelSettingsButton.addEventListener("click", () => actions.openSettings(this.panelSettingsButton));
    this.endButton = button({
      id: "talk-end",
      label: "End voice session",
      icon: "end",
      text: "End",
      className: "btn btn-danger talk-ctl",
    });
    this.endButton.addEventListener("click", () => actions.end());
    this.dismissButton = button({
      id: "talk-dismiss",
      label: "Close",
      icon: "close",
      className: "btn btn-quiet btn-icon talk-dismiss",
    });
    this.dismissButton.addEventListener("click", () => actions.dismiss());
    this.controls.append(
      this.holdButton,
      this.muteButton,
      this.modeButton,
      this.cameraButton,
      this.screenButton,
      this.panelSettingsButton,
      this.endButton,
    );

    const head = element("div", "talk-head");
    head.append(status, this.meter, this.dismissButton);
    panel.append(head, this.info, this.notice, this.previews, this.controls);
    const form = document.getElementById("composer");
    form.parentElement.insertBefore(panel, form);
  }

  /** The push-to-talk button: pointer (mouse, touch, pen, with capture so sliding off still releases) and keys. */
  buildHoldButton(actions) {
    const hold = button({
      id: "talk-hold",
      label: "Hold to talk",
      icon: "mic",
      text: "Hold to talk",
      className: "btn btn-primary talk-hold",
    });
    hold.hidden = true;
    hold.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      hold.setPointerCapture?.(event.pointerId);
      actions.holdStart();
    });
    for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
      hold.addEventListener(type, () => actions.holdEnd());
    }
    hold.addEventListener("contextmenu", (event) => event.preventDefault()); // long-press on phones
    hold.addEventListener("keydown", (event) => {
      if ((event.key === " " || event.key === "Enter") && !event.repeat) {
        event.preventDefault();
        actions.holdStart();
      }
    });
    hold.addEventListener("keyup", (event) => {
      if (event.key === " " || event.key === "Enter") {
        event.preventDefault();
        actions.holdEnd();
      }
    });
    return hold;
  }

  /**
   * Show a call state: `data-state` on the slot, the panel and `#chat` (CSS and tests read it), which controls
   * are visible and usable, and the status line.
   */
  render(state, { message = "", pushToTalk = false, holding = false, muted = false } = {}) {
    this.slot.dataset.state = state;
    this.panel.dataset.state = state;
    this.chat.dataset.talk = state;
    const live = LIVE_STATES.includes(state);
    this.panel.hidden = state === "idle";
    this.talkButton.hidden = live;
    this.talkButton.disabled = live;
    // The panel's Settings button takes over during a call.
    this.settingsButton.hidden = live || !this.settingsAvailable;
    this.panelSettingsButton.hidden = !this.settingsAvailable;
    for (const el of [this.muteButton, this.modeButton, this.cameraButton, this.screenButton]) {
      el.disabled = !live || state === "ending";
    }
    // End stays focusable while the call ends (aria-disabled): disabling it would drop the focus the person's key
    // press put there to <body>; once ended, focus goes back to Talk (returnFocus).
    this.endButton.disabled = !live;
    this.endButton.setAttribute("aria-disabled", String(state === "ending"));
    this.controls.hidden = !live;
    this.dismissButton.hidden = live;
    this.meter.hidden = !live;
    this.holdButton.hidden = !pushToTalk || !live;
    this.holdButton.disabled = !["listening", "speaking"].includes(state);
    let text = message || STATUS_TEXT[state] || "";
    if (state === "listening" && pushToTalk) text = holding ? STATUS_TEXT.holding : STATUS_TEXT.holdToTalk;
    if (state === "listening" && muted) text = STATUS_TEXT.muted;
    this.statusText.textContent = text;
  }

  /** A problem worth interrupting for (an alert); "" hides it. */
  showNotice(message) {
    this.notice.textContent = message;
    this.notice.hidden = !message;
  }

  /** Quiet information about the session (e.g. how much context Gemini has); "" hides it. */
  showInfo(message) {
    this.info.textContent = message;
    this.info.hidden = !message;
  }

  /** Microphone level, 0–1 from the capture worklet's RMS (boosted: speech RMS rarely passes 0.25). */
  setLevel(level) {
    this.meter.style.setProperty("--level", Math.min(1, level * 4).toFixed(3));
  }

  setMuted(muted) {
    setLabel(this.muteButton, muted ? "Unmute microphone" : "Mute microphone");
    this.muteButton.setAttribute("aria-pressed", String(muted));
    this.muteButton.querySelector("svg").outerHTML = muted ? ICONS.micOff : ICONS.mic;
    this.muteButton.querySelector(".talk-btn-text").textContent = muted ? "Unmute" : "Mute";
  }

  setPushToTalk(on) {
    this.modeButton.setAttribute("aria-pressed", String(on));
    setLabel(this.modeButton, on ? "Hold mode: use automatic turns instead of holding to talk" : "Hold mode: hold to talk instead of automatic turns");
  }

  /**
   * The mode switch waits for the server (vad_configured): no second switch meanwhile. aria-disabled, not
   * `disabled`: a disabled button drops the keyboard focus it holds (to <body>), and the person pressed it.
   */
  setModeBusy(busy) {
    this.modeButton.setAttribute("aria-disabled", String(busy));
  }

  setHolding(holding) {
    this.holdButton.classList.toggle("holding", holding);
  }

  /** Which of camera / screen is being shared (`null`: neither): the buttons say what a press will do. */
  setSharing(kind) {
    for (const [el, name] of [
      [this.cameraButton, "camera"],
      [this.screenButton, "screen"],
    ]) {
      const on = kind === name;
      el.setAttribute("aria-pressed", String(on));
      setLabel(el, on ? `Stop sharing ${name}` : `Share ${name}`);
    }
  }

  /** Show what is being shared, so the person sees what Gemini sees; `null` removes the preview. */
  showPreview(video, kind) {
    if (!video) {
      this.previews.replaceChildren();
      this.previews.hidden = true;
      return;
    }
    video.className = "talk-preview";
    video.setAttribute("aria-label", kind === "screen" ? "Your shared screen" : "Your camera");
    this.previews.replaceChildren(video);
    this.previews.hidden = false;
  }

  focusEnd() {
    this.endButton.focus();
  }

  focusHold() {
    this.holdButton.focus();
  }

  /** Focus went nowhere: the control that held it was hidden or disabled (as Hold is while reconnecting). */
  focusLost() {
    return !document.activeElement || document.activeElement === document.body;
  }

  focusTalk() {
    this.talkButton.focus();
  }

  /** After a call, focus goes back to Talk unless the person has moved it elsewhere on the page. */
  returnFocus() {
    if (this.focusLost() || this.panel.contains(document.activeElement)) this.focusTalk();
  }
}
