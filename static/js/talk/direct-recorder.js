// A direct call's turns, assembled in the page as the server's live/recorder.py assembles a proxied call's: the
// person's 16 kHz PCM (trimmed to what was said), the model's 24 kHz PCM, their transcripts, and when each turn
// began. A user turn is cut when the model starts answering (or at the end of a hold), a model turn at
// turnComplete (flagged when interrupted); the user turn is handed on when the model turn that answered it ends,
// so late transcription still reaches it. No turn is longer than the grant's limits.maxTurnSeconds (the server
// refuses a longer one): at exactly that many samples a turn is cut and handed on, and what follows goes on in a new
// turn of the same role (its own id). Times are the server's clock (`now`), so a device whose clock is off still
// orders its turns where they belong. Each finished turn goes to `onTurn` in order, as a WAV ready to post.
// No network and no DOM here: outbox.js posts them.

export const INPUT_RATE = 16000;
export const OUTPUT_RATE = 24000;
const PAD_MS = 300; // audio kept around speech (LIVE_RECORD_PAD_MS)
const SILENCE_RMS = 200; // PCM16 RMS below which a frame is silence (LIVE_SILENCE_RMS)
const DEFAULT_MAX_TURN_SECONDS = 600; // until a grant says (limits.maxTurnSeconds)

/** A public message id (docs/live-direct.md: 20-40 of [A-Za-z0-9_-]): "msg_" and 22 random base64url chars. */
export function newMessageId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  const text = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return `msg_${text.slice(0, 22)}`;
}

/** Root mean square of PCM16 samples (every 8th: plenty for a speech gate). */
function rms(samples) {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < samples.length; i += 8) {
    sum += samples[i] * samples[i];
    count += 1;
  }
  return count ? Math.sqrt(sum / count) : 0;
}

/** Growable PCM16 storage (chunks joined once, when the turn is packed). */
class Pcm {
  constructor() {
    this.chunks = [];
    this.length = 0; // samples
  }

  append(samples) {
    this.chunks.push(samples);
    this.length += samples.length;
  }

  /** Keep the first `samples` samples; the rest, moved out, as a new Pcm. */
  splitAt(samples) {
    const rest = new Pcm();
    if (samples >= this.length) return rest;
    const kept = [];
    let offset = 0;
    for (const chunk of this.chunks) {
      if (offset + chunk.length <= samples) kept.push(chunk);
      else if (offset >= samples) rest.append(chunk);
      else {
        kept.push(chunk.subarray(0, samples - offset));
        rest.append(chunk.subarray(samples - offset));
      }
      offset += chunk.length;
    }
    this.chunks = kept;
    this.length = samples;
    return rest;
  }

  /** The first `samples` samples, as one Int16Array. */
  join(samples = this.length) {
    const out = new Int16Array(Math.min(samples, this.length));
    let offset = 0;
    for (const chunk of this.chunks) {
      if (offset >= out.length) break;
      const part = chunk.subarray(0, out.length - offset);
      out.set(part, offset);
      offset += part.length;
    }
    return out;
  }
}

/** A WAV file (PCM16 mono) of `samples` at `rate`, as a Blob. */
export function wavBlob(samples, rate) {
  const header = new DataView(new ArrayBuffer(44));
  const text = (offset, value) => [...value].forEach((c, i) => header.setUint8(offset + i, c.charCodeAt(0)));
  const bytes = samples.length * 2;
  text(0, "RIFF");
  header.setUint32(4, 36 + bytes, true);
  text(8, "WAVE");
  text(12, "fmt ");
  header.setUint32(16, 16, true);
  header.setUint16(20, 1, true); // PCM
  header.setUint16(22, 1, true); // mono
  header.setUint32(24, rate, true);
  header.setUint32(28, rate * 2, true);
  header.setUint16(32, 2, true);
  header.setUint16(34, 16, true);
  text(36, "data");
  header.setUint32(40, bytes, true);
  // PCM16 little-endian: every browser this runs in is little-endian, so the samples' own bytes are the file's.
  return new Blob([header.buffer, samples.buffer.slice(samples.byteOffset, samples.byteOffset + bytes)], {
    type: "audio/wav",
  });
}

/**
 * @typedef {{id: string, role: "user" | "model", transcript: string, startedAt: string, interrupted: boolean,
 *   usage: object | null, audio: Blob | null, seconds: number}} FinishedTurn
 */

export class TurnRecorder {
  /**
   * @param {{onTurn(turn: FinishedTurn): void, maxTurnSeconds?: number, now?: () => number}} options
   *   `now`: the time in milliseconds since the epoch, on the server's clock (default: this device's)
   */
  constructor({ onTurn, maxTurnSeconds = DEFAULT_MAX_TURN_SECONDS, now = () => Date.now() }) {
    this.onTurn = onTurn;
    this.now = now;
    this.setMaxTurnSeconds(maxTurnSeconds);
    this.padSamples = Math.round((INPUT_RATE * PAD_MS) / 1000);
    this.preroll = [];
    this.prerollSamples = 0;
    this.user = null; // being spoken
    this.cut = []; // cut user turns waiting for the model turn that answers them (late transcription)
    this.model = null;
  }

  /** The longest turn the server takes (a grant's limits.maxTurnSeconds): from the next audio on. */
  setMaxTurnSeconds(seconds) {
    this.maxUserSamples = Math.max(1, Math.floor(INPUT_RATE * seconds));
    this.maxModelSamples = Math.max(1, Math.floor(OUTPUT_RATE * seconds));
  }

  /** One microphone frame (16 kHz PCM16) that was sent to Gemini. */
  userAudio(buffer) {
    const samples = new Int16Array(buffer.slice(0));
    const voiced = rms(samples) >= SILENCE_RMS;
    if (!this.user) {
      if (!voiced) {
        // Kept briefly: the start of a word is quieter than the gate.
        this.preroll.push(samples);
        this.prerollSamples += samples.length;
        while (this.preroll.length && this.prerollSamples - this.preroll[0].length >= this.padSamples) {
          this.prerollSamples -= this.preroll.shift().length;
        }
        return;
      }
      const started = this.now() - (this.prerollSamples / INPUT_RATE) * 1000;
      this.user = { id: null, startedAt: new Date(started), pcm: new Pcm(), voicedUntil: 0, transcript: "" };
      for (const chunk of this.preroll) this.user.pcm.append(chunk);
      this.preroll = [];
      this.prerollSamples = 0;
    }
    this.user.pcm.append(samples);
    if (voiced) this.user.voicedUntil = this.user.pcm.length;
    while (this.user && this.user.pcm.length >= this.maxUserSamples) this.capUser();
  }

  /**
   * The person's turn reached the longest the server takes: cut at exactly that many samples and handed on now (no
   * model turn may ever answer it: memory stays bounded); what was said past it goes on in a new user turn.
   */
  capUser() {
    const turn = this.user;
    const rest = turn.pcm.splitAt(this.maxUserSamples);
    const voicedUntil = Math.max(0, turn.voicedUntil - turn.pcm.length);
    turn.voicedUntil = Math.min(turn.voicedUntil, turn.pcm.length);
    // Speech going on at the cut: the turn is kept to its end, not trimmed to the last voiced frame plus padding.
    if (voicedUntil > 0 || turn.voicedUntil + this.padSamples >= turn.pcm.length) turn.voicedUntil = turn.pcm.length;
    const startedAt = new Date(turn.startedAt.getTime() + (turn.pcm.length / INPUT_RATE) * 1000);
    this.cutUser();
    this.flushUser();
    if (!voicedUntil) return; // silence past the cut: the next voiced frame starts the next turn
    this.user = { id: null, startedAt, pcm: rest, voicedUntil, transcript: "" };
  }

  /** A piece of Gemini's transcript of what the person said. */
  inputTranscription(text) {
    if (!text) return;
    const target = this.cut.at(-1) ?? this.user ?? this.openUserTurn();
    target.transcript += text;
  }

  openUserTurn() {
    // Words heard with no audio kept for them (all below the gate): a turn of its own, transcript only.
    const turn = { id: newMessageId(), startedAt: new Date(this.now()), pcm: new Pcm(), voicedUntil: 0, transcript: "" };
    this.cut.push(turn);
    return turn;
  }

  /** A chunk of the model's 24 kHz PCM16. */
  modelAudio(buffer) {
    const turn = this.modelTurn();
    turn.pcm.append(new Int16Array(buffer.slice(0)));
    while (this.model && this.model.pcm.length >= this.maxModelSamples) this.capModel();
  }

  /** The model's turn reached the longest the server takes: cut there; the rest of its answer is a new model turn. */
  capModel() {
    const turn = this.model;
    const rest = turn.pcm.splitAt(this.maxModelSamples);
    const startedAt = new Date(turn.startedAt.getTime() + (turn.pcm.length / OUTPUT_RATE) * 1000);
    this.finishModel();
    if (rest.length) this.model = { id: null, startedAt, pcm: rest, transcript: "", usage: null, interrupted: false };
  }

  /** A piece of the transcript of what the model said (or text it wrote). */
  modelText(text) {
    if (text) this.modelTurn().transcript += text;
  }

  usage(usage) {
    if (usage && this.model) this.model.usage = usage;
  }

  /** Barge-in: the model's turn was cut short; it ends here. */
  interrupted() {
    if (!this.model) return;
    this.model.interrupted = true;
    this.finishModel();
  }

  turnComplete() {
    if (!this.model) this.cutUser(); // a turn Gemini ended with nothing: the person's turn still ends here
    this.finishModel();
  }

  /** The connection went away (a drop, a goAway switch): a model turn under way ends there, cut short. */
  connectionLost() {
    if (this.model) this.interrupted();
  }

  /** Hold to talk released: the person's turn ends here. */
  activityEnd() {
    this.cutUser();
  }

  /** Text typed into the call: a user turn of its own, after what was said before it. */
  typed(text) {
    this.cutUser();
    this.flushUser();
    this.onTurn({
      id: newMessageId(),
      role: "user",
      transcript: text,
      startedAt: new Date(this.now()).toISOString(),
      interrupted: false,
      usage: null,
      audio: null,
      seconds: 0,
    });
  }

  /** The call ended (or its connection went away mid-answer): hand on everything, the model's turn flagged. */
  flush() {
    if (this.model) this.model.interrupted = true;
    this.cutUser();
    this.finishModel();
    this.flushUser();
  }

  // -- internals -------------------------------------------------------------------------------------------------

  modelTurn() {
    if (!this.model) {
      this.cutUser();
      this.model = {
        id: null,
        startedAt: new Date(this.now()),
        pcm: new Pcm(),
        transcript: "",
        usage: null,
        interrupted: false,
      };
    }
    return this.model;
  }

  cutUser() {
    const turn = this.user;
    if (!turn) return;
    this.user = null;
    turn.id = newMessageId(); // chosen when the turn is cut: every post of it uses this id
    turn.keep = Math.min(turn.pcm.length, turn.voicedUntil + this.padSamples);
    this.cut.push(turn);
  }

  flushUser() {
    const turns = this.cut;
    this.cut = [];
    for (const turn of turns) {
      const samples = turn.pcm.join(turn.keep ?? 0);
      const transcript = turn.transcript.trim();
      if (!samples.length && !transcript) continue;
      this.onTurn({
        id: turn.id,
        role: "user",
        transcript,
        startedAt: turn.startedAt.toISOString(),
        interrupted: false,
        usage: null,
        audio: samples.length ? wavBlob(samples, INPUT_RATE) : null,
        seconds: samples.length / INPUT_RATE,
      });
    }
  }

  finishModel() {
    const turn = this.model;
    this.model = null;
    this.flushUser();
    if (!turn) return;
    turn.id = newMessageId();
    const samples = turn.pcm.join();
    const transcript = turn.transcript.trim();
    if (!samples.length && !transcript) return;
    this.onTurn({
      id: turn.id,
      role: "model",
      transcript,
      startedAt: turn.startedAt.toISOString(),
      interrupted: turn.interrupted,
      usage: turn.usage,
      audio: samples.length ? wavBlob(samples, OUTPUT_RATE) : null,
      seconds: samples.length / OUTPUT_RATE,
    });
  }
}
