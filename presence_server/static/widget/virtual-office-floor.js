// <virtual-office-floor server="https://office.example" floor="projekt" token="…">
//
// The embeddable floor of the virtual office (docs/embedding.md). An ES module
// with no build step; its only dependency is the official socket.io-client
// (ES module build, served by the presence server beside this file).
//
// Attributes: server (default: the origin this script came from), floor
// (default: where the user is, else their first floor), token (or the `token`
// property, preferred), lang (else the page's language), passive (only watch:
// do not step onto the floor's hallway when the user is on no floor).
// Properties set before this module ran (a portal's inline script right after
// the tag) are adopted when the element is defined: the custom-element
// "upgrade" of own properties that would otherwise shadow the setters.
// Above the floor: a picker of the floors the user may see (floor-picker.js,
// campus.get; a portal with its own list hides it: ::part(floors)).
// Below the floor: the specialist finder (finder.js, GET /api/v1/people/search).
// For staff: "New project" (project-dialog.js, project.create), which then shows
// the project's floor; on a project floor, for its coordinators, "Manage project"
// (project-manage.js: members, invitation links); a floor the user may no longer see (floor.revoked) is left
// with a notice saying why, for their first visible floor.
// Methods: setToken(token), walkTo(roomId|null), setStatus(status, text),
// knock(roomId, message), answerKnock(knockId, admit), cancelKnock(knockId?),
// joinCall(), leaveCall(), ring(person), createProject(payload), openProjectDialog().
// Events (bubbling, composed CustomEvents): vo-ready, vo-presence, vo-knock,
// vo-knock-outcome, vo-ring, vo-state, vo-error, vo-token-expiring,
// vo-project-created, vo-project-updated, vo-floor-revoked, vo-invitation-created,
// vo-invitation-revoked.
// A person is named by their person id, "municipality/user_id" (e.g.
// "lindenau/lea.lindenau"), in methods, events and data attributes: a user id is
// unique only within its town. user_id and municipality come along as information.
// State for tests and diagnostics: the `state` and `callState` properties and the
// host's data-connection, data-location, data-seq, data-call, data-peers-connected.

import { OfficeSession } from "./session.js";
import { MeshCall } from "./call.js";
import { CallPanel } from "./call-panel.js";
import { FinderPanel } from "./finder.js";
import { FloorPicker } from "./floor-picker.js";
import { ProjectDialog } from "./project-dialog.js";
import { ProjectManage } from "./project-manage.js";
import { errorText, pickLanguage, translator, STATUS } from "./i18n.js";
import { knockCard, pendingLines, ringCard } from "./alerts.js";
import { el, legend, renderList, renderPlan } from "./render.js";
import { widgetSheet } from "./styles.js";

const DEFAULT_SERVER = new URL(import.meta.url).origin;
// vo-token-expiring fires TOKEN_WARNING_S before the token's exp; a token that lives
// less than SHORT_TOKEN_S (as the widget received it) is announced when three
// quarters of its lifetime have passed, so it never fires at once, nor in a loop.
const TOKEN_WARNING_S = 60;
const SHORT_TOKEN_S = TOKEN_WARNING_S * 4;

/** Milliseconds from now until vo-token-expiring, for a token received `receivedAt` (ms). */
export function expiryWarningDelay(expiresAt, receivedAt, now = Date.now()) {
  const lifetime = Math.max(0, expiresAt * 1000 - receivedAt);
  const lead = lifetime < SHORT_TOKEN_S * 1000 ? lifetime / 4 : TOKEN_WARNING_S * 1000;
  return Math.max(0, expiresAt * 1000 - lead - now);
}

export class VirtualOfficeFloor extends HTMLElement {
  static get observedAttributes() { return ["server", "floor", "token", "lang"]; }

  constructor() {
    super();
    this.attachShadow({ mode: "open" });
    this.shadowRoot.adoptedStyleSheets = [widgetSheet()];
    this._token = null;
    this.session = null;
    this.call = null;
    this._i18n = translator("en");
    this._pending = null; // our own pending knock
    this._knockCards = new Map();
    this._ringCards = new Map();
    this._renderQueued = false;
    this._expiryTimer = null;
    this._expiry = null; // {expiresAt, receivedAt, warned} of the token in use
    this._connectionError = null; // code of the last refusal reported, against repeats
  }

  // ------------------------------------------------------------ lifecycle
  connectedCallback() {
    this._adoptEarlyProperties(); // before _live: the setters only store
    this._live = true; // attribute changes before this (upgrade) are read here
    this._i18n = translator(pickLanguage(this));
    this._build();
    this._start();
  }

  disconnectedCallback() {
    this._live = false;
    this.call?.leave();
    this.session?.close();
    this.session = this.call = null;
    clearTimeout(this._expiryTimer);
  }

  attributeChangedCallback(name, old, value) {
    if (!this._live || old === value) return;
    if (name === "token") this.token = value;
    else if (name === "floor" && value && this.session) {
      this.session.wantedFloor = value; // also after a reconnect
      if (this.session.connected) this.session.watch(value);
    }
    else if (name === "lang") { this._i18n = translator(pickLanguage(this)); this._build(); this._render(); }
    else if (name === "server") { this.disconnectedCallback(); this._live = true; this._start(); }
  }

  /** A page may set properties before this module ran: e.g. an inline script right
   * after the tag sets `el.token`, while the module script (deferred) defines the
   * element later. Such a value sits on the element as a plain own property and
   * would hide the setter for good; take it over and delete it. */
  _adoptEarlyProperties() {
    for (const name of Object.keys(this)) {
      const accessor = Object.getOwnPropertyDescriptor(VirtualOfficeFloor.prototype, name);
      if (!accessor?.set) continue;
      const value = this[name];
      delete this[name];
      this[name] = value;
    }
  }

  get token() { return this._token ?? this.getAttribute("token"); }
  set token(value) { this.setToken(value); }

  /** The origin of the page embedding this one, if any (the iframe page sets its
   * parent's): sent in the handshake, where it can only narrow who may connect. */
  get embedder() { return this._embedder ?? null; }
  set embedder(value) { this._embedder = value || null; }

  /** Hand over a token: signs in, reconnects a refused or ended session, or refreshes
   * the live session (auth.refresh, no reconnect). Resolves to the acknowledgement:
   * {ok: true, token_expires_at} for a refresh, {ok: true} when a connection starts,
   * {ok: false, error} when the server refused the token (the session keeps the old one). */
  async setToken(value) {
    this._token = value;
    if (!this._live) return { ok: true }; // connectedCallback starts with it
    if (!this.session) { this._start(); return { ok: true }; }
    const ack = await this.session.setToken(value);
    if (ack.ok && ack.token_expires_at) this._watchExpiry(ack.token_expires_at);
    else if (!ack.ok) this._error(ack.error);
    return ack;
  }

  /** Connection, user, location and the floor as the widget holds it. */
  get state() {
    const s = this.session;
    const view = s?.view;
    return {
      connection: s?.state ?? "idle", error: s?.error ? this._errorShape(s.error) : null,
      me: s?.me ?? null, location: s?.location ?? null,
      token_expires_at: s?.tokenExpiresAt ?? null,
      floor_id: view?.floorId ?? null, seq: view?.seq ?? null, gaps: view?.gaps ?? 0, stale: view?.stale ?? true,
      members: view ? [...view.members.values()] : [], pending_knock: this._pending,
    };
  }

  get callState() { return this.call?.state ?? null; }

  // -------------------------------------------------------------- actions
  async walkTo(roomId, floorId = this.session?.view?.floorId) {
    const ack = await this._request("presence.move", { floor_id: floorId, room_id: roomId ?? null });
    if (ack.ok && floorId !== this.session.view?.floorId) await this.session.watch(floorId);
    return ack;
  }

  async setStatus(status, text = "") {
    const ack = await this._request("presence.status", { status, text });
    if (ack.ok) this._notice(this._i18n.t("status_set"));
    return ack;
  }

  async knock(roomId, message = "") {
    const ack = await this._request("knock.send", { room_id: roomId, message });
    if (ack.ok) this._setPending(ack.knock);
    return ack;
  }

  answerKnock(knockId, admit) { return this._request("knock.answer", { knock_id: knockId, admit }); }

  /** Withdraw a knock of this user (default: the pending one). */
  cancelKnock(knockId = this._pending?.knock_id) {
    if (!knockId) return Promise.resolve({ ok: false, error: this._errorShape({ code: "not_found" }) });
    return this._request("knock.cancel", { knock_id: knockId });
  }

  async joinCall() {
    const roomId = this.session?.location.room_id;
    if (!roomId) return { ok: false, error: { code: "forbidden" } };
    const ack = await this.call.joinRoom(roomId);
    if (!ack.ok) this._error(ack.error);
    return ack;
  }

  leaveCall() { return this.call?.leave() ?? Promise.resolve({ ok: true }); }

  /** Ring a colleague by person id ("municipality/user_id"). */
  async ring(person) {
    const ack = await this.call.ring(person);
    if (!ack.ok) this._error(ack.error);
    else this._renderPending();
    return ack;
  }

  /** Create a project (project.create; payload as docs/protocol.md): the user becomes
   * its first coordinator and the widget shows its new floor. Resolves to the ack
   * ({ok, project, floor} or {ok: false, error: {code, message, field?}}). */
  async createProject(payload) {
    const ack = await this._request("project.create", payload, false);
    if (ack.ok) await this._projectCreated(ack);
    return ack;
  }

  /** Open the "New project" dialog (staff only; as the button does). */
  openProjectDialog() {
    if (this.projectDialog?.button.hidden) return false;
    this.projectDialog?.open();
    return true;
  }

  // ------------------------------------------------------------ internals
  _start() {
    const token = this.token;
    if (!token) { this._setConnection("idle"); this._notice(this._i18n.t("no_token")); return; }
    const server = this.getAttribute("server") || DEFAULT_SERVER;
    this.$notice.replaceChildren();
    this.session = new OfficeSession({
      server, token, lang: this._i18n.lang, floorId: this.getAttribute("floor"), enter: !this.hasAttribute("passive"),
      embedder: this.embedder,
    });
    this.call = new MeshCall(this.session);
    this.callPanel = new CallPanel(this.$call, {
      t: this._i18n.t, call: this.call, leave: () => this.leaveCall(),
      names: () => this._names(), roomName: (id) => this.session.view?.rooms.get(id)?.name || id,
    });
    const on = (name, fn) => this.session.addEventListener(name, (e) => fn(e.detail));
    on("state", ({ state, error }) => this._onState(state, error));
    on("ready", (ready) => this._onReady(ready));
    on("live", () => this._onLive());
    on("view", () => this._render());
    on("location", () => this._render());
    on("floor-missing", () => { this._notice(this._i18n.t("floor_missing"), true); this._render(); });
    on("floor-revoked", (revoked) => this._onRevoked(revoked));
    on("project.updated", ({ project }) => this._onProjectUpdated(project));
    on("degraded", ({ degraded }) => this._notice(this._i18n.t(degraded ? "degraded" : "recovered")));
    on("knock.incoming", (knock) => this._onKnockIncoming(knock));
    on("knock.pending", (knock) => this._setPending(knock));
    on("knock.outcome", (outcome) => this._onKnockOutcome(outcome));
    on("call.ring", ({ ring }) => this._onRing(ring));
    on("call.ring_outcome", (outcome) => this._onRingOutcome(outcome));
    this.call.addEventListener("change", (e) => this._onCallChange(e.detail.what));
    this.session.connect();
  }

  _onState(state, rawError) {
    this._setConnection(state);
    const t = this._i18n.t;
    const error = rawError ? this._errorShape(rawError) : null;
    const text = { connecting: t("connecting"), connected: t("connected"), reconnecting: t("reconnecting"),
      refused: t("refused"), error: t("conn_error"), idle: "" }[state] ?? state;
    this.$conn.textContent = text;
    if (state === "connected" || state === "connecting") { this._connectionError = null; this.$notice.replaceChildren(); }
    if (state === "refused") clearTimeout(this._expiryTimer); // nothing to refresh until a new token
    // A refusal is said once, not at every retry of the same one.
    if (error && (state === "refused" || state === "error" || state === "reconnecting") && error.code !== this._connectionError) {
      this._connectionError = error.code;
      this._error(error);
    }
    this._emit("vo-state", { state, error });
  }

  _onReady(ready) {
    this._announced = false; // vo-ready of this session not sent yet
    this._watchExpiry(ready.token_expires_at);
    this._knockCards.forEach((card) => card.remove());
    this._knockCards.clear();
    (ready.knocks?.incoming || []).forEach((knock) => this._onKnockIncoming(knock, false));
    this._pending = null;
    if (ready.knocks?.own) this._setPending(ready.knocks.own);
    this.$status.value = ready.me.status;
    this.$text.value = ready.me.text;
    this.projectDialog.setMe(ready.me);
  }

  /** The first snapshot of a new session is shown, with the user where they stand. */
  _onLive() {
    const s = this.session;
    const view = s.view;
    // A new session after a long outage: if the server no longer has us in our
    // call (the grace period ran out), end it here too.
    const mine = view?.members.get(s.me.person);
    if (this.call?.call && mine && mine.in_call !== this.call.call.call_id) this.call.leave();
    this._render(); // drawn (and data-seq set) before the portal hears of it
    const { person, user_id, municipality } = s.me;
    this._emit("vo-ready", { person, user_id, municipality, floor_id: view?.floorId ?? null, location: s.location,
      seq: view?.seq ?? null, members: this._members(view) });
    this._announced = true;
    this._presenceSignature = null;
    this._render(); // and the first vo-presence, with the same view
    this.floorPicker.refresh(); // floors may have come or gone while we were away
  }

  /** vo-token-expiring once per token: TOKEN_WARNING_S before exp, or at three
   * quarters of a short token's lifetime (expiryWarningDelay). */
  _watchExpiry(expiresAt) {
    if (!expiresAt) return;
    if (this._expiry?.expiresAt !== expiresAt) this._expiry = { expiresAt, receivedAt: Date.now(), warned: false };
    clearTimeout(this._expiryTimer);
    if (this._expiry.warned) return;
    const ms = expiryWarningDelay(expiresAt, this._expiry.receivedAt);
    const token = this._expiry;
    this._expiryTimer = setTimeout(() => {
      if (this._expiry !== token || token.warned) return;
      token.warned = true;
      this._emit("vo-token-expiring", { expires_at: expiresAt });
    }, Math.min(ms, 2 ** 31 - 1));
  }

  /** A request; a refusal goes to vo-error and (unless `notice` is false: the dialog
   * says it itself) to the widget's notice line. */
  async _request(event, data, notice = true) {
    if (!this.session) return { ok: false, error: this._errorShape({ code: "offline" }) };
    const ack = await this.session.request(event, data);
    if (!ack.ok) {
      ack.error = this._errorShape(ack.error);
      if (notice) this._error(ack.error);
      else this._emit("vo-error", { error: ack.error });
    }
    return ack;
  }

  // ----------------------------------------------------------- projects
  /** A project was created here: show its floor, say so, tell the portal. */
  async _projectCreated(ack) {
    const floorId = ack.floor?.id ?? ack.project?.floor_id;
    this._emit("vo-project-created", { project: ack.project, floor: ack.floor });
    if (floorId) this.setAttribute("floor", floorId); // watches it (attributeChangedCallback)
    this.floorPicker.current = floorId ?? this.floorPicker.current;
    this.floorPicker.refresh();
    this._notice(this._i18n.t("project_created", { name: ack.project?.name ?? "" }), false, true);
  }

  /** project.updated: a project of this user was created or changed. Someone just
   * added (not its creator, whose widget already shows it) hears of it; the floor
   * picker lists its floor; the portal hears vo-project-updated. */
  async _onProjectUpdated(project) {
    this.projectManage.projectUpdated(project);
    const known = this.floorPicker.floors.some((f) => f.id === project.floor_id);
    await this.floorPicker.refresh();
    if (!known && project.created_by !== this.session?.me?.person && this.floorPicker.floors.some((f) => f.id === project.floor_id)) {
      this._notice(this._i18n.t("project_joined", { name: project.name }), false, true);
    }
    this._emit("vo-project-updated", { project });
  }

  /** floor.revoked: the floor on view is gone for this user. Say why, and show their
   * first visible floor instead (the portal hears vo-floor-revoked and may choose). */
  async _onRevoked({ floor_id: floorId, reason, name, shown }) {
    const { t } = this._i18n;
    let next = null;
    if (shown) {
      // Focus on the floor that goes (a room, a button of the list): back to the floor picker.
      const active = this.shadowRoot.activeElement;
      const focusWasOnFloor = !!active && (this.$plan.contains(active) || this.$list.contains(active));
      this.$plan.replaceChildren();
      this.$list.replaceChildren();
      this.projectManage.setFloor(null);
      this.$title.textContent = t("widget");
      this.$listTitle.textContent = "";
      const ack = await this._request("campus.get", {}, false);
      next = ack.ok ? ack.campus.floors.find((f) => f.id !== floorId) ?? null : null;
      if (ack.ok) this.floorPicker.update(ack.campus.floors.filter((f) => f.id !== floorId), next?.id ?? null);
      const why = t(reason === "deleted" ? "floor_revoked_deleted" : "floor_revoked_membership", { floor: name });
      this._notice(next ? `${why} ${t("floor_revoked_next", { floor: next.name })}` : why, false, true);
      if (next) this.setAttribute("floor", next.id);
      else { this.removeAttribute("floor"); this._render(); }
      if (focusWasOnFloor) (this.$floors.hidden ? this.$listTitle : this.floorPicker.select).focus();
    } else {
      this.floorPicker.refresh();
    }
    this._emit("vo-floor-revoked", { floor_id: floorId, reason, next_floor_id: next?.id ?? null });
  }

  /** The one error shape, with a message in the widget's language where the server gave none. */
  _errorShape(error) {
    const code = error?.code || "internal";
    const { detail, ...rest } = error || {};
    return { ...rest, code, message: error?.message || errorText(this._i18n.lang, code) };
  }

  /** The plan's and the list's one action on a room: walk in, or knock on a closed door. */
  _enter(room) {
    const s = this.session;
    if (!s || s.location.room_id === room.id) return;
    return room.door === "closed" && !room.owners.includes(s.me?.person) ? this.knock(room.id) : this.walkTo(room.id);
  }

  // ------------------------------------------------------------- knocks
  _setPending(knock) {
    this._pending = knock;
    this._announce(this._i18n.t("knocking", { room: this._roomName(knock.room_id) }), "polite");
    this._renderPending();
  }

  _onKnockIncoming(knock, announce = true) {
    const answer = async (admit) => { const ack = await this.answerKnock(knock.knock_id, admit); if (ack.ok) card.remove(); };
    const { card, spoken } = knockCard(this._i18n.t, knock, this._roomName(knock.room_id), answer);
    this._knockCards.get(knock.knock_id)?.remove();
    this._knockCards.set(knock.knock_id, card);
    this.$alerts.append(card);
    if (announce) this._announce(spoken, knock.silent ? "polite" : "assertive");
    this._emit("vo-knock", { knock });
  }

  _onKnockOutcome(outcome) {
    this._knockCards.get(outcome.knock_id)?.remove();
    this._knockCards.delete(outcome.knock_id);
    if (outcome.knocker_id === this.session.me?.person) {
      this._pending = null;
      this._renderPending();
      const { t } = this._i18n;
      this._notice(t("knock_result", { room: this._roomName(outcome.room_id), outcome: t(outcome.outcome) }), false, true);
    }
    this._emit("vo-knock-outcome", { outcome });
  }

  // -------------------------------------------------------------- rings
  _onRing(ring) {
    const accept = () => this.call.accept(ring.ring_id).then((ack) => ack.ok || this._error(ack.error));
    const { card, spoken } = ringCard(this._i18n.t, ring, accept, () => this.call.decline(ring.ring_id));
    this._ringCards.set(ring.ring_id, card);
    this.$alerts.append(card);
    this._announce(spoken, "assertive");
    this._emit("vo-ring", { ring });
  }

  _onRingOutcome(outcome) {
    this._ringCards.get(outcome.ring_id)?.remove();
    this._ringCards.delete(outcome.ring_id);
    const mine = this.call.ringing?.ring_id === outcome.ring_id;
    this.call.ringEnded(outcome);
    if (mine && outcome.outcome !== "accepted") {
      const { t } = this._i18n;
      this._notice(t("ring_result", { outcome: t(outcome.outcome) }), false, true);
    }
    this._renderPending();
  }

  _onCallChange(what) {
    const state = this.call.state;
    this.dataset.call = state.call_id ? "active" : this.call.ringing ? "ringing" : "idle";
    this.dataset.peersConnected = String(Object.values(state.peers).filter((p) => p.state === "connected").length);
    this.callPanel.update();
    if (what === "stats") return; // media counters only: nothing on the floor changed
    this._renderPending();
    this._scheduleRender();
  }

  // ------------------------------------------------------------ drawing
  _build() {
    const { t, label } = this._i18n;
    const root = this.shadowRoot;
    this.$title = el("h2", {}, t("widget"));
    this.$where = el("p", { class: "where" });
    this.$conn = el("p", { class: "conn" });
    this.$notice = el("div", { class: "notice", role: "status", "aria-live": "polite" });
    this.$announce = el("div", { class: "sr-only", "aria-live": "assertive", "aria-atomic": "true" });
    this.$pending = el("div", { class: "pending" });
    this.$alerts = el("section", { class: "alerts", "aria-label": t("alerts") });
    this.$status = el("select", { id: "vo-status" }, ...Object.entries(STATUS).map(([s, { glyph }]) => el("option", { value: s }, `${glyph} ${label(s)}`)));
    this.$text = el("input", { id: "vo-status-text", maxlength: "140", autocomplete: "off" });
    const form = el("form", { class: "status-form", onsubmit: (e) => { e.preventDefault(); this.setStatus(this.$status.value, this.$text.value.trim()); } },
      el("div", { class: "field" }, el("label", { for: "vo-status" }, t("status")), this.$status),
      el("div", { class: "field" }, el("label", { for: "vo-status-text" }, t("status_text")), this.$text),
      el("button", { type: "submit", "data-key": "status:set" }, t("set_status")));
    this.$call = el("section", { class: "call", hidden: true });
    this.$plan = el("div", { class: "plan-svg" });
    this.$listTitle = el("h3", { id: "vo-list-title", tabindex: "-1" });
    this.$list = el("div", {});
    this.$finder = el("section", { class: "finder", part: "finder" }); // a portal may hide it: ::part(finder)
    const finder = new FinderPanel(this.$finder, { ...this._i18n, server: () => this.getAttribute("server") || DEFAULT_SERVER,
      token: () => this.token, ring: (r) => this.ring(r.person), here: () => this.session?.location ?? {},
      view: () => this.session?.view, walkTo: (room, floor) => this.walkTo(room, floor), enter: (room) => this._enter(room) });
    if (this.finder) finder.restore(this.finder); // a new language: the same search in new words
    this.finder = finder;
    const shared = { ...this._i18n, server: () => this.getAttribute("server") || DEFAULT_SERVER, token: () => this.token,
      me: () => this.session?.me ?? null, request: (event, data) => this._request(event, data, false),
      campus: () => this._request("campus.get", {}, false), names: () => this._names(), emit: (n, d) => this._emit(n, d) };
    const dialog = new ProjectDialog({ ...shared, created: (ack) => this._projectCreated(ack) });
    const manage = new ProjectManage(shared);
    this.$floors = el("div", { class: "floors", part: "floors" }); // a portal may hide it: ::part(floors)
    const picker = new FloorPicker(this.$floors, { t, campus: () => this._request("campus.get", {}, false),
      show: (floorId) => this.setAttribute("floor", floorId) });
    if (this.floorPicker) picker.restore(this.floorPicker);
    this.floorPicker = picker;
    const carried = this.projectDialog?.snapshot(); // a new language: the same dialogs in new words
    const managed = this.projectManage?.snapshot();
    this.projectDialog?.close();
    this.projectManage?.close();
    [this.projectDialog, this.projectManage] = [dialog, manage];
    root.replaceChildren(el("div", { class: "vo", lang: this._i18n.lang },
      el("div", { class: "top" }, this.$title, this.$where, this.$conn, dialog.button, manage.button), dialog.dialog, manage.dialog,
      this.$floors, this.$notice, this.$announce, this.$pending, this.$alerts, form, this.$call,
      el("div", { class: "layout" },
        el("figure", {}, this.$plan, el("figcaption", {}, legend(this._i18n))),
        el("section", { class: "list", "aria-labelledby": "vo-list-title" }, this.$listTitle, this.$list)),
      this.$finder));
    if (carried) dialog.restore(carried); // once attached: showModal needs a connected dialog
    if (managed) manage.restore(managed);
    if (this.callPanel) { // a new language: the same state in new words
      this.callPanel = new CallPanel(this.$call, { ...this.callPanel.ctx, t });
      this.callPanel.update();
      this._knockCards.forEach((card) => this.$alerts.append(card));
      this._ringCards.forEach((card) => this.$alerts.append(card));
      this._renderPending();
    }
  }

  _scheduleRender() {
    if (this._renderQueued) return;
    this._renderQueued = true;
    queueMicrotask(() => { this._renderQueued = false; this._render(); });
  }

  _render() {
    const s = this.session;
    const view = s?.view;
    const { t } = this._i18n;
    this.dataset.location = s?.location.floor_id ? `${s.location.floor_id}/${s.location.room_id ?? ""}` : "";
    this.$where.textContent = s?.me ? t("where_me", { where: this._whereText() }) : "";
    if (!view || view.stale || !view.floor) return;
    this.dataset.seq = String(view.seq);
    this.floorPicker.setCurrent(view.floorId);
    this.projectManage.setFloor(view.floor); // its coordinators get "Manage project"
    this.$title.textContent = view.floor.name;
    this.$listTitle.textContent = t("list", { floor: view.floor.name });
    if (!this.shadowRoot.activeElement?.closest?.("form")) {
      const mine = view.members.get(s.me?.person);
      if (mine) { this.$status.value = mine.status; this.$text.value = mine.text; }
    }
    const focusKey = this.shadowRoot.activeElement?.dataset?.key;
    const ctx = {
      ...this._i18n, me: s.me?.person, location: s.location, inCall: !!this.call?.call,
      act: {
        enter: (room) => this._enter(room), move: (room) => this.walkTo(room.id), knock: (room) => this.knock(room.id),
        hallway: () => this.walkTo(null), joinCall: () => this.joinCall(), ring: (m) => this.ring(m.person),
      },
    };
    this.$plan.replaceChildren(renderPlan(view, ctx));
    this.$list.replaceChildren(renderList(view, ctx));
    if (focusKey) this._refocus(focusKey);
    // vo-presence only after vo-ready (before it, the view is not yet the user's own),
    // and only when something changed (a redraw for a call button is not news).
    if (!this._announced) return;
    const signature = `${view.floorId}:${view.seq}:${s.location.floor_id}/${s.location.room_id}`;
    if (signature === this._presenceSignature) return;
    this._presenceSignature = signature;
    this._emit("vo-presence", { floor_id: view.floorId, seq: view.seq, location: s.location,
      me: s.me && { person: s.me.person, user_id: s.me.user_id, municipality: s.me.municipality, status: s.me.status, text: s.me.text },
      members: this._members(view) });
  }

  _members(view) {
    return view ? [...view.members.values()].map(({ person, user_id, name, municipality, status, text, room_id, in_call }) =>
      ({ person, user_id, name, municipality, status, text, room_id, in_call: in_call ?? null })) : [];
  }

  /** Focus back where it was after a redraw; if that control is gone, somewhere near. */
  _refocus(key) {
    const find = (k) => this.shadowRoot.querySelector(`[data-key="${CSS.escape(k)}"]`);
    const target = find(key) || (key.startsWith("list:") && find("list:call")) || (key.startsWith("list:") && this.$listTitle);
    if (target && this.shadowRoot.activeElement !== target) target.focus();
  }

  _renderPending() {
    const knock = this._pending;
    const ring = this.call?.ringing;
    const parts = pendingLines(this._i18n.t, {
      knock, roomName: knock && this._roomName(knock.room_id),
      withdraw: () => this._request("knock.cancel", { knock_id: knock.knock_id }),
      ring, calleeName: ring && (this._names().get(ring.callee_id) || ring.callee_id), hangUp: () => this.call.cancelRing(),
    });
    const focusKey = this.shadowRoot.activeElement?.dataset?.key;
    this.$pending.replaceChildren(...parts);
    if (focusKey) this._refocus(focusKey);
  }

  _whereText() {
    const { floor_id: floorId, room_id: roomId } = this.session.location;
    const { t } = this._i18n;
    if (!floorId) return t("nowhere");
    const floorName = (this.session.view?.floorId === floorId ? this.session.view.floor?.name : null)
      || this.floorPicker?.floors.find((f) => f.id === floorId)?.name || floorId; // on a floor not shown: the picker knows its name
    return roomId ? `${this._roomName(roomId)}, ${floorName}` : `${t("in_hallway")}, ${floorName}`;
  }

  _roomName(roomId) { return this.session?.view?.rooms.get(roomId)?.name || roomId; }

  /** Person id -> display name, for the call panel and the pending ring. */
  _names() {
    const floor = [...(this.session?.view?.members.values() || [])].map((m) => [m.person, m.name]);
    return new Map([...(this.finder?.names() || []), ...floor]); // someone found on another floor has a name too
  }

  _setConnection(state) { this.dataset.connection = state; }

  _notice(text, isError = false, announce = false) {
    const { t } = this._i18n;
    this.$notice.replaceChildren(el("p", { class: isError ? "error" : "" }, isError ? `${t("error")}: ${text}` : text));
    if (announce) this._announce(text, "assertive");
  }

  _error(error) {
    const shaped = this._errorShape(error);
    this._notice(shaped.message, true);
    this._emit("vo-error", { error: shaped });
  }

  /** Say something to screen readers; cleared first so the same words are said again. */
  _announce(text, politeness = "assertive") {
    const region = this.$announce;
    region.setAttribute("aria-live", politeness);
    region.textContent = "";
    setTimeout(() => { region.textContent = text; }, 50);
  }

  _emit(name, detail) { this.dispatchEvent(new CustomEvent(name, { detail, bubbles: true, composed: true })); }
}

if (!customElements.get("virtual-office-floor")) customElements.define("virtual-office-floor", VirtualOfficeFloor);
