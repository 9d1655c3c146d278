// The widget's styles, adopted into its shadow root (constructable stylesheet):
// nothing leaks into the portal, nothing of the portal's CSS leaks in, and a
// portal whose CSP forbids inline styles still shows the widget.
// Colours meet WCAG AA contrast on their backgrounds; focus is always visible.

export const CSS = `
:host { display: block; font: 15px/1.45 system-ui, "DejaVu Sans", "Liberation Sans", sans-serif; color: #1f2328; }
:host([hidden]) { display: none; }
* { box-sizing: border-box; }
.vo { background: #ffffff; border: 1px solid #d0d7de; border-radius: 8px; padding: 12px; }
h2 { font-size: 1.15rem; margin: 0; }
h3 { font-size: 1rem; margin: 12px 0 6px; }
h4 { font-size: 0.95rem; margin: 0 0 2px; }
.top { display: flex; flex-wrap: wrap; gap: 4px 16px; align-items: baseline; justify-content: space-between; }
.where, .conn, .meta { color: #57606a; margin: 0; }
.conn[data-state="connected"]::before { content: "● "; color: #1a7f37; }
.conn[data-state="error"], .conn[data-state="refused"] { color: #b42318; font-weight: 600; }
.sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
button, select, input { font: inherit; }
button { cursor: pointer; border: 1px solid #1f6feb; background: #0b57d0; color: #ffffff; border-radius: 6px; padding: 4px 12px; margin: 4px 6px 0 0; }
button.secondary { background: #ffffff; color: #0b57d0; }
button.small { padding: 0 8px; margin: 0 0 0 6px; font-size: 0.9em; }
button:hover { background: #0842a0; color: #ffffff; }
input, select { border: 1px solid #6e7781; border-radius: 6px; padding: 3px 6px; background: #ffffff; color: #1f2328; }
:focus-visible, .room:focus .room-bg { outline: 3px solid #bf4b00; outline-offset: 2px; }
.room:focus-visible .room-bg, .room:focus .room-bg { stroke: #bf4b00; stroke-width: 6; }
.notice { min-height: 1.5em; margin: 6px 0; }
.notice .error { color: #b42318; font-weight: 600; }
.pending { margin: 4px 0; }
.alerts:empty, .pending:empty { display: none; }
.card { border: 2px solid #bf4b00; background: #fff8f2; border-radius: 8px; padding: 8px 10px; margin: 6px 0; }
.card p { margin: 0 0 4px; }
.status-form { display: flex; flex-wrap: wrap; gap: 6px 12px; align-items: end; margin: 8px 0; }
.status-form .field { display: flex; flex-direction: column; }
.status-form label { font-size: 0.9em; color: #1f2328; }
.layout { display: grid; grid-template-columns: minmax(0, 2fr) minmax(240px, 1fr); gap: 16px; align-items: start; }
@container (max-width: 640px) { .layout { grid-template-columns: 1fr; } }
@media (max-width: 720px) { .layout { grid-template-columns: 1fr; } }
figure { margin: 0; }
svg { width: 100%; height: auto; display: block; }
.floor-bg { fill: #f6f8fa; stroke: #8c959f; stroke-width: 2; }
.hallway-label { font-size: 18px; fill: #57606a; font-style: italic; }
.room { cursor: pointer; }
.room-bg { fill: #ffffff; stroke: #57606a; stroke-width: 2; }
.room.mine .room-bg { fill: #ddf4ff; stroke: #0b57d0; stroke-width: 4; }
.room.door-closed .room-bg { stroke-dasharray: 10 4; }
.room.door-locked .room-bg { fill: #f3f4f6; }
.room-name { font-size: 16px; font-weight: 700; fill: #1f2328; }
.room-kind, .door-text { font-size: 14px; fill: #3d444d; }
.door-icon rect, .door-icon path { stroke: #3d444d; stroke-width: 2; fill: #d0d7de; }
.door-icon .knob { fill: #3d444d; }
.initials { font-size: 14px; font-weight: 700; fill: #ffffff; text-anchor: middle; }
.avatar.me circle:first-child { stroke: #1f2328; stroke-width: 3; }
.badge { fill: #ffffff; stroke-width: 2; }
.badge-glyph { font-size: 11px; font-weight: 700; text-anchor: middle; }
.faces, .avatar { pointer-events: none; }
.in-call { fill: none; stroke: #0b57d0; stroke-width: 3; stroke-dasharray: 4 3; }
.rooms, .people { list-style: none; margin: 0; padding: 0; }
.room-item { border-top: 1px solid #d0d7de; padding: 8px 0; }
.room-item.mine h4 { color: #0b57d0; }
.person { margin: 2px 0; }
.dot { display: inline-block; width: 1.3em; height: 1.3em; line-height: 1.3em; border-radius: 50%; color: #ffffff;
  text-align: center; font-size: 0.8em; font-weight: 700; margin-right: 4px; }
.status-available { background: #1a7f37; }
.status-busy { background: #9a6700; }
.status-away { background: #57606a; }
.status-do_not_disturb { background: #b42318; }
.status-offline { background: #ffffff; color: #57606a; box-shadow: inset 0 0 0 1px #57606a; }
.finder { border-top: 1px solid #d0d7de; margin-top: 12px; }
.finder-form { display: flex; flex-wrap: wrap; gap: 6px 12px; align-items: end; margin: 4px 0; }
.finder-form .field { display: flex; flex-direction: column; }
.finder-form label { font-size: 0.9em; }
.finder-form input { min-width: 18em; }
.finder-form .field.check { flex-direction: row; flex-wrap: wrap; align-items: center; gap: 0 6px; max-width: 16em; }
.finder-form .field.check input { min-width: 0; width: 1.1em; height: 1.1em; margin: 0; }
.finder-form .hint { flex-basis: 100%; font-size: 0.85em; color: #57606a; }
.finder-msg { min-height: 1.5em; margin: 6px 0; }
.finder-msg.error { color: #b42318; font-weight: 600; }
.finder-results { margin: 0; padding-left: 1.6em; }
.finder-results[hidden] { display: none; }
.finder-item { border-top: 1px solid #d0d7de; padding: 6px 0; }
.finder-item p { margin: 0; }
.legend { color: #3d444d; font-size: 0.9em; margin: 6px 0 0; }
.call { border: 1px solid #0b57d0; border-radius: 8px; padding: 8px; margin: 8px 0; }
.call[hidden] { display: none; }
.videos { display: flex; flex-wrap: wrap; gap: 8px; margin: 6px 0; }
.tile { margin: 0; width: 200px; }
.tile video { width: 200px; height: 150px; background: #1f2328; border-radius: 6px; display: block; }
.tile figcaption { font-size: 0.85em; color: #3d444d; }
.top .new-project { margin: 0; }
.floors[hidden] { display: none; }
.floor-form { display: flex; flex-wrap: wrap; gap: 6px 12px; align-items: end; margin: 8px 0 0; }
.floor-form .field { display: flex; flex-direction: column; }
.floor-form label { font-size: 0.9em; }
:is(.project-dialog, .project-manage) { max-width: min(40rem, 96vw); max-height: 92vh; overflow: auto; border: 1px solid #57606a; border-radius: 8px;
  padding: 12px 16px; color: #1f2328; background: #ffffff; font: 15px/1.45 system-ui, "DejaVu Sans", "Liberation Sans", sans-serif; }
:is(.project-dialog, .project-manage)::backdrop { background: rgba(31, 35, 40, 0.55); }
:is(.project-dialog, .project-manage) h3 { margin-top: 0; }
:is(.project-dialog, .project-manage) .field { display: flex; flex-direction: column; margin: 8px 0; }
:is(.project-dialog, .project-manage) .field input:not([type]), :is(.project-dialog, .project-manage) .field input[type=text] { width: 100%; }
:is(.project-dialog, .project-manage) fieldset { border: 1px solid #d0d7de; border-radius: 6px; margin: 8px 0; padding: 6px 10px; }
:is(.project-dialog, .project-manage) legend { font-weight: 600; padding: 0 4px; }
:is(.project-dialog, .project-manage) .choice { margin: 4px 0; }
:is(.project-dialog, .project-manage) .choice input { margin-right: 6px; }
:is(.project-dialog, .project-manage) .inline { display: flex; gap: 6px; align-items: center; }
:is(.project-dialog, .project-manage) .inline button { margin: 0; white-space: nowrap; }
:is(.project-dialog, .project-manage) ul { list-style: none; margin: 4px 0; padding: 0; }
:is(.project-dialog, .project-manage) li { margin: 2px 0; }
:is(.project-dialog, .project-manage) [aria-invalid="true"] { border: 2px solid #b42318; }
.project-error { color: #b42318; font-weight: 600; margin: 4px 0; }
.project-error:empty { margin: 0; }
:is(.project-dialog, .project-manage) .buttons { margin-top: 10px; }
.project-manage h5 { font-size: 0.9rem; margin: 8px 0 2px; }
.project-manage section { border-top: 1px solid #d0d7de; margin-top: 8px; }
.project-manage .inline .field { margin: 4px 0; }
.project-manage .manage-link input { font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
.project-manage .manage-link[hidden], .project-manage ul[hidden] { display: none; }
.project-manage li.ended > span { color: #57606a; }
.project-manage .confirm { border-left: 3px solid #b42318; padding-left: 8px; margin: 4px 0; }
.project-manage .confirm p { margin: 0; }
.project-manage button.refresh { margin: 2px 0 6px; }
.top .manage-project { margin: 0; }
`;

let sheet = null;

/** One stylesheet object shared by every widget on the page. */
export function widgetSheet() {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
  }
  return sheet;
}
