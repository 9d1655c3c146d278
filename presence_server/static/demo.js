"use strict";
// Demo client of the virtual office. Dependency-free apart from the official
// socket.io-client (global `io`, served at /vendor/socket.io.min.js).
// Flow: pick a person -> GET /dev/token -> connect -> campus.get -> floor.watch,
// then keep the floor view current from `floor.diffs` frames (see FloorView).
// Demo/test shortcut: /?municipality=altbach&user=anna.altbach&name=Anna%20Albrecht&floor=projekt[&room=ID|hallway]

// ------------------------------------------------------------------ texts
const LANG = (navigator.language || "en").toLowerCase().startsWith("de") ? "de" : "en";
const TEXT = {
  de: {
    title: "Virtuelles Rathaus", logout: "Abmelden", who: "Wer sind Sie?", municipality: "Gemeinde",
    person: "Person", other: "Andere Person (Name eingeben)", name: "Name", role: "Rolle",
    role_staff: "Mitarbeiter/in", role_admin: "Administrator/in", enter: "Eintreten", floors: "Etagen",
    status: "Status", status_text: "Statustext", set: "Setzen", hallway: "Flur", rooms: "Räume",
    to_hallway: "In den Flur gehen", go_here: "Hierher gehen", knock: "Anklopfen", withdraw: "Zurückziehen",
    admit: "Hereinbitten", decline: "Ablehnen", nobody: "niemand", you_are_here: "Sie sind hier",
    me: "{name} · {municipality} · Ort: {where}", nowhere: "auf keiner Etage", in_hallway: "Flur, {floor}",
    plan: "Grundriss {floor}", people: "{n} von {cap} Personen", knock_offer: "Möchten Sie anklopfen?",
    knocking: "Sie klopfen an „{room}“ …", knocks_at: "{name} ({municipality}) klopft an „{room}“",
    silent: "leise – Sie sind auf „nicht stören“", status_set: "Status gesetzt.", error: "Fehler",
    disconnected: "Verbindung getrennt – neuer Versuch …",
    degraded: "Eingeschränkter Betrieb: Änderungen sind gerade nicht möglich.",
    recovered: "Wieder voll verfügbar.",
    connect_failed: "Keine Verbindung zum Server", origin_hint: "Steht diese Adresse in http.cors_origins?", timeout: "Keine Antwort vom Server.",
    admitted: "Hereingebeten", declined: "Abgelehnt", expired: "Niemand hat geöffnet", cancelled: "Zurückgezogen",
    outcome: "Klopfen an „{room}“: {outcome}", floor_gone: "Diese Etage gibt es nicht mehr.",
  },
  en: {
    title: "Virtual Town Hall", logout: "Sign out", who: "Who are you?", municipality: "Municipality",
    person: "Person", other: "Someone else (enter a name)", name: "Name", role: "Role",
    role_staff: "Staff", role_admin: "Administrator", enter: "Enter", floors: "Floors",
    status: "Status", status_text: "Status text", set: "Set", hallway: "Hallway", rooms: "Rooms",
    to_hallway: "Go to the hallway", go_here: "Go here", knock: "Knock", withdraw: "Withdraw",
    admit: "Admit", decline: "Decline", nobody: "nobody", you_are_here: "You are here",
    me: "{name} · {municipality} · Location: {where}", nowhere: "on no floor", in_hallway: "Hallway, {floor}",
    plan: "Floor plan {floor}", people: "{n} of {cap} people", knock_offer: "Would you like to knock?",
    knocking: "You are knocking on “{room}” …", knocks_at: "{name} ({municipality}) is knocking on “{room}”",
    silent: "silent – you are on “do not disturb”", status_set: "Status set.", error: "Error",
    disconnected: "Disconnected – retrying …",
    degraded: "Degraded: changes are not possible right now.",
    recovered: "Fully available again.",
    connect_failed: "Cannot connect to the server", origin_hint: "Is this address listed in http.cors_origins?", timeout: "The server did not answer.",
    admitted: "Admitted", declined: "Declined", expired: "Nobody answered", cancelled: "Withdrawn",
    outcome: "Knock on “{room}”: {outcome}", floor_gone: "This floor no longer exists.",
  },
};
const LABELS = {
  de: { office: "Büro", meeting: "Besprechung", project: "Projektraum", lounge: "Treffpunkt", service_counter: "Bürgerservice",
    open: "Tür offen", closed: "Tür zu – anklopfen", locked: "Abgeschlossen",
    available: "verfügbar", busy: "beschäftigt", away: "abwesend", do_not_disturb: "nicht stören" },
  en: { office: "Office", meeting: "Meeting", project: "Project room", lounge: "Lounge", service_counter: "Service counter",
    open: "Door open", closed: "Door closed – knock", locked: "Locked",
    available: "available", busy: "busy", away: "away", do_not_disturb: "do not disturb" },
}[LANG];
const t = (key, vars = {}) => TEXT[LANG][key].replace(/\{(\w+)\}/g, (_, k) => vars[k] ?? "");

// Status: colour AND a glyph AND text, so colour is never the only cue.
const STATUS = { available: ["#1a7f37", "✓"], busy: ["#9a6700", "!"], away: ["#57606a", "z"], do_not_disturb: ["#c62828", "–"] };

// The demo campus (config/demo_campus.toml): its municipalities and room owners.
const MUNICIPALITIES = { altbach: "Gemeinde Altbach", bergheim: "Stadt Bergheim", lindenau: "Gemeinde Lindenau", seefeld: "Markt Seefeld" };
const PEOPLE = {
  altbach: { "anna.altbach": "Anna Albrecht", "jan.altbach": "Jan Adler", "karl.altbach": "Karl Amann", "mia.altbach": "Mia Arnold" },
  bergheim: { "ben.bergheim": "Ben Becker", "tim.bergheim": "Tim Bauer", "greta.bergheim": "Greta Berger", "clara.bergheim": "Clara Brandt" },
  lindenau: { "lea.lindenau": "Lea Lorenz", "jonas.lindenau": "Jonas Lang", "otto.lindenau": "Otto Lenz", "nina.lindenau": "Nina Lehmann" },
  seefeld: { "sven.seefeld": "Sven Schuster", "paula.seefeld": "Paula Sommer", "eva.seefeld": "Eva Seidel" },
};

// ------------------------------------------------------------------ DOM helpers
const $ = (id) => document.getElementById(id);
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  // style through the CSSOM: the page's Content-Security-Policy (style-src 'self')
  // refuses style attributes, not styles set by its own script.
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick") node.addEventListener("click", v);
    else if (k === "style") node.style.cssText = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}
const initials = (name) => name.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join("") || "?";
const municipalityName = (id) => MUNICIPALITIES[id] || id;

/** One message at a time in the visible message area; errors are marked by text, not colour alone. */
function say(text, kind = "info", ...extra) {
  const box = $("messages");
  box.replaceChildren(el("p", { class: `msg ${kind}` }, kind === "error" ? `⚠ ${t("error")}: ${text}` : text, ...extra));
}
const sayError = (error, ...extra) => say(error?.message || error?.code || "?", "error", ...extra);

// ------------------------------------------------------------------ floor view
// Mirrors signalling/floorview.py: a snapshot plus the diffs after it. Members are
// keyed by person id ("municipality/user_id"): user ids are unique only within a town.
class FloorView {
  constructor(floorId) {
    Object.assign(this, { floorId, seq: 0, floor: {}, rooms: new Map(), members: new Map(), stale: true, removed: false, early: [] });
  }
  /** Take a snapshot, then replay early frames; false when the replay found a gap. */
  loadSnapshot(snap) {
    this.floor = snap.floor;
    this.rooms = new Map(snap.rooms.map((r) => [r.id, r]));
    this.members = new Map(snap.members.map((m) => [m.person, m]));
    this.seq = snap.seq;
    this.stale = false;
    const early = this.early;
    this.early = [];
    return early.every((d) => this.apply(d)); // frames that arrived before the snapshot
  }
  /** Apply a `floor.diffs` frame; false when a gap was found (a fresh snapshot is needed). */
  applyFrame(frame) {
    return frame.diffs.every((d) => this.apply(d));
  }
  apply(diff) {
    if (this.stale) { this.early.push(diff); return true; }
    if (diff.seq <= this.seq) return true; // already contained in the view
    if (diff.seq !== this.seq + 1) { this.stale = true; this.early = []; return false; }
    this.seq = diff.seq;
    const m = this.members.get(diff.person);
    switch (diff.type) {
      case "joined": this.members.set(diff.member.person, { ...diff.member }); break;
      case "left": this.members.delete(diff.person); break;
      case "moved": if (m) m.room_id = diff.room_id; break;
      case "status": if (m) Object.assign(m, { status: diff.status, text: diff.text }); break;
      case "room": this.rooms.set(diff.room.id, diff.room); break;
      case "room_removed": this.rooms.delete(diff.room_id); break;
      case "floor": this.floor = diff.floor; break;
      case "floor_removed": this.removed = true; break;
      default: break; // newer servers may add diff types
    }
    return true;
  }
  occupants(roomId) {
    return [...this.members.values()].filter((m) => m.room_id === roomId).sort((a, b) => a.name.localeCompare(b.name) || a.person.localeCompare(b.person));
  }
}

// ------------------------------------------------------------------ state and requests
const state = { socket: null, me: null, location: { floor_id: null, room_id: null }, floors: [], view: null, pendingKnock: null, startup: {} };

/** Send a request and return its ack ({ok, ...} or {ok:false, error}); errors are shown unless quiet. */
async function request(event, data = {}, quiet = false) {
  let ack;
  try { ack = await state.socket.timeout(8000).emitWithAck(event, data); }
  catch { ack = { ok: false, error: { code: "timeout", message: t("timeout") } }; }
  if (!ack.ok && !quiet) sayError(ack.error);
  return ack;
}

function findRoom(roomId) {
  return state.view?.rooms.get(roomId) || state.floors.flatMap((f) => f.rooms).find((r) => r.id === roomId);
}
const roomName = (roomId) => findRoom(roomId)?.name || roomId;

// ------------------------------------------------------------------ login and connection
function fillPeople() {
  const people = PEOPLE[$("municipality").value] || {};
  $("person").replaceChildren(...Object.entries(people).map(([id, name]) => el("option", { value: id }, name)), el("option", { value: "" }, t("other")));
  $("name").value = people[$("person").value] || "";
}

async function login(municipality, user, name, role, startup = {}) {
  // Staff is /dev/token's default role; an admin asks for role=staff&role=admin.
  const query = new URLSearchParams({ municipality, user, name });
  if (role === "admin") ["staff", "admin"].forEach((r) => query.append("role", r));
  let body;
  try { body = await (await fetch(`/dev/token?${query}`)).json(); }
  catch (err) { return sayError({ message: String(err) }); }
  if (!body.ok) return sayError(body.error);
  state.startup = startup;
  state.socket?.disconnect();
  const socket = (state.socket = io({ auth: { token: body.token, lang: LANG }, transports: ["websocket"] }));
  socket.on("connect_error", (err) => {
    // A refusal by the server carries [{code, message}] in err.data.
    const wire = Array.isArray(err.data) ? err.data[0] : err.data;
    // "websocket error" before any answer: most often an origin missing from http.cors_origins.
    const hint = err.message === "websocket error" ? ` ${t("origin_hint")}` : "";
    sayError(wire || { message: `${t("connect_failed")} (${err.message})${hint}` });
  });
  socket.on("disconnect", (reason) => reason !== "io client disconnect" && say(t("disconnected")));
  socket.on("session.ready", onReady);
  socket.on("floor.diffs", onDiffs);
  // After a server-side outage: a view behind the floor's current seq resyncs.
  socket.on("floor.seq", ({ floor_id, seq }) => {
    const view = state.view;
    if (view && view.floorId === floor_id && !view.stale && seq > view.seq) watch(floor_id);
  });
  socket.on("session.degraded", ({ degraded }) => say(t(degraded ? "degraded" : "recovered")));
  socket.on("knock.incoming", onKnockIncoming);
  socket.on("knock.pending", (knock) => showPendingKnock(knock));
  socket.on("knock.outcome", onKnockOutcome);
  // The server moved us (admitted, room or floor removed).
  socket.on("presence.location", ({ floor_id, room_id }) => { state.location = { floor_id, room_id }; render(); });
}

async function onReady(ready) {
  state.me = ready.me;
  state.location = ready.location;
  $("status").value = ready.me.status;
  $("status-text").value = ready.me.text;
  $("login").hidden = true;
  $("office").hidden = $("logout").hidden = $("whoami").hidden = false;
  say("");
  const ack = await request("campus.get");
  if (!ack.ok) return;
  state.floors = ack.campus.floors;
  // Knocks still pending when this session (re)connected (after campus.get: they name rooms).
  $("knocks").replaceChildren();
  ready.knocks?.incoming.forEach(onKnockIncoming);
  const { floor, room } = state.startup;
  state.startup = {}; // only on the first session.ready, not on reconnects
  const ids = state.floors.map((f) => f.id);
  const target = [floor, state.view?.floorId, ready.location.floor_id].find((id) => ids.includes(id)) || ids[0];
  if (target) await watch(target);
  if (target && room) await move(target, room === "hallway" ? null : room);
  if (ready.knocks?.own) showPendingKnock(ready.knocks.own);
  render();
}

/** The watched floor was deleted: say so, reload the campus and show another floor. */
async function floorRemoved(view) {
  request("floor.unwatch", { floor_id: view.floorId }, true);
  state.view = null;
  const ack = await request("campus.get");
  if (ack.ok) state.floors = ack.campus.floors;
  if (state.floors.length) await watch(state.floors[0].id);
  say(t("floor_gone"));
  render();
}

/** Watch a floor: subscribe, then load its snapshot. Also used to resync after a gap. */
async function watch(floorId) {
  const old = state.view;
  if (old && old.floorId !== floorId) request("floor.unwatch", { floor_id: old.floorId }, true);
  const view = old && old.floorId === floorId ? old : new FloorView(floorId);
  view.stale = true; // diffs arriving meanwhile are buffered
  state.view = view;
  const ack = await request("floor.watch", { floor_id: floorId });
  if (!ack.ok || state.view !== view) return;
  if (!view.loadSnapshot(ack.snapshot)) return watch(floorId); // gap among the buffered frames
  render();
}

function onDiffs(frame) {
  const view = state.view;
  if (!view || frame.floor_id !== view.floorId) return;
  if (!view.applyFrame(frame)) { watch(view.floorId); return; } // gap: ask for a fresh snapshot
  if (view.removed) { floorRemoved(view); return; }
  // A diff about me (a move by the server, a status set in another tab): read the updated view.
  if (frame.diffs.some((d) => (d.person ?? d.member?.person) === state.me.person)) {
    const mine = view.members.get(state.me.person);
    if (mine) state.location = { floor_id: view.floorId, room_id: mine.room_id };
    else if (state.location.floor_id === view.floorId) state.location = { floor_id: null, room_id: null };
    if (mine && document.activeElement?.form !== $("status-form")) {
      $("status").value = mine.status;
      $("status-text").value = mine.text;
    }
  }
  render();
}

// ------------------------------------------------------------------ moving and knocking
async function move(floorId, roomId) {
  const ack = await request("presence.move", { floor_id: floorId, room_id: roomId }, true);
  if (ack.ok) { state.location = ack.location; say(""); render(); return; }
  if (ack.error.code === "knock_required") {
    sayError(ack.error, " ", el("button", { type: "button", onclick: () => knock(roomId) }, t("knock")));
  } else sayError(ack.error);
}

async function knock(roomId) {
  const ack = await request("knock.send", { room_id: roomId });
  if (ack.ok) showPendingKnock(ack.knock);
}

function showPendingKnock(knock) {
  state.pendingKnock = knock.knock_id;
  const cancel = el("button", { type: "button", class: "secondary", onclick: () => request("knock.cancel", { knock_id: knock.knock_id }) }, t("withdraw"));
  say(t("knocking", { room: roomName(knock.room_id) }), "info", " ", cancel);
}

function onKnockIncoming(knock) {
  const who = { name: knock.knocker.name, municipality: municipalityName(knock.knocker.municipality), room: roomName(knock.room_id) };
  const answer = (admit) => request("knock.answer", { knock_id: knock.knock_id, admit });
  const banner = el("div", { class: `knock${knock.silent ? " silent" : ""}`, "data-knock": knock.knock_id },
    el("p", {}, el("strong", {}, t("knocks_at", who)), knock.message ? ` – „${knock.message}“` : "", knock.silent ? ` (${t("silent")})` : ""),
    el("button", { type: "button", onclick: () => answer(true) }, t("admit")),
    el("button", { type: "button", class: "secondary", onclick: () => answer(false) }, t("decline")));
  $("knocks").append(banner);
}

function onKnockOutcome(outcome) {
  document.querySelector(`[data-knock="${CSS.escape(outcome.knock_id)}"]`)?.remove();
  if (outcome.knocker_id === state.me?.person) {
    state.pendingKnock = null;
    const text = t("outcome", { room: roomName(outcome.room_id), outcome: t(outcome.outcome) });
    say(text, outcome.outcome === "admitted" ? "ok" : "info");
  }
}

// ------------------------------------------------------------------ rendering
function render() {
  const view = state.view;
  renderWhoami();
  $("floor-tabs").replaceChildren(...state.floors.map((f) => {
    const selected = f.id === view?.floorId;
    return el("button", { type: "button", role: "tab", "aria-selected": String(selected), onclick: () => watch(f.id) }, f.name);
  }));
  if (!view || view.stale && !view.floor.id) return;
  const focused = document.activeElement?.dataset?.room; // keep keyboard focus across re-renders
  $("floor-title").textContent = view.floor.name;
  $("plan").replaceChildren(renderPlan(view));
  if (focused) document.querySelector(`#plan [data-room="${CSS.escape(focused)}"]`)?.focus();
  $("hallway-list").replaceChildren(...view.occupants(null).map(personItem));
  if (!view.occupants(null).length) $("hallway-list").append(el("li", { class: "empty" }, t("nobody")));
  $("room-list").replaceChildren(...planOrder(view).map((room) => roomItem(view, room)));
}

function renderWhoami() {
  if (!state.me) return;
  const { floor_id: floorId, room_id: roomId } = state.location;
  const floor = state.floors.find((f) => f.id === floorId);
  const where = !floorId ? t("nowhere") : roomId ? roomName(roomId) : t("in_hallway", { floor: floor?.name || floorId });
  $("whoami").textContent = t("me", { name: state.me.name, municipality: municipalityName(state.me.municipality), where });
}

const statusText = (m) => LABELS[m.status] + (m.text ? `: ${m.text}` : "");
const roomLabel = (room, people) =>
  `${room.name}, ${LABELS[room.kind]}, ${LABELS[room.door]}, ${t("people", { n: people.length, cap: room.capacity })}` +
  (people.length ? `: ${people.map((p) => `${p.name} (${LABELS[p.status]})`).join(", ")}` : "");

function personItem(m) {
  const [colour, glyph] = STATUS[m.status] || STATUS.away;
  return el("li", {}, el("span", { class: "dot", style: `background:${colour}`, "aria-hidden": "true" }, glyph),
    ` ${m.name} `, el("span", { class: "muted" }, `(${municipalityName(m.municipality)}) – ${statusText(m)}`));
}

function roomItem(view, room) {
  const people = view.occupants(room.id);
  const mine = state.location.room_id === room.id;
  return el("li", { class: mine ? "mine" : "" },
    el("h3", {}, room.name, mine ? ` – ${t("you_are_here")}` : ""),
    el("p", { class: "muted" }, `${LABELS[room.kind]} · ${LABELS[room.door]} · ${t("people", { n: people.length, cap: room.capacity })}`),
    people.length ? el("ul", { class: "people" }, ...people.map(personItem)) : "",
    mine ? "" : el("button", { type: "button", class: "secondary", onclick: () => move(view.floorId, room.id) }, t("go_here")));
}

/** Rooms in reading order of the plan: by row, then left to right. */
const planOrder = (view) => [...view.rooms.values()].sort((a, b) => a.rect.y - b.rect.y || a.rect.x - b.rect.x);

/** The floor plan as inline SVG in plan units (the floor's width x height). */
function renderPlan(view) {
  const { width: W, height: H } = view.floor;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "group", "aria-label": t("plan", { floor: view.floor.name }) },
    svg("rect", { class: "floor-bg", x: 1, y: 1, width: W - 2, height: H - 2, rx: 6 }));
  const rooms = planOrder(view);
  // The hallway: drawn along the middle of the floor when no room covers it.
  const mid = H / 2;
  if (!rooms.some((r) => r.rect.y < mid && mid < r.rect.y + r.rect.h)) {
    root.append(svg("text", { class: "hallway-label", x: 30, y: mid + 6 }, t("hallway")));
    view.occupants(null).forEach((m, i) => root.append(avatar(m, 150 + i * 46, mid)));
  }
  for (const room of rooms) root.append(roomShape(view, room));
  return root;
}

function roomShape(view, room) {
  const { x, y, w, h } = room.rect;
  const people = view.occupants(room.id);
  const mine = state.location.room_id === room.id && state.location.floor_id === view.floorId;
  const g = svg("g", { class: `room door-${room.door}${mine ? " mine" : ""}`, tabindex: 0, role: "button", "data-room": room.id, "aria-label": roomLabel(room, people) },
    svg("rect", { class: "room-bg", x, y, width: w, height: h }));
  const lines = wrap(room.name, w - 24, 3);
  lines.forEach((line, i) => g.append(svg("text", { class: "room-name", x: x + 12, y: y + 28 + i * 21 }, line)));
  const kindY = y + 30 + lines.length * 21;
  g.append(svg("text", { class: "room-kind", x: x + 12, y: kindY }, `${LABELS[room.kind]} · ${people.length}/${room.capacity}${mine ? ` · ${t("you_are_here")}` : ""}`));
  // Occupants: initials circles in rows; "+N" when they do not fit.
  const top = kindY + 34, perRow = Math.max(1, Math.floor((w - 24) / 44));
  const rows = Math.max(1, Math.floor((y + h - 40 - (top - 22)) / 44));
  people.slice(0, perRow * rows).forEach((m, i) => g.append(avatar(m, x + 30 + (i % perRow) * 44, top + Math.floor(i / perRow) * 44)));
  if (people.length > perRow * rows) g.append(svg("text", { class: "room-kind", x: x + w - 40, y: y + h - 50 }, `+${people.length - perRow * rows}`));
  // The door: icon AND text.
  g.append(doorIcon(room.door, x + 12, y + h - 32), svg("text", { class: `door-text`, x: x + 40, y: y + h - 15 }, LABELS[room.door]));
  g.addEventListener("click", () => move(view.floorId, room.id));
  g.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); move(view.floorId, room.id); }
  });
  return g;
}

function avatar(m, cx, cy) {
  const [colour, glyph] = STATUS[m.status] || STATUS.away;
  const me = m.person === state.me?.person;
  return svg("g", { class: `avatar${me ? " me" : ""}` },
    svg("title", {}, `${m.name} (${municipalityName(m.municipality)}) – ${statusText(m)}`),
    svg("circle", { cx, cy, r: 18, fill: colour }),
    svg("text", { class: "initials", x: cx, y: cy + 5 }, initials(m.name)),
    svg("circle", { class: "badge", cx: cx + 14, cy: cy + 13, r: 8, stroke: colour }),
    svg("text", { class: "badge-glyph", x: cx + 14, y: cy + 17, fill: colour }, glyph));
}

/** Door icons on a 20x22 box: a swung-open door, a shut door, a padlock. */
function doorIcon(door, x, y) {
  const shapes = {
    open: [svg("rect", { x: 2, y: 1, width: 14, height: 20, fill: "none" }), svg("path", { d: "M2 1 L10 4 L10 23 L2 21 Z" })],
    closed: [svg("rect", { x: 2, y: 1, width: 14, height: 20 }), svg("circle", { class: "knob", cx: 12, cy: 11, r: 1.6 })],
    locked: [svg("path", { d: "M5 10 V6 a4 4 0 0 1 8 0 V10", fill: "none" }), svg("rect", { x: 2, y: 10, width: 14, height: 11, rx: 2 })],
  };
  return svg("g", { class: "door-icon", transform: `translate(${x} ${y})`, "aria-hidden": "true" }, ...(shapes[door] || shapes.closed));
}

/** Greedy word wrap by an estimated glyph width (SVG text does not wrap by itself). */
function wrap(text, width, maxLines, size = 17) {
  const max = Math.max(4, Math.floor(width / (size * 0.62)));
  const lines = [];
  for (const word of text.split(/\s+/)) {
    const last = lines.length - 1;
    if (last >= 0 && (lines[last] + " " + word).length <= max) lines[last] += " " + word;
    else lines.push(word);
  }
  if (lines.length > maxLines) lines.splice(maxLines - 1, lines.length, lines.slice(maxLines - 1).join(" ").slice(0, max - 1) + "…");
  return lines;
}

// ------------------------------------------------------------------ start
function start() {
  document.documentElement.lang = LANG;
  document.title = `${t("title")} – Demo`;
  document.querySelectorAll("[data-t]").forEach((node) => { node.textContent = t(node.dataset.t); });
  document.querySelectorAll("[data-t-label]").forEach((node) => node.setAttribute("aria-label", t(node.dataset.tLabel)));
  $("municipality").replaceChildren(...Object.entries(MUNICIPALITIES).map(([id, name]) => el("option", { value: id }, name)));
  $("status").replaceChildren(...Object.keys(STATUS).map((s) => el("option", { value: s }, `${STATUS[s][1]} ${LABELS[s]}`)));
  $("legend").replaceChildren(...Object.entries(STATUS).flatMap(([s, [colour, glyph]]) =>
    [el("span", { class: "dot", style: `background:${colour}`, "aria-hidden": "true" }, glyph), ` ${LABELS[s]}   `]));
  fillPeople();
  $("municipality").addEventListener("change", fillPeople);
  $("person").addEventListener("change", () => { $("name").value = PEOPLE[$("municipality").value]?.[$("person").value] || ""; $("name").focus(); });
  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    const municipality = $("municipality").value, name = $("name").value.trim();
    // Someone else: derive a user id from the name, e.g. "Max Muster" -> "max-muster.altbach".
    const slug = name.toLowerCase().replace(/[äöüß]/g, (c) => ({ ä: "ae", ö: "oe", ü: "ue", ß: "ss" })[c])
      .normalize("NFKD").replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "gast";
    login(municipality, $("person").value || `${slug}.${municipality}`, name, $("role").value);
  });
  $("status-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const ack = await request("presence.status", { status: $("status").value, text: $("status-text").value.trim() });
    if (ack.ok) say(t("status_set"), "ok");
  });
  $("to-hallway").addEventListener("click", () => state.view && move(state.view.floorId, null));
  $("logout").addEventListener("click", () => location.assign(location.pathname));
  // Demo/test shortcut: log in from the query string.
  const q = new URLSearchParams(location.search);
  if (q.get("municipality") && q.get("user")) {
    login(q.get("municipality"), q.get("user"), q.get("name") || q.get("user"), q.get("role") || "staff", { floor: q.get("floor"), room: q.get("room") });
  }
}

start();
