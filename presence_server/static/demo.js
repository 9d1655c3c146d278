// The demo page of the virtual office: a portal like any other. Pick a person of
// the demo campus, get a development token from /dev/token (a portal's backend
// would mint it with its town's key), and the floor is <virtual-office-floor>
// itself (docs/embedding.md) — the plan, the list, walking, knocking, status,
// calls and the finder are the element's. The page adds only what a portal adds:
// who is signed in, which floor to show, and a fresh token when the old one
// runs out. "New project" is the element's too: the page only lists the new
// floor (vo-project-created, and vo-project-updated when someone else adds the
// person to a project), and drops a floor the person may no longer see
// (vo-floor-revoked; the element says why and shows another floor). It talks to the element through its public API only (attributes,
// the token property, methods, vo-* events).
//
// Shortcut for demos and tests (signs in at once):
//   /?municipality=altbach&user=anna.altbach&name=Anna%20Albrecht[&floor=projekt][&room=ID|hallway][&role=admin][&lang=en]

import "/widget/virtual-office-floor.js";

const query = new URLSearchParams(location.search);
// The element takes its language from the document's lang, set below before it exists.
const LANG = (query.get("lang") || navigator.language || "en").toLowerCase().startsWith("de") ? "de" : "en";

// Each text in German and English, side by side.
const TEXT = {
  title: ["Virtuelles Rathaus", "Virtual Town Hall"],
  logout: ["Abmelden", "Sign out"],
  who: ["Wer sind Sie?", "Who are you?"],
  municipality: ["Gemeinde", "Municipality"],
  person: ["Person", "Person"],
  other: ["Andere Person (Name eingeben)", "Someone else (enter a name)"],
  name: ["Name", "Name"],
  role: ["Rolle", "Role"],
  role_staff: ["Mitarbeiter/in", "Staff"],
  role_admin: ["Administrator/in", "Administrator"],
  enter: ["Eintreten", "Enter"],
  second_window: ["Tipp: Melden Sie sich in einem zweiten Browserfenster als jemand aus einer anderen Gemeinde an.",
    "Tip: sign in as somebody from another town in a second browser window."],
  floors: ["Etagen", "Floors"],
  signed_in: ["Angemeldet: {name}, {municipality}", "Signed in: {name}, {municipality}"],
  error: ["Fehler", "Error"],
};
const t = (key, vars = {}) => TEXT[key][LANG === "de" ? 0 : 1].replace(/\{(\w+)\}/g, (_, k) => vars[k] ?? "");

// The demo campus (config/demo_campus.toml): its municipalities and some of their staff.
const MUNICIPALITIES = { altbach: "Gemeinde Altbach", bergheim: "Stadt Bergheim", lindenau: "Gemeinde Lindenau", seefeld: "Markt Seefeld" };
const PEOPLE = {
  altbach: { "anna.altbach": "Anna Albrecht", "jan.altbach": "Jan Adler", "karl.altbach": "Karl Amann", "mia.altbach": "Mia Arnold" },
  bergheim: { "ben.bergheim": "Ben Becker", "tim.bergheim": "Tim Bauer", "greta.bergheim": "Greta Berger", "clara.bergheim": "Clara Brandt" },
  lindenau: { "lea.lindenau": "Lea Lorenz", "jonas.lindenau": "Jonas Lang", "otto.lindenau": "Otto Lenz", "nina.lindenau": "Nina Lehmann" },
  seefeld: { "sven.seefeld": "Sven Schuster", "paula.seefeld": "Paula Sommer", "eva.seefeld": "Eva Seidel" },
};

const $ = (id) => document.getElementById(id);
const option = (value, text) => Object.assign(document.createElement("option"), { value, textContent: text });

/** The page's one message line; an error says so in words, not by colour alone. */
function say(text, isError = false) {
  const line = Object.assign(document.createElement("p"), { className: isError ? "msg error" : "msg" });
  line.textContent = isError ? `⚠ ${t("error")}: ${text}` : text;
  $("messages").replaceChildren(...(text ? [line] : []));
}
const sayError = (error) => say(error?.message || error?.code || String(error), true);

// ------------------------------------------------------------------ signing in
/** The signed-in person: who they are (to mint fresh tokens), their token, their floors. */
const signedIn = { who: null, token: null, element: null, floors: [], chosen: null, shown: null };

/** A development token from the server (dev mode only); throws the server's {code, message}. */
async function mintToken({ municipality, user, name, role }) {
  // Staff is /dev/token's default role; an admin asks for role=staff&role=admin.
  const params = new URLSearchParams({ municipality, user, name });
  if (role === "admin") ["staff", "admin"].forEach((r) => params.append("role", r));
  const body = await (await fetch(`/dev/token?${params}`)).json();
  if (!body.ok) throw body.error;
  return body.token;
}

async function signIn(who, { floor = null, room = null } = {}) {
  if (signedIn.who) return; // one person per page (a second click while the token is minted)
  signedIn.who = who;
  try {
    signedIn.token = await mintToken(who);
  } catch (error) {
    signedIn.who = null;
    sayError(error);
    return;
  }
  say("");
  signedIn.chosen = floor;
  await customElements.whenDefined("virtual-office-floor");
  const office = document.createElement("virtual-office-floor");
  if (floor) office.setAttribute("floor", floor);
  office.addEventListener("vo-ready", (e) => onReady(e.detail));
  office.addEventListener("vo-presence", (e) => markShown(e.detail.floor_id));
  office.addEventListener("vo-token-expiring", () => refreshToken());
  office.addEventListener("vo-project-created", (e) => onProjectCreated(e.detail));
  office.addEventListener("vo-floor-revoked", (e) => onFloorRevoked(e.detail));
  office.addEventListener("vo-project-updated", () => loadFloors()); // e.g. added to a project: its floor appears
  if (room) startIn(office, room);
  office.token = signedIn.token; // before it is connected: it signs in with this token when it is
  signedIn.element = office;
  $("login").hidden = true;
  $("whoami").textContent = t("signed_in", { name: who.name, municipality: MUNICIPALITIES[who.municipality] || who.municipality });
  $("office").hidden = $("whoami").hidden = $("logout").hidden = false;
  $("office").append(office);
}

/** A fresh token before the old one expires; the element keeps its session (auth.refresh). */
async function refreshToken() {
  try {
    signedIn.token = await mintToken(signedIn.who);
    signedIn.element.token = signedIn.token;
  } catch (error) {
    sayError(error);
  }
}

/** Connected (again, after a reconnect): read the floors this person may see. */
async function onReady(ready) {
  await loadFloors();
  // The element watches its floor again after a reconnect, but the one its floor
  // attribute had when it started: ask again for the one chosen since.
  if (signedIn.chosen && ready.floor_id !== signedIn.chosen) showFloor(signedIn.chosen);
  else markShown(ready.floor_id);
}

/** The shortcut's room: once the person is on a floor (the element steps into the
 * hallway of the shown floor when they were on none), walk there. */
function startIn(office, room) {
  const walk = ({ detail }) => {
    if (!detail.location?.floor_id) return;
    office.removeEventListener("vo-presence", walk);
    office.walkTo(room === "hallway" ? null : room, detail.floor_id);
  };
  office.addEventListener("vo-presence", walk);
}

/** A project was created in the element, which now shows its floor: list it too. */
async function onProjectCreated({ floor }) {
  if (floor?.id) signedIn.chosen = floor.id;
  await loadFloors();
  if (floor?.id) markShown(floor.id);
}

/** A floor is gone for this person: the element said why and shows another one;
 * the page lists what is left and, if the focus was on the floor, goes back to
 * the floor picker. */
async function onFloorRevoked({ next_floor_id: next }) {
  const focusWasOnFloor = document.activeElement === signedIn.element;
  signedIn.chosen = next;
  await loadFloors();
  markShown(next);
  if (focusWasOnFloor) $("floor-list").querySelector('button[aria-current="true"]')?.focus();
}

// ------------------------------------------------------------------ floors
async function loadFloors() {
  const first = !signedIn.floors.length;
  try {
    const resp = await fetch("/api/v1/campus", { headers: { Authorization: `Bearer ${signedIn.token}`, "Accept-Language": LANG } });
    const body = await resp.json();
    if (!body.ok) throw body.error;
    signedIn.floors = body.campus.floors.map(({ id, name }) => ({ id, name }));
  } catch (error) {
    sayError(error);
    return;
  }
  const focused = document.activeElement?.dataset?.floor; // keep keyboard focus across the redraw
  $("floor-list").replaceChildren(...signedIn.floors.map(({ id, name }) => {
    const button = Object.assign(document.createElement("button"), { type: "button", className: "secondary", textContent: name });
    button.dataset.floor = id;
    const item = document.createElement("li");
    item.append(button);
    return item;
  }));
  if (focused) $("floor-list").querySelector(`[data-floor="${CSS.escape(focused)}"]`)?.focus();
  // Just signed in: the form that had the focus is gone; go on from the floors.
  else if (first && document.activeElement === document.body) $("floor-list").querySelector("button")?.focus();
  markShown(signedIn.shown);
}

/** Show another floor. Removed and set again: setting an unchanged attribute does
 * nothing, and after a reconnect the element may show another floor under it. */
function showFloor(floorId) {
  signedIn.chosen = floorId;
  signedIn.element.removeAttribute("floor");
  signedIn.element.setAttribute("floor", floorId);
}

/** Mark the floor the element shows (what it reports, not what was asked for). */
function markShown(floorId) {
  signedIn.shown = floorId;
  for (const button of $("floor-list").querySelectorAll("button")) {
    button.setAttribute("aria-current", String(button.dataset.floor === floorId));
  }
}

// ------------------------------------------------------------------ the form
function fillPeople() {
  const people = PEOPLE[$("municipality").value] || {};
  $("person").replaceChildren(...Object.entries(people).map(([id, name]) => option(id, name)), option("", t("other")));
  $("name").value = people[$("person").value] || "";
}

/** Someone else: a user id from the name, e.g. "Max Muster" -> "max-muster.altbach". */
function userIdFor(name, municipality) {
  const slug = name.toLowerCase().replace(/[äöüß]/g, (c) => ({ ä: "ae", ö: "oe", ü: "ue", ß: "ss" })[c])
    .normalize("NFKD").replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "gast";
  return `${slug}.${municipality}`;
}

function start() {
  document.documentElement.lang = LANG;
  document.title = `${t("title")} – Demo`;
  document.querySelectorAll("[data-t]").forEach((node) => { node.textContent = t(node.dataset.t); });
  document.querySelectorAll("[data-t-label]").forEach((node) => node.setAttribute("aria-label", t(node.dataset.tLabel)));
  $("municipality").replaceChildren(...Object.entries(MUNICIPALITIES).map(([id, name]) => option(id, name)));
  fillPeople();
  $("municipality").addEventListener("change", fillPeople);
  $("person").addEventListener("change", () => {
    $("name").value = PEOPLE[$("municipality").value]?.[$("person").value] || "";
    $("name").focus();
  });
  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    const municipality = $("municipality").value, name = $("name").value.trim();
    signIn({ municipality, user: $("person").value || userIdFor(name, municipality), name, role: $("role").value });
  });
  $("floor-list").addEventListener("click", (e) => {
    const floorId = e.target.closest("button[data-floor]")?.dataset.floor;
    if (floorId) showFloor(floorId);
  });
  $("logout").addEventListener("click", () => location.assign(location.pathname + (query.get("lang") ? `?lang=${LANG}` : "")));
  if (query.get("municipality") && query.get("user")) {
    const who = { municipality: query.get("municipality"), user: query.get("user"), name: query.get("name") || query.get("user"), role: query.get("role") || "staff" };
    signIn(who, { floor: query.get("floor"), room: query.get("room") });
  }
}

start();
