// The iframe page's side of the postMessage API (docs/embedding.md §4): it relays
// the widget's events to the embedding page and the embedding page's commands to
// the widget.
//
// Every message has `type`: the parent sends {type: "vo:command", command, id?, ...};
// this page answers each command with {type: "vo:result", id, ok, error?} and sends
// {type: "vo:event", event: "ready" | "presence" | "knock" | "tokenExpiring", ...}.
//
// Origins: commands are taken only from the parent window and only from an origin
// allowed to frame this floor (the same list as the page's frame-ancestors); once
// the token's municipality is known, only from that municipality's origins. Events
// go only to that origin (never "*"), since they carry who is where.

import "./virtual-office-floor.js";

const config = JSON.parse(document.getElementById("vo-embed").textContent);
const widget = document.querySelector("virtual-office-floor");
const framed = window.parent !== window;
const own = location.origin;
const originsFor = (keys) => new Set([own, ...keys.flatMap((k) => config.origins[k] || [])]);
let allowed = originsFor(Object.keys(config.origins)); // until the municipality is known
let parentOrigin = null;
const queue = []; // events produced before the parent's origin is known

/** The embedding page's origin, where the browser tells it (ancestorOrigins, referrer). */
function announcedParent() {
  if (location.ancestorOrigins?.length) return location.ancestorOrigins[0];
  try { return document.referrer ? new URL(document.referrer).origin : null; } catch { return null; }
}

function post(message) {
  if (!framed) return;
  if (parentOrigin) window.parent.postMessage(message, parentOrigin);
  else queue.push(message);
}

function adoptParent(origin) {
  parentOrigin = origin;
  queue.splice(0).forEach((message) => window.parent.postMessage(message, origin));
}

if (framed) {
  const candidate = announcedParent();
  if (candidate && allowed.has(candidate)) parentOrigin = candidate;
}

// The token from the fragment, which no server log and no Referer ever sees;
// removed from the address at once so it does not linger in history either.
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get("token")) {
  history.replaceState(null, "", location.pathname + location.search);
  widget.token = fragment.get("token");
}

const COMMANDS = {
  token: (data) => { widget.token = String(data.token || ""); return { ok: true }; },
  setStatus: (data) => widget.setStatus(data.status, data.text ?? ""),
  walkTo: (data) => widget.walkTo(data.room_id ?? null),
};

window.addEventListener("message", async (event) => {
  const data = event.data;
  if (!data || typeof data !== "object" || data.type !== "vo:command") return;
  if (!allowed.has(event.origin)) {
    console.warn(`virtual-office embed: command from ${event.origin} ignored: origin not allowed`);
    return;
  }
  if (!framed || event.source !== window.parent) {
    console.warn(`virtual-office embed: command from ${event.origin} ignored: not from the embedding page`);
    return;
  }
  if (!parentOrigin) adoptParent(event.origin);
  const run = COMMANDS[data.command];
  let ack;
  try {
    ack = run ? await run(data) : { ok: false, error: { code: "unknown_event", message: String(data.command).slice(0, 64) } };
  } catch (err) {
    ack = { ok: false, error: { code: "invalid_payload", message: String(err) } };
  }
  const { ok, error, ...result } = ack || { ok: false };
  event.source.postMessage({ type: "vo:result", id: data.id ?? null, ok: !!ok, error: error ?? null, result }, event.origin);
});

widget.addEventListener("vo-ready", (e) => {
  const { municipality } = e.detail;
  // The token's town decides which portals may drive this session, as for the socket.
  allowed = originsFor(["*", municipality]);
  if (parentOrigin && !allowed.has(parentOrigin)) {
    const de = document.documentElement.lang.startsWith("de");
    widget.remove();
    const refused = document.getElementById("vo-refused");
    refused.textContent = de ? "Diese Seite darf das virtuelle Büro für Ihre Gemeinde nicht einbetten."
      : "This page may not embed the virtual office for your municipality.";
    refused.hidden = false;
    parentOrigin = null;
    return;
  }
  post({ type: "vo:event", event: "ready", ...e.detail });
});
widget.addEventListener("vo-presence", (e) => post({ type: "vo:event", event: "presence", ...e.detail }));
widget.addEventListener("vo-knock", (e) => post({ type: "vo:event", event: "knock", knock: e.detail.knock }));
widget.addEventListener("vo-token-expiring", (e) => post({ type: "vo:event", event: "tokenExpiring", ...e.detail }));
