// The palette: the colour of the point being edited. The model's likely colours there, every colour
// of that lightness (the gamut), any colour, the recent ones; deleting the point.

import {showError, suggestAt} from "./api.js";
import {$, snapshot, state, update} from "./state.js";

export function draw() {
  $("palette").hidden = !state.photo;
  const tools = $("point-tools");
  if (state.selected < 0 || !state.photo) {
    tools.hidden = true;
    $("point-info").textContent = "Click the photo where a colour is wrong.";
    return;
  }
  const hint = state.hints[state.selected];
  tools.hidden = false;
  $("point-info").textContent = `Point ${state.selected + 1} at (${hint.x}, ${hint.y}): ${hint.hex}`;
  $("custom").value = hint.hex;
  $("recent").replaceChildren(...state.recent.map((hex) => swatch(hex, "", setColour)));
  if (state.found && state.found !== shownFound) showFound(state.found);
}

// === Suggested colours and the gamut: drawn when new ones arrive ===

let shownFound = null;

function showFound(found) {
  shownFound = found;
  $("suggestions").replaceChildren(...found.colours.map((c) =>
    swatch(c.hex, `${Math.round(c.probability * 100)}%`, setColour)));
  const canvas = $("gamut");
  const image = new Image();
  image.onload = () => {
    const context = canvas.getContext("2d");
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.drawImage(image, 0, 0, canvas.width, canvas.height);
  };
  image.src = found.gamut;
}

function swatch(hex, label, onPick) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "swatch";
  button.style.background = hex;
  button.dataset.hex = hex;
  button.title = label ? `${hex} ${label}` : hex;
  if (label) {
    const text = document.createElement("span");
    text.textContent = label;
    button.append(text);
  }
  button.addEventListener("click", () => onPick(hex));
  return button;
}

// === Editing the point ===

// Select a point (or none, -1); its likely colours follow when the server has them.
export async function selectPoint(index) {
  state.selected = index;
  update();
  if (index < 0) return;
  const hint = state.hints[index];
  try {
    const found = await suggestAt(hint.x, hint.y, state.hints.filter((_, i) => i !== index));
    if (state.selected === index) {
      state.found = found;
      update();
    }
  } catch (error) {
    showError(error);
  }
}

export function setColour(hex, record = true) {
  if (state.selected < 0) return;
  hex = hex.toLowerCase();
  if (record) snapshot();
  state.hints[state.selected].hex = hex;
  delete state.hints[state.selected].reference;  // recoloured: the person's point now
  state.recent = [hex, ...state.recent.filter((c) => c !== hex)].slice(0, 10);
  update();
}

export function deletePoint() {
  if (state.selected < 0) return;
  snapshot();
  state.hints.splice(state.selected, 1);
  state.selected = -1;
  update();
}

export function wire() {
  // The colour picker: live while it moves, one undo step per pick.
  let picking = false;
  $("custom").addEventListener("input", (event) => {
    if (!picking) snapshot();
    picking = true;
    setColour(event.target.value, false);
  });
  $("custom").addEventListener("change", () => { picking = false; });
  $("gamut").addEventListener("click", (event) => {
    const canvas = $("gamut");
    const box = canvas.getBoundingClientRect();
    const x = Math.floor((event.clientX - box.left) / box.width * canvas.width);
    const y = Math.floor((event.clientY - box.top) / box.height * canvas.height);
    const [r, g, b, a] = canvas.getContext("2d").getImageData(x, y, 1, 1).data;
    if (a < 128) return;  // outside the gamut: no such colour at this lightness
    setColour("#" + [r, g, b].map((v) => v.toString(16).padStart(2, "0")).join(""));
  });
  $("delete-hint").addEventListener("click", deletePoint);
}
