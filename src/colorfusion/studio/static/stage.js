// The stage: the photo in black and white and colorized, its points (click to add, drag to move),
// the before / after wipe. Its result is kept up to date: whenever the points differ from those of
// the result shown (or on its way), it asks for a new one, and the latest points win.

import {busy, clearMessage, post, showError, suggestAt, wireHints} from "./api.js";
import {$, snapshot, state, update} from "./state.js";
import {selectPoint} from "./palette.js";

const STAGES = ["stage-bw", "stage-result"];

export function draw() {
  $("empty").hidden = !!state.photo;
  $("work").hidden = !state.photo;
  if (!state.photo) return;
  if (state.photo !== shownPhoto) showPhoto(state.photo);
  drawMarks();
  keepResultCurrent();
}

// === The photo ===

let shownPhoto = null;

function showPhoto(record) {
  shownPhoto = record;
  $("bw").src = record.gray;
  $("before").src = record.gray;
  $("original").src = record.original;
  $("original-toggle").hidden = !record.is_colour;
  $("show-original").checked = false;
  $("original").hidden = true;
  $("bw").hidden = false;
  for (const id of STAGES) {
    $(id).style.aspectRatio = `${record.display_width} / ${record.display_height}`;
    $(id).style.setProperty("--aspect", String(record.display_width / record.display_height));
  }
  document.title = `${record.name} - colorfusion studio`;
}

function drawMarks() {
  for (const id of ["marks-bw", "marks-result"]) {
    const layer = $(id);
    layer.replaceChildren(...state.hints.map((hint, index) => {
      const mark = document.createElement("div");
      mark.className = "mark" + (index === state.selected ? " selected" : "") + (hint.reference ? " reference" : "");
      mark.style.left = `${(hint.x + 0.5) / state.photo.width * 100}%`;
      mark.style.top = `${(hint.y + 0.5) / state.photo.height * 100}%`;
      mark.style.background = hint.hex;
      mark.dataset.index = String(index);
      mark.title = `(${hint.x}, ${hint.y}) ${hint.hex}` + (hint.reference ? ` from ${hint.reference}` : "");
      mark.addEventListener("pointerdown", (event) => dragPoint(event, index, mark));
      return mark;
    }));
  }
}

// === The result, kept up to date: the latest points win ===

let requested = null;  // the photo and points of the result shown or on its way
let inFlight = null;
let again = false;

function keepResultCurrent() {
  const wanted = JSON.stringify([state.photo.id, wireHints(state.hints)]);
  if (wanted === requested) return;
  requested = wanted;
  refresh();
}

async function refresh() {
  if (inFlight) {
    again = true;
    return inFlight;
  }
  inFlight = busy("Colorizing…", async () => {
    try {
      do {
        again = false;
        const photo = state.photo;
        const response = await post(`/api/photos/${photo.id}/result`, {hints: wireHints(state.hints)}, "response");
        const blob = await response.blob();
        if (photo === state.photo && !again) await showResult(blob);
      } while (again);
    } catch (error) {
      showError(error);
    }
  });
  try {
    await inFlight;
  } finally {
    inFlight = null;
  }
}

function showResult(blob) {
  return new Promise((resolve) => {
    const image = $("result");
    const old = image.src;
    image.onload = () => {
      if (old.startsWith("blob:")) URL.revokeObjectURL(old);
      image.dataset.version = String(Number(image.dataset.version) + 1);  // results shown so far
      resolve();
    };
    image.onerror = () => resolve();
    image.src = URL.createObjectURL(blob);
  });
}

// === Points: a click adds one, a drag moves one ===

function photoPoint(event, stage) {
  const box = stage.getBoundingClientRect();
  const photo = state.photo;
  const x = Math.floor((event.clientX - box.left) / box.width * photo.width);
  const y = Math.floor((event.clientY - box.top) / box.height * photo.height);
  return [Math.min(Math.max(x, 0), photo.width - 1), Math.min(Math.max(y, 0), photo.height - 1)];
}

async function addPoint(x, y) {
  clearMessage();
  let found;
  try {
    found = await busy("Finding colours…", () => suggestAt(x, y, state.hints));
  } catch (error) {
    showError(error);
    return;
  }
  snapshot();
  state.hints.push({x, y, hex: found.colours[0].hex});
  state.selected = state.hints.length - 1;
  state.found = found;
  update();
}

function dragPoint(event, index, mark) {
  event.preventDefault();
  event.stopPropagation();
  const stage = mark.closest(".stage");
  const start = {x: event.clientX, y: event.clientY};
  let moved = false;
  mark.setPointerCapture(event.pointerId);
  const move = (e) => {
    if (Math.abs(e.clientX - start.x) + Math.abs(e.clientY - start.y) > 3) moved = true;
    if (!moved) return;
    const box = stage.getBoundingClientRect();  // the mark follows the pointer; the state changes on release
    mark.style.left = `${Math.min(Math.max((e.clientX - box.left) / box.width, 0), 1) * 100}%`;
    mark.style.top = `${Math.min(Math.max((e.clientY - box.top) / box.height, 0), 1) * 100}%`;
  };
  const up = (e) => {
    mark.removeEventListener("pointermove", move);
    mark.removeEventListener("pointerup", up);
    if (moved) {
      const [x, y] = photoPoint(e, stage);
      snapshot();
      state.hints[index] = {...state.hints[index], x, y, reference: undefined};  // moved: the person's now
    }
    selectPoint(index);
  };
  mark.addEventListener("pointermove", move);
  mark.addEventListener("pointerup", up);
}

export function wire() {
  for (const id of STAGES) {
    $(id).addEventListener("click", (event) => {
      if (!state.photo || event.target.classList.contains("mark")) return;
      const [x, y] = photoPoint(event, $(id));
      addPoint(x, y);
    });
  }
  $("show-original").addEventListener("change", (event) => {
    $("original").hidden = !event.target.checked;
    $("bw").hidden = event.target.checked;
  });
  $("compare").addEventListener("input", (event) => {
    // A wipe at the slider's position: before (B&W) on its left, after (colorized) on its right.
    $("before").style.clipPath = `inset(0 ${100 - Number(event.target.value)}% 0 0)`;
  });
  $("before").style.clipPath = "inset(0 100% 0 0)";
}
