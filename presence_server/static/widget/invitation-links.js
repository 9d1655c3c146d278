// The "Invitation links" part of the "Manage project" dialog (project-manage.js),
// for the coordinators of a project (docs/projects.md#invitations):
//  * the project's links (invitation.list): display name, uses of max_uses, expiry,
//    revoked or expired; read when the dialog opens and with "Refresh the list";
//  * a new link (invitation.create: display name, 1-50 uses, 1/7/30 days): the
//    answer's link (resolved against the server, as the server gives "/invite#..."
//    without http.public_url) is shown ONCE in a read-only field with "Copy link"
//    (Clipboard API, said in the part's live region; refused: the link selected);
//    the dialog forgets it when it closes (reset());
//  * revoking (invitation.revoke) after a confirmation step whose "No" has the focus.
// The portal hears vo-invitation-created / vo-invitation-revoked ({invitation}: the
// record, never the code or the link).
//
// Also the small helpers both parts of the dialog use (live regions, errors).
//
// Context: project-manage.js's, plus project() -> the Project and root() -> the dialog.

import { el, hidden } from "./render.js";

const NAME_MAX = 80;
const USES_MAX = 50;
const VALIDITY_DAYS = [1, 7, 30];
const DAY_S = 86_400;

/** Say `text` in a live region; cleared first, so the same words are said again. */
export function say(region, text) {
  clearTimeout(region._timer);
  region.textContent = "";
  region._timer = setTimeout(() => { region.textContent = text; }, 50);
}

/** An error in `region` (role=alert), the field concerned (if any) marked and focused. */
export function showError(t, region, error, target) {
  region.textContent = `${t("error")}: ${error?.message || t(error?.code) || error?.code}`;
  if (target) {
    target.setAttribute("aria-invalid", "true");
    target.setAttribute("aria-errormessage", region.id);
    target.focus();
  }
  return { ok: false, error };
}

/** Clear `region` and unmark the fields it described. */
export function clearError(root, region) {
  region.textContent = "";
  root.querySelectorAll(`[aria-errormessage="${region.id}"]`).forEach((n) => {
    n.removeAttribute("aria-invalid");
    n.removeAttribute("aria-errormessage");
  });
}

/** The control with data-key `key` in `root` (focus is put back by key after a redraw). */
export function byKey(root, key) { return key ? root.querySelector(`[data-key="${CSS.escape(key)}"]`) : null; }

export class InvitationLinks {
  constructor(ctx) {
    this.ctx = ctx;
    this.invitations = [];
    this.confirming = null; // invitation id whose revoke asks for confirmation
    const { t } = ctx;
    const btn = (key, text, onclick, attrs = {}) => el("button", { type: "button", class: "secondary", "data-key": key, onclick, ...attrs }, text);
    this.invError = el("p", { id: "vo-manage-inv-error", class: "project-error", role: "alert" });
    this.invMsg = el("p", { id: "vo-manage-inv-msg", class: "meta", role: "status", "aria-live": "polite", "aria-atomic": "true" });
    this.invTitle = el("h4", { id: "vo-manage-inv-title", tabindex: "-1" }, t("manage_invitations"));
    this.invList = el("ul", { class: "manage-invitations", "aria-labelledby": "vo-manage-inv-title" });
    this.invName = el("input", { id: "vo-manage-inv-name", maxlength: String(NAME_MAX), autocomplete: "off", required: true, "aria-required": "true", "data-key": "manage:inv-name" });
    this.invUses = el("input", { id: "vo-manage-inv-uses", type: "number", min: "1", max: String(USES_MAX), step: "1", value: "1", "data-key": "manage:inv-uses" });
    this.invValid = el("select", { id: "vo-manage-inv-valid", "data-key": "manage:inv-valid" },
      ...VALIDITY_DAYS.map((d) => el("option", { value: String(d * DAY_S), selected: d === 7 }, t(`manage_valid_${d}`))));
    this.linkLabel = el("label", { for: "vo-manage-link" });
    this.link = el("input", { id: "vo-manage-link", type: "text", readonly: true, "data-key": "manage:link", "aria-describedby": "vo-manage-inv-msg" });
    this.linkBox = el("div", { class: "field manage-link", hidden: true }, this.linkLabel,
      el("div", { class: "inline" }, this.link, btn("manage:copy", t("manage_copy"), () => this.copyLink())));
    const invForm = el("form", { novalidate: true, class: "manage-inv-form", "aria-labelledby": "vo-manage-inv-new",
      onsubmit: (e) => { e.preventDefault(); this.create(); } },
      el("h5", { id: "vo-manage-inv-new" }, t("manage_inv_new")),
      el("div", { class: "field" }, el("label", { for: "vo-manage-inv-name" }, t("manage_inv_name")), this.invName),
      el("div", { class: "inline" },
        el("div", { class: "field" }, el("label", { for: "vo-manage-inv-uses" }, t("manage_inv_max")), this.invUses),
        el("div", { class: "field" }, el("label", { for: "vo-manage-inv-valid" }, t("manage_inv_valid")), this.invValid)),
      el("button", { type: "submit", "data-key": "manage:inv-create" }, t("manage_inv_create")));
    this.section = el("section", { "aria-labelledby": "vo-manage-inv-title" },
      this.invTitle, this.invError, this.invList,
      btn("manage:inv-refresh", t("manage_inv_refresh"), () => this.list(true), { class: "secondary small refresh" }),
      this.linkBox, this.invMsg, invForm);
  }

  /** Read the invitations (their uses change as guests redeem them); `say`: confirm it. */
  async list(confirm = false) {
    const p = this.ctx.project();
    if (!p) return;
    clearError(this.ctx.root(), this.invError);
    const listed = await this.ctx.request("invitation.list", { project_id: p.id });
    if (!listed.ok) { this._fail(this.invError, listed.error, null); return; }
    this._render(listed.invitations);
    if (confirm) say(this.invMsg, this.ctx.t("manage_inv_listed"));
  }

  /** The link shown now, to carry into a redrawn dialog (a new language). */
  shown() { return this.linkBox.hidden ? null : { link: this.link.value, name: this._linkFor }; }

  /** Closing the dialog forgets the new link: it is shown once. */
  reset() {
    this.link.value = "";
    this.linkBox.hidden = true;
    this.confirming = null;
    clearError(this.ctx.root(), this.invError);
  }

  async create() {
    const { t } = this.ctx;
    const p = this.ctx.project();
    if (!p) return;
    const name = this.invName.value.trim();
    const uses = Number(this.invUses.value);
    clearError(this.ctx.root(), this.invError);
    if (!name) return this._fail(this.invError, { code: "invalid_payload", message: t("manage_inv_name_missing") }, this.invName);
    if (!Number.isInteger(uses) || uses < 1 || uses > USES_MAX) {
      return this._fail(this.invError, { code: "invalid_payload", message: t("manage_inv_max_bad") }, this.invUses);
    }
    const ack = await this.ctx.request("invitation.create", {
      project_id: p.id, display_name: name, max_uses: uses, expires_in_seconds: Number(this.invValid.value),
    });
    if (!ack.ok) {
      const field = ack.error?.field;
      const target = field === "display_name" ? this.invName : field === "max_uses" ? this.invUses : field?.startsWith("expires") ? this.invValid : null;
      return this._fail(this.invError, ack.error, target);
    }
    this.invitations = [ack.invitation, ...this.invitations.filter((i) => i.id !== ack.invitation.id)];
    this._render(this.invitations);
    this.invName.value = "";
    this.showLink(new URL(ack.link, this.ctx.server()).href, name);
    say(this.invMsg, t("manage_link_created"));
    this.link.focus();
    this.link.select();
    this.ctx.emit("vo-invitation-created", { invitation: ack.invitation });
  }

  /** Copy the new link with the Clipboard API; if the browser refuses, select it. */
  async copyLink() {
    const { t } = this.ctx;
    try {
      await navigator.clipboard.writeText(this.link.value);
      say(this.invMsg, t("manage_copied"));
    } catch {
      this.link.focus();
      this.link.select();
      say(this.invMsg, t("manage_copy_failed"));
    }
  }

  /** The confirmation step of revoking: the item asks, "No" has the focus. */
  askRevoke(id) {
    this.confirming = id;
    this._render(this.invitations);
    this.invList.querySelector(`[data-key="manage-revoke-no:${CSS.escape(id)}"]`)?.focus();
  }

  cancelRevoke(id) {
    this.confirming = null;
    this._render(this.invitations);
    this.invList.querySelector(`[data-key="manage-revoke:${CSS.escape(id)}"]`)?.focus();
  }

  async revoke(id) {
    const p = this.ctx.project();
    if (!p) return;
    this.confirming = null;
    const ack = await this.ctx.request("invitation.revoke", { project_id: p.id, invitation_id: id });
    if (!ack.ok) {
      this._render(this.invitations);
      return this._fail(this.invError, ack.error, null);
    }
    this.invitations = this.invitations.map((i) => (i.id === id ? ack.invitation : i));
    this._render(this.invitations);
    this.invTitle.focus();
    say(this.invMsg, this.ctx.t("manage_inv_revoked_said", { name: ack.invitation.display_name }));
    this.ctx.emit("vo-invitation-revoked", { invitation: ack.invitation });
  }

  // ------------------------------------------------------------ internals
  _render(invitations) {
    const { t, lang } = this.ctx;
    const focusKey = this.ctx.root().getRootNode().activeElement?.dataset?.key;
    this.invitations = invitations;
    const when = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
    const now = Date.now() / 1000;
    const items = invitations.map((i) => {
      const expired = i.expires_at <= now;
      const state = i.revoked ? t("manage_inv_revoked") : expired ? t("manage_inv_expired")
        : t("manage_inv_until", { when: when.format(new Date(i.expires_at * 1000)) });
      const text = `${i.display_name} – ${t("manage_inv_uses", { uses: i.uses, max: i.max_uses })} – ${state}`;
      const live = !i.revoked && !expired;
      let action = null;
      if (live && this.confirming === i.id) {
        action = el("div", { role: "group", class: "confirm", "aria-labelledby": `vo-manage-confirm-${i.id}` },
          el("p", { id: `vo-manage-confirm-${i.id}` }, t("manage_inv_confirm", { name: i.display_name })),
          el("button", { type: "button", "data-key": `manage-revoke-yes:${i.id}`, onclick: () => this.revoke(i.id) }, t("manage_inv_confirm_yes")),
          el("button", { type: "button", class: "secondary", "data-key": `manage-revoke-no:${i.id}`, onclick: () => this.cancelRevoke(i.id) }, t("manage_inv_confirm_no")));
      } else if (live) {
        action = el("button", { type: "button", class: "secondary small", "data-key": `manage-revoke:${i.id}`, onclick: () => this.askRevoke(i.id) },
          t("manage_inv_revoke"), hidden(` – ${i.display_name}`));
      }
      return el("li", { "data-invitation": i.id, class: live ? "" : "ended" }, el("span", {}, text), " ", action);
    });
    this.invList.replaceChildren(...(items.length ? items : [el("li", { class: "meta" }, t("manage_inv_none"))]));
    const again = focusKey && byKey(this.ctx.root(), focusKey); // a redraw keeps the focus where it was
    if (again && this.ctx.root().getRootNode().activeElement !== again) again.focus();
  }

  showLink(link, name) {
    this._linkFor = name;
    this.linkLabel.textContent = this.ctx.t("manage_link", { name });
    this.link.value = link;
    this.linkBox.hidden = false;
  }

  _fail(region, error, target) { return showError(this.ctx.t, region, error, target); }
}
