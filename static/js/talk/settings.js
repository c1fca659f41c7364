// A person's Talk settings: kept on the server (GET/PUT /api/me/talk-settings, docs/api.md) so they follow the
// person to another browser, and turned into the create_session of the next call. The microphone is the one
// exception: a device id only means something on this device, so it stays in this browser (localStorage).
// No DOM here besides reading the page's embedded copy; the sheet (settings-sheet.js) shows them.

import { currentCsrfToken } from "../csrf.js";

const API_URL = "/api/me/talk-settings";
const MICROPHONE_KEY = "apsara.talk.microphone";

/** A failed save or load: the server's message, and the field at fault (`vad.silenceThreshold`) when it named one. */
export class SettingsProblem extends Error {
  constructor(message, field = null) {
    super(message);
    this.field = field;
  }
}

export class TalkSettings {
  /**
   * @param {{settings: object, choices: object}} data what the page rendered (`#talk-settings-data`)
   * @param {string} csrfToken for the PUT (the API checks it like every other write)
   */
  constructor({ settings, choices }, csrfToken) {
    this.current = settings;
    this.choices = choices;
    this.csrfToken = csrfToken;
    this.pending = Promise.resolve();
  }

  /** The page's embedded copy (views render it with json_script), or null on a page without one. */
  static fromPage(csrfToken) {
    const script = document.getElementById("talk-settings-data");
    if (!script) return null;
    try {
      return new TalkSettings(JSON.parse(script.textContent), csrfToken);
    } catch {
      return null;
    }
  }

  /** The catalogue entry of a model (what it offers), or undefined. */
  model(name) {
    return this.choices.models.find((m) => m.name === name);
  }

  /** Read them again (another device may have changed them since the page was rendered). */
  async refresh() {
    const response = await fetch(API_URL, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) throw await problem(response);
    this.current = await response.json();
    return this.current;
  }

  /**
   * Save `next` (the whole settings); resolves with what the server stored, or rejects with a SettingsProblem and
   * keeps the previous settings. Saves go one after another, in the order they were asked for.
   */
  save(next) {
    const run = async () => {
      let response;
      try {
        response = await fetch(API_URL, {
          method: "PUT",
          credentials: "same-origin",
          headers: {
            "Content-Type": "application/json",
            Accept: "application/json",
            "X-CSRFToken": currentCsrfToken(this.csrfToken),
          },
          body: JSON.stringify(next),
        });
      } catch {
        throw new SettingsProblem("The server could not be reached.");
      }
      if (!response.ok) throw await problem(response);
      this.current = await response.json();
      return this.current;
    };
    const result = this.pending.then(run, run);
    this.pending = result.catch(() => {});
    return result;
  }

  /** The create_session data of the next call (live.talk_settings.create_session_data builds the same). */
  createSession() {
    const s = this.current;
    const config = {
      responseModalities: [...s.responseModalities],
      vad: { ...s.vad },
      contextWindowCompression: { enabled: s.contextCompression },
    };
    if (s.voiceName) config.speechConfig = { voiceConfig: { voiceName: s.voiceName } };
    return { model: s.model, loadConversationContext: s.loadConversationContext, config };
  }

  /** The microphone chosen on this device ("" for the system's default). */
  get microphone() {
    try {
      return localStorage.getItem(MICROPHONE_KEY) ?? "";
    } catch {
      return ""; // storage blocked: the default microphone
    }
  }

  set microphone(deviceId) {
    try {
      if (deviceId) localStorage.setItem(MICROPHONE_KEY, deviceId);
      else localStorage.removeItem(MICROPHONE_KEY);
    } catch {
      // storage blocked: the choice lasts as long as the page
    }
  }
}

/** The API's error (docs/api.md: `{error: {message, field}}`) as a SettingsProblem, or a general one. */
async function problem(response) {
  try {
    const body = await response.json();
    const { message, field } = body?.error ?? {};
    // The message starts with the field's name ("vad.silenceThreshold: …"); the sheet names it in words instead.
    if (message) return new SettingsProblem(field ? message.replace(`${field}: `, "") : message, field ?? null);
  } catch {
    // not JSON (a proxy's error page)
  }
  if (response.status === 401 || response.status === 403) {
    return new SettingsProblem("You are no longer logged in. Reload the page and log in again.");
  }
  return new SettingsProblem(`The server answered HTTP ${response.status}.`);
}
