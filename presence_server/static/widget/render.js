// Drawing the floor: the plan (SVG from the rooms' rectangles) and the list view.
// Pure DOM builders: they take the floor view and a context of texts and actions
// and return nodes; the element decides when to draw. Every node that can hold
// focus has a data-key, so the element can put focus back after a redraw.
// People are addressed by their person id ("municipality/user_id": `m.person`,
// `ctx.me`, `data-person`, room owners), never by the user id alone, which is
// unique only within its town.
//
// Accessibility: status is a colour AND a glyph AND a word; doors an icon AND a
// word; rooms in the plan are buttons with a full accessible name; the list view
// says everything the plan shows.

import { STATUS } from "./i18n.js";

const SVG_NS = "http://www.w3.org/2000/svg";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== false && v != null) node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

/** Visually hidden text: part of the accessible name, not of the picture. */
export const hidden = (text) => el("span", { class: "sr-only" }, text);

export const initials = (name) =>
  name.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join("") || "?";

/** "altbach" -> "Altbach": the campus gives only one's own municipality's name. */
export const municipalityName = (id) => (id ? id[0].toUpperCase() + id.slice(1) : "");

export function statusWords(ctx, m) {
  return ctx.label(m.status) + (m.text ? `: ${m.text}` : "") + (m.in_call ? ` · ${ctx.t("in_call")}` : "");
}

function personName(ctx, m) {
  return m.person === ctx.me ? `${m.name} (${ctx.t("you")})` : `${m.name} (${municipalityName(m.municipality)})`;
}

// ------------------------------------------------------------------ the plan
export function renderPlan(view, ctx) {
  const { width: W, height: H } = view.floor;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "group", "aria-label": ctx.t("plan", { floor: view.floor.name }) },
    svg("rect", { class: "floor-bg", x: 1, y: 1, width: W - 2, height: H - 2, rx: 6 }));
  const rooms = view.roomsInOrder();
  const band = hallwayBand(rooms, H);
  root.append(svg("text", { class: "hallway-label", x: 24, y: band + 6 }, ctx.t("hallway")));
  const hall = view.occupants(null);
  const perRow = Math.max(1, Math.floor((W - 160) / 46));
  hall.slice(0, perRow).forEach((m, i) => root.append(avatar(ctx, m, 150 + i * 46, band)));
  if (hall.length > perRow) root.append(svg("text", { class: "room-kind", x: W - 60, y: band + 6 }, `+${hall.length - perRow}`));
  for (const room of rooms) root.append(...roomShape(view, room, ctx));
  return root;
}

/** The y of a horizontal line no room covers (the corridor), else the middle. */
function hallwayBand(rooms, H) {
  const free = (y) => !rooms.some((r) => r.rect.y < y && y < r.rect.y + r.rect.h);
  const mid = H / 2;
  for (let d = 0; d < H / 2; d += 10) {
    if (free(mid + d)) return mid + d;
    if (free(mid - d)) return mid - d;
  }
  return mid;
}

/** The room's accessible name: first its visible words in the order drawn (so
 * speech input can say what it sees, WCAG 2.5.3), then who is inside. */
export function roomLabel(ctx, room, people, shown) {
  const who = people.length ? `. ${people.map((p) => `${personName(ctx, p)}, ${statusWords(ctx, p)}`).join("; ")}` : "";
  return `${shown.join(", ")}${who}`;
}

function roomShape(view, room, ctx) {
  const { x, y, w, h } = room.rect;
  const people = view.occupants(room.id);
  const mine = ctx.location.room_id === room.id;
  const lines = wrap(room.name, w - 24, 2);
  const kindLine = `${ctx.label(room.kind)} · ${people.length}/${room.capacity}${mine ? ` · ${ctx.t("you_are_here")}` : ""}`;
  // Occupants: initials in rows; "+N" when they do not fit.
  const kindY = y + 28 + lines.length * 20;
  const top = kindY + 32;
  const perRow = Math.max(1, Math.floor((w - 24) / 44));
  const rows = Math.max(1, Math.floor((y + h - 40 - (top - 22)) / 44));
  const more = people.length > perRow * rows ? `+${people.length - perRow * rows}` : null;
  const shown = [lines.join(" "), kindLine, ...(more ? [more] : []), ctx.label(room.door)];
  const g = svg("g", {
    class: `room door-${room.door}${mine ? " mine" : ""}`, tabindex: 0, role: "button",
    "data-key": `plan:${room.id}`, "data-room": room.id, "aria-label": roomLabel(ctx, room, people, shown),
  }, svg("rect", { class: "room-bg", x, y, width: w, height: h }));
  // Each text ends in a space (SVG drops it when drawing) so that tools reading the
  // group's text see words, not "RathausProjektraum".
  lines.forEach((line, i) => g.append(svg("text", { class: "room-name", x: x + 12, y: y + 26 + i * 20 }, `${line} `)));
  g.append(svg("text", { class: "room-kind", x: x + 12, y: kindY }, `${kindLine} `));
  if (more) g.append(svg("text", { class: "room-kind", x: x + w - 44, y: y + h - 44 }, `${more} `));
  g.append(doorIcon(room.door, x + 12, y + h - 32), svg("text", { class: "door-text", x: x + 40, y: y + h - 15 }, ctx.label(room.door)));
  g.addEventListener("click", () => ctx.act.enter(room));
  g.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); ctx.act.enter(room); }
  });
  // The occupants are drawn over the room, outside its button (their initials are
  // not part of its name; the name lists them in words); clicks fall through.
  const faces = svg("g", { class: "faces", "aria-hidden": "true" });
  people.slice(0, perRow * rows).forEach((m, i) => faces.append(avatar(ctx, m, x + 30 + (i % perRow) * 44, top + Math.floor(i / perRow) * 44)));
  return [g, faces];
}

function avatar(ctx, m, cx, cy) {
  const { colour, glyph } = STATUS[m.status] || STATUS.away;
  const me = m.person === ctx.me;
  const g = svg("g", { class: `avatar${me ? " me" : ""}`, "data-person": m.person, "data-room": m.room_id ?? "", "aria-hidden": "true" },
    svg("circle", { cx, cy, r: 18, fill: colour }),
    svg("text", { class: "initials", x: cx, y: cy + 5 }, initials(m.name)),
    svg("circle", { class: "badge", cx: cx + 14, cy: cy + 13, r: 8, stroke: colour }),
    svg("text", { class: "badge-glyph", x: cx + 14, y: cy + 17, fill: colour }, glyph));
  if (m.in_call) g.append(svg("circle", { class: "in-call", cx, cy, r: 22 }));
  return g;
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
function wrap(text, width, maxLines, size = 16) {
  const max = Math.max(4, Math.floor(width / (size * 0.6)));
  const lines = [];
  for (const word of text.split(/\s+/)) {
    const last = lines.length - 1;
    if (last >= 0 && `${lines[last]} ${word}`.length <= max) lines[last] += ` ${word}`;
    else lines.push(word);
  }
  if (lines.length > maxLines) lines.splice(maxLines - 1, lines.length, `${lines.slice(maxLines - 1).join(" ").slice(0, max - 1)}…`);
  return lines;
}

// ------------------------------------------------------------- the list view
export function renderList(view, ctx) {
  const rooms = view.roomsInOrder().map((room) => roomItem(view, room, ctx));
  const hall = view.occupants(null);
  const inHall = ctx.location.floor_id === view.floorId && ctx.location.room_id === null;
  rooms.push(el("li", { class: `room-item${inHall ? " mine" : ""}`, "data-room": "" },
    el("h4", {}, ctx.t("hallway"), inHall ? ` – ${ctx.t("you_are_here")}` : ""),
    peopleList(hall, ctx),
    inHall ? null : el("button", { type: "button", class: "secondary", "data-key": "list:hallway", onclick: () => ctx.act.hallway() }, ctx.t("to_hallway"))));
  return el("ul", { class: "rooms" }, ...rooms);
}

function roomItem(view, room, ctx) {
  const people = view.occupants(room.id);
  const mine = ctx.location.room_id === room.id;
  const knocks = room.door === "closed" && !mine && !room.owners.includes(ctx.me);
  const action = mine ? null : el("button", {
    type: "button", class: knocks ? "" : "secondary", "data-key": `list:${room.id}`,
    onclick: () => (knocks ? ctx.act.knock(room) : ctx.act.move(room)),
  }, ctx.t(knocks ? "knock" : "enter"), hidden(` – ${room.name}`));
  const call = mine && !ctx.inCall ? el("button", { type: "button", "data-key": "list:call", onclick: () => ctx.act.joinCall(room) },
    ctx.t("join_call"), hidden(` – ${room.name}`)) : null;
  return el("li", { class: `room-item${mine ? " mine" : ""}`, "data-room": room.id },
    el("h4", {}, room.name, mine ? ` – ${ctx.t("you_are_here")}` : ""),
    el("p", { class: "meta" }, `${ctx.label(room.kind)} · ${ctx.label(room.door)} · ${ctx.t("people", { n: people.length, cap: room.capacity })}`),
    people.length ? peopleList(people, ctx) : null, action, call);
}

function peopleList(people, ctx) {
  if (!people.length) return el("p", { class: "meta" }, ctx.t("nobody"));
  return el("ul", { class: "people" }, ...people.map((m) => personItem(m, ctx)));
}

export function personItem(m, ctx) {
  const { colour, glyph } = STATUS[m.status] || STATUS.away;
  const ring = m.person === ctx.me ? null : el("button", {
    type: "button", class: "secondary small", "data-key": `ring:${m.person}`, onclick: () => ctx.act.ring(m),
  }, ctx.t("ring"), hidden(` – ${m.name} (${municipalityName(m.municipality)})`));
  return el("li", { class: "person", "data-person": m.person, "data-status": m.status },
    el("span", { class: `dot status-${m.status}`, "aria-hidden": "true" }, glyph),
    el("span", { class: "who" }, personName(ctx, m)),
    el("span", { class: "status-words" }, ` – ${statusWords(ctx, m)}`),
    ring);
}

export function legend(ctx) {
  return el("p", { class: "legend" }, hidden(`${ctx.t("legend")}: `),
    ...Object.entries(STATUS).flatMap(([s, { glyph }]) => [
      el("span", { class: `dot status-${s}`, "aria-hidden": "true" }, glyph), ` ${ctx.label(s)} `]));
}
