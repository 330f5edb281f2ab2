// doppel's web chat: plain JS, no build step. Everything from the model or the data is shown with
// textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const REPLY_SEP = "\n\n"; // the server joins a reply's messages with it
const state = { models: [], history: [], busy: false, abort: null, key: sessionStorage.getItem("doppel-key") || "" };

function headers() {
  const h = { "Content-Type": "application/json" };
  if (state.key) h.Authorization = `Bearer ${state.key}`;
  return h;
}

function persona() { return $("persona").value; }
function me() { return $("me").value.trim() || "Me"; }

function note(text, isError = false) {
  const div = document.createElement("div");
  div.className = isError ? "note error" : "note";
  div.textContent = text;
  $("log").appendChild(div);
  scroll();
}

function bubble(speaker, text, mine) {
  const log = $("log");
  const last = log.lastElementChild;
  const div = document.createElement("div");
  div.className = `bubble ${mine ? "mine" : "theirs"}`;
  if (last && last.dataset.speaker === speaker) div.classList.add("follow");
  div.dataset.speaker = speaker;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = speaker;
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  div.append(who, body);
  log.appendChild(div);
  scroll();
  return body;
}

// Why memory read nothing (a name that places nobody in the data, or several people): said
// under the reply, never a silently empty scope.
function showWarnings(warnings) {
  for (const warning of warnings) {
    const line = document.createElement("div");
    line.className = "memories";
    line.textContent = `memory: ${warning}`;
    $("log").appendChild(line);
  }
  scroll();
}

// Under the reply: the memories it read (date, chat, who said what), folded, so the user sees
// why the twin said what it said.
function showMemories(memories) {
  const box = document.createElement("details");
  box.className = "memories";
  const summary = document.createElement("summary");
  summary.textContent = `remembered ${memories.length} ${memories.length === 1 ? "moment" : "moments"}`;
  box.appendChild(summary);
  for (const memory of memories) {
    const item = document.createElement("div");
    item.className = "memory";
    const where = document.createElement("div");
    where.className = "where";
    where.textContent = `${memory.date} · chat "${memory.chat}"`;
    item.appendChild(where);
    for (const [speaker, text] of memory.lines) {
      const line = document.createElement("div");
      line.className = "line";
      line.textContent = `${speaker}: ${text}`;
      item.appendChild(line);
    }
    box.appendChild(item);
  }
  $("log").appendChild(box);
  scroll();
}

function scroll() { $("log").scrollTop = $("log").scrollHeight; }

function typing(on) {
  $("typing").hidden = !on;
  $("typing-name").textContent = persona();
}

async function loadModels() {
  const response = await fetch("/v1/models", { headers: headers() });
  if (response.status === 401) { $("keybar").hidden = false; note("this server needs an API key", true); return; }
  const body = await response.json();
  state.models = body.data;
  const select = $("persona");
  select.replaceChildren();
  for (const model of body.data) select.appendChild(new Option(model.doppel.persona, model.doppel.persona));
  const list = $("speakers");
  list.replaceChildren();
  for (const model of body.data) list.appendChild(new Option(model.doppel.persona));
  const wanted = (body.doppel && body.doppel.default || "").replace(/^doppel\//, "");
  if (wanted) select.value = wanted;
  choosePartner(true);
}

function choosePartner(force) {
  const model = state.models.find((m) => m.doppel.persona === persona());
  if (model && (force || !$("me").value.trim() || $("me").value.trim() === persona())) $("me").value = model.doppel.partner;
}

function requestMessages() {
  return state.history.map(([speaker, text]) => ({
    role: speaker === persona() ? "assistant" : "user", name: speaker, content: text,
  }));
}

async function send(text) {
  if (state.busy || !text.trim()) return;
  if (me() === persona()) { note("you and the model cannot be the same person", true); return; }
  state.history.push([me(), text]);
  bubble(me(), text, true);
  state.busy = true;
  $("send").disabled = true;
  typing(true);
  state.abort = new AbortController();
  const speaker = persona();
  try {
    const reply = await stream(speaker, state.abort.signal);
    for (const message of reply) state.history.push([speaker, message]);
  } catch (error) {
    if (error.name !== "AbortError") note(String(error.message || error), true);
  } finally {
    state.busy = false;
    $("send").disabled = false;
    typing(false);
    $("text").focus();
  }
}

async function stream(speaker, signal) {
  const response = await fetch("/v1/chat/completions", {
    method: "POST", headers: headers(), signal,
    body: JSON.stringify({ model: `doppel/${speaker}`, stream: true, messages: requestMessages() }),
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    if (response.status === 401) $("keybar").hidden = false;
    throw new Error((body.error && body.error.message) || `HTTP ${response.status}`);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const messages = [];
  let buffer = "", index = -1, target = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
        const chunk = JSON.parse(line.slice(6));
        if (chunk.error) throw new Error(chunk.error.message);
        const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
        if (delta && delta.doppel && delta.doppel.memories && delta.doppel.memories.length) {
          showMemories(delta.doppel.memories);
        }
        if (delta && delta.doppel && delta.doppel.warnings) showWarnings(delta.doppel.warnings);
        if (!delta || !delta.content) continue;
        const at = delta.doppel ? delta.doppel.message_index : 0;
        let text = delta.content;
        if (at !== index) {
          if (text.startsWith(REPLY_SEP)) text = text.slice(REPLY_SEP.length);
          index = at;
          messages[index] = "";
          target = bubble(speaker, "", false);
        }
        messages[index] += text;
        target.textContent = messages[index];
        scroll();
      }
    }
  }
  return messages.filter((m) => m);
}

function transcript() {
  const lines = [`# Chat with ${persona()}`, "", `- saved: ${new Date().toISOString()}`, ""];
  for (const [speaker, text] of state.history) lines.push(`**${speaker}:** ${text.replace(/\n/g, "  \n")}  `);
  return lines.join("\n") + "\n";
}

function download() {
  const url = URL.createObjectURL(new Blob([transcript()], { type: "text/markdown" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = `doppel-chat-${persona()}.md`;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function reset() {
  if (state.abort) state.abort.abort();
  state.history = [];
  $("log").replaceChildren();
  note(`new conversation: ${persona()} is played by the model`);
}

document.addEventListener("DOMContentLoaded", () => {
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("text").value;
    $("text").value = "";
    send(text);
  });
  $("persona").addEventListener("change", () => { choosePartner(false); note(`the model now plays ${persona()}`); });
  $("reset").addEventListener("click", reset);
  $("download").addEventListener("click", download);
  $("savekey").addEventListener("click", () => {
    state.key = $("key").value;
    sessionStorage.setItem("doppel-key", state.key);
    $("keybar").hidden = true;
    loadModels();
  });
  loadModels().catch((error) => note(String(error), true));
});
