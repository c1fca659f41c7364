// The recordings' player: a play/pause button, a seek bar and "0:03 / 0:07" around an <audio preload="none">.
// The duration comes from the server (`data-duration`, Message.audio_duration), so it shows before anything is
// loaded; the browser's own controls would say "0:00 / 0:00" until played, and shrink to nothing in a narrow bubble.
// One set of listeners on the document serves every player, server-rendered or inserted later.

/** "0:07", "12:30", "1:02:03" (as the server's `clock` filter writes it). */
export function clock(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "–:––";
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

const PLAY_ICON = '<path d="M4 2.5v11l9.5-5.5z"/>';
const PAUSE_ICON = '<path d="M3.5 2.5h3v11h-3zm6 0h3v11h-3z"/>';

function icon(className, path) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", className);
  svg.setAttribute("width", "16");
  svg.setAttribute("height", "16");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("aria-hidden", "true");
  svg.innerHTML = path; // constant markup, no data in it
  return svg;
}

/** Build a player like `_audio_player.html` (for bubbles built in the page). */
export function audioPlayer(src, duration) {
  const known = Number.isFinite(duration) && duration > 0;
  const player = document.createElement("div");
  player.className = "player";
  player.dataset.player = "";
  player.dataset.duration = known ? String(duration) : "";
  const toggle = document.createElement("button");
  toggle.type = "button";
  toggle.className = "player-toggle";
  toggle.dataset.labelPlay = "Play recording";
  toggle.dataset.labelPause = "Pause recording";
  toggle.setAttribute("aria-label", "Play recording");
  toggle.append(icon("player-icon-play", PLAY_ICON), icon("player-icon-pause", PAUSE_ICON));
  const seek = document.createElement("input");
  seek.type = "range";
  seek.className = "player-seek";
  seek.min = "0";
  seek.max = known ? String(duration) : "0";
  seek.step = "0.1";
  seek.value = "0";
  seek.setAttribute("aria-label", "Position in recording");
  seek.setAttribute("aria-valuetext", `0:00 of ${known ? clock(duration) : "unknown length"}`);
  const time = document.createElement("span");
  time.className = "player-time";
  time.setAttribute("aria-hidden", "true");
  const current = document.createElement("span");
  current.className = "player-current";
  current.textContent = "0:00";
  const total = document.createElement("span");
  total.className = "player-duration";
  total.textContent = known ? clock(duration) : "–:––";
  time.append(current, " / ", total);
  const audio = document.createElement("audio");
  audio.className = "msg-audio";
  audio.preload = "none";
  audio.src = src;
  player.append(toggle, seek, time, audio);
  return player;
}

/** The length to show: the server's, else what the browser found once it loaded the file. */
function durationOf(player, audio) {
  const server = Number.parseFloat(player.dataset.duration ?? "");
  if (Number.isFinite(server) && server > 0) return server;
  return Number.isFinite(audio.duration) ? audio.duration : Number.NaN;
}

function render(player) {
  const audio = player.querySelector("audio");
  const toggle = player.querySelector(".player-toggle");
  const seek = player.querySelector(".player-seek");
  if (!audio || !toggle || !seek) return;
  const duration = durationOf(player, audio);
  const playing = !audio.paused && !audio.ended;
  player.classList.toggle("playing", playing);
  toggle.setAttribute("aria-label", playing ? toggle.dataset.labelPause : toggle.dataset.labelPlay);
  if (Number.isFinite(duration)) seek.max = String(duration);
  seek.value = String(audio.currentTime);
  const at = clock(audio.currentTime);
  player.querySelector(".player-current").textContent = at;
  player.querySelector(".player-duration").textContent = clock(duration);
  seek.setAttribute("aria-valuetext", `${at} of ${clock(duration)}`);
}

function playerOf(target) {
  return target instanceof Element ? target.closest("[data-player]") : null;
}

document.addEventListener("click", (event) => {
  const toggle = event.target instanceof Element ? event.target.closest(".player-toggle") : null;
  const player = playerOf(toggle);
  const audio = player?.querySelector("audio");
  if (!audio) return;
  if (audio.paused || audio.ended) {
    // One recording at a time, like a voice-message app.
    for (const other of document.querySelectorAll("[data-player] audio")) if (other !== audio) other.pause();
    audio.play().catch(() => render(player));
  } else {
    audio.pause();
  }
});

document.addEventListener("input", (event) => {
  if (!(event.target instanceof HTMLInputElement) || !event.target.classList.contains("player-seek")) return;
  const player = playerOf(event.target);
  const audio = player?.querySelector("audio");
  if (!audio) return;
  audio.currentTime = Number(event.target.value);
  render(player);
});

// Media events do not bubble: listen in the capture phase, once for every player.
for (const type of ["play", "pause", "ended", "timeupdate", "loadedmetadata", "durationchange", "seeked"]) {
  document.addEventListener(type, (event) => {
    const player = playerOf(event.target);
    if (player) render(player);
  }, true);
}
