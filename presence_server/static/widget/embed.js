// The iframe page's side of the postMessage API (docs/embedding.md §4): it relays
// the widget's events to the embedding page and the embedding page's commands to
// the widget.
//
// Every message has `type`: the parent sends {type: "vo:command", command, id?, ...};
// this page answers each command with {type: "vo:result", id, ok, error, result} and
// sends {type: "vo:event", event, ...}: ready, presence, knock, knockOutcome, state,
// error, tokenExpiring.
//
// Within READY_TIMEOUT_MS of loading (or of the token command, if that comes later)
// the page sends `ready` or `error`: a portal never waits on silence from a frame
// that runs. (A frame the browser refused to load, frame-ancestors, cannot speak:
// docs/embedding.md §4 shows how the portal tells that apart.)
//
// Origins: commands are taken only from the parent window and only from an origin
// allowed to frame this floor (the same list as the page's frame-ancestors); once
// the token's municipality is known, only from that municipality's origins. Events
// go only to that origin (never "*"), since they carry who is where. The parent's
// origin, where the browser tells it, goes into the socket handshake (`embedder`),
// so a town that does not allow it is refused before any session exists.

import "./virtual-office-floor.js";
import { errorText } from "./i18n.js";

export const READY_TIMEOUT_MS = 15000;
const ORIGIN_REFUSALS = new Set(["origin_not_allowed", "municipality_not_allowed"]);

const config = JSON.parse(document.getElementById("vo-embed").textContent);
const widget = document.querySelector("virtual-office-floor");
const lang = document.documentElement.lang.startsWith("de") ? "de" : "en";
const framed = window.parent !== window;
const own = location.origin;
const originsFor = (keys) => new Set([own, ...keys.flatMap((k) => config.origins[k] || [])]);
let allowed = originsFor(Object.keys(config.origins)); // until the municipality is known
let parentOrigin = null;
const queue = []; // events produced before the parent's origin is known
let outcome = null; // "ready" | "error": what the portal was last told about the session
let readyTimer = null;

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

function postError(error) {
  outcome = "error";
  clearTimeout(readyTimer);
  post({ type: "vo:event", event: "error", error });
}

/** ready or error within READY_TIMEOUT_MS: if neither came, say why not. */
function armReadyTimer() {
  clearTimeout(readyTimer);
  if (outcome === "ready") return;
  readyTimer = setTimeout(() => {
    if (outcome) return;
    const pending = widget.session?.error;
    const code = !widget.token ? "unauthenticated" : pending?.code || "unavailable";
    const message = pending?.message || errorText(lang, widget.token ? "not_ready" : code);
    postError({ code, message });
  }, READY_TIMEOUT_MS);
}

if (framed) {
  const candidate = announcedParent();
  if (candidate && allowed.has(candidate)) parentOrigin = candidate;
  else if (candidate) {
    // The browser framed us (frame-ancestors), so this is a referrer that names a page
    // of the portal but not the frame's real parent: leave it to the first command.
    console.warn(`virtual-office embed: parent ${candidate} not among this floor's portals`);
  }
  widget.embedder = parentOrigin; // checked by the server against the token's town
}

// The token from the fragment, which no server log and no Referer ever sees;
// removed from the address at once so it does not linger in history either.
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get("token")) {
  history.replaceState(null, "", location.pathname + location.search);
  widget.token = fragment.get("token");
}
armReadyTimer();

const COMMANDS = {
  token: (data) => {
    armReadyTimer();
    return widget.setToken(String(data.token || ""));
  },
  setStatus: (data) => widget.setStatus(data.status, data.text ?? ""),
  walkTo: (data) => widget.walkTo(data.room_id ?? null),
  knock: (data) => widget.knock(data.room_id, data.message ?? ""),
  answerKnock: (data) => widget.answerKnock(data.knock_id, data.admit),
  cancelKnock: (data) => widget.cancelKnock(data.knock_id),
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
  if (!widget.embedder && !widget.session) widget.embedder = event.origin; // before the first token, if it comes now
  const run = Object.hasOwn(COMMANDS, data.command) ? COMMANDS[data.command] : null;
  let ack;
  try {
    ack = run ? await run(data)
      : { ok: false, error: { code: "unknown_event", message: `${errorText(lang, "unknown_event")} (${String(data.command).slice(0, 64)})` } };
  } catch (err) {
    ack = { ok: false, error: { code: "invalid_payload", message: `${errorText(lang, "invalid_payload")} (${String(err).slice(0, 200)})` } };
  }
  const { ok, error, ...result } = ack || { ok: false };
  event.source.postMessage({ type: "vo:result", id: data.id ?? null, ok: !!ok, error: error ?? null, result }, event.origin);
});

/** The portal may not embed the office for the signed-in user's town: refuse visibly. */
function refuse(error) {
  widget.remove(); // ends the session
  const refused = document.getElementById("vo-refused");
  refused.textContent = error.message;
  refused.hidden = false;
  postError(error);
  parentOrigin = null; // and nothing more to this page
}

widget.addEventListener("vo-ready", (e) => {
  const { municipality } = e.detail;
  // The token's town decides which portals may drive this session, as for the socket.
  allowed = originsFor(["*", municipality]);
  if (parentOrigin && !allowed.has(parentOrigin)) {
    // Only when the parent became known by a command, after the handshake.
    refuse({ code: "municipality_not_allowed", message: errorText(lang, "municipality_not_allowed") });
    return;
  }
  outcome = "ready";
  clearTimeout(readyTimer);
  post({ type: "vo:event", event: "ready", ...e.detail });
});
widget.addEventListener("vo-state", (e) => {
  const { state, error } = e.detail;
  post({ type: "vo:event", event: "state", state, error: error ?? null });
  if (state === "refused" && ORIGIN_REFUSALS.has(error?.code)) refuse(error); // no token can change that
  else if (state === "refused") postError(error); // a new token can (token_expired, unauthenticated)
  else if (state === "connecting") { outcome = null; armReadyTimer(); }
});
widget.addEventListener("vo-presence", (e) => post({ type: "vo:event", event: "presence", ...e.detail }));
widget.addEventListener("vo-knock", (e) => post({ type: "vo:event", event: "knock", knock: e.detail.knock }));
widget.addEventListener("vo-knock-outcome", (e) => post({ type: "vo:event", event: "knockOutcome", outcome: e.detail.outcome }));
widget.addEventListener("vo-token-expiring", (e) => post({ type: "vo:event", event: "tokenExpiring", ...e.detail }));
