// "New project" of <virtual-office-floor>: a button (staff only, never guests) and
// a modal dialog to create a project across towns (project.create, docs/protocol.md):
// a name, a purpose line, members (whole municipalities of the user's cooperations,
// as campus.get lists them, and single people found with the specialist finder's
// search), an optional end date and a room template (meeting room, project office,
// lounge). The creator becomes the project's first coordinator; on success the
// element shows the project's new floor.
//
// Accessibility: a native <dialog> opened with showModal() (the rest of the page is
// inert, Escape cancels), a focus trap that wraps Tab and Shift+Tab inside it, focus
// back on the button when it closes; every control labelled; errors in an alert
// (role=alert) with the field concerned marked aria-invalid and focused.
//
// The dialog owns its DOM; the element passes a context: {t, lang, request(event,
// data) -> ack (never rejects), campus() -> campus.get's ack, me() -> the user as
// session.ready named them, server(), token() (for the people search), created(ack)
// (the element shows the floor)}.

import { searchPeople } from "./finder.js";
import { el, hidden, municipalityName } from "./render.js";

export const TEMPLATES = ["meeting", "project_office", "lounge"];
const NAME_MAX = 80;
const PURPOSE_MAX = 200;
const SEARCH_TIMEOUT_MS = 8000;
// project.create's error field (e.g. "members.persons[1]") -> the control to focus.
const FIELD_PREFIXES = [
  ["name", "name"], ["purpose", "purpose"], ["members.municipalities", "towns"], ["members", "personQuery"],
  ["ends_at", "ends"], ["template", "template"],
];

/** "2026-12-31" (a date input's value) -> unix seconds of the end of that day, local time. */
export function endOfDay(value) {
  const [y, m, d] = value.split("-").map(Number);
  return new Date(y, m - 1, d + 1).getTime() / 1000;
}

/** Today as a date input's value (local time). */
function today() {
  const now = new Date();
  return `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, "0")}-${String(now.getDate()).padStart(2, "0")}`;
}

export class ProjectDialog {
  constructor(ctx) {
    this.ctx = ctx;
    this.chosen = new Map(); // person id -> {person, name, municipality}
    this.towns = []; // municipality ids offered
    this.busy = false;
    const { t } = ctx;
    this.button = el("button", {
      type: "button", class: "secondary new-project", "data-key": "project:new", hidden: true,
      "aria-haspopup": "dialog", onclick: () => this.open(),
    }, t("new_project"));
    this.error = el("p", { id: "vo-project-error", class: "project-error", role: "alert" });
    this.progress = el("p", { class: "meta", role: "status", "aria-live": "polite" });
    this.name = el("input", { id: "vo-project-name", maxlength: String(NAME_MAX), autocomplete: "off", required: true, "aria-required": "true", "data-key": "project:name" });
    this.purpose = el("input", { id: "vo-project-purpose", maxlength: String(PURPOSE_MAX), autocomplete: "off", "data-key": "project:purpose" });
    this.townBox = el("fieldset", { class: "towns" }, el("legend", {}, t("project_municipalities")));
    this.personQuery = el("input", {
      id: "vo-project-person-q", type: "text", maxlength: "200", autocomplete: "off", "data-key": "project:person-q",
      "aria-describedby": "vo-project-person-msg",
      onkeydown: (e) => { if (e.key === "Enter") { e.preventDefault(); this.searchPersons(); } },
    });
    this.personMsg = el("p", { id: "vo-project-person-msg", class: "meta", role: "status", "aria-live": "polite", "aria-atomic": "true" });
    this.found = el("ul", { class: "project-found", "aria-label": t("project_person_find"), hidden: true });
    this.chosenList = el("ul", { class: "project-chosen", "aria-labelledby": "vo-project-chosen-title" });
    this.ends = el("input", { id: "vo-project-ends", type: "date", min: today(), "aria-describedby": "vo-project-ends-hint", "data-key": "project:ends" });
    this.templates = TEMPLATES.map((name, i) => el("input", {
      type: "radio", name: "vo-project-template", id: `vo-project-template-${name}`, value: name, checked: i === 0,
      "aria-describedby": `vo-project-template-${name}-hint`, "data-key": `project:template:${name}`,
    }));
    this.submit = el("button", { type: "submit", "data-key": "project:create" }, t("project_create"));
    this.cancel = el("button", { type: "button", class: "secondary", "data-key": "project:cancel", onclick: () => this.close() }, t("project_cancel"));
    this.form = el("form", { novalidate: true, onsubmit: (e) => { e.preventDefault(); this.create(); } },
      el("h3", { id: "vo-project-title" }, t("project_dialog")),
      el("p", { id: "vo-project-intro", class: "meta" }, t("project_intro")),
      this.error,
      el("div", { class: "field" }, el("label", { for: "vo-project-name" }, t("project_name")), this.name),
      el("div", { class: "field" }, el("label", { for: "vo-project-purpose" }, t("project_purpose")), this.purpose),
      el("fieldset", { class: "members" }, el("legend", {}, t("project_members")),
        this.townBox,
        el("div", { class: "persons" },
          el("div", { class: "field" }, el("label", { for: "vo-project-person-q" }, t("project_person_search")),
            el("div", { class: "inline" }, this.personQuery,
              el("button", { type: "button", class: "secondary", "data-key": "project:person-find", onclick: () => this.searchPersons() }, t("project_person_find")))),
          this.personMsg, this.found,
          el("h4", { id: "vo-project-chosen-title" }, t("project_persons_chosen")), this.chosenList)),
      el("div", { class: "field" }, el("label", { for: "vo-project-ends" }, t("project_ends")), this.ends,
        el("p", { id: "vo-project-ends-hint", class: "meta" }, t("project_ends_hint"))),
      el("fieldset", { class: "templates" }, el("legend", {}, t("project_template")),
        ...TEMPLATES.map((name, i) => el("div", { class: "choice" }, this.templates[i],
          el("label", { for: `vo-project-template-${name}` }, t(`template_${name}`)),
          el("span", { id: `vo-project-template-${name}-hint`, class: "meta" }, ` – ${t(`template_${name}_hint`)}`)))),
      this.progress,
      el("div", { class: "buttons" }, this.submit, this.cancel));
    this.dialog = el("dialog", {
      class: "project-dialog", "aria-labelledby": "vo-project-title", "aria-describedby": "vo-project-intro",
      onkeydown: (e) => this._trap(e), onclose: () => this._closed(),
    }, this.form);
    this._renderChosen();
  }

  /** Staff see the button; guests and a widget not yet signed in do not. */
  setMe(me) { this.button.hidden = !me || !!me.guest; }

  get isOpen() { return this.dialog.open; }

  /** Open the dialog with the municipalities of the user's cooperations offered. */
  async open() {
    if (this.dialog.open) return;
    this._returnTo = this.button;
    this._clearError();
    this.progress.textContent = "";
    this.ends.min = today();
    this.dialog.showModal();
    this.name.focus();
    const ack = await this.ctx.campus();
    if (ack.ok) this._renderTowns(ack.campus);
    else this._showError(ack.error, null);
  }

  close() { if (this.dialog.open) this.dialog.close(); }

  /** The dialog's content, to carry into the dialog of a redrawn element (a new language). */
  snapshot() {
    return {
      open: this.dialog.open, name: this.name.value, purpose: this.purpose.value, ends: this.ends.value,
      template: this.template(), towns: this.checkedTowns(), chosen: [...this.chosen.values()], offered: this.towns,
      me: this.ctx.me(),
    };
  }

  restore(s) {
    this.name.value = s.name;
    this.purpose.value = s.purpose;
    this.ends.value = s.ends;
    this.templates.forEach((r) => { r.checked = r.value === s.template; });
    s.chosen.forEach((p) => this.chosen.set(p.person, p));
    this._renderChosen();
    this._renderTownList(s.offered, s.me, new Set(s.towns));
    this.setMe(s.me);
    if (s.open) { this._returnTo = this.button; this.dialog.showModal(); this.name.focus(); }
  }

  template() { return this.templates.find((r) => r.checked)?.value ?? TEMPLATES[0]; }

  checkedTowns() { return [...this.townBox.querySelectorAll("input[type=checkbox]:checked")].map((c) => c.value); }

  /** The payload of project.create as the form stands. */
  payload() {
    return {
      name: this.name.value.trim(), purpose: this.purpose.value.trim(),
      members: { persons: [...this.chosen.keys()], municipalities: this.checkedTowns() },
      ends_at: this.ends.value ? endOfDay(this.ends.value) : null, template: this.template(),
    };
  }

  /** Validate, send project.create, and on success close and hand the answer on. */
  async create() {
    if (this.busy) return { ok: false, error: { code: "conflict" } };
    const { t } = this.ctx;
    const payload = this.payload();
    const local = !payload.name ? ["name", t("project_name_missing")]
      : payload.name.length > NAME_MAX ? ["name", t("project_name_long")]
        : this.ends.value && this.ends.value < today() ? ["ends_at", t("project_ends_past")] : null;
    if (local) {
      const error = { code: "invalid_payload", field: local[0], message: local[1] };
      this._showError(error, local[0]);
      return { ok: false, error };
    }
    this._clearError();
    this.busy = true;
    this.submit.setAttribute("aria-disabled", "true");
    this.progress.textContent = t("project_creating");
    let ack;
    try {
      ack = await this.ctx.request("project.create", payload);
    } finally {
      this.busy = false;
      this.submit.removeAttribute("aria-disabled");
      this.progress.textContent = "";
    }
    if (!ack.ok) { this._showError(ack.error, ack.error?.field ?? null); return ack; }
    this.close();
    this._reset();
    await this.ctx.created(ack);
    return ack;
  }

  /** Search people with the finder's API; each result can be added as a member. */
  async searchPersons() {
    const { t } = this.ctx;
    const text = this.personQuery.value.trim();
    if (!text) { this._say(t("finder_empty_query")); this.personQuery.focus(); return; }
    this._inflight?.abort("superseded");
    const controller = new AbortController();
    this._inflight = controller;
    const timer = setTimeout(() => controller.abort("timeout"), SEARCH_TIMEOUT_MS);
    let answer;
    try {
      answer = await searchPeople({ server: this.ctx.server(), token: this.ctx.token(), lang: this.ctx.lang, field: "q", text, signal: controller.signal });
    } catch {
      return; // superseded by a newer search
    } finally {
      clearTimeout(timer);
    }
    if (!answer.ok) {
      this.found.replaceChildren();
      this.found.hidden = true;
      this._say(`${t("error")}: ${answer.error?.message || t(answer.error?.code) || answer.error?.code}`);
      return;
    }
    const me = this.ctx.me()?.person;
    const results = answer.results.filter((r) => r.person !== me);
    this.found.replaceChildren(...results.map((r) => this._foundItem(r)));
    this.found.hidden = results.length === 0;
    this._say(results.length === 0 ? t("finder_none", { q: text })
      : t(results.length === 1 ? "finder_count_one" : "finder_count", { n: results.length }));
  }

  addPerson(r) {
    this.chosen.set(r.person, { person: r.person, name: r.name, municipality: r.municipality });
    this.found.querySelector(`[data-person="${CSS.escape(r.person)}"]`)?.remove();
    this.found.hidden = !this.found.children.length;
    this._renderChosen();
    this._say(this.ctx.t("project_person_added", { name: r.name }));
    this.personQuery.focus();
  }

  removePerson(person) {
    const p = this.chosen.get(person);
    this.chosen.delete(person);
    this._renderChosen();
    if (p) this._say(this.ctx.t("project_person_removed", { name: p.name }));
    this.personQuery.focus();
  }

  // ------------------------------------------------------------ internals
  _foundItem(r) {
    const { t } = this.ctx;
    const who = `${r.name} (${municipalityName(r.municipality)})`;
    const role = [r.job_title, r.department].filter(Boolean).join(" · ");
    return el("li", { "data-person": r.person }, el("span", {}, who), role ? el("span", { class: "meta" }, ` – ${role}`) : null, " ",
      el("button", { type: "button", class: "secondary small", "data-key": `project-add:${r.person}`, onclick: () => this.addPerson(r) },
        t("project_person_add"), hidden(` – ${who}`)));
  }

  _renderChosen() {
    const { t } = this.ctx;
    const items = [...this.chosen.values()].map((p) => {
      const who = `${p.name} (${municipalityName(p.municipality)})`;
      return el("li", { "data-person": p.person }, el("span", {}, who), " ",
        el("button", { type: "button", class: "secondary small", "data-key": `project-remove:${p.person}`, onclick: () => this.removePerson(p.person) },
          t("project_person_remove"), hidden(` – ${who}`)));
    });
    this.chosenList.replaceChildren(...(items.length ? items : [el("li", { class: "meta" }, t("project_persons_none"))]));
  }

  _renderTowns(campus) {
    const towns = [...new Set((campus.cooperations || []).flatMap((c) => c.members))].sort();
    this._renderTownList(towns, this.ctx.me(), new Set(this.checkedTowns()), campus.municipality);
  }

  _renderTownList(towns, me, checked, own = null) {
    const { t } = this.ctx;
    this.towns = towns;
    const legend = this.townBox.querySelector("legend");
    const boxes = towns.map((id) => {
      const name = id === own?.id ? own.name : municipalityName(id);
      const text = id === me?.municipality ? t("project_own_town", { name }) : name;
      return el("div", { class: "choice" },
        el("input", { type: "checkbox", id: `vo-project-town-${id}`, value: id, checked: checked.has(id), "data-key": `project-town:${id}` }),
        el("label", { for: `vo-project-town-${id}` }, text));
    });
    this.townBox.replaceChildren(legend, ...(boxes.length ? boxes : [el("p", { class: "meta" }, t("project_no_municipalities"))]));
  }

  _showError(error, field) {
    const { t } = this.ctx;
    const message = error?.message || t(error?.code) || error?.code;
    this.error.textContent = `${t("error")}: ${message}`;
    const target = this._fieldControl(field);
    if (target) {
      target.setAttribute("aria-invalid", "true");
      target.setAttribute("aria-errormessage", "vo-project-error");
      target.focus();
    }
  }

  _clearError() {
    this.error.textContent = "";
    this.form.querySelectorAll("[aria-invalid]").forEach((n) => { n.removeAttribute("aria-invalid"); n.removeAttribute("aria-errormessage"); });
  }

  _fieldControl(field) {
    if (!field) return null;
    const hit = FIELD_PREFIXES.find(([prefix]) => field === prefix || field.startsWith(`${prefix}.`) || field.startsWith(`${prefix}[`));
    if (!hit) return null;
    if (hit[1] === "towns") return this.townBox.querySelector("input") || this.personQuery;
    if (hit[1] === "template") return this.templates.find((r) => r.checked) || this.templates[0];
    return this[hit[1]];
  }

  _reset() {
    this.form.reset();
    this.templates[0].checked = true;
    this.chosen.clear();
    this.found.replaceChildren();
    this.found.hidden = true;
    this.personMsg.textContent = "";
    this._renderChosen();
  }

  /** Tab and Shift+Tab wrap inside the dialog (the modal makes the page inert; this
   * keeps focus off the browser's own controls too). */
  _trap(e) {
    if (e.key !== "Tab") return;
    const focusable = [...this.dialog.querySelectorAll("input, button, select, textarea, [tabindex]")]
      .filter((n) => !n.disabled && n.getClientRects().length && n.tabIndex >= 0 && !(n.type === "radio" && !n.checked));
    if (!focusable.length) return;
    const active = this.dialog.getRootNode().activeElement;
    const first = focusable[0];
    const last = focusable[focusable.length - 1];
    if (e.shiftKey && (active === first || !this.dialog.contains(active))) { e.preventDefault(); last.focus(); }
    else if (!e.shiftKey && active === last) { e.preventDefault(); first.focus(); }
  }

  _closed() {
    this._inflight?.abort("superseded");
    const target = this._returnTo;
    this._returnTo = null;
    if (target && !target.hidden) target.focus();
  }

  _say(text) {
    clearTimeout(this._sayTimer);
    this.personMsg.textContent = "";
    this._sayTimer = setTimeout(() => { this.personMsg.textContent = text; }, 50);
  }
}
