// Microphone capture (AudioWorklet): resample whatever rate the AudioContext runs at to 16 kHz mono PCM16LE
// and post one frame per ~40 ms to the page, which sends it to /live as a binary WebSocket frame.
//
// The AudioContext keeps the device's own rate (forcing one breaks Firefox and Safari), so resampling happens
// here: a windowed-sinc low-pass at the input rate (no aliasing above 8 kHz), then linear interpolation at the
// 16 kHz output positions.

const OUTPUT_RATE = 16000;
const TAPS = 31; // odd: the filter is symmetric around its middle tap

function lowPass(inputRate) {
  const cutoff = Math.min(0.5, (0.45 * OUTPUT_RATE) / inputRate); // cycles per input sample
  const taps = new Float32Array(TAPS);
  const middle = (TAPS - 1) / 2;
  let sum = 0;
  for (let i = 0; i < TAPS; i++) {
    const x = i - middle;
    const sinc = x === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * x) / (Math.PI * x);
    const window = 0.54 - 0.46 * Math.cos((2 * Math.PI * i) / (TAPS - 1)); // Hamming
    taps[i] = sinc * window;
    sum += taps[i];
  }
  for (let i = 0; i < TAPS; i++) taps[i] /= sum; // unity gain at DC
  return taps;
}

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const frameMs = options?.processorOptions?.frameMs ?? 40;
    this.frameSamples = Math.round((OUTPUT_RATE * frameMs) / 1000);
    this.step = sampleRate / OUTPUT_RATE; // input samples per output sample
    this.passthrough = sampleRate === OUTPUT_RATE;
    this.taps = lowPass(sampleRate);
    this.history = new Float32Array(TAPS); // the last TAPS input samples, a ring
    this.head = 0;
    this.previous = 0; // the filtered sample before the current one (for interpolation)
    this.current = 0;
    this.position = 0; // where the next output sample falls, in input samples after `previous`
    this.frame = new Int16Array(this.frameSamples);
    this.filled = 0;
    this.sumSquares = 0;
  }

  filtered(sample) {
    this.history[this.head] = sample;
    this.head = (this.head + 1) % TAPS;
    let acc = 0;
    let index = this.head;
    for (let i = 0; i < TAPS; i++) {
      acc += this.taps[i] * this.history[index];
      index = index + 1 === TAPS ? 0 : index + 1;
    }
    return acc;
  }

  emit(value) {
    const clamped = Math.max(-1, Math.min(1, value));
    this.frame[this.filled++] = clamped < 0 ? clamped * 0x8000 : clamped * 0x7fff;
    this.sumSquares += clamped * clamped;
    if (this.filled === this.frameSamples) {
      const level = Math.sqrt(this.sumSquares / this.frameSamples);
      const buffer = this.frame.buffer;
      this.port.postMessage({ pcm: buffer, level }, [buffer]);
      this.frame = new Int16Array(this.frameSamples);
      this.filled = 0;
      this.sumSquares = 0;
    }
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true; // no input yet (or the track ended): stay alive
    const input = channels[0];
    for (let i = 0; i < input.length; i++) {
      if (this.passthrough) {
        this.emit(input[i]);
        continue;
      }
      this.previous = this.current;
      this.current = this.filtered(input[i]);
      // Output samples that fall in [previous, current): `previous` is at 0, `current` at 1.
      while (this.position < 1) {
        this.emit(this.previous + (this.current - this.previous) * this.position);
        this.position += this.step;
      }
      this.position -= 1;
    }
    return true;
  }
}

registerProcessor("pcm16-capture", CaptureProcessor);
