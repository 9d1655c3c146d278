// The specialist finder of <virtual-office-floor>: a search form over
// GET /api/v1/people/search (docs/portal.md) and the results as an ordered list,
// in the API's order (it ranks by who is free now, then nearness, then name; the
// widget never re-sorts). Each result can be rung (the widget's ring flow) and,
// when the server shows where the person sits, walked to (the widget switches
// floor if needed).
//
// The panel owns its form, its results and its live region; the element passes
// a context: {t, label, lang, server(), token(), ring(result), here(), view(),
// walkTo(roomId, floorId), enter(room)} — `here()` is the user's location (no
// "go there" to someone in the same place), `enter` the plan's action on a room
// (walk in, or knock on a closed door). A result names its person by `person`
// ("municipality/user_id"), which rings and keys it; `user_id` is information only.
// The fetch carries the widget's token as a Bearer header (never in the URL, where
// proxies log it) and the widget's language, so the server's error messages match
// the labels.
//
// "Whole platform" (a checkbox) asks with scope=platform: people of other
// cooperations who published a matching skill come too, marked `platform: true`,
// with their published skills only and no location; they can be rung (the
// server allows it although their floor is out of sight) but not walked to.

import { STATUS } from "./i18n.js";
import { el, hidden, municipalityName } from "./render.js";

const SEARCH_TIMEOUT_MS = 8000;
const LIMIT = 20;
/** What the search field searches in: the API parameter of each choice. */
const FIELDS = ["q", "skill", "department", "job_title"];
const OFFLINE = { colour: "#ffffff", glyph: "○" }; // the finder also lists people gone offline (retention)

/**
 * Ask the server. Resolves to `{ok: true, results}` or `{ok: false, error: {code, message}}`,
 * never rejects: a network failure, a timeout or an unreadable answer become errors too.
 */
export async function searchPeople({ server, token, lang, field, text, limit = LIMIT, platform = false, signal }) {
  const url = new URL("/api/v1/people/search", server);
  url.searchParams.set(field, text);
  url.searchParams.set("limit", String(limit));
  if (platform) url.searchParams.set("scope", "platform");
  let response;
  let body = null;
  try {
    response = await fetch(url, {
      headers: { Authorization: `Bearer ${token}`, "Accept-Language": lang, Accept: "application/json" },
      mode: "cors", credentials: "omit", cache: "no-store", signal,
    });
    body = await response.json().catch(() => null);
  } catch {
    // A refused CORS answer or no network rejects alike (the browser tells the page no more).
    if (!signal?.aborted) return { ok: false, error: { code: "offline" } };
  }
  if (signal?.aborted) {
    if (signal.reason === "superseded") throw new DOMException("superseded", "AbortError"); // a newer search took over
    return { ok: false, error: { code: "timeout" } };
  }
  if (body && typeof body.ok === "boolean") return body;
  // No JSON (a proxy's error page): the status is all there is.
  return { ok: false, error: { code: "http_error", message: `HTTP ${response.status}` } };
}

export class FinderPanel {
  /** @param {HTMLElement} root the finder's <section>; @param ctx see the module comment */
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.results = null; // the last answer's results, in the API's order
    this.lastQuery = null; // {field, text} of the results shown
    this._inflight = null;
    const { t } = ctx;
    this.input = el("input", {
      id: "vo-finder-q", type: "search", maxlength: "200", autocomplete: "off", "data-key": "finder:q",
      "aria-describedby": "vo-finder-msg",
    });
    this.field = el("select", { id: "vo-finder-field", "data-key": "finder:field" },
      ...FIELDS.map((f) => el("option", { value: f }, t(`finder_${f}`))));
    this.platform = el("input", { id: "vo-finder-platform", type: "checkbox", "data-key": "finder:platform",
      "aria-describedby": "vo-finder-platform-hint" });
    const form = el("form", { class: "finder-form", role: "search", "aria-labelledby": "vo-finder-title", onsubmit: (e) => { e.preventDefault(); this.search(); } },
      el("div", { class: "field" }, el("label", { for: "vo-finder-q" }, t("finder_query")), this.input),
      el("div", { class: "field" }, el("label", { for: "vo-finder-field" }, t("finder_in")), this.field),
      el("div", { class: "field check" }, this.platform, el("label", { for: "vo-finder-platform" }, t("finder_platform")),
        el("span", { id: "vo-finder-platform-hint", class: "hint" }, t("finder_platform_hint"))),
      el("button", { type: "submit", "data-key": "finder:search" }, t("finder_search")));
    // Polite and atomic: the count (or the error) is read once the answer is in.
    this.message = el("p", { id: "vo-finder-msg", class: "finder-msg", role: "status", "aria-live": "polite", "aria-atomic": "true" });
    this.list = el("ol", { class: "finder-results", "aria-labelledby": "vo-finder-title", hidden: true });
    root.setAttribute("aria-labelledby", "vo-finder-title");
    root.replaceChildren(el("h3", { id: "vo-finder-title" }, t("finder")), form, this.message, this.list);
  }

  /** Carry the query and results over from the panel this one replaces (a new language). */
  restore(old) {
    this.input.value = old.input.value;
    this.field.value = old.field.value;
    this.platform.checked = old.platform.checked;
    this.lastQuery = old.lastQuery;
    if (old.results) this._show(old.results, false);
  }

  /** Person id -> name of the people found, for "Calling {name} …" when they are not on the shown floor. */
  names() { return new Map((this.results || []).map((r) => [r.person, r.name])); }

  /** Run the search in the form. Resolves to the server's answer (or the local refusal). */
  async search() {
    const { t } = this.ctx;
    const text = this.input.value.trim();
    const field = this.field.value;
    const platform = this.platform.checked;
    if (!text) {
      this.input.setAttribute("aria-invalid", "true");
      this._say(t("finder_empty_query"), true);
      this.input.focus();
      return { ok: false, error: { code: "invalid_payload", message: t("finder_empty_query") } };
    }
    this.input.removeAttribute("aria-invalid");
    const token = this.ctx.token();
    if (!token) { this._say(t("no_token"), true); return { ok: false, error: { code: "unauthenticated" } }; }
    this._inflight?.abort("superseded"); // only the newest search may show its answer
    const controller = new AbortController();
    this._inflight = controller;
    const timer = setTimeout(() => controller.abort("timeout"), SEARCH_TIMEOUT_MS);
    this.list.setAttribute("aria-busy", "true");
    this.root.dataset.state = "searching";
    let answer;
    try {
      answer = await searchPeople({
        server: this.ctx.server(), token, lang: this.ctx.lang, field, text, platform, signal: controller.signal,
      });
    } catch {
      return { ok: false, error: { code: "cancelled" } }; // superseded: the newer search shows its own answer
    } finally {
      clearTimeout(timer);
      if (this._inflight === controller) { this._inflight = null; this.list.removeAttribute("aria-busy"); }
    }
    if (!answer.ok) {
      const error = answer.error || {};
      this.results = null; // results of an earlier query under an error would mislead
      this.list.replaceChildren();
      this.list.hidden = true;
      this.root.dataset.state = "error";
      this._say(`${t("error")}: ${error.message || t(error.code) || error.code}`, true);
      return answer;
    }
    this.lastQuery = { field, text, platform };
    this._show(answer.results, true);
    return answer;
  }

  /** Go where a result sits: on the shown floor as a click on the plan would (a
   * closed door means a knock); on another floor, first onto its hallway (the
   * widget then shows that floor), then the same. Resolves to the last ack. */
  async goTo(r) {
    const { ctx } = this;
    if (ctx.view()?.floorId !== r.floor_id) {
      const ack = await ctx.walkTo(null, r.floor_id);
      if (!ack.ok || !r.room_id) return ack;
    }
    const room = r.room_id && ctx.view()?.rooms.get(r.room_id);
    if (!room) return ctx.walkTo(r.room_id ?? null, r.floor_id);
    return (await ctx.enter(room)) ?? { ok: true }; // nothing to do: already inside
  }

  // ------------------------------------------------------------ drawing
  _show(results, announce) {
    const { t } = this.ctx;
    this.results = results;
    this.root.dataset.state = results.length ? "results" : "empty";
    this.list.replaceChildren(...results.map((r, i) => this._item(r, i)));
    this.list.hidden = results.length === 0;
    const text = results.length === 0
      ? t("finder_none", { q: this.lastQuery?.text ?? "" })
      : t(results.length === 1 ? "finder_count_one" : "finder_count", { n: results.length });
    if (announce) this._say(text, false);
    else { clearTimeout(this._sayTimer); this.message.classList.remove("error"); this.message.textContent = text; }
  }

  _item(r, index) {
    const { t, label } = this.ctx;
    const known = STATUS[r.status];
    const { glyph } = known || OFFLINE;
    const statusClass = known ? r.status : "offline";
    const who = `${r.name} (${municipalityName(r.municipality)})`;
    const role = [r.job_title, r.department].filter(Boolean).join(" · ");
    const words = [label(r.status) + (r.status_text ? `: ${r.status_text}` : ""), r.in_call ? t("in_call") : null]
      .filter(Boolean).join(" · ");
    const where = r.floor_id ? `${r.room_name || (r.room_id ? r.room_id : t("in_hallway"))}, ${r.floor_name || r.floor_id}` : null;
    const here = this.ctx.here();
    const sameSpot = here.floor_id === r.floor_id && here.room_id === r.room_id;
    // Ringing needs the callee online on a floor the caller may see (call.ring); the
    // server shows a floor only then, so the same fields decide both buttons. Someone
    // found on the whole platform can be rung wherever they sit (the server allows it).
    const ring = r.online && (r.floor_id || r.platform) ? el("button", {
      type: "button", "data-key": `finder-ring:${r.person}`, onclick: () => this.ctx.ring(r),
    }, t("ring"), hidden(` – ${who}`)) : null;
    const go = r.online && r.floor_id && !sameSpot ? el("button", {
      type: "button", class: "secondary", "data-key": `finder-go:${r.person}`, onclick: () => this.goTo(r),
    }, t("go_to"), hidden(` – ${who}: ${where}`)) : null;
    return el("li", { class: "finder-item", "data-person": r.person, "data-municipality": r.municipality, "data-status": r.status, "data-rank": String(index + 1), "data-platform": r.platform ? "true" : null },
      el("h4", {}, who),
      r.platform ? el("p", { class: "meta beyond" }, t("finder_beyond")) : null,
      role ? el("p", { class: "meta" }, role) : null,
      r.skills.length ? el("p", { class: "meta" }, t("skills", { skills: r.skills.join(", ") })) : null,
      el("p", { class: "finder-status" },
        el("span", { class: `dot status-${statusClass}`, "aria-hidden": "true" }, glyph),
        el("span", { class: "status-words" }, words)),
      where ? el("p", { class: "meta where" }, t("sits_in", { where })) : null,
      ring || go ? el("div", { class: "finder-actions" }, ring, go) : null);
  }

  /** Show a message in the live region; emptied first so the same words are read again. */
  _say(text, isError) {
    clearTimeout(this._sayTimer);
    this.message.classList.toggle("error", isError);
    this.message.textContent = "";
    this._sayTimer = setTimeout(() => { this.message.textContent = text; }, 50);
  }
}
