// German and English labels of <virtual-office-floor>. The language is the
// element's own `lang`, else the closest ancestor's, else the document's
// (`pickLanguage`); anything that does not start with "de" is English.

const TEXT = {
  de: {
    widget: "Virtuelles Büro", plan: "Grundriss {floor}", list: "Räume und Personen auf {floor}",
    hallway: "Flur", nobody: "niemand", you: "Sie", you_are_here: "Sie sind hier",
    people: "{n} von {cap} Personen", where_me: "Ihr Ort: {where}", nowhere: "auf keiner Etage",
    in_hallway: "Flur", enter: "Eintreten", knock: "Anklopfen", to_hallway: "In den Flur gehen",
    withdraw: "Zurückziehen", admit: "Hereinbitten", decline: "Ablehnen",
    status: "Status", status_text: "Statustext", set_status: "Status setzen", status_set: "Status gesetzt.",
    knocking: "Sie klopfen an „{room}“ …", knock_incoming: "{name} ({municipality}) klopft an „{room}“",
    knock_message: "Nachricht: {message}", silent: "leise – Sie sind auf „nicht stören“",
    knock_result: "Klopfen an „{room}“: {outcome}",
    admitted: "hereingebeten", declined: "abgelehnt", expired: "niemand hat geöffnet", cancelled: "zurückgezogen",
    alerts: "Anklopfen und Anrufe",
    call: "Gespräch", join_call: "Gespräch beitreten", leave_call: "Gespräch verlassen",
    mic_off: "Mikrofon aus", mic_on: "Mikrofon an", cam_off: "Kamera aus", cam_on: "Kamera an",
    in_call: "im Gespräch", call_room: "Gespräch in „{room}“", call_direct: "Gespräch mit {name}",
    video_of: "Video von {name}", video_me: "Ihr eigenes Video", no_media: "Ohne Kamera und Mikrofon: Sie hören und sehen nur.",
    peer_state: "{name}: {state}", connecting_peer: "verbindet", connected_peer: "verbunden", failed_peer: "fehlgeschlagen",
    ring: "Anrufen", ringing_out: "Sie rufen {name} an …", ring_cancel: "Auflegen",
    ring_incoming: "{name} ({municipality}) ruft Sie an", accept: "Annehmen",
    ring_result: "Anruf: {outcome}", accepted: "angenommen", unavailable: "nicht erreichbar",
    play_audio: "Ton einschalten",
    connecting: "Verbindung wird aufgebaut …", connected: "Verbunden", reconnecting: "Verbindung unterbrochen – neuer Versuch …",
    refused: "Verbindung abgelehnt", conn_error: "Keine Verbindung zum Server",
    degraded: "Eingeschränkter Betrieb: Änderungen sind gerade nicht möglich.", recovered: "Wieder voll verfügbar.",
    no_token: "Kein Token: die einbettende Seite muss ein Token übergeben.",
    floor_missing: "Diese Etage gibt es nicht oder Sie dürfen sie nicht sehen.",
    error: "Fehler", timeout: "Keine Antwort vom Server.", offline: "Keine Verbindung.",
    legend: "Legende", door_legend: "Türen",
    finder: "Fachleute finden", finder_query: "Suchbegriff", finder_in: "Suchen in", finder_search: "Suchen",
    finder_q: "allem (Name, Amt, Funktion, Fachgebiet)", finder_skill: "Fachgebieten", finder_department: "Ämtern",
    finder_job_title: "Funktionen", finder_empty_query: "Bitte einen Suchbegriff eingeben.",
    finder_count: "{n} Treffer, die Verfügbaren zuerst", finder_count_one: "1 Treffer",
    finder_none: "Keine Treffer für „{q}“.", skills: "Fachgebiete: {skills}", sits_in: "Ort: {where}", go_to: "Hingehen",
    finder_platform: "ganze Plattform", finder_platform_hint: "auch andere Kooperationen (nur veröffentlichte Fachgebiete)",
    finder_beyond: "Andere Kooperation – Fachgebiete für die ganze Plattform veröffentlicht",
    floors: "Etage", floors_show: "Anzeigen", floors_town: "Ihre Gemeinde", floors_cooperation: "Kooperationen",
    floors_project: "Projekte",
    new_project: "Neues Projekt", project_dialog: "Neues Projekt anlegen",
    project_intro: "Ein Projekt bekommt eine eigene Etage, die nur seine Mitglieder sehen. Sie werden seine erste Koordinatorin bzw. sein erster Koordinator.",
    project_name: "Name des Projekts", project_purpose: "Zweck (eine Zeile)",
    project_members: "Mitglieder", project_municipalities: "Ganze Gemeinden (alle Beschäftigten)",
    project_no_municipalities: "Ihre Gemeinde gehört zu keiner Kooperation.",
    project_own_town: "{name} (Ihre Gemeinde)",
    project_persons: "Einzelne Personen", project_person_search: "Person suchen (Name, Amt, Fachgebiet)",
    project_person_find: "Personen suchen", project_person_add: "Hinzufügen", project_person_remove: "Entfernen",
    project_person_added: "{name} hinzugefügt.", project_person_removed: "{name} entfernt.",
    project_persons_none: "Noch keine einzelnen Personen ausgewählt.", project_persons_chosen: "Ausgewählte Personen",
    project_ends: "Endet am (optional)", project_ends_hint: "Nach diesem Tag werden die Räume des Projekts geschlossen. Ohne Datum: so lange, wie Ihre Gemeinde Projekte höchstens erlaubt.",
    project_template: "Raumvorlage", template_meeting: "Besprechungsraum", template_project_office: "Projektbüro",
    template_lounge: "Lounge",
    template_meeting_hint: "ein Raum für Besprechungen", template_project_office_hint: "ein Büro und ein Besprechungsraum",
    template_lounge_hint: "ein offener Treffpunkt",
    project_create: "Projekt anlegen", project_cancel: "Abbrechen", project_creating: "Projekt wird angelegt …",
    project_created: "Projekt „{name}“ angelegt. Sie sehen jetzt seine Etage.",
    project_name_missing: "Bitte geben Sie dem Projekt einen Namen.",
    project_name_long: "Der Name darf höchstens 80 Zeichen haben.",
    project_ends_past: "Das Enddatum darf nicht in der Vergangenheit liegen.",
    project_joined: "Sie sind jetzt Mitglied des Projekts „{name}“; seine Etage steht in der Etagenauswahl.",
    floor_revoked_membership: "Sie sind nicht mehr Mitglied des Projekts „{floor}“; seine Etage ist für Sie nicht mehr sichtbar.",
    floor_revoked_deleted: "Die Etage „{floor}“ wurde gelöscht.",
    floor_revoked_next: "Sie sehen jetzt „{floor}“.",
  },
  en: {
    widget: "Virtual office", plan: "Floor plan {floor}", list: "Rooms and people on {floor}",
    hallway: "Hallway", nobody: "nobody", you: "you", you_are_here: "You are here",
    people: "{n} of {cap} people", where_me: "Your location: {where}", nowhere: "on no floor",
    in_hallway: "Hallway", enter: "Enter", knock: "Knock", to_hallway: "Go to the hallway",
    withdraw: "Withdraw", admit: "Admit", decline: "Decline",
    status: "Status", status_text: "Status text", set_status: "Set status", status_set: "Status set.",
    knocking: "You are knocking on “{room}” …", knock_incoming: "{name} ({municipality}) is knocking on “{room}”",
    knock_message: "Message: {message}", silent: "silent – you are on “do not disturb”",
    knock_result: "Knock on “{room}”: {outcome}",
    admitted: "admitted", declined: "declined", expired: "nobody answered", cancelled: "withdrawn",
    alerts: "Knocks and calls",
    call: "Call", join_call: "Join the call", leave_call: "Leave the call",
    mic_off: "Mute microphone", mic_on: "Unmute microphone", cam_off: "Camera off", cam_on: "Camera on",
    in_call: "in a call", call_room: "Call in “{room}”", call_direct: "Call with {name}",
    video_of: "Video of {name}", video_me: "Your own video", no_media: "No camera or microphone: you can only listen and watch.",
    peer_state: "{name}: {state}", connecting_peer: "connecting", connected_peer: "connected", failed_peer: "failed",
    ring: "Call", ringing_out: "Calling {name} …", ring_cancel: "Hang up",
    ring_incoming: "{name} ({municipality}) is calling you", accept: "Accept",
    ring_result: "Call: {outcome}", accepted: "accepted", unavailable: "not reachable",
    play_audio: "Turn sound on",
    connecting: "Connecting …", connected: "Connected", reconnecting: "Connection lost – retrying …",
    refused: "Connection refused", conn_error: "Cannot connect to the server",
    degraded: "Degraded: changes are not possible right now.", recovered: "Fully available again.",
    no_token: "No token: the embedding page must pass one.",
    floor_missing: "This floor does not exist or you may not see it.",
    error: "Error", timeout: "The server did not answer.", offline: "Not connected.",
    legend: "Legend", door_legend: "Doors",
    finder: "Find a specialist", finder_query: "Search term", finder_in: "Search in", finder_search: "Search",
    finder_q: "everything (name, department, job title, skill)", finder_skill: "skills", finder_department: "departments",
    finder_job_title: "job titles", finder_empty_query: "Please enter a search term.",
    finder_count: "{n} results, available people first", finder_count_one: "1 result",
    finder_none: "No results for “{q}”.", skills: "Skills: {skills}", sits_in: "Location: {where}", go_to: "Go there",
    finder_platform: "whole platform", finder_platform_hint: "other cooperations too (published skills only)",
    finder_beyond: "Another cooperation – skills published for the whole platform",
    floors: "Floor", floors_show: "Show", floors_town: "Your municipality", floors_cooperation: "Cooperations",
    floors_project: "Projects",
    new_project: "New project", project_dialog: "Create a new project",
    project_intro: "A project gets a floor of its own that only its members see. You become its first coordinator.",
    project_name: "Project name", project_purpose: "Purpose (one line)",
    project_members: "Members", project_municipalities: "Whole municipalities (all their staff)",
    project_no_municipalities: "Your municipality belongs to no cooperation.",
    project_own_town: "{name} (your municipality)",
    project_persons: "Individual people", project_person_search: "Find a person (name, department, skill)",
    project_person_find: "Find people", project_person_add: "Add", project_person_remove: "Remove",
    project_person_added: "{name} added.", project_person_removed: "{name} removed.",
    project_persons_none: "No individual people chosen yet.", project_persons_chosen: "Chosen people",
    project_ends: "Ends on (optional)", project_ends_hint: "After this day the project's rooms close. Without a date: as long as your municipality allows projects to run.",
    project_template: "Room template", template_meeting: "Meeting room", template_project_office: "Project office",
    template_lounge: "Lounge",
    template_meeting_hint: "one room to meet in", template_project_office_hint: "an office and a meeting room",
    template_lounge_hint: "an open lounge",
    project_create: "Create project", project_cancel: "Cancel", project_creating: "Creating the project …",
    project_created: "Project “{name}” created. You now see its floor.",
    project_name_missing: "Please give the project a name.",
    project_name_long: "The name may have at most 80 characters.",
    project_ends_past: "The end date must not be in the past.",
    project_joined: "You are now a member of the project “{name}”; its floor is in the floor picker.",
    floor_revoked_membership: "You are no longer a member of the project “{floor}”; its floor is no longer visible to you.",
    floor_revoked_deleted: "The floor “{floor}” was deleted.",
    floor_revoked_next: "You now see “{floor}”.",
  },
};

const LABELS = {
  de: {
    office: "Büro", meeting: "Besprechung", project: "Projektraum", lounge: "Treffpunkt", service_counter: "Bürgerservice",
    open: "Tür offen", closed: "Tür zu – anklopfen", locked: "abgeschlossen",
    available: "verfügbar", busy: "beschäftigt", away: "abwesend", do_not_disturb: "nicht stören", offline: "offline",
  },
  en: {
    office: "Office", meeting: "Meeting", project: "Project room", lounge: "Lounge", service_counter: "Service counter",
    open: "Door open", closed: "Door closed – knock", locked: "locked",
    available: "available", busy: "busy", away: "away", do_not_disturb: "do not disturb", offline: "offline",
  },
};

/** Texts for error codes the widget may have to word itself: the server words its
 * refusals in the connection's language, but a transport that never opened carries
 * no message, and some codes arise in the browser (offline, timeout). The server's
 * codes use its own texts (rooms/errors.py, docs/protocol.md §10). */
const ERRORS = {
  de: {
    origin_not_allowed: "Diese Website darf das virtuelle Büro nicht verwenden.",
    municipality_not_allowed: "Diese Website darf das virtuelle Büro für Ihre Gemeinde nicht verwenden.",
    unauthenticated: "Ein gültiges Token ist erforderlich.",
    token_expired: "Das Token ist abgelaufen.",
    forbidden: "Dazu sind Sie nicht berechtigt.",
    not_found: "Nicht gefunden.",
    invalid_payload: "Die Anfrage ist fehlerhaft.",
    conflict: "Das geht gerade nicht: es gibt einen Konflikt mit dem aktuellen Stand.",
    unknown_event: "Unbekanntes Ereignis.",
    unavailable: "Das virtuelle Büro ist gerade nicht erreichbar.",
    not_ready: "Das virtuelle Büro hat sich nicht rechtzeitig verbunden.",
    offline: "Keine Verbindung.",
    timeout: "Keine Antwort vom Server.",
    internal: "Interner Fehler.",
  },
  en: {
    origin_not_allowed: "This website may not use the virtual office.",
    municipality_not_allowed: "This website may not use the virtual office for your municipality.",
    unauthenticated: "A valid token is required.",
    token_expired: "The token has expired.",
    forbidden: "You are not allowed to do this.",
    not_found: "Not found.",
    invalid_payload: "The request is malformed.",
    conflict: "Not possible right now: it conflicts with the current state.",
    unknown_event: "Unknown event.",
    unavailable: "The virtual office cannot be reached right now.",
    not_ready: "The virtual office did not connect in time.",
    offline: "Not connected.",
    timeout: "The server did not answer.",
    internal: "Internal error.",
  },
};

/** A person's words for an error code, in "de" or "en"; unknown codes get the generic one. */
export function errorText(lang, code) {
  const table = ERRORS[lang] || ERRORS.en;
  return table[code] || table.internal;
}

/** Status: a colour AND a glyph AND a word, so colour is never the only cue. */
export const STATUS = {
  available: { colour: "#1a7f37", glyph: "✓" },
  busy: { colour: "#9a6700", glyph: "!" },
  away: { colour: "#57606a", glyph: "z" },
  do_not_disturb: { colour: "#b42318", glyph: "–" },
};

/** "de" or "en" for an element: its own lang, an ancestor's, the document's, the browser's. */
export function pickLanguage(element) {
  const own = element.closest?.("[lang]")?.getAttribute("lang") || document.documentElement.lang || navigator.language || "en";
  return own.toLowerCase().startsWith("de") ? "de" : "en";
}

/** A translator for one language: t(key, vars) and label(value). */
export function translator(lang) {
  const text = TEXT[lang] || TEXT.en;
  const labels = LABELS[lang] || LABELS.en;
  const t = (key, vars = {}) => (text[key] ?? key).replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));
  const label = (value) => labels[value] ?? value;
  return { lang, t, label };
}
