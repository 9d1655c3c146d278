// The floor picker of <virtual-office-floor>: the floors the user may see
// (campus.get), grouped as the campus lists them — their town's, their
// cooperations', their projects' — in a labelled select with a "Show" button (a
// select that switched floors on every arrow key would change the page under the
// keyboard, WCAG 3.2.2). The element refreshes it when it connects, when a project
// was created, when a floor was taken away, and when the select gets the focus
// (at most every REFRESH_MS: a focus that bounces asks once): there is no event for floors that became visible.
// A portal with its own list of floors hides it: ::part(floors).
//
// The element passes a context: {t, campus() -> campus.get's ack, show(floorId)}.

import { el } from "./render.js";

const REFRESH_MS = 2_000;
const GROUPS = [["municipality", "floors_town"], ["cooperation", "floors_cooperation"], ["project", "floors_project"]];

export class FloorPicker {
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.floors = [];
    this.current = null;
    this._fetched = 0;
    const { t } = ctx;
    this.select = el("select", { id: "vo-floor-select", "data-key": "floors:select", onfocus: () => this._maybeRefresh() });
    this.form = el("form", { class: "floor-form", onsubmit: (e) => { e.preventDefault(); this.show(); } },
      el("div", { class: "field" }, el("label", { for: "vo-floor-select" }, t("floors")), this.select),
      el("button", { type: "submit", class: "secondary", "data-key": "floors:show" }, t("floors_show")));
    root.replaceChildren(this.form);
    root.hidden = true; // until the floors are known
  }

  /** Carry the floors over from the picker this one replaces (a new language). */
  restore(old) { this.update(old.floors, old.current); this._fetched = old._fetched; }

  /** Read the visible floors again (campus.get). */
  async refresh() {
    this._fetched = Date.now();
    const ack = await this.ctx.campus();
    if (ack.ok) this.update(ack.campus.floors, this.current);
    return ack;
  }

  /** Show these floors ({id, name, owner_kind}), `current` selected. */
  update(floors, current = this.current) {
    const { t } = this.ctx;
    this.floors = floors.map(({ id, name, owner_kind: kind }) => ({ id, name, owner_kind: kind }));
    const focused = this.root.getRootNode().activeElement === this.select;
    const groups = GROUPS.map(([kind, label]) => {
      const mine = this.floors.filter((f) => f.owner_kind === kind);
      return mine.length ? el("optgroup", { label: t(label) }, ...mine.map((f) => el("option", { value: f.id }, f.name))) : null;
    }).filter(Boolean);
    const others = this.floors.filter((f) => !GROUPS.some(([kind]) => kind === f.owner_kind));
    this.select.replaceChildren(...groups, ...others.map((f) => el("option", { value: f.id }, f.name)));
    this.root.hidden = this.floors.length === 0;
    this.setCurrent(current);
    if (focused) this.select.focus();
  }

  /** The floor on view: selected in the picker. */
  setCurrent(floorId) {
    this.current = floorId;
    if (floorId && this.floors.some((f) => f.id === floorId)) this.select.value = floorId;
  }

  show() {
    const floorId = this.select.value;
    if (floorId && floorId !== this.current) this.ctx.show(floorId);
  }

  _maybeRefresh() { if (Date.now() - this._fetched > REFRESH_MS) this.refresh(); }
}
