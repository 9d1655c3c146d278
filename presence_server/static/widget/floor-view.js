// A client's copy of one floor: a snapshot plus the diffs after it.
// Pure (no I/O); the same rules as signalling/floorview.py and docs/protocol.md §5:
//  * frames that arrive before the snapshot are buffered, then replayed;
//  * a diff with seq <= view.seq is already in the view: skip it;
//  * seq == view.seq + 1: apply it;
//  * seq > view.seq + 1: something was missed; the view is stale until a fresh
//    snapshot replaces it (the caller sends floor.watch again).
// Members are keyed by their person id ("municipality/user_id"): a user id alone is
// unique only within its town (two towns may both have "m.mueller").

export class FloorView {
  constructor(floorId) {
    this.floorId = floorId;
    this.seq = 0;
    this.floor = null;
    this.rooms = new Map();
    this.members = new Map();
    this.stale = true; // until the first snapshot
    this.removed = false;
    this.gaps = 0; // how many times a gap forced a resync (for tests and diagnostics)
    this._early = [];
  }

  /** Take a snapshot, then replay early diffs. False when the replay found a gap. */
  loadSnapshot(snapshot) {
    this.floor = { ...snapshot.floor };
    this.rooms = new Map(snapshot.rooms.map((r) => [r.id, { ...r }]));
    this.members = new Map(snapshot.members.map((m) => [m.person, { ...m }]));
    this.seq = snapshot.seq;
    this.stale = false;
    const early = this._early;
    this._early = [];
    return early.every((d) => this.apply(d));
  }

  /** Mark the view stale before asking for a snapshot: diffs meanwhile are buffered. */
  markStale() {
    this.stale = true;
    this._early = [];
  }

  /** Apply a floor.diffs frame. False when a gap was found (resync needed). */
  applyFrame(frame) {
    for (const diff of frame.diffs) if (!this.apply(diff)) return false;
    return true;
  }

  apply(diff) {
    if (this.stale) {
      this._early.push(diff);
      return true;
    }
    if (diff.seq <= this.seq) return true;
    if (diff.seq !== this.seq + 1) {
      this.gaps += 1;
      this.markStale();
      return false;
    }
    this.seq = diff.seq;
    this._update(diff);
    return true;
  }

  _update(diff) {
    const member = this.members.get(diff.person);
    switch (diff.type) {
      case "joined": this.members.set(diff.member.person, { ...diff.member }); break;
      case "left": this.members.delete(diff.person); break;
      case "moved": if (member) member.room_id = diff.room_id; break;
      case "status": if (member) Object.assign(member, { status: diff.status, text: diff.text }); break;
      case "room": this.rooms.set(diff.room.id, { ...diff.room }); break;
      case "room_removed": this.rooms.delete(diff.room_id); break;
      case "floor": this.floor = { ...diff.floor }; break;
      case "floor_removed": this.removed = true; break;
      case "call":
        // Absent means "not in a call", as in snapshots.
        if (member) { if (diff.in_call == null) delete member.in_call; else member.in_call = diff.in_call; }
        break;
      default: break; // newer servers may add diff types
    }
  }

  /** Members in a room (null: the hallway), by name. */
  occupants(roomId) {
    return [...this.members.values()]
      .filter((m) => (m.room_id ?? null) === roomId)
      .sort((a, b) => a.name.localeCompare(b.name) || a.person.localeCompare(b.person));
  }

  /** Rooms in the reading order of the plan: by row, then left to right. */
  roomsInOrder() {
    return [...this.rooms.values()].sort((a, b) => a.rect.y - b.rect.y || a.rect.x - b.rect.x || a.id.localeCompare(b.id));
  }
}
