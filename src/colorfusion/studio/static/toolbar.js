// The toolbar: open a photo (or drop one on the page), undo / redo, the hints file, a reference photo,
// the download.

import {busy, clearMessage, post, send, showError, wireHints} from "./api.js";
import {$, restore, setPhoto, snapshot, state, update} from "./state.js";

export function draw() {
  $("undo").disabled = !state.undo.length;
  $("redo").disabled = !state.redo.length;
  for (const id of ["download", "save-hints", "load-hints"]) $(id).disabled = !state.photo;
  $("reference").disabled = !state.photo || !(state.info && state.info.takes_hints);
}

export function undo() {
  restore(state.undo, state.redo);
}

export function redo() {
  restore(state.redo, state.undo);
}

// === Opening a photo ===

async function openFile(file) {
  clearMessage();
  const limit = state.info.limits.upload_bytes;
  if (file.size > limit) {
    showError(new Error(`${file.name}: too large (${Math.round(file.size / 1e6)} MB; the studio takes files up to ${Math.round(limit / 1e6)} MB)`));
    return;
  }
  await busy("Opening…", async () => {
    try {
      setPhoto(await send(`/api/photos?name=${encodeURIComponent(file.name)}`, file));
      update();
    } catch (error) {
      showError(error);
    }
  });
}

// === Files: download, hints ===

function saveBlob(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

async function download() {
  clearMessage();
  await busy("Colorizing at full resolution…", async () => {
    try {
      const response = await post(`/api/photos/${state.photo.id}/download`, {hints: wireHints(state.hints)}, "response");
      const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
      saveBlob(await response.blob(), match ? match[1] : "colorized.png");
    } catch (error) {
      showError(error);
    }
  });
}

function saveHints() {
  if (state.photo) state.hintsByName[state.photo.name] = state.hints;
  // {"photo.jpg": [[x, y, "#rrggbb"], ...], ...}: one photo a line, as `colorize --hints` reads it.
  const lines = Object.entries(state.hintsByName).filter(([, hints]) => hints.length)
    .map(([name, hints]) => `  ${JSON.stringify(name)}: ${JSON.stringify(wireHints(hints))}`);
  saveBlob(new Blob([`{\n${lines.join(",\n")}\n}\n`], {type: "application/json"}), "hints.json");
}

// The server reads the file and says which photo each key names (the rule of `colorize --hints`).
async function loadHints(file) {
  clearMessage();
  const points = (list) => list.map(([x, y, hex]) => ({x, y, hex}));
  await busy("Reading hints…", async () => {
    try {
      const url = `/api/photos/${state.photo.id}/hints-file?name=${encodeURIComponent(file.name)}`;
      const found = await send(url, file);
      for (const [name, list] of Object.entries({...found.others, ...found.by_photo})) {
        if (name !== state.photo.name) state.hintsByName[name] = points(list);
      }
      if (found.missing) throw new Error(found.missing);
      snapshot();
      state.hints = points(found.hints);
      state.selected = -1;
      update();
    } catch (error) {
      showError(error);
    }
  });
}

// A colour photo of the same scene: the server matches it and answers points, which replace those of the
// previous reference and stay the person's to move or delete (one undo step). The person's own points win.
async function loadReference(file) {
  clearMessage();
  await busy("Matching the reference…", async () => {
    try {
      const own = state.hints.filter((h) => !h.reference);
      const query = `name=${encodeURIComponent(file.name)}&hints=${encodeURIComponent(JSON.stringify(wireHints(own)))}`;
      const found = await send(`/api/photos/${state.photo.id}/reference?${query}`, file);
      if (!found.points.length) throw new Error(`${found.name}: no part of it matches this photo`);
      snapshot();
      state.hints = [...own, ...found.points.map(([x, y, hex, weight]) => ({x, y, hex, weight, reference: found.name}))];
      state.selected = -1;
      update();
    } catch (error) {
      showError(error);
    }
  });
}

export function wire() {
  const pick = () => $("file").click();
  $("open").addEventListener("click", pick);
  $("open-2").addEventListener("click", pick);
  $("file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (file) openFile(file);
  });
  $("message-close").addEventListener("click", clearMessage);
  $("undo").addEventListener("click", undo);
  $("redo").addEventListener("click", redo);
  $("download").addEventListener("click", download);
  $("save-hints").addEventListener("click", saveHints);
  $("load-hints").addEventListener("click", () => $("hints-file").click());
  $("hints-file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (file) loadHints(file);
  });
  $("reference").addEventListener("click", () => $("reference-file").click());
  $("reference-file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (file) loadReference(file);
  });
  // Drop a photo anywhere on the page.
  document.addEventListener("dragover", (event) => {
    event.preventDefault();
    document.body.classList.add("dropping");
  });
  document.addEventListener("dragleave", (event) => {
    if (!event.relatedTarget) document.body.classList.remove("dropping");
  });
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    document.body.classList.remove("dropping");
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (file) openFile(file);
  });
}
