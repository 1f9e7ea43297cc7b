// Talking to the server (routes.py), and saying how it went: the status line and the message.
// Every colour comes from there: the result, the suggested colours, the gamut, the download,
// which photo a hints file's key names.

import {$, state} from "./state.js";

export function wireHints(hints) {
  return hints.map((h) => [h.x, h.y, h.hex]);
}

async function failure(response) {
  try {
    const body = await response.json();
    if (body && body.error) return new Error(body.error);
  } catch (e) { /* not JSON */ }
  return new Error(`the studio answered ${response.status} ${response.statusText}`);
}

export async function getJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw await failure(response);
  return response.json();
}

// POST a JSON body; the answer as JSON, or the response itself (as = "response") for a file.
export async function post(url, body, as = "json") {
  const response = await fetch(url, {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body),
  });
  if (!response.ok) throw await failure(response);
  return as === "response" ? response : response.json();
}

// POST a file as it is (an upload, a hints file); the answer as JSON.
export async function send(url, file) {
  const response = await fetch(url, {method: "POST", body: file});
  if (!response.ok) throw await failure(response);
  return response.json();
}

export function suggestAt(x, y, others) {
  return post(`/api/photos/${state.photo.id}/suggest`, {x, y, hints: wireHints(others)});
}

// === The status line and the message ===

export async function busy(text, work) {
  state.busy += 1;
  showBusy(text);
  try {
    return await work();
  } finally {
    state.busy -= 1;
    showBusy(text);
  }
}

function showBusy(text) {
  document.body.dataset.busy = state.busy > 0 ? "1" : "0";
  $("status-text").textContent = state.busy > 0 ? text : "Ready";
}

export function showError(error) {
  $("message-text").textContent = error.message || String(error);
  $("message").hidden = false;
}

export function clearMessage() {
  $("message").hidden = true;
  $("message-text").textContent = "";
}
