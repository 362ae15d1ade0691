// The operators' console: the queue, my conversations, one conversation with its customer's
// card, and the actions on it. Everything goes through the API at /console/api (the same one as
// /api/v1, signed in by the session cookie; docs/api.md), and /console/ws says which
// conversation changed so that only that is fetched again. Customer text is only ever set with
// textContent: nothing a customer writes becomes HTML.
"use strict";

const API = "/console/api";
const REFUSALS = {
  taken: "Разговор уже ведёт {owner}.",
  capacity: "У вас максимум разговоров: закройте один, чтобы взять новый.",
  offline: "Вы не в сети: включите статус «В сети», чтобы брать разговоры.",
  wrong_state: "Сейчас это сделать нельзя: разговор {state}.",
  not_owner: "Разговор ведёт {owner}.",
  unknown_operator: "Оператор не найден.",
  same_operator: "Разговор и так у этого оператора.",
  version: "Разговор только что изменился: повторите, пожалуйста.",
};
const STATES = { bot: "с ботом", queued: "в очереди", assigned: "в работе" };
const CHANNELS = { tg: "Telegram", vk: "VK", web: "Сайт" };
const REASONS = {
  customer_request: "просит оператора", explicit: "просит оператора",
  fallback: "бот не понял", not_understood: "бот не понял", complaint: "жалоба",
};
const PRIORITIES = { low: "низкий", normal: "обычный", high: "высокий", urgent: "срочно" };

const state = {
  me: null,            // {operator, name, roles, csrf}
  supervisor: false,
  operators: new Map(), // id -> operator
  queue: [],
  mine: [],
  current: null,       // conversation id
  detail: null,        // the current conversation as GET /conversations/{id} returns it
  tab: "queue",
  skew: 0,             // this browser's clock minus the server's, seconds
};

// --- small helpers ------------------------------------------------------------------------
const $ = (id) => document.getElementById(id);

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function now() { return Date.now() / 1000 - state.skew; }

function duration(seconds) {
  seconds = Math.max(0, Math.floor(seconds));
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

function clock(at) {
  if (!at) return "";
  const date = new Date(at * 1000);
  const today = new Date();
  const time = date.toLocaleTimeString("ru-RU", { hour: "2-digit", minute: "2-digit" });
  if (date.toDateString() === today.toDateString()) return time;
  return `${date.toLocaleDateString("ru-RU", { day: "numeric", month: "short" })} ${time}`;
}

function customerName(summary) {
  const p = summary.profile;
  if (!p) return summary.id;
  const name = [p.first_name, p.last_name].filter(Boolean).join(" ");
  return name || (p.username ? "@" + p.username : summary.id);
}

function channelOf(conv) { const c = conv.split(":")[0]; return CHANNELS[c] || c; }

function operatorName(id) {
  if (!id) return "";
  if (state.me && id === state.me.operator) return "вы";
  const found = state.operators.get(id);
  return (found && found.name) || id;
}

function refusal(error) {
  const body = error.data || {};
  const template = REFUSALS[body.error];
  if (!template) return body.error ? `Не получилось: ${body.error}` : "Не получилось.";
  return template.replace("{owner}", operatorName(body.owner) || "другой оператор")
    .replace("{state}", STATES[body.state] || body.state || "");
}

let toastTimer = 0;
function toast(text, bad = false) {
  const box = $("toast");
  box.textContent = text;
  box.classList.toggle("bad", bad);
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, bad ? 6000 : 3000);
}

// --- the API --------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, data) { super(data && data.error ? data.error : `HTTP ${status}`); this.status = status; this.data = data; }
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    if (state.me) headers["X-CSRF-Token"] = state.me.csrf;
  }
  const response = await fetch(API + path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) { location.reload(); throw new ApiError(401, {}); }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

const convPath = (conv) => `/conversations/${encodeURIComponent(conv)}`;

// --- loading ----------------------------------------------------------------------------------
async function loadOperators() {
  const data = await api("GET", "/operators");
  state.operators = new Map(data.operators.map((o) => [o.id, o]));
  const mine = state.operators.get(state.me.operator);
  if (mine) $("status").value = mine.status;
}

async function loadQueue() {
  const data = await api("GET", "/queue?limit=200");
  state.queue = data.items;
  const sample = data.items.find((i) => i.waited_seconds !== null && i.conversation.handoff);
  if (sample) state.skew = Date.now() / 1000 - (sample.conversation.handoff.queued_at + sample.waited_seconds);
  renderList();
}

async function loadMine() {
  const data = await api("GET", "/conversations?state=assigned&limit=500");
  state.mine = data.conversations.filter((c) => c.owner === state.me.operator);
  renderList();
}

async function loadCurrent() {
  const conv = state.current;
  if (!conv) return;
  try {
    const detail = await api("GET", `${convPath(conv)}?transcript=200`);
    if (state.current !== conv) return;
    state.detail = detail;
    renderChat();
  } catch (error) {
    if (error.status === 404) toast("Разговор не найден.", true);
  }
}

// Several changes in a burst (a take is a claim, a card and a notice) cost one fetch each.
const pending = { lists: 0, current: 0 };
function soon(what, run, delay) {
  clearTimeout(pending[what]);
  pending[what] = setTimeout(() => run().catch(() => {}), delay);
}
function refreshLists() { soon("lists", () => Promise.all([loadQueue(), loadMine()]), 150); }
function refreshCurrent() { soon("current", loadCurrent, 100); }

// --- the lists ------------------------------------------------------------------------------
function renderList() {
  $("queue-count").textContent = state.queue.length;
  $("mine-count").textContent = state.mine.length;
  const queue = $("queue-list"), mine = $("mine-list");
  queue.replaceChildren(...state.queue.map((item) => listItem(item.conversation, item.position,
    item.conversation.handoff && item.conversation.handoff.queued_at)));
  // Mine: the time shown is how long the customer has been waiting for an answer, if they are.
  mine.replaceChildren(...state.mine.map((c, i) => listItem(c, i + 1,
    c.handoff && c.handoff.customer_waiting_since, c.handoff && c.handoff.customer_waiting_since)));
  queue.hidden = state.tab !== "queue";
  mine.hidden = state.tab !== "mine";
  const shown = state.tab === "queue" ? state.queue : state.mine;
  const empty = $("list-empty");
  empty.hidden = shown.length > 0;
  empty.textContent = state.tab === "queue" ? "Очередь пуста." : "У вас нет разговоров.";
  tick();
}

function listItem(c, position, since, waiting) {
  const h = c.handoff || {};
  const prio = h.priority && h.priority !== "normal"
    ? el("span", { class: `prio prio-${h.priority}`, text: PRIORITIES[h.priority] || h.priority }) : null;
  const reason = REASONS[h.reason] || h.reason || "";
  const tags = (h.tags || []).map((t) => "#" + t).join(" ");
  return el("li", { class: "conv-item" + (c.id === state.current ? " selected" : "") + (waiting ? " waiting" : ""),
                    dataset: { conv: c.id } },
    el("button", { type: "button", onclick: () => openConversation(c.id) },
      el("span", { class: "pos", text: String(position) }),
      el("span", { class: "name", text: customerName(c) }),
      el("span", { class: "wait", dataset: { since: since || "" },
                   title: waiting ? "клиент ждёт ответа" : "в очереди" }),
      el("span", { class: "sub" }, prio, [channelOf(c.id), reason, tags].filter(Boolean).join(" · "))));
}

function tick() {
  for (const node of document.querySelectorAll(".wait[data-since]")) {
    const since = parseFloat(node.dataset.since);
    node.textContent = since ? duration(now() - since) : "";
  }
}

function selectTab(tab) {
  state.tab = tab;
  for (const button of document.querySelectorAll(".tabs button")) {
    button.setAttribute("aria-selected", String(button.dataset.tab === tab));
  }
  renderList();
}

// --- one conversation ---------------------------------------------------------------------
async function openConversation(conv) {
  state.current = conv;
  state.detail = null;
  document.body.classList.replace("show-list", "show-chat");
  $("chat").hidden = false;
  $("card").hidden = false;
  $("nothing").hidden = true;
  $("transcript").replaceChildren();
  for (const item of document.querySelectorAll(".conv-item")) {
    item.classList.toggle("selected", item.dataset.conv === conv);
  }
  await loadCurrent();
}

function closeConversation() {
  state.current = null;
  state.detail = null;
  document.body.classList.replace("show-chat", "show-list");
  document.body.classList.remove("show-card");
  $("chat").hidden = true;
  $("card").hidden = true;
  $("nothing").hidden = false;
  renderList();
}

function renderChat() {
  const d = state.detail;
  const h = d.handoff || {};
  $("chat-name").textContent = customerName(d);
  const bits = [channelOf(d.id), STATES[d.state] || d.state];
  if (h.priority && h.priority !== "normal") bits.push(PRIORITIES[h.priority] || h.priority);
  if (d.queue_position) bits.push(`№${d.queue_position} в очереди`);
  if (d.banned) bits.push("заблокирован");
  $("chat-meta").textContent = bits.join(" · ");
  const mine = d.owner === state.me.operator;
  $("chat-owner").textContent = d.state === "assigned"
    ? (mine ? "Разговор ведёте вы." : `Разговор ведёт ${operatorName(d.owner)}.`) : "";
  renderActions(d, mine);
  renderTranscript(d.transcript || []);
  renderCard(d);
}

function renderActions(d, mine) {
  const others = d.state === "assigned" && !mine;
  const force = state.supervisor;
  const show = {
    "act-take": d.state === "queued",
    "act-transfer": d.state === "assigned" && (mine || force),
    "act-close": (d.state === "assigned" && (mine || force)) || (d.state === "queued" && force),
    "act-bot": (d.state === "assigned" && (mine || force)) || (d.state === "queued" && force),
    "act-ban": !d.banned && (!others || force),
    "act-unban": d.banned,
  };
  for (const [id, visible] of Object.entries(show)) $(id).hidden = !visible;
  $("actions").hidden = !Object.values(show).some(Boolean);
  const canWrite = d.state === "assigned" && mine;
  const reply = document.querySelector('input[name="mode"][value="reply"]');
  reply.disabled = !canWrite;
  if (!canWrite && reply.checked) document.querySelector('input[name="mode"][value="note"]').checked = true;
  if (canWrite && !$("composer").dataset.touched) reply.checked = true;
  updateComposer();
}

function entryKind(entry) {
  if (entry.dir === "in") return ["in", "Клиент"];
  if (entry.dir === "note") return ["note", `Заметка · ${operatorName(entry.operator)}`];
  if (entry.dir === "system") return ["system", ""];
  if (entry.operator) return ["operator", operatorName(entry.operator)];
  return ["bot", "Бот"];
}

function imageUrls(entry) {
  const urls = [];
  for (const candidate of [entry.image, entry.url]) if (typeof candidate === "string") urls.push(candidate);
  for (const file of entry.files || []) if (file && file.url && file.kind !== "document") urls.push(file.url);
  // Only our own paths or https: a customer's text can never become a javascript: URL.
  return urls.filter((u) => u.startsWith("/") && !u.startsWith("//") || u.startsWith("https://"));
}

function renderTranscript(entries) {
  const list = $("transcript");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
  list.replaceChildren(...entries.map((entry) => {
    const [kind, who] = entryKind(entry);
    const head = who || entry.at ? el("span", { class: "who", text: [who, clock(entry.at)].filter(Boolean).join(" · ") }) : null;
    let text = entry.text || "";
    if (!text && entry.media) text = `[${entry.media}]`;
    const handoff = kind === "system" && /^handoff: (.*)$/.exec(text);
    if (handoff) text = `Бот передал разговор оператору: ${REASONS[handoff[1]] || handoff[1]}`;
    if (entry.edit_of) text = `✏️ ${text}`;
    const images = imageUrls(entry).map((src) => el("img", { src, alt: "изображение", loading: "lazy" }));
    return el("li", { class: `msg msg-${kind}` }, head, text, ...images);
  }));
  if (atBottom || !list.dataset.conv || list.dataset.conv !== state.current) list.scrollTop = list.scrollHeight;
  list.dataset.conv = state.current;
}

function renderCard(d) {
  const p = d.profile || {};
  const rows = [
    ["Имя", [p.first_name, p.last_name].filter(Boolean).join(" ")],
    ["Ник", p.username ? "@" + p.username : ""],
    ["Канал", channelOf(d.id)],
    ["ID", d.id],
    ["Язык", p.language_code],
    ["Город", p.city],
    ["Обращений", String(d.handoffs || 0)],
    ["Причина", d.handoff ? (REASONS[d.handoff.reason] || d.handoff.reason) : ""],
    ["Недоступен", d.unreachable],
  ].filter(([, value]) => value);
  $("profile").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
  const tags = (d.handoff && d.handoff.tags) || [];
  $("tags").replaceChildren(...(tags.length ? tags.map((t) => el("li", { text: "#" + t }))
    : [el("li", { class: "muted", text: "нет" })]));
  $("tag-form").hidden = d.state === "bot";
  const history = (d.history || []).slice().reverse();
  $("history").replaceChildren(...(history.length ? history.map((item) => el("li", {},
    el("span", { class: "when", text: `${clock(item.opened || item.closed)} → ${clock(item.closed)}` }),
    [item.owner ? operatorName(item.owner) : "без оператора", item.outcome, item.close_reason,
     item.rating ? `оценка ${item.rating}` : ""].filter(Boolean).join(" · "),
    item.comment ? el("div", { class: "muted", text: `«${item.comment}»` }) : null))
    : [el("li", { text: "Это первое обращение." })]));
}

// --- actions -------------------------------------------------------------------------------
async function act(path, body, done) {
  const conv = state.current;
  try {
    await api("POST", convPath(conv) + path, body);
    if (done) toast(done);
  } catch (error) {
    if (error.status === 401) return;
    if (error.status === 409) await loadOperators().catch(() => {}); // who won may be new
    toast(error.status === 409 ? refusal(error) : `Ошибка: ${error.message}`, true);
  } finally {
    await Promise.all([loadCurrent(), loadQueue(), loadMine()]).catch(() => {});
  }
}

function othersConversation() {
  const d = state.detail;
  return d && d.owner && d.owner !== state.me.operator;
}

async function take() {
  await act("/claim", {}, "Разговор ваш.");
  if (state.detail && state.detail.owner === state.me.operator) selectTab("mine");
}

function askReason(title, label, okText) {
  return new Promise((resolve) => {
    const dialog = $("reason-dialog");
    $("reason-title").textContent = title;
    $("reason-label").textContent = label;
    $("reason-ok").textContent = okText;
    $("reason-input").value = "";
    dialog.onclose = () => resolve(dialog.returnValue === "ok" ? $("reason-input").value.trim() : null);
    dialog.showModal();
  });
}

async function closeIt() {
  const reason = await askReason("Закрыть разговор", "Итог (необязательно)", "Закрыть");
  if (reason === null) return;
  await act("/close", { reason, force: othersConversation() || state.detail.state === "queued" }, "Разговор закрыт: клиенту отправлена оценка.");
}

async function toBot() {
  const reason = await askReason("Вернуть клиента боту", "Причина (необязательно)", "Вернуть");
  if (reason === null) return;
  await act("/return-to-bot", { reason, force: othersConversation() || state.detail.state === "queued" }, "Клиент снова с ботом.");
}

async function ban() {
  const reason = await askReason("Заблокировать клиента", "Причина", "Заблокировать");
  if (reason === null) return;
  await act("/ban", { reason: reason || "заблокирован из консоли", force: !!othersConversation() }, "Клиент заблокирован.");
}

async function unban() {
  await act("/unban", {}, "Клиент разблокирован.");
}

async function transfer() {
  await loadOperators().catch(() => {});
  const select = $("transfer-to");
  const options = [el("option", { value: "", text: "Обратно в очередь" })];
  for (const op of state.operators.values()) {
    if (op.id === state.detail.owner || op.status === "offline") continue;
    const free = op.capacity - op.load;
    options.push(el("option", { value: op.id, disabled: free <= 0,
      text: `${op.name || op.id} — ${op.status === "paused" ? "пауза" : "в сети"}, ${op.load}/${op.capacity}` }));
  }
  select.replaceChildren(...options);
  $("transfer-reason").value = "";
  const dialog = $("transfer-dialog");
  dialog.onclose = async () => {
    if (dialog.returnValue !== "ok") return;
    const to = select.value || null;
    await act("/transfer", { to, reason: $("transfer-reason").value.trim(), force: !!othersConversation() },
      to ? `Разговор передан: ${operatorName(to)}.` : "Разговор вернулся в очередь.");
  };
  dialog.showModal();
}

function updateComposer() {
  const note = document.querySelector('input[name="mode"]:checked').value === "note";
  $("composer").classList.toggle("note", note);
  $("text").placeholder = note ? "Заметка для коллег (клиент её не увидит)" : "Сообщение клиенту";
  $("send").textContent = note ? "Сохранить" : "Отправить";
}

async function send(event) {
  event.preventDefault();
  const text = $("text").value;
  if (!text.trim() || !state.current) return;
  const note = document.querySelector('input[name="mode"]:checked').value === "note";
  $("send").disabled = true;
  try {
    await api("POST", convPath(state.current) + (note ? "/note" : "/reply"), { text });
    $("text").value = "";
  } catch (error) {
    toast(error.status === 409 ? refusal(error) : `Не отправлено: ${error.message}`, true);
  } finally {
    $("send").disabled = false;
    await loadCurrent();
  }
}

async function addTags(event) {
  event.preventDefault();
  const tags = $("tag-input").value.split(/[\s,]+/).map((t) => t.replace(/^#/, "")).filter(Boolean);
  if (!tags.length) return;
  try {
    await api("POST", convPath(state.current) + "/tags", { tags });
    $("tag-input").value = "";
  } catch (error) {
    toast(error.status === 409 ? "Теги ставятся на открытое обращение." : `Теги не добавлены: ${error.message}`, true);
  }
  await loadCurrent();
}

async function loadTemplates() {
  try {
    const data = await api("GET", "/templates");
    const select = $("templates");
    select.replaceChildren(el("option", { value: "", text: data.templates.length ? "Шаблоны…" : "Шаблонов нет" }),
      ...data.templates.map((t) => el("option", { value: t.name, text: t.name })));
    select.templates = new Map(data.templates.map((t) => [t.name, t.text]));
  } catch { /* templates are optional */ }
}

function insertTemplate() {
  const select = $("templates");
  const text = select.templates && select.templates.get(select.value);
  select.value = "";
  if (!text) return;
  const area = $("text");
  const start = area.selectionStart ?? area.value.length;
  area.value = area.value.slice(0, start) + text + area.value.slice(area.selectionEnd ?? start);
  area.focus();
}

async function setStatus() {
  try {
    await api("POST", `/operators/${encodeURIComponent(state.me.operator)}/status`,
      { status: $("status").value, name: state.me.name.slice(0, 64) });
    toast({ online: "Вы в сети.", paused: "Пауза: новые разговоры не назначаются автоматически.",
            offline: "Вы не в сети." }[$("status").value]);
  } catch (error) {
    toast(`Статус не изменён: ${error.message}`, true);
  }
}

// --- live updates ------------------------------------------------------------------------
let socket = null, retry = 1000;
function connect() {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/console/ws`;
  socket = new WebSocket(url);
  socket.onopen = () => { retry = 1000; $("live").className = "live on"; refreshLists(); refreshCurrent(); };
  socket.onmessage = (event) => {
    let frame;
    try { frame = JSON.parse(event.data); } catch { return; }
    if (frame.type === "resync") { refreshLists(); refreshCurrent(); return; }
    if (frame.type !== "changed") return;
    if (!frame.conv) { loadOperators().catch(() => {}); return; }
    refreshLists();
    if (frame.conv === state.current) refreshCurrent();
  };
  socket.onclose = (event) => {
    $("live").className = "live off";
    if (event.code === 4401) { location.reload(); return; }
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 30000);
  };
}

// --- start ------------------------------------------------------------------------------------
async function start() {
  state.me = await api("GET", "/session");
  state.supervisor = state.me.roles.includes("supervisor");
  $("me").textContent = `${state.me.name} (${state.me.operator})`;
  $("supervisor-link").hidden = !state.supervisor;
  for (const button of document.querySelectorAll(".tabs button")) {
    button.addEventListener("click", () => selectTab(button.dataset.tab));
  }
  $("back").addEventListener("click", closeConversation);
  const showCard = (open) => {
    document.body.classList.toggle("show-card", open);
    $("card-toggle").setAttribute("aria-expanded", String(open));
  };
  $("card-toggle").addEventListener("click", () => showCard(!document.body.classList.contains("show-card")));
  $("card-close").addEventListener("click", () => showCard(false));
  $("act-take").addEventListener("click", take);
  $("act-transfer").addEventListener("click", transfer);
  $("act-close").addEventListener("click", closeIt);
  $("act-bot").addEventListener("click", toBot);
  $("act-ban").addEventListener("click", ban);
  $("act-unban").addEventListener("click", unban);
  $("composer").addEventListener("submit", send);
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) send(event);
  });
  for (const radio of document.querySelectorAll('input[name="mode"]')) {
    radio.addEventListener("change", () => { $("composer").dataset.touched = "1"; updateComposer(); });
  }
  $("templates").addEventListener("change", insertTemplate);
  $("tag-form").addEventListener("submit", addTags);
  $("status").addEventListener("change", setStatus);
  $("logout").addEventListener("click", async () => {
    await fetch("/console/logout", { method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": state.me.csrf } }).catch(() => {});
    location.href = "/console";
  });
  await Promise.all([loadOperators(), loadQueue(), loadMine(), loadTemplates()]);
  setInterval(tick, 1000);
  setInterval(() => loadOperators().catch(() => {}), 60000);
  connect();
}

start().catch((error) => toast(`Консоль не загрузилась: ${error.message}`, true));
