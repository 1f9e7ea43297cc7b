// The folder: the photos of the folder given on the command line, as thumbnails; the previous and next one.

import {busy, clearMessage, getJson, send, showError} from "./api.js";
import {$, setPhoto, state, update} from "./state.js";

export function draw() {
  for (const button of document.querySelectorAll("#thumbs button")) {
    button.classList.toggle("current", !!state.photo && button.dataset.name === state.photo.name);
  }
}

export async function loadFolder() {
  state.folder = await getJson("/api/folder");
  $("folder").hidden = state.folder.photos.length < 2;
  $("folder-name").textContent = state.folder.name;
  $("thumbs").replaceChildren(...state.folder.photos.map((name) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.name = name;
    button.title = name;
    const image = document.createElement("img");
    image.loading = "lazy";
    image.alt = name;
    image.src = `/api/folder/thumb?path=${encodeURIComponent(name)}`;
    const label = document.createElement("span");
    label.textContent = name;
    button.append(image, label);
    button.addEventListener("click", () => openFolderPhoto(name));
    item.append(button);
    return item;
  }));
  if (state.folder.photos.length) await openFolderPhoto(state.folder.photos[0]);
}

async function openFolderPhoto(name) {
  clearMessage();
  await busy("Opening…", async () => {
    try {
      setPhoto(await send(`/api/folder/open?path=${encodeURIComponent(name)}`));
      update();
    } catch (error) {
      showError(error);
    }
  });
}

export function step(delta) {
  if (!state.folder || !state.folder.photos.length) return;
  const photos = state.folder.photos;
  const index = state.photo ? photos.indexOf(state.photo.name) : -1;
  openFolderPhoto(photos[(index + delta + photos.length) % photos.length]);
}

export function wire() {
  $("prev").addEventListener("click", () => step(-1));
  $("next").addEventListener("click", () => step(1));
}
