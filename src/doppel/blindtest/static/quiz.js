// The blind test page: one item per screen, answers posted as they are given, resumed on load.
// Everything from the server goes into the page as text (textContent), never as markup.
"use strict";

const token = decodeURIComponent(location.pathname.split("/").pop() || "");
const $ = (id) => document.getElementById(id);
let test = null;
let index = 0;
let picked = null;
let ratings = [];

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function api(path, body) {
  const options = { headers: { Authorization: "Bearer " + token } };
  if (body !== undefined) {
    options.method = "POST";
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error((data.error && data.error.message) || response.statusText);
  return data;
}

function showStatus(text) {
  $("status").textContent = text;
  $("status").hidden = !text;
}

function firstOpen() {
  const open = test.items.findIndex((item) => !(String(item.id) in test.answers));
  return open === -1 ? test.items.length : open;
}

function render() {
  const total = test.items.length;
  $("progress").textContent = index < total ? `${index + 1} of ${total}` : `${total} of ${total}`;
  if (index >= total) {
    $("item").hidden = true;
    $("done").hidden = false;
    return;
  }
  const item = test.items[index];
  picked = null;
  ratings = item.candidates.map(() => null);
  const context = $("context");
  context.replaceChildren();
  let last = null;
  for (const [speaker, text] of item.history) {
    const mine = speaker === test.persona;
    const bubble = el("div", "bubble " + (mine ? "persona" : "other"));
    if (speaker !== last) bubble.append(el("span", "who", speaker));
    bubble.append(el("span", "text", text));
    context.append(bubble);
    last = speaker;
  }
  $("question").textContent = `Which reply is really ${test.persona}'s?`;
  const list = $("candidates");
  list.replaceChildren();
  item.candidates.forEach((messages, n) => list.append(candidate(messages, n)));
  $("next").disabled = true;
  $("item").hidden = false;
  window.scrollTo(0, 0);
}

function candidate(messages, n) {
  const card = el("div", "candidate");
  card.dataset.index = String(n);
  const choose = el("button", "choose");
  choose.type = "button";
  choose.setAttribute("aria-pressed", "false");
  choose.append(el("span", "key", String(n + 1)));
  const body = el("span", "messages");
  for (const text of messages.length ? messages : ["(no message)"]) {
    body.append(el("span", "bubble persona", text));
  }
  choose.append(body);
  choose.addEventListener("click", () => pick(n));
  card.append(choose);
  const rate = el("div", "rate");
  rate.append(el("span", "label", `sounds like ${test.persona}:`));
  for (let value = 1; value <= 5; value++) {
    const star = el("button", "star", String(value));
    star.type = "button";
    star.setAttribute("aria-label", `rate ${value} of 5`);
    star.addEventListener("click", () => rateIt(n, value, rate));
    rate.append(star);
  }
  card.append(rate);
  return card;
}

function pick(n) {
  picked = n;
  for (const card of document.querySelectorAll(".candidate")) {
    const chosen = Number(card.dataset.index) === n;
    card.classList.toggle("picked", chosen);
    card.querySelector(".choose").setAttribute("aria-pressed", String(chosen));
  }
  $("next").disabled = false;
}

function rateIt(n, value, row) {
  ratings[n] = ratings[n] === value ? null : value;
  row.querySelectorAll(".star").forEach((star, i) => {
    star.classList.toggle("on", ratings[n] !== null && i < ratings[n]);
  });
}

async function next() {
  if (picked === null || $("next").disabled) return;
  const item = test.items[index];
  $("next").disabled = true;
  try {
    await api("/api/answer", { item: item.id, pick: picked, ratings });
  } catch (error) {
    showStatus("Could not save your answer (" + error.message + "); try again.");
    $("next").disabled = false;
    return;
  }
  showStatus("");
  test.answers[String(item.id)] = { pick: picked, ratings };
  index = firstOpen();
  render();
}

document.addEventListener("keydown", (event) => {
  if (!test || index >= test.items.length || event.altKey || event.ctrlKey || event.metaKey) return;
  const count = test.items[index].candidates.length;
  const n = Number(event.key);
  if (Number.isInteger(n) && n >= 1 && n <= count) {
    pick(n - 1);
    event.preventDefault();
  } else if (event.key === "Enter") {
    next();
    event.preventDefault();
  }
});

$("next").addEventListener("click", next);

api("/api/test").then((data) => {
  test = data;
  showStatus("");
  index = firstOpen();
  render();
}).catch((error) => showStatus("This link does not open a test (" + error.message + ")."));
