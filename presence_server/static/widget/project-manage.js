// "Manage project" of <virtual-office-floor>: for the coordinators of the project
// whose floor is shown (owner_kind "project"; the project as project.list and
// project.updated give it), a button and a modal dialog with two parts
// (docs/embedding.md, "Manage project"):
//  * Members: coordinators, named members and member municipalities, each with a
//    remove button (not the last coordinator, not oneself); a person found with the finder's
//    search added as a member, or a municipality of the user's cooperations.
//    Every change is one project.update with the changed list, whole.
//  * Invitation links (invitation-links.js): listed, created (the link shown once,
//    with "Copy link"), revoked after a confirmation step.
//
// Accessibility as project-dialog.js: a native <dialog> opened with showModal(),
// Tab wraps inside, Escape closes, focus back on the button; errors in an alert of
// their part (role=alert) with the field concerned marked aria-invalid and focused.
//
// The element passes a context: {t, lang, request(event, data) -> ack (never
// rejects), campus() -> campus.get's ack, me(), server(), token(), names() ->
// Map person -> name (the floor's and the finder's), emit(name, detail)}.

import { searchPeople } from "./finder.js";
import { el, hidden, municipalityName } from "./render.js";
import { InvitationLinks, byKey, clearError, say, showError } from "./invitation-links.js";

const SEARCH_TIMEOUT_MS = 8000;

export class ProjectManage {
  constructor(ctx) {
    this.ctx = ctx;
    this.projects = new Map(); // project id -> Project (project.list, project.updated)
    this.projectId = null; // the project of the floor shown
    this.known = new Map(); // person id -> name, from this dialog's searches
    this._listedFor = null;
    const { t } = ctx;
    const btn = (key, text, onclick, attrs = {}) => el("button", { type: "button", class: "secondary", "data-key": key, onclick, ...attrs }, ...[].concat(text));
    this.button = btn("manage:open", t("manage_project"), () => this.open(), { hidden: true, "aria-haspopup": "dialog", class: "secondary manage-project" });
    this.title = el("h3", { id: "vo-manage-title", tabindex: "-1" });
    // ----- members
    this.memberError = el("p", { id: "vo-manage-member-error", class: "project-error", role: "alert" });
    this.memberMsg = el("p", { id: "vo-manage-member-msg", class: "meta", role: "status", "aria-live": "polite", "aria-atomic": "true" });
    this.lists = {
      coordinators: el("ul", { class: "manage-coordinators", "aria-labelledby": "vo-manage-coord-title" }),
      members: el("ul", { class: "manage-persons", "aria-labelledby": "vo-manage-persons-title" }),
      municipalities: el("ul", { class: "manage-towns", "aria-labelledby": "vo-manage-towns-title" }),
    };
    this.personQuery = el("input", {
      id: "vo-manage-person-q", type: "text", maxlength: "200", autocomplete: "off", "data-key": "manage:person-q",
      "aria-describedby": "vo-manage-member-msg",
      onkeydown: (e) => { if (e.key === "Enter") { e.preventDefault(); this.searchPersons(); } },
    });
    this.found = el("ul", { class: "project-found", "aria-label": t("project_person_find"), hidden: true });
    this.townSelect = el("select", { id: "vo-manage-town", "data-key": "manage:town" });
    this.townAdd = btn("manage:town-add", t("manage_town_add"), () => this.addTown());
    this.links = new InvitationLinks({ ...ctx, project: () => this.project, root: () => this.dialog });
    this.dialog = el("dialog", {
      class: "project-manage", "aria-labelledby": "vo-manage-title", "aria-describedby": "vo-manage-intro",
      onkeydown: (e) => this._trap(e), onclose: () => this._closed(),
    },
    this.title, el("p", { id: "vo-manage-intro", class: "meta" }, t("manage_intro")),
    el("section", { "aria-labelledby": "vo-manage-members-title" },
      el("h4", { id: "vo-manage-members-title" }, t("manage_members")), this.memberError,
      el("h5", { id: "vo-manage-coord-title" }, t("manage_coordinators")), this.lists.coordinators,
      el("h5", { id: "vo-manage-persons-title" }, t("manage_persons")), this.lists.members,
      el("h5", { id: "vo-manage-towns-title" }, t("manage_towns")), this.lists.municipalities,
      el("div", { class: "field" }, el("label", { for: "vo-manage-person-q" }, t("manage_person_search")),
        el("div", { class: "inline" }, this.personQuery, btn("manage:person-find", t("project_person_find"), () => this.searchPersons()))),
      this.found,
      el("div", { class: "field" }, el("label", { for: "vo-manage-town" }, t("manage_town")),
        el("div", { class: "inline" }, this.townSelect, this.townAdd)),
      this.memberMsg),
    this.links.section,
    el("div", { class: "buttons" }, btn("manage:close", t("manage_close"), () => this.close())));
  }

  get project() { return this.projects.get(this.projectId) ?? null; }

  get isOpen() { return this.dialog.open; }

  /** The floor shown ({owner_kind, owner_id} as the snapshot gives it, or null). */
  setFloor(floor) {
    const id = floor?.owner_kind === "project" ? floor.owner_id : null;
    if (id === this.projectId && (!id || this.projects.has(id) || this._listedFor === id)) return;
    this.projectId = id;
    this._sync();
    const me = this.ctx.me();
    if (id && !this.projects.has(id) && me && !me.guest) this._list(id);
  }

  /** project.updated: a project of this user was created or changed. */
  projectUpdated(project) {
    this.projects.set(project.id, project);
    if (project.id === this.projectId) this._sync();
  }

  /** Open the dialog: members as the project stands, the invitations read afresh. */
  async open(carried = null) {
    const project = this.project;
    if (!project || this.dialog.open) return;
    this._returnTo = this.button;
    this._clear(this.memberError);
    this.links.reset();
    this.dialog.showModal();
    this._renderMembers();
    this.title.focus();
    if (carried?.link) this.links.showLink(carried.link.link, carried.link.name);
    const [campus] = await Promise.all([this.ctx.campus(), this.links.list()]);
    if (campus.ok) this._offerTowns(campus.campus);
  }

  close() { if (this.dialog.open) this.dialog.close(); }

  /** What a redrawn element (a new language) carries over. */
  snapshot() {
    return { open: this.dialog.open, projects: this.projects, projectId: this.projectId, known: this.known, link: this.links.shown() };
  }

  restore(s) {
    this.projects = s.projects;
    this.projectId = s.projectId;
    this.known = s.known;
    this._sync();
    if (s.open) this.open(s);
  }

  // ------------------------------------------------------------- members
  async searchPersons() {
    const { t } = this.ctx;
    const text = this.personQuery.value.trim();
    if (!text) { this._say(this.memberMsg, t("finder_empty_query")); this.personQuery.focus(); return; }
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
      this._showFound([]);
      this._say(this.memberMsg, `${t("error")}: ${answer.error?.message || t(answer.error?.code) || answer.error?.code}`);
      return;
    }
    const inside = new Set(this._persons());
    const results = answer.results.filter((r) => !inside.has(r.person));
    results.forEach((r) => this.known.set(r.person, r.name));
    this._showFound(results);
    this._say(this.memberMsg, results.length === 0 ? t("finder_none", { q: text })
      : t(results.length === 1 ? "finder_count_one" : "finder_count", { n: results.length }));
  }

  /** Add a person as a member (project.update with the members list, whole). */
  async addPerson(person) {
    const p = this.project;
    if (!p || this._persons().includes(person)) return;
    const ack = await this._update({ members: [...p.members, person] }, this.personQuery);
    if (!ack.ok) return;
    this._showFound([...this.found.querySelectorAll("li[data-person]")].map((li) => li._result).filter((r) => r.person !== person));
    this._say(this.memberMsg, this.ctx.t("manage_added", { name: this._name(person) }));
    this.personQuery.focus();
  }

  async addTown() {
    const p = this.project;
    const town = this.townSelect.value;
    if (!p || !town) return;
    const ack = await this._update({ municipalities: [...p.municipalities, town] }, this.townSelect);
    if (!ack.ok) return;
    this._say(this.memberMsg, this.ctx.t("manage_added", { name: municipalityName(town) }));
    (this.townSelect.disabled ? this.personQuery : this.townSelect).focus();
  }

  /** Remove a person (from coordinators or members) or a municipality (`town`). */
  async remove(kind, id) {
    const p = this.project;
    if (!p) return;
    const list = kind === "town" ? "municipalities" : p.coordinators.includes(id) ? "coordinators" : "members";
    const changes = { [list]: p[list].filter((x) => x !== id) };
    if (list === "coordinators" && p.members.includes(id)) changes.members = p.members.filter((x) => x !== id);
    const item = this.lists[list].querySelector(`li[data-id="${CSS.escape(id)}"]`);
    const nextKey = (item?.nextElementSibling?.querySelector("button") || item?.previousElementSibling?.querySelector("button"))?.dataset.key;
    const name = kind === "town" ? municipalityName(id) : this._name(id);
    const ack = await this._update(changes, null);
    if (!ack.ok) return;
    this._say(this.memberMsg, this.ctx.t("manage_removed", { name }));
    if (this.dialog.open) (this._byKey(nextKey) || this.personQuery).focus();
  }

  // ------------------------------------------------------------ internals
  /** Show the button to coordinators of the floor's project; close the dialog for others. */
  _sync() {
    const me = this.ctx.me();
    const p = this.project;
    const mine = !!p && !!me && !me.guest && p.coordinators.includes(me.person);
    this.button.hidden = !mine;
    if (!mine) { this.close(); return; }
    if (this.dialog.open) this._renderMembers();
  }

  async _list(id) {
    this._listedFor = id;
    const ack = await this.ctx.request("project.list", {});
    if (ack.ok) ack.projects.forEach((p) => this.projects.set(p.id, p));
    if (id === this.projectId) this._sync();
  }

  async _update(changes, field) {
    const p = this.project;
    this._clear(this.memberError);
    const ack = await this.ctx.request("project.update", { project_id: p.id, ...changes });
    if (!ack.ok) {
      const target = field || (ack.error?.field?.startsWith("municipalities") ? this.townSelect : this.personQuery);
      this._error(this.memberError, ack.error, target);
      return ack;
    }
    this.projects.set(ack.project.id, ack.project);
    this._sync();
    return ack;
  }

  _persons() { const p = this.project; return p ? [...p.coordinators, ...p.members] : []; }

  _name(person) {
    const name = this.ctx.names().get(person) || this.known.get(person);
    const [town, user] = person.split("/");
    if (person === this.ctx.me()?.person) return `${name || user} (${this.ctx.t("you")})`;
    return `${name || user} (${municipalityName(town)})`;
  }

  _renderMembers() {
    const { t } = this.ctx;
    const p = this.project;
    if (!p) return;
    const focusKey = this.dialog.getRootNode().activeElement?.dataset?.key;
    this.title.textContent = t("manage_title", { name: p.name });
    const item = (kind, id, text, removable, note = null) => el("li", { "data-id": id }, el("span", {}, text), " ",
      removable ? el("button", { type: "button", class: "secondary small", "data-key": `manage-remove:${kind}:${id}`, onclick: () => this.remove(kind, id) },
        t("manage_remove"), hidden(` – ${text}`)) : note && el("span", { class: "meta" }, ` ${note}`));
    const fill = (list, items) => list.replaceChildren(...(items.length ? items : [el("li", { class: "meta" }, t("manage_none"))]));
    // Not the last coordinator, and not oneself (that would take the dialog, and maybe the floor, away
    // mid-action): another coordinator removes them.
    const me = this.ctx.me()?.person;
    fill(this.lists.coordinators, p.coordinators.map((c) => item("person", c, this._name(c), p.coordinators.length > 1 && c !== me,
      p.coordinators.length === 1 ? t("manage_last_coordinator") : null)));
    fill(this.lists.members, p.members.filter((m) => !p.coordinators.includes(m)).map((m) => item("person", m, this._name(m), true)));
    fill(this.lists.municipalities, p.municipalities.map((m) => item("town", m, municipalityName(m), true)));
    this._renderTownOptions();
    const again = focusKey && this._byKey(focusKey); // a redraw keeps the focus where it was
    if (again && this.dialog.getRootNode().activeElement !== again) again.focus();
  }

  _byKey(key) { return byKey(this.dialog, key); }

  _offerTowns(campus) {
    this._towns = [...new Set((campus.cooperations || []).flatMap((c) => c.members))].sort();
    this._renderTownOptions();
  }

  _renderTownOptions() {
    const p = this.project;
    const left = (this._towns || []).filter((m) => !p?.municipalities.includes(m));
    const focused = this.dialog.getRootNode().activeElement;
    this.townSelect.replaceChildren(...(left.length ? left.map((m) => el("option", { value: m }, municipalityName(m)))
      : [el("option", { value: "" }, this.ctx.t("manage_town_none_left"))]));
    this.townSelect.disabled = this.townAdd.disabled = !left.length;
    if (!left.length && (focused === this.townSelect || focused === this.townAdd)) this.personQuery.focus();
  }

  _showFound(results) {
    const { t } = this.ctx;
    this.found.replaceChildren(...results.map((r) => {
      const who = `${r.name} (${municipalityName(r.municipality)})`;
      const role = [r.job_title, r.department].filter(Boolean).join(" · ");
      const li = el("li", { "data-person": r.person }, el("span", {}, who), role ? el("span", { class: "meta" }, ` – ${role}`) : null, " ",
        el("button", { type: "button", class: "secondary small", "data-key": `manage-add:${r.person}`, onclick: () => this.addPerson(r.person) },
          t("manage_add_member"), hidden(` – ${who}`)));
      li._result = r;
      return li;
    }));
    this.found.hidden = results.length === 0;
  }

  _error(region, error, target) { return showError(this.ctx.t, region, error, target); }

  _clear(region) { clearError(this.dialog, region); }

  /** Tab and Shift+Tab wrap inside the dialog (as project-dialog.js). */
  _trap(e) {
    if (e.key !== "Tab") return;
    const focusable = [...this.dialog.querySelectorAll("input, button, select, textarea, [tabindex]")]
      .filter((n) => !n.disabled && n.getClientRects().length && n.tabIndex >= 0);
    if (!focusable.length) return;
    const active = this.dialog.getRootNode().activeElement;
    const first = focusable[0];
    const last = focusable[focusable.length - 1];
    if (e.shiftKey && (active === first || active === this.title || !this.dialog.contains(active))) { e.preventDefault(); last.focus(); }
    else if (!e.shiftKey && active === last) { e.preventDefault(); first.focus(); }
  }

  /** Closing forgets the new link: it is shown once. */
  _closed() {
    this._inflight?.abort("superseded");
    this.links.reset();
    this.found.replaceChildren();
    this.found.hidden = true;
    const target = this._returnTo;
    this._returnTo = null;
    if (target && !target.hidden) target.focus();
  }

  _say(region, text) { say(region, text); }

}
