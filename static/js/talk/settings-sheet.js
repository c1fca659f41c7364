// The Talk settings sheet: a modal <dialog> (focus kept inside, Escape closes, focus goes back to the button that
// opened it) with one labelled control per setting. It renders the settings it is given and reports each change
// as the whole next settings; it saves nothing itself (the controller saves through settings.js and says how it
// went with `saved` / `failed`). Choices a model does not offer are disabled, with the reason next to them.

const SENSITIVITY = { high: 0.8, low: 0.2 }; // live.session_plan: >= 0.5 is Gemini's HIGH start/end sensitivity
const MODALITY_CHOICES = [
  { value: "AUDIO", label: "Speech" },
  { value: "TEXT", label: "Text only (no sound)" },
  { value: "TEXT+AUDIO", label: "Speech and text" },
];

let nextId = 0;

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("aria-") || key === "role" || key === "for") node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

function field(labelText, control, hintText = "") {
  control.id ||= `talk-set-${++nextId}`;
  const label = el("label", { for: control.id, text: labelText });
  const wrap = el("div", { class: "talk-set-field" }, label, control);
  if (hintText !== null) {
    const hint = el("p", { class: "hint", id: `${control.id}-hint`, text: hintText });
    control.setAttribute("aria-describedby", hint.id);
    wrap.append(hint);
    wrap.hint = hint;
  }
  return wrap;
}

function checkbox(id, labelText, hintText) {
  const input = el("input", { type: "checkbox", id });
  const hint = el("p", { class: "hint", id: `${id}-hint`, text: hintText });
  input.setAttribute("aria-describedby", hint.id);
  const label = el("label", { for: id, class: "talk-set-check" }, input, el("span", { text: labelText }));
  return { input, node: el("div", { class: "talk-set-field" }, label, hint) };
}

function radios(name, legendText, options) {
  const fieldset = el("fieldset", { class: "talk-set-group" }, el("legend", { text: legendText }));
  const inputs = {};
  for (const option of options) {
    const input = el("input", { type: "radio", name, value: option.value, id: `${name}-${option.value}` });
    const reason = el("span", { class: "talk-set-reason", id: `${name}-${option.value}-why` });
    input.setAttribute("aria-describedby", reason.id);
    const label = el("label", { for: input.id, class: "talk-set-check" }, input, el("span", { text: option.label }));
    fieldset.append(el("div", { class: "talk-set-option" }, label, reason));
    inputs[option.value] = { input, reason };
  }
  return { fieldset, inputs };
}

export class SettingsSheet {
  /**
   * @param {{choices: object, onChange(next: object): void, onMicrophone(deviceId: string): void,
   *   onOpen(): void}} options
   */
  constructor({ choices, onChange, onMicrophone, onOpen }) {
    this.choices = choices;
    this.onChange = onChange;
    this.onMicrophone = onMicrophone;
    this.onOpen = onOpen;
    this.settings = null;
    this.opener = null;

    const dialog = el("dialog", { class: "talk-settings", id: "talk-settings" });
    dialog.setAttribute("aria-labelledby", "talk-settings-title");
    this.dialog = dialog;

    const title = el("h2", { id: "talk-settings-title", text: "Talk settings" });
    const close = el("button", { type: "button", class: "btn btn-quiet btn-icon", id: "talk-settings-close" });
    close.setAttribute("aria-label", "Close settings");
    close.title = "Close settings";
    close.innerHTML =
      '<svg width="16" height="16" viewBox="0 0 20 20" aria-hidden="true"><path d="M5 5l10 10M15 5 5 15" stroke="currentColor" stroke-width="2" stroke-linecap="round" fill="none"/></svg>';
    close.addEventListener("click", () => this.close());
    this.callNote = el("p", {
      class: "hint talk-set-callnote",
      id: "talk-settings-callnote",
      text: "A call is on: turn detection changes now, the rest from your next call.",
      hidden: true,
    });

    // Model, with its one-line description.
    this.model = el("select", { id: "talk-set-model" });
    for (const m of choices.models) this.model.append(el("option", { value: m.name, text: m.label }));
    const modelField = field("Model", this.model, "");
    this.modelHint = modelField.hint;

    this.voice = el("select", { id: "talk-set-voice" });
    this.voice.append(el("option", { value: "", text: `${choices.defaultVoice} (default)` }));
    for (const v of choices.voices) {
      if (v !== choices.defaultVoice) this.voice.append(el("option", { value: v, text: v }));
    }
    const voiceField = field("Voice", this.voice, "How Gemini sounds when it answers aloud.");

    const modality = radios("talk-set-modality", "Gemini answers with", MODALITY_CHOICES);
    this.modality = modality.inputs;

    const turns = radios("talk-set-turns", "Turn detection", [
      { value: "auto", label: "Automatic — Gemini hears when you stop" },
      { value: "hold", label: "Hold to talk — press a button while you speak" },
    ]);
    this.turns = turns.inputs;
    this.sensitivity = el("select", { id: "talk-set-sensitivity" });
    for (const [value, text] of [
      ["", "Gemini's default"],
      ["high", "High — quick to notice speech and its end"],
      ["low", "Low — waits for clear speech and longer pauses"],
    ]) {
      this.sensitivity.append(el("option", { value, text }));
    }
    const { min, max } = choices.silenceThreshold;
    this.silence = el("input", {
      type: "number",
      id: "talk-set-silence",
      min: String(min),
      max: String(max),
      step: "100",
      inputMode: "numeric",
      placeholder: "Gemini's default",
    });
    const sensitivityField = field("Sensitivity (start and end of speech)", this.sensitivity, null);
    const silenceField = field(
      "Silence that ends your turn (ms)",
      this.silence,
      `${min}–${max} ms; empty for Gemini's default.`,
    );
    this.autoOnly = [sensitivityField, silenceField];
    turns.fieldset.append(sensitivityField, silenceField);

    const history = checkbox(
      "talk-set-history",
      "Load earlier messages",
      "Gemini hears the last 20 messages of the conversation when a call starts.",
    );
    this.history = history.input;
    const compression = checkbox(
      "talk-set-compression",
      "Compress long calls",
      "Older parts of a long call are condensed, so it can go on past Gemini's context limit.",
    );
    this.compression = compression.input;

    // Shown only where the server allows direct mode (docs/live-direct.md).
    const transport = radios("talk-set-transport", "Connection to Gemini", [
      { value: "proxied", label: "Through Apsara's server" },
      { value: "direct", label: "Direct — this browser talks to Gemini with a short-lived key" },
    ]);
    this.transport = transport.inputs;
    transport.fieldset.hidden = !(choices.transports ?? []).includes("direct");
    transport.fieldset.append(
      el("p", {
        class: "hint",
        id: "talk-set-transport-hint",
        text: "Direct can answer sooner. Either way your conversation is saved here; changes apply from your next call.",
      }),
    );

    this.microphone = el("select", { id: "talk-set-microphone" });
    const micField = field("Microphone", this.microphone, "Remembered on this device only.");

    this.status = el("p", { class: "talk-set-status", id: "talk-settings-status", role: "status" });
    this.status.setAttribute("aria-live", "polite");
    this.error = el("p", { class: "talk-set-error", id: "talk-settings-error", role: "alert", hidden: true });

    const body = el(
      "div",
      { class: "talk-set-body" },
      this.callNote,
      modelField,
      voiceField,
      modality.fieldset,
      turns.fieldset,
      history.node,
      compression.node,
      transport.fieldset,
      micField,
    );
    const head = el("div", { class: "talk-set-head" }, title, close);
    const foot = el("div", { class: "talk-set-foot" }, this.status, this.error);
    dialog.append(head, body, foot);
    document.body.append(dialog);

    for (const control of [this.model, this.voice, this.sensitivity, this.silence, this.history, this.compression]) {
      control.addEventListener("change", () => this.changed());
    }
    const radioInputs = [...Object.values(this.modality), ...Object.values(this.turns), ...Object.values(this.transport)];
    for (const { input } of radioInputs) {
      input.addEventListener("change", () => this.changed());
    }
    this.microphone.addEventListener("change", () => {
      this.onMicrophone(this.microphone.value);
      this.saved("Microphone saved on this device.");
    });
    // A click on the backdrop (outside the sheet's box) closes it, as Escape does.
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) {
        const r = dialog.getBoundingClientRect();
        const inside = event.clientX >= r.left && event.clientX <= r.right && event.clientY >= r.top && event.clientY <= r.bottom;
        if (!inside) this.close();
      }
    });
    dialog.addEventListener("close", () => {
      const opener = this.opener;
      this.opener = null;
      if (opener?.isConnected && !opener.hidden) opener.focus();
    });
  }

  get isOpen() {
    return this.dialog.open;
  }

  /** Open it, focus the first setting, and remember who opened it (focus goes back there). */
  open(opener, { inCall = false, microphone = "" } = {}) {
    this.opener = opener ?? document.activeElement;
    this.callNote.hidden = !inCall;
    this.status.textContent = "";
    this.showError("");
    this.listMicrophones(microphone);
    if (!this.dialog.open) this.dialog.showModal();
    this.model.focus();
    this.onOpen();
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  /** Show `settings` (after a load, a save, or a failed save putting the previous values back). */
  render(settings) {
    this.settings = settings;
    const model = this.choices.models.find((m) => m.name === settings.model);
    this.model.value = settings.model;
    this.modelHint.textContent = model?.description ?? "";
    this.voice.value = settings.voiceName ?? "";
    const current = settings.responseModalities.join("+");
    for (const choice of MODALITY_CHOICES) {
      const { input, reason } = this.modality[choice.value];
      const offered = (model?.responseModalities ?? []).some((c) => c.join("+") === choice.value);
      input.checked = choice.value === current;
      input.disabled = !offered;
      let why = "";
      if (!offered) why = `Not with ${model?.label ?? "this model"}: it answers in one modality at a time.`;
      else if (choice.value === "TEXT" && model?.textViaTranscription) why = "The text is a transcript of its voice.";
      reason.textContent = why;
      reason.hidden = !why;
    }
    const auto = settings.vad.enabled !== false;
    this.turns.auto.input.checked = auto;
    this.turns.hold.input.checked = !auto;
    for (const node of this.autoOnly) node.hidden = !auto;
    const sensitivity = settings.vad.sensitivity;
    this.sensitivity.value = sensitivity === undefined ? "" : sensitivity >= 0.5 ? "high" : "low";
    this.silence.value = settings.vad.silenceThreshold ?? "";
    this.history.checked = settings.loadConversationContext;
    this.compression.checked = settings.contextCompression;
    const transport = settings.transport ?? "proxied";
    for (const [value, { input }] of Object.entries(this.transport)) input.checked = value === transport;
  }

  /** What the controls say now, as the whole next settings. */
  read() {
    const model = this.choices.models.find((m) => m.name === this.model.value);
    let modalities = Object.entries(this.modality).find(([, { input }]) => input.checked)?.[0] ?? "AUDIO";
    // A model that does not offer the chosen modalities: back to voice (every model speaks).
    if (model && !model.responseModalities.some((c) => c.join("+") === modalities)) modalities = "AUDIO";
    const vad = { enabled: this.turns.auto.input.checked };
    if (vad.enabled) {
      if (this.sensitivity.value) vad.sensitivity = SENSITIVITY[this.sensitivity.value];
      const silence = this.silence.value.trim();
      // Sent as typed (a number the server checks the range of); not a number at all is refused by the server too.
      if (silence !== "") vad.silenceThreshold = Number.isFinite(Number(silence)) ? Number(silence) : silence;
    } else {
      // Kept for when automatic detection comes back.
      for (const key of ["sensitivity", "silenceThreshold"]) {
        if (this.settings?.vad?.[key] !== undefined) vad[key] = this.settings.vad[key];
      }
    }
    return {
      model: this.model.value,
      voiceName: this.voice.value || null,
      responseModalities: modalities.split("+"),
      vad,
      loadConversationContext: this.history.checked,
      contextCompression: this.compression.checked,
      transport: Object.entries(this.transport).find(([, { input }]) => input.checked)?.[0] ?? "proxied",
    };
  }

  changed() {
    this.status.textContent = "Saving…";
    this.showError("");
    this.onChange(this.read());
  }

  saved(text = "Saved.") {
    // Cleared first so the same words are announced again after the next change.
    this.status.textContent = "";
    requestAnimationFrame(() => {
      this.status.textContent = text;
    });
  }

  /** A save was refused (the previous values are back): say which setting and why. */
  failed(message, field = null) {
    const names = {
      model: "Model",
      voiceName: "Voice",
      responseModalities: "Gemini answers with",
      "vad.sensitivity": "Sensitivity",
      "vad.silenceThreshold": "Silence that ends your turn",
      loadConversationContext: "Load earlier messages",
      contextCompression: "Compress long calls",
      transport: "Connection to Gemini",
    };
    const name = names[field] ?? names[field?.split(".").slice(0, 1)[0]];
    this.status.textContent = "";
    this.showError(`Not saved — ${name ? `${name}: ` : ""}${message}`);
  }

  showError(message) {
    this.error.textContent = message;
    this.error.hidden = !message;
  }

  /** Fill the microphone list (labels appear once the page may use the microphone). */
  async listMicrophones(chosen) {
    let devices = [];
    try {
      devices = (await navigator.mediaDevices?.enumerateDevices?.()) ?? [];
    } catch {
      devices = [];
    }
    const inputs = devices.filter((d) => d.kind === "audioinput" && d.deviceId && d.deviceId !== "default");
    const options = [el("option", { value: "", text: "System default" })];
    inputs.forEach((d, i) => options.push(el("option", { value: d.deviceId, text: d.label || `Microphone ${i + 1}` })));
    if (chosen && !inputs.some((d) => d.deviceId === chosen)) {
      options.push(el("option", { value: chosen, text: "The microphone chosen before (not found now)" }));
    }
    this.microphone.replaceChildren(...options);
    this.microphone.value = chosen;
  }
}
