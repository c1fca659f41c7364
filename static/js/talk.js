// The voice ("Talk") UI of the chat view: a live session with Gemini over the /live WebSocket
// (docs/live-protocol.md). The microphone streams 16 kHz PCM16 as binary frames; Gemini's 24 kHz speech comes
// back as binary frames and plays through a jitter buffer; transcripts show as they arrive, and each turn joins
// the message list (server-rendered, with its recording) when the server says it was saved.
// This entry point only mounts the controller (talk/controller.js) on the page; docs/talk.md maps the modules.
import { TalkController } from "./talk/controller.js";

const slot = document.getElementById("talk-slot");
const chat = document.getElementById("chat");
const list = document.getElementById("messages");

if (slot && chat && list) {
  const controller = new TalkController({ slot, chat, list });
  // Read-only view for the browser tests and for people debugging audio: state, counters, playback numbers.
  window.apsaraTalk = {
    get state() {
      return controller.state;
    },
    get sessionId() {
      return controller.sessionId;
    },
    get stats() {
      const playback = controller.engine?.playbackStats ?? controller.lastPlaybackStats ?? {};
      return { ...controller.stats, playback: { ...playback } };
    },
    dropConnection: () => controller.dropConnection(),
  };
}
