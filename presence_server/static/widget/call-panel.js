// The call panel of <virtual-office-floor>: one video tile per participant,
// microphone and camera switches, leave. Tiles are kept across redraws (a new
// <video> per redraw would restart playback); only what changed is touched.

import { el } from "./render.js";

export class CallPanel {
  /** @param {HTMLElement} root the panel's <section>; @param ctx {t, call, names(), roomName()};
   * names() maps person ids ("municipality/user_id") to display names. */
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.tiles = new Map(); // "local" or person id -> {figure, video, caption}
    const { t } = ctx;
    this.title = el("h3", { id: "call-title" });
    this.videos = el("div", { class: "videos" });
    this.peers = el("ul", { class: "people peer-states" });
    this.mic = el("button", { type: "button", class: "secondary", "data-key": "call:mic", "aria-pressed": "false", onclick: () => ctx.call.toggleMic() });
    this.cam = el("button", { type: "button", class: "secondary", "data-key": "call:cam", "aria-pressed": "false", onclick: () => ctx.call.toggleCam() });
    this.play = el("button", { type: "button", class: "secondary", hidden: true, onclick: () => this._playAll() }, t("play_audio"));
    this.leave = el("button", { type: "button", "data-key": "call:leave", onclick: () => ctx.leave() }, t("leave_call"));
    this.noMedia = el("p", { class: "meta", hidden: true }, t("no_media"));
    root.setAttribute("aria-labelledby", "call-title");
    root.replaceChildren(this.title, this.noMedia, this.videos, el("div", {}, this.mic, this.cam, this.leave, this.play), this.peers);
  }

  update() {
    const { call, t } = this.ctx;
    const active = call.call !== null;
    this.root.hidden = !active;
    if (!active) { this._sync(new Map()); return; }
    const names = this.ctx.names();
    const others = call.call.members.filter((p) => p !== call.me);
    this.title.textContent = call.call.kind === "room"
      ? t("call_room", { room: this.ctx.roomName(call.call.room_id) })
      : t("call_direct", { name: others.map((p) => names.get(p) || p).join(", ") });
    this.noMedia.hidden = call.mediaKind !== "none";
    this.mic.textContent = t(call.micOn ? "mic_off" : "mic_on");
    this.mic.setAttribute("aria-pressed", String(!call.micOn));
    this.cam.textContent = t(call.camOn ? "cam_off" : "cam_on");
    this.cam.setAttribute("aria-pressed", String(!call.camOn));
    this.cam.hidden = !call.local?.getVideoTracks().length;
    this.mic.hidden = !call.local?.getAudioTracks().length;
    const streams = new Map();
    if (call.local) streams.set("local", { stream: call.local, label: t("video_me") });
    for (const [person, link] of call.links) {
      if (link.stream) streams.set(person, { stream: link.stream, label: t("video_of", { name: names.get(person) || person }) });
    }
    this._sync(streams);
    this.peers.replaceChildren(...[...call.links].map(([person, link]) => el("li", { "data-peer": person, "data-state": link.state },
      t("peer_state", { name: names.get(person) || person, state: t(`${peerState(link.state)}_peer`) }))));
  }

  _sync(streams) {
    for (const [key, tile] of this.tiles) {
      if (!streams.has(key)) { tile.video.srcObject = null; tile.figure.remove(); this.tiles.delete(key); }
    }
    for (const [key, { stream, label }] of streams) {
      let tile = this.tiles.get(key);
      if (!tile) {
        const video = el("video", { autoplay: true, playsinline: true, "aria-label": label });
        video.muted = key === "local"; // never play one's own microphone back
        const caption = el("figcaption", {}, label);
        tile = { figure: el("figure", { class: "tile", "data-tile": key }, video, caption), video, caption };
        this.tiles.set(key, tile);
        this.videos.append(tile.figure);
      }
      tile.video.setAttribute("aria-label", label);
      tile.caption.replaceChildren(label);
      if (tile.video.srcObject !== stream) {
        tile.video.srcObject = stream;
        // Autoplay with sound may be refused until the user interacts: offer a button then.
        tile.video.play().catch(() => { this.play.hidden = false; });
      }
    }
  }

  _playAll() {
    for (const tile of this.tiles.values()) tile.video.play().catch(() => {});
    this.play.hidden = true;
  }
}

const peerState = (state) => (state === "connected" ? "connected" : state === "failed" ? "failed" : "connecting");
