// Knocks and rings as the widget shows them: a card per incoming knock or ring
// (with its answer buttons) and a line per own pending knock or outgoing ring
// (with withdraw / hang up). Builders only; the element owns state and requests.

import { el, municipalityName } from "./render.js";

/** A knock on a door this user may answer. `answer(admit)` sends knock.answer. */
export function knockCard(t, knock, roomName, answer) {
  const text = t("knock_incoming", {
    name: knock.knocker.name, municipality: municipalityName(knock.knocker.municipality), room: roomName,
  });
  const card = el("div", { class: "card", role: "group", "aria-label": text, "data-knock": knock.knock_id },
    el("p", {}, el("strong", {}, text)),
    knock.message ? el("p", {}, t("knock_message", { message: knock.message })) : null,
    knock.silent ? el("p", { class: "meta" }, t("silent")) : null,
    el("button", { type: "button", "data-key": `admit:${knock.knock_id}`, onclick: () => answer(true) }, t("admit")),
    el("button", { type: "button", class: "secondary", "data-key": `decline:${knock.knock_id}`, onclick: () => answer(false) }, t("decline")));
  const spoken = text + (knock.message ? `. ${t("knock_message", { message: knock.message })}` : "");
  return { card, spoken };
}

/** A colleague ringing this user. */
export function ringCard(t, ring, accept, decline) {
  const text = t("ring_incoming", { name: ring.caller.name, municipality: municipalityName(ring.caller.municipality) });
  const card = el("div", { class: "card", role: "group", "aria-label": text, "data-ring": ring.ring_id },
    el("p", {}, el("strong", {}, text)),
    el("button", { type: "button", "data-key": `accept:${ring.ring_id}`, onclick: accept }, t("accept")),
    el("button", { type: "button", class: "secondary", "data-key": `reject:${ring.ring_id}`, onclick: decline }, t("decline")));
  return { card, spoken: text };
}

/** Lines for what this user is waiting for: their knock, their ring. */
export function pendingLines(t, { knock, roomName, withdraw, ring, calleeName, hangUp }) {
  const lines = [];
  if (knock) {
    lines.push(el("p", {}, t("knocking", { room: roomName }), " ",
      el("button", { type: "button", class: "secondary", "data-key": "knock:withdraw", onclick: withdraw }, t("withdraw"))));
  }
  if (ring) {
    lines.push(el("p", {}, t("ringing_out", { name: calleeName }), " ",
      el("button", { type: "button", class: "secondary", "data-key": "ring:cancel", onclick: hangUp }, t("ring_cancel"))));
  }
  return lines;
}
