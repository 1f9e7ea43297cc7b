// The page's one state, and update(): after any change of it, every panel draws itself from it.
// A panel never draws on its own; it changes the state, then calls update().

export const $ = (id) => document.getElementById(id);

export const state = {
  info: null,         // /api/info: the model, the limits, the folder
  photo: null,        // the open photo's record (/api/photos ...)
  hints: [],          // [{x, y, hex}] in the photo's own pixels
  selected: -1,       // index of the point being edited
  found: null,        // the suggested colours of the point being edited (/api/photos/ID/suggest)
  undo: [],           // snapshots of {hints, selected}
  redo: [],
  recent: [],         // colours used lately
  hintsByName: {},    // every other photo's points, by its name (the hints file's keys)
  folder: null,       // {name, photos}
  busy: 0,            // requests under way
};

const panels = [];

export function onUpdate(draw) {
  panels.push(draw);
}

export function update() {
  for (const draw of panels) draw();
}

// === Changes that panels share ===

export function setPhoto(record) {
  if (state.photo) state.hintsByName[state.photo.name] = state.hints;
  state.photo = record;
  state.hints = (state.hintsByName[record.name] || []).map((h) => ({...h}));
  state.selected = -1;
  state.found = null;
  state.undo = [];
  state.redo = [];
}

export function snapshot() {
  state.undo.push({hints: state.hints.map((h) => ({...h})), selected: state.selected});
  if (state.undo.length > 200) state.undo.shift();
  state.redo = [];
}

// Undo (from undo to redo) or redo (the other way).
export function restore(from, to) {
  if (!from.length) return;
  to.push({hints: state.hints.map((h) => ({...h})), selected: state.selected});
  const previous = from.pop();
  state.hints = previous.hints;
  state.selected = Math.min(previous.selected, state.hints.length - 1);
  update();
}
