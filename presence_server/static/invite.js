// The landing page of an invitation link (/invite#<code>): redeem the code once,
// then show the project's floor as a guest. German and English (?lang=de|en, else
// the browser's language). The guest token stays in this tab's sessionStorage, so a
// reload does not use the link again; it is gone when the tab closes.
import "/widget/virtual-office-floor.js";

const TEXTS = {
  de: {
    title: "Einladung ins virtuelle Rathaus",
    leave: "Verlassen",
    redeeming: "Einladung wird geprüft …",
    guest_as: "Sie sind zu Gast als {name}.",
    no_code: "Dieser Link enthält keine Einladung. Bitte öffnen Sie den vollständigen Link, den Sie erhalten haben.",
    not_found: "Diese Einladung ist ungültig.",
    invitation_expired: "Diese Einladung ist abgelaufen.",
    invitation_used_up: "Diese Einladung wurde bereits so oft wie erlaubt verwendet.",
    invitation_revoked: "Diese Einladung wurde zurückgezogen.",
    token_expired: "Ihr Besuch ist beendet. Öffnen Sie den Link erneut, falls er noch gültig ist.",
    rate_limited: "Zu viele Versuche. Bitte warten Sie eine Minute.",
    failed: "Die Einladung konnte nicht geprüft werden. Bitte versuchen Sie es später erneut.",
    left: "Sie haben das virtuelle Rathaus verlassen.",
  },
  en: {
    title: "Invitation to the virtual town hall",
    leave: "Leave",
    redeeming: "Checking the invitation …",
    guest_as: "You are a guest as {name}.",
    no_code: "This link holds no invitation. Please open the complete link you were sent.",
    not_found: "This invitation is not valid.",
    invitation_expired: "This invitation has expired.",
    invitation_used_up: "This invitation has already been used as often as allowed.",
    invitation_revoked: "This invitation has been withdrawn.",
    token_expired: "Your visit has ended. Open the link again if it is still valid.",
    rate_limited: "Too many attempts. Please wait a minute.",
    failed: "The invitation could not be checked. Please try again later.",
    left: "You have left the virtual town hall.",
  },
};

const params = new URLSearchParams(location.search);
const LANG = ["de", "en"].includes(params.get("lang")) ? params.get("lang")
  : (navigator.language || "de").toLowerCase().startsWith("de") ? "de" : "en";
const t = (key, vars = {}) => (TEXTS[LANG][key] || key).replace(/\{(\w+)\}/g, (_, k) => vars[k] ?? "");
const $ = (id) => document.getElementById(id);
const STORE = "vo-invitation";

function say(text, isError = false) {
  const box = $("messages");
  box.replaceChildren();
  if (!text) return;
  box.append(Object.assign(document.createElement("p"), { className: isError ? "msg error" : "msg", textContent: text }));
}

async function redeem(code) {
  const resp = await fetch("/api/v1/invitations/redeem", {
    method: "POST",
    headers: { "Content-Type": "application/json", "Accept-Language": LANG },
    body: JSON.stringify({ code }),
  });
  const body = await resp.json().catch(() => ({}));
  if (!body.ok) throw Object.assign(new Error("refused"), { code: body.error?.code || "failed" });
  return body;
}

function stored() {
  try {
    const guest = JSON.parse(sessionStorage.getItem(STORE) || "null");
    return guest && guest.expires_at * 1000 > Date.now() ? guest : null;
  } catch { return null; }
}

function end(code) {
  sessionStorage.removeItem(STORE);
  $("office").replaceChildren();
  $("office").hidden = $("whoami").hidden = $("leave").hidden = true;
  say(t(code), code !== "left");
}

async function show(guest) {
  await customElements.whenDefined("virtual-office-floor");
  const office = document.createElement("virtual-office-floor");
  office.setAttribute("floor", guest.floor_id);
  office.setAttribute("lang", LANG);
  office.addEventListener("vo-error", (e) => {
    const code = e.detail?.error?.code;
    if (["invitation_revoked", "invitation_expired", "token_expired"].includes(code)) end(code);
  });
  office.token = guest.token;
  $("whoami").textContent = t("guest_as", { name: guest.display_name });
  $("office").hidden = $("whoami").hidden = $("leave").hidden = false;
  $("office").replaceChildren(office);
  say("");
}

async function main() {
  document.documentElement.lang = LANG;
  document.title = t("title");
  document.querySelectorAll("[data-t]").forEach((node) => { node.textContent = t(node.dataset.t); });
  $("leave").addEventListener("click", () => end("left"));
  const code = decodeURIComponent(location.hash.slice(1));
  if (code) history.replaceState(null, "", location.pathname + location.search); // the code leaves the address bar
  let guest = code ? null : stored();
  if (!guest && !code) return say(t("no_code"), true);
  if (!guest) {
    say(t("redeeming"));
    try {
      guest = await redeem(code);
    } catch (error) {
      return say(t(TEXTS[LANG][error.code] ? error.code : "failed"), true);
    }
    sessionStorage.setItem(STORE, JSON.stringify(guest));
  }
  await show(guest);
}

main();
