// Calls in the browser: a WebRTC full mesh brokered by the server (docs/calls.md).
// The same message flow as the Python reference, signalling/webrtc.py:
//  * room call: call.join answers {call, ice_servers}; the members already inside
//    offer to the newcomer, so a newcomer only answers, and each member offers
//    to those who arrive after it (call.updated) — no glare;
//  * direct call: the callee accepts (call.answer) and offers to the caller; the
//    caller adopts the call from call.updated, which comes before any signal;
//  * non-trickle: each SDP is sent once ICE gathering is complete, so it carries
//    its candidates (aiortc peers ignore `candidate` signals). Candidates that a
//    trickling peer sends are still added.
// Media never passes the server. One RTCPeerConnection per other member.
// Members, peers, signal `from`/`to` and ring parties are person ids
// ("municipality/user_id"), never bare user ids.

const GATHER_TIMEOUT_MS = 4000; // send what was gathered by then (a slow STUN server must not stall the call)
const STATS_PERIOD_MS = 1000;

export class MeshCall extends EventTarget {
  constructor(session) {
    super();
    this.session = session;
    this.call = null;
    this.config = { iceServers: [] };
    this.local = null; // MediaStream, or null without camera and microphone
    this.mediaKind = "none"; // audio+video | audio | none
    this.micOn = true;
    this.camOn = true;
    this.links = new Map(); // person id -> {pc, stream, state, audioBytes, videoFrames, candidates}
    this.ringing = null; // our outgoing ring {ring_id, callee_id} (callee_id: a person id)
    this._expected = null; // id of the direct call our accepted ring became, until call.updated brings it
    this._known = new Set();
    this._media = null;
    this._joining = false;
    this._held = []; // events that arrived while a join was being acknowledged
    this._chains = new Map(); // person id -> promise: their signals are handled in order
    this._stats = null;
    session.addEventListener("call.updated", (e) => this._onUpdated(e.detail));
    session.addEventListener("call.signal", (e) => this._onSignal(e.detail));
  }

  get me() { return this.session.me?.person; }

  /** For tests and diagnostics: the call and, per peer, the connection state and incoming media. */
  get state() {
    const peers = {};
    for (const [person, link] of this.links) peers[person] = { state: link.state, audioBytes: link.audioBytes, videoFrames: link.videoFrames };
    return { call_id: this.call?.call_id ?? null, kind: this.call?.kind ?? null, room_id: this.call?.room_id ?? null,
      members: this.call?.members ?? [], media: this.mediaKind, peers };
  }

  // --------------------------------------------------------------- actions
  async joinRoom(roomId) {
    await this._startMedia();
    this._joining = true;
    const ack = await this.session.request("call.join", { room_id: roomId });
    if (ack.ok) this._enter(ack.call, ack.ice_servers);
    this._joining = false;
    this._flushHeld();
    if (!ack.ok && !this.call) this._stopMedia();
    return ack;
  }

  /** Ring one person (a person id, "municipality/user_id"): every session of theirs rings. */
  async ring(person) {
    await this._startMedia(); // ready before the callee's offer arrives
    const ack = await this.session.request("call.ring", { person });
    if (ack.ok) {
      this.config = { iceServers: ack.ice_servers || [] };
      this.ringing = { ring_id: ack.ring.ring_id, callee_id: ack.ring.callee_id ?? person };
    } else if (!this.call) this._stopMedia();
    this._changed();
    return ack;
  }

  async cancelRing() {
    const ring = this.ringing;
    if (!ring) return { ok: true };
    this.ringing = null;
    if (!this.call) this._stopMedia();
    this._changed();
    return this.session.request("call.cancel", { ring_id: ring.ring_id });
  }

  /** A ring we placed ended. "accepted": the call's call.updated may come before or
   * after this outcome; any other outcome means no call comes. */
  ringEnded(outcome) {
    if (this.ringing && outcome.ring_id === this.ringing.ring_id) {
      this.ringing = null;
      if (outcome.outcome === "accepted" && this.call?.call_id !== outcome.call_id) this._expected = outcome.call_id;
      else if (outcome.outcome !== "accepted" && !this.call) this._stopMedia();
      this._changed();
    }
  }

  async accept(ringId) {
    await this._startMedia();
    this._joining = true;
    const ack = await this.session.request("call.answer", { ring_id: ringId, accept: true });
    if (ack.ok && ack.call) {
      this._enter(ack.call, ack.ice_servers);
      for (const caller of ack.call.members.filter((p) => p !== this.me).sort()) this._serial(caller, () => this._offer(caller));
    }
    this._joining = false;
    this._flushHeld();
    if (!ack.ok && !this.call) this._stopMedia();
    return ack;
  }

  decline(ringId) { return this.session.request("call.answer", { ring_id: ringId, accept: false }); }

  async leave() {
    const had = this.call;
    this.call = null;
    this._teardown();
    return had ? this.session.request("call.leave", {}) : { ok: true };
  }

  toggleMic() { this.micOn = !this.micOn; this.local?.getAudioTracks().forEach((t) => { t.enabled = this.micOn; }); this._changed(); }
  toggleCam() { this.camOn = !this.camOn; this.local?.getVideoTracks().forEach((t) => { t.enabled = this.camOn; }); this._changed(); }

  // --------------------------------------------------------- server events
  _enter(call, iceServers) {
    this._closeLinks();
    this.call = call;
    this.config = { iceServers: iceServers || [] };
    this._known = new Set(call.members); // those inside offer to us
    this._startStats();
    this._changed();
  }

  _onUpdated(call) {
    if (this._joining) { this._held.push(() => this._onUpdated(call)); return; }
    const ours = (this.ringing || call.call_id === this._expected) && call.kind === "direct";
    if (ours && !this.call && !call.ended && call.members.includes(this.me)) {
      this.ringing = this._expected = null; // our ring was accepted: the callee offers to us
      this.call = call;
      this._known = new Set(call.members);
      this._startStats();
      this._changed();
      return;
    }
    if (!this.call || call.call_id !== this.call.call_id) return;
    if (call.ended) { this.call = null; this._teardown(); return; }
    this.call = call;
    const members = new Set(call.members);
    for (const gone of this._known) if (!members.has(gone)) this._closeLink(gone);
    for (const newcomer of [...members].sort()) {
      if (!this._known.has(newcomer) && newcomer !== this.me) this._serial(newcomer, () => this._offer(newcomer));
    }
    this._known = members;
    this._changed();
  }

  _onSignal(signal) {
    if (this._joining) { this._held.push(() => this._onSignal(signal)); return; }
    if (!this.call || signal.call_id !== this.call.call_id) return; // not our call (any more)
    const peer = signal.from;
    const data = signal.data || {};
    if (signal.kind === "offer") this._serial(peer, () => this._answer(peer, data));
    else if (signal.kind === "answer") this._serial(peer, async () => { await this.links.get(peer)?.pc.setRemoteDescription(data); });
    else if (signal.kind === "candidate") this._serial(peer, () => this._addCandidate(peer, data));
  }

  _flushHeld() {
    const held = this._held;
    this._held = [];
    held.forEach((fn) => fn());
  }

  // ---------------------------------------------------------- offer/answer
  async _offer(peer) {
    await this._media;
    const link = this._newLink(peer);
    if (this.local) this.local.getTracks().forEach((track) => link.pc.addTrack(track, this.local));
    for (const kind of ["audio", "video"]) { // receive what we do not send
      if (!this.local?.getTracks().some((t) => t.kind === kind)) link.pc.addTransceiver(kind, { direction: "recvonly" });
    }
    await link.pc.setLocalDescription(await link.pc.createOffer());
    await gathered(link.pc);
    if (this.links.get(peer) === link) await this._send(peer, "offer", link.pc.localDescription);
  }

  async _answer(peer, offer) {
    await this._media;
    this._closeLink(peer); // they rejoined and we missed their leaving
    const link = this._newLink(peer);
    await link.pc.setRemoteDescription(offer);
    if (this.local) this.local.getTracks().forEach((track) => link.pc.addTrack(track, this.local));
    await link.pc.setLocalDescription(await link.pc.createAnswer());
    await Promise.all(link.candidates.splice(0).map((c) => link.pc.addIceCandidate(c).catch(() => {})));
    await gathered(link.pc);
    if (this.links.get(peer) === link) await this._send(peer, "answer", link.pc.localDescription);
  }

  async _addCandidate(peer, data) {
    const link = this.links.get(peer);
    if (!link || !data.candidate) return;
    if (link.pc.remoteDescription) await link.pc.addIceCandidate(data).catch(() => {});
    else link.candidates.push(data);
  }

  _send(peer, kind, description) {
    return this.session.request("call.signal", {
      call_id: this.call.call_id, to: peer, kind, data: { type: description.type, sdp: description.sdp },
    });
  }

  _serial(peer, task) {
    const next = (this._chains.get(peer) || Promise.resolve()).then(task).catch((err) => {
      console.warn("virtual-office-floor: call signalling with", peer, "failed:", err);
    });
    this._chains.set(peer, next);
  }

  _newLink(peer) {
    const pc = new RTCPeerConnection(this.config);
    const link = { pc, stream: null, state: "new", audioBytes: 0, videoFrames: 0, candidates: [] };
    this.links.set(peer, link);
    pc.addEventListener("connectionstatechange", () => { link.state = pc.connectionState; this._changed(); });
    pc.addEventListener("track", (event) => {
      link.stream = event.streams[0] || link.stream || new MediaStream();
      if (!link.stream.getTracks().includes(event.track)) link.stream.addTrack(event.track);
      this._changed();
    });
    this._changed();
    return link;
  }

  // ----------------------------------------------------------------- media
  _startMedia() {
    if (!this._media) this._media = this._getMedia();
    return this._media;
  }

  async _getMedia() {
    const devices = navigator.mediaDevices;
    for (const [constraints, kind] of [[{ audio: true, video: { width: 320, height: 240 } }, "audio+video"], [{ audio: true }, "audio"]]) {
      try {
        this.local = await devices.getUserMedia(constraints);
        this.mediaKind = kind;
        this.micOn = this.camOn = true;
        this._changed();
        return;
      } catch { /* try less, then listen only */ }
    }
    this.local = null;
    this.mediaKind = "none";
    this._changed();
  }

  _stopMedia() {
    this.local?.getTracks().forEach((t) => t.stop());
    this.local = null;
    this.mediaKind = "none";
    this._media = null;
  }

  _startStats() {
    if (this._stats) return;
    this._stats = setInterval(() => this._readStats(), STATS_PERIOD_MS);
  }

  async _readStats() {
    let changed = false;
    for (const link of this.links.values()) {
      const report = await link.pc.getStats().catch(() => null);
      report?.forEach((r) => {
        if (r.type !== "inbound-rtp") return;
        if (r.kind === "audio" && r.bytesReceived !== link.audioBytes) { link.audioBytes = r.bytesReceived; changed = true; }
        if (r.kind === "video" && (r.framesDecoded ?? 0) !== link.videoFrames) { link.videoFrames = r.framesDecoded ?? 0; changed = true; }
      });
    }
    if (changed) this._changed("stats");
  }

  _closeLink(peer) {
    const link = this.links.get(peer);
    if (!link) return;
    this.links.delete(peer);
    link.pc.close();
    this._changed();
  }

  _closeLinks() { [...this.links.keys()].forEach((peer) => this._closeLink(peer)); this._known = new Set(); }

  _teardown() {
    this._closeLinks();
    clearInterval(this._stats);
    this._stats = null;
    this._chains.clear();
    if (!this.ringing) this._stopMedia();
    this._changed();
  }

  _changed(what = "call") { this.dispatchEvent(new CustomEvent("change", { detail: { what } })); }
}

/** Resolves when ICE gathering is complete, or after GATHER_TIMEOUT_MS. */
function gathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") { resolve(); return; }
    const finish = () => { clearTimeout(timer); pc.removeEventListener("icegatheringstatechange", check); resolve(); };
    const check = () => { if (pc.iceGatheringState === "complete") finish(); };
    const timer = setTimeout(finish, GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", check);
  });
}
