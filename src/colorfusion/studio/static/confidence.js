// Where the model is unsure: a toggle that shades the unsure regions of the colorized photo and marks
// three to five "click here" places (the package's unsure_places: large unsure regions, most unsure
// first). A click on a place adds a point there, as anywhere on the photo; the shading then follows
// the new points. Every figure comes from the server (/api/photos/ID/confidence).

import {post, showError, wireHints} from "./api.js";
import {$, state} from "./state.js";

let requested = null;  // the photo and points of the shading shown or on its way
let latest = null;

export function draw() {
  const on = $("show-unsure").checked && !!state.photo;
  $("unsure").hidden = !on;
  $("marks-unsure").hidden = !on;
  if (!on) {
    requested = null;
    return;
  }
  const shading = JSON.stringify(["unsure", state.photo.id, wireHints(state.hints)]);
  if (shading === requested) return;
  requested = shading;
  refresh(shading, state.photo);
}

async function refresh(wanted, photo) {
  latest = wanted;
  let found;
  try {
    found = await post(`/api/photos/${photo.id}/confidence`, {hints: wireHints(state.hints)});
  } catch (error) {
    $("show-unsure").checked = false;
    requested = null;
    showError(error);
    draw();
    return;
  }
  if (wanted !== latest || photo !== state.photo) return;  // the points changed meanwhile: a newer one comes
  $("unsure").src = found.overlay;
  $("marks-unsure").replaceChildren(...found.places.map((place, index) => {
    const mark = document.createElement("div");
    mark.className = "unsure-mark";
    mark.textContent = String(index + 1);
    mark.style.left = `${(place.x + 0.5) / photo.width * 100}%`;
    mark.style.top = `${(place.y + 0.5) / photo.height * 100}%`;
    mark.dataset.x = String(place.x);
    mark.dataset.y = String(place.y);
    mark.title = `click here: the model is unsure of the colour (${Math.round(place.score * 100)} % unsure around it)`;
    return mark;
  }));
  $("unsure").dataset.version = String(Number($("unsure").dataset.version) + 1);  // shadings shown so far
}

export function wire() {
  $("show-unsure").addEventListener("change", draw);
}
