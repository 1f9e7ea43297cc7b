// colorfusion studio: the page. It draws and sends points; every colour comes from the server
// (the package): the result, the suggested colours, the gamut, the full-resolution download.
//
// One state (state.js); a panel changes it, then calls update(), and every panel draws itself
// from it: the toolbar, the stage (whose result follows the points), the palette, the folder.

import {getJson, showError} from "./api.js";
import * as confidence from "./confidence.js";
import * as folder from "./folder.js";
import * as palette from "./palette.js";
import * as stage from "./stage.js";
import {$, onUpdate, state, update} from "./state.js";
import * as toolbar from "./toolbar.js";

const PANELS = [toolbar, stage, palette, folder, confidence];

function wireKeys() {
  document.addEventListener("keydown", (event) => {
    if (event.target.tagName === "INPUT") return;
    const key = event.key.toLowerCase();
    if ((event.ctrlKey || event.metaKey) && key === "z") {
      event.preventDefault();
      if (event.shiftKey) toolbar.redo(); else toolbar.undo();
    } else if ((event.ctrlKey || event.metaKey) && key === "y") {
      event.preventDefault();
      toolbar.redo();
    } else if (key === "delete" || key === "backspace") {
      palette.deletePoint();
    } else if (key === "arrowright" && state.folder) {
      folder.step(1);
    } else if (key === "arrowleft" && state.folder) {
      folder.step(-1);
    }
  });
}

async function start() {
  for (const panel of PANELS) {
    onUpdate(panel.draw);
    panel.wire();
  }
  wireKeys();
  update();
  try {
    state.info = await getJson("/api/info");
    const limits = state.info.limits;
    $("limits").textContent = `JPEG, PNG, TIFF, WebP, BMP or GIF; up to ${Math.round(limits.upload_bytes / 1e6)} MB and ${Math.round(limits.pixels / 1e6)} megapixels. Nothing leaves this computer.`;
    if (!state.info.takes_hints) showError(new Error("this model takes no colour hints: the page shows its automatic colorization only"));
    if (state.info.folder) await folder.loadFolder();
  } catch (error) {
    showError(error);
  }
  document.body.dataset.ready = "1";
}

start();
