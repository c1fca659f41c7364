// Model speech playback (AudioWorklet): a jitter buffer of 24 kHz PCM16 chunks, played gaplessly at the
// AudioContext's own rate.
//
// Gemini sends audio in bursts, sometimes slower than real time, so playback waits for a small cushion
// (`prebufferMs`) before it starts, and grows the cushion after each underrun (up to `maxPrebufferMs`).
// The end of a turn plays whatever is left at once. `flush` (barge-in: the model was interrupted) drops
// everything immediately. The page gets counters in 24 kHz samples: received, played, flushed.
//
// Messages in:  {type: "audio", pcm: ArrayBuffer(Int16 LE)} | {type: "end"} | {type: "flush"}
// Messages out: {type: "state", playing: bool, stats} whenever playback starts or stops, and every ~250 ms
//               while something is queued.

const INPUT_RATE = 24000;

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = options?.processorOptions ?? {};
    this.minPrebuffer = Math.round((INPUT_RATE * (opts.prebufferMs ?? 120)) / 1000);
    this.maxPrebuffer = Math.round((INPUT_RATE * (opts.maxPrebufferMs ?? 480)) / 1000);
    this.maxQueued = INPUT_RATE * (opts.maxQueuedSeconds ?? 300); // bounded: a runaway sender cannot eat memory
    this.prebuffer = this.minPrebuffer;
    this.step = INPUT_RATE / sampleRate; // input samples per output sample
    this.chunks = []; // Float32Arrays waiting to play
    this.offset = 0; // read position in chunks[0]
    this.queued = 0; // samples waiting in chunks
    this.playing = false;
    this.ending = false; // the turn's audio is complete: play the rest without waiting for the cushion
    this.a = 0; // interpolation between sample a (at 0) and b (at 1)
    this.b = 0;
    this.position = 0;
    // outputFrames: frames written while playing, at the context's rate (`outputRate`): with gapless playback
    // outputFrames / outputRate equals played / 24000.
    this.stats = {
      received: 0,
      played: 0,
      flushed: 0,
      dropped: 0,
      underruns: 0,
      chunks: 0,
      outputFrames: 0,
      outputRate: sampleRate,
    };
    this.sinceReport = 0;
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(message) {
    if (message.type === "audio") {
      const pcm = new Int16Array(message.pcm);
      if (this.queued + pcm.length > this.maxQueued) {
        this.stats.dropped += pcm.length;
        return;
      }
      const samples = new Float32Array(pcm.length);
      for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 0x8000;
      this.chunks.push(samples);
      this.queued += samples.length;
      this.stats.received += samples.length;
      this.stats.chunks += 1;
      this.ending = false;
    } else if (message.type === "end") {
      this.ending = true;
    } else if (message.type === "flush") {
      this.stats.flushed += this.queued;
      this.chunks = [];
      this.offset = 0;
      this.queued = 0;
      this.a = this.b = this.position = 0;
      this.ending = false;
      this.playing = false;
      this.report();
    }
  }

  /** Take the next queued sample; null when the buffer is empty. */
  pull() {
    while (this.chunks.length) {
      const chunk = this.chunks[0];
      if (this.offset < chunk.length) {
        this.queued -= 1;
        this.stats.played += 1;
        return chunk[this.offset++];
      }
      this.chunks.shift();
      this.offset = 0;
    }
    return null;
  }

  setPlaying(playing) {
    if (playing === this.playing) return;
    this.playing = playing;
    this.report();
  }

  report() {
    this.sinceReport = 0;
    this.port.postMessage({ type: "state", playing: this.playing, queued: this.queued, stats: { ...this.stats } });
  }

  process(_inputs, outputs) {
    const output = outputs[0];
    const left = output[0];
    if (!left) return true;
    if (!this.playing && this.queued > 0 && (this.queued >= this.prebuffer || this.ending)) {
      this.position = 1; // pull the first sample now (ramping up from silence)
      this.setPlaying(true);
    }
    if (this.playing) {
      for (let i = 0; i < left.length; i++) {
        while (this.position >= 1) {
          this.position -= 1;
          this.a = this.b;
          const next = this.pull();
          if (next === null) {
            // Out of audio. At the end of a turn that is normal; mid-turn it is an underrun: wait for a
            // bigger cushion next time.
            if (!this.ending) {
              this.stats.underruns += 1;
              this.prebuffer = Math.min(this.maxPrebuffer, this.prebuffer * 2);
            }
            this.b = 0;
            this.stats.outputFrames += i;
            this.fadeOut(left, i);
            this.position = 0;
            this.a = 0;
            this.setPlaying(false);
            this.copyChannels(output);
            return true;
          }
          this.b = next;
        }
        left[i] = this.a + (this.b - this.a) * this.position;
        this.position += this.step;
      }
      this.stats.outputFrames += left.length;
    }
    this.copyChannels(output);
    this.sinceReport += left.length;
    if (this.queued > 0 && this.sinceReport >= sampleRate / 4) this.report();
    return true;
  }

  /** Ramp from the last sample to silence over a few samples instead of clicking. */
  fadeOut(channel, from) {
    const start = from > 0 ? channel[from - 1] : this.a;
    const length = Math.min(32, channel.length - from);
    for (let i = 0; i < channel.length - from; i++) {
      channel[from + i] = i < length ? start * (1 - (i + 1) / length) : 0;
    }
  }

  copyChannels(output) {
    for (let c = 1; c < output.length; c++) output[c].set(output[0]);
  }
}

registerProcessor("pcm16-playback", PlaybackProcessor);
