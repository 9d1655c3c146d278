// The widget's connection to the presence server: one Socket.IO session (the
// official socket.io-client, ES module build served beside this file), requests
// with acknowledgements, and the watched floor kept current by the rules of
// docs/protocol.md §5 (buffer before the snapshot, skip old diffs, resync on a gap).
//
// It reconnects by itself: socket.io-client retries dropped transports; when the
// server ends the session (shutdown, slow client) this class reconnects with a
// capped back-off. A refusal that another try cannot fix (FINAL_REFUSALS: the
// page's origin, the town, the token) stops until a new token is set, and so
// does a session the server ended for good (session.ended, e.g. token_expired).
// Every new session watches the floor again, since sequence numbers belong to a session.
//
// Errors are the server's one shape {code, message}; where the browser gives no
// code (the server cannot be reached) the code is "unavailable" without a message,
// which the element words.
//
// Events (EventTarget, `detail` is the payload): state, ready, live (the first
// snapshot of a new session is shown and the user stands where they will stand),
// view, location, floor-missing, floor-revoked ({floor_id, reason, name, shown}: a
// floor this session watched became invisible, e.g. its project dropped the user;
// `shown` when it was the floor on view, which is then gone), project.updated
// ({project}: a project of the user was created or changed, e.g. they were just
// added), degraded, knock.incoming, knock.pending, knock.outcome, call.updated, call.signal, call.ring ({ring}), call.ring_outcome,
// call.notes.
//
// People are named by their person id, "municipality/user_id" (`me.person`,
// `member.person`): a user id is unique only within its town.

import { io } from "./vendor/socket.io.esm.min.js";
import { FloorView } from "./floor-view.js";

const REQUEST_TIMEOUT_MS = 8000;
const BACKOFF_MAX_MS = 10000;
// Refusals that another try with the same page and token cannot fix.
export const FINAL_REFUSALS = new Set([
  "origin_not_allowed", "municipality_not_allowed", "unauthenticated", "token_expired", "forbidden",
]);
const FORWARDED = [
  "project.updated", "knock.incoming", "knock.pending", "knock.outcome",
  "call.updated", "call.signal", "call.ring", "call.ring_outcome", "call.notes",
];

export class OfficeSession extends EventTarget {
  /** @param {{server: string, token: string, lang: string, floorId: string|null, enter: boolean, embedder?: string|null}} options
   * enter: someone on no floor steps into the shown floor's hallway on connect, so an
   * open widget means "present" to colleagues; false only watches.
   * embedder: the origin of the page embedding this one (the iframe page's parent),
   * sent in the handshake so the server refuses a town that does not allow it. */
  constructor({ server, token, lang, floorId, enter = true, embedder = null }) {
    super();
    this.enter = enter;
    this.embedder = embedder;
    this.server = server;
    this.token = token;
    this.lang = lang;
    this.wantedFloor = floorId; // null: the user's current floor, else their first visible one
    this.state = "idle"; // idle | connecting | connected | reconnecting | refused | error
    this.error = null;
    this.me = null;
    this.tokenExpiresAt = null; // exp of the token the server holds for this session
    this.location = { floor_id: null, room_id: null };
    this.view = null;
    this.everConnected = false;
    this._socket = null;
    this._backoff = 500;
    this._retry = null;
    this._live = false; // "live" sent for the current session
    this._entered = false; // the current session has watched (and stepped onto) its floor
  }

  // ------------------------------------------------------------ connection
  connect() {
    if (this._socket) return;
    const socket = io(this.server, {
      transports: ["websocket"],
      // A function, so every reconnect presents the newest token.
      auth: (cb) => cb({ token: this.token, lang: this.lang, ...(this.embedder ? { embedder: this.embedder } : {}) }),
      reconnectionDelayMax: BACKOFF_MAX_MS,
    });
    this._socket = socket;
    this._setState("connecting");
    socket.on("connect", () => { this._backoff = 500; });
    socket.on("session.ready", (ready) => this._onReady(ready));
    socket.on("disconnect", (reason) => {
      this._live = false;
      if (this.state === "refused") return; // session.ended came first: wait for a new token
      this._setState(this.everConnected ? "reconnecting" : "connecting");
      // The server ended this session (drain, slow client): socket.io does not retry that by itself.
      if (reason === "io server disconnect") this._scheduleReconnect();
    });
    // The server ends this session for good and says why (token_expired after the grace).
    socket.on("session.ended", ({ error }) => this._setState("refused", error));
    socket.on("connect_error", (err) => {
      // A refusal by the server carries {code, message}; a transport that never opened
      // (server down, network, the page's CSP) carries no code the page could read.
      const error = err?.data?.code ? err.data : { code: "unavailable", message: "", detail: String(err?.message || err) };
      if (!socket.active) { // the server refused this session
        if (FINAL_REFUSALS.has(error.code)) { this._setState("refused", error); return; }
        this._scheduleReconnect();
      }
      this._setState(this.everConnected ? "reconnecting" : "error", error);
    });
    socket.on("floor.diffs", (frame) => this._onDiffs(frame));
    socket.on("floor.seq", ({ floor_id: floorId, seq }) => {
      const view = this.view;
      if (view && view.floorId === floorId && (view.stale || seq > view.seq)) this.watch(floorId); // behind, or a refused resync
    });
    socket.on("presence.location", (where) => this._setLocation({ floor_id: where.floor_id, room_id: where.room_id }));
    socket.on("floor.revoked", (revoked) => this._onRevoked(revoked));
    socket.on("session.degraded", ({ degraded }) => this._emit("degraded", { degraded }));
    for (const name of FORWARDED) socket.on(name, (payload) => this._emit(name, payload));
  }

  close() {
    clearTimeout(this._retry);
    this._socket?.disconnect();
    this._socket = null;
    this._setState("idle");
  }

  /** A fresh token from the portal: refresh the live session, or reconnect a refused one. */
  async setToken(token) {
    const previous = this.token;
    this.token = token;
    if (this.state === "connected") {
      const ack = await this.request("auth.refresh", { token });
      if (ack.ok) this.tokenExpiresAt = ack.token_expires_at;
      else this.token = previous; // a refused token must not sign the next reconnect
      return ack;
    }
    if (this.state === "refused" || this.state === "error") {
      clearTimeout(this._retry);
      this._setState("connecting");
      this._socket?.connect();
    }
    return { ok: true };
  }

  get connected() { return this.state === "connected"; }

  /** Send a request; resolves to its acknowledgement, never rejects. */
  async request(event, data = {}, timeoutMs = REQUEST_TIMEOUT_MS) {
    const socket = this._socket;
    if (!socket || !socket.connected) return { ok: false, error: { code: "offline" } };
    try {
      return await socket.timeout(timeoutMs).emitWithAck(event, data);
    } catch {
      return { ok: false, error: { code: "timeout" } };
    }
  }

  /** Drop the transport as a network failure would (for tests of the reconnect path). */
  dropTransport() { this._socket?.io?.engine?.close(); }

  /** Feed a frame as if the server had sent it (for tests of the gap rule). */
  injectFrame(frame) { this._onDiffs(frame); }

  _scheduleReconnect() {
    clearTimeout(this._retry);
    const delay = this._backoff * (0.75 + Math.random() / 2);
    this._backoff = Math.min(this._backoff * 2, BACKOFF_MAX_MS);
    this._retry = setTimeout(() => this._socket?.connect(), delay);
  }

  _setState(state, error = null) {
    // Retries repeat the same refusal: report a state and its reason once.
    if (this.state === state && (this.error?.code ?? null) === (error?.code ?? null)) return;
    this.state = state;
    this.error = error;
    this._emit("state", { state, error });
  }

  _emit(name, detail) { this.dispatchEvent(new CustomEvent(name, { detail })); }

  async _onReady(ready) {
    this._live = false;
    this._entered = false;
    this.me = ready.me;
    this.tokenExpiresAt = ready.token_expires_at;
    this.everConnected = true;
    this._setLocation(ready.location);
    this._setState("connected");
    this._emit("ready", ready);
    let floorId = this.wantedFloor || ready.location.floor_id || this.view?.floorId;
    if (!floorId) {
      const ack = await this.request("campus.get");
      floorId = ack.ok ? ack.campus.floors[0]?.id : null;
    }
    if (!floorId) { this._emit("floor-missing", { floor_id: null }); this._goLive(); return; }
    const ack = await this.watch(floorId);
    if (ack.ok && this.enter && !this.location.floor_id) {
      const moved = await this.request("presence.move", { floor_id: floorId, room_id: null });
      if (moved.ok) this._setLocation(moved.location);
    }
    this._entered = true;
    this._maybeLive();
  }

  /** "live" once per session: the snapshot is loaded and, if the user stands on the
   * shown floor, the view shows them there (their joined diff has arrived). */
  _maybeLive() {
    const view = this.view;
    if (this._live || !this._entered || !this.connected) return;
    if (view && view.stale) return;
    if (view && this.location.floor_id === view.floorId && !view.members.has(this.me?.person)) return;
    this._goLive();
  }

  _goLive() {
    if (this._live) return;
    this._live = true;
    this._emit("live", { view: this.view, location: this.location });
  }

  /** True once the current session has sent "live". */
  get live() { return this._live; }

  // ----------------------------------------------------------- floor view
  /** Watch a floor: subscribe, then load the snapshot. Also the resync after a gap. */
  async watch(floorId) {
    const old = this.view;
    const view = old && old.floorId === floorId ? old : new FloorView(floorId);
    if (old && old !== view) this.request("floor.unwatch", { floor_id: old.floorId });
    this.view = view;
    view.markStale();
    const generation = (view.generation = (view.generation || 0) + 1);
    const ack = await this.request("floor.watch", { floor_id: floorId });
    if (this.view !== view || view.generation !== generation) return ack; // a newer watch is under way
    if (!ack.ok) {
      if (ack.error.code === "not_found") { this.view = null; this._emit("floor-missing", { floor_id: floorId }); }
      else this._retryWatch(floorId);
      return ack;
    }
    if (!view.loadSnapshot(ack.snapshot)) return this.watch(floorId); // a gap among the buffered diffs
    this._afterChange(view, null);
    return ack;
  }

  _retryWatch(floorId) {
    // Offline or a timeout: the next session.ready watches again; otherwise try once more shortly.
    setTimeout(() => { if (this.connected && this.view?.floorId === floorId && this.view.stale) this.watch(floorId); }, 1000);
  }

  _onDiffs(frame) {
    const view = this.view;
    if (!view || frame.floor_id !== view.floorId) return;
    if (!view.applyFrame(frame)) { this.watch(view.floorId); return; } // gap: fresh snapshot
    if (view.stale) return; // buffered until the snapshot arrives
    if (view.removed) {
      this.view = null;
      this._missing = { floorId: view.floorId, name: view.floor?.name };
      this._emit("floor-missing", { floor_id: view.floorId });
      return;
    }
    this._afterChange(view, frame);
  }

  /** floor.revoked: the server stopped this session's watch of a floor it may no longer
   * see (removed from a project, or the floor deleted). Leave that view for good: no
   * resync may bring it back. */
  _onRevoked({ floor_id: floorId, reason }) {
    const view = this.view;
    // A deleted floor may have gone already by its floor_removed diff: that was the shown one too.
    const missing = this._missing?.floorId === floorId ? this._missing : null;
    const shown = view?.floorId === floorId || !!missing;
    const name = (view?.floorId === floorId ? view.floor?.name : missing?.name) || floorId;
    if (view?.floorId === floorId) this.view = null;
    if (this.wantedFloor === floorId) this.wantedFloor = null;
    if (this.location.floor_id === floorId) this._setLocation({ floor_id: null, room_id: null });
    this._emit("floor-revoked", { floor_id: floorId, reason, name, shown });
  }

  _afterChange(view, frame) {
    const mine = this.me && view.members.get(this.me.person);
    if (mine) {
      this.me = { ...this.me, status: mine.status, text: mine.text };
      this._setLocation({ floor_id: view.floorId, room_id: mine.room_id ?? null });
    } else if (this.location.floor_id === view.floorId && frame) {
      this._setLocation({ floor_id: null, room_id: null });
    }
    this._emit("view", { view, frame });
    this._maybeLive();
  }

  _setLocation(location) {
    const changed = location.floor_id !== this.location.floor_id || location.room_id !== this.location.room_id;
    this.location = location;
    if (changed) this._emit("location", location);
  }
}
