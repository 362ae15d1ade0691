/*
 * supportbot chat widget. One tag on any page of the brand's site:
 *
 *   <script src="https://bot.example.com/widget.js" async
 *           data-lang="ru" data-user="42" data-name="Анна" data-sig="<hex HMAC>"></script>
 *
 * Every data-* attribute is optional: data-lang is "ru" (default) or "en"; data-user, data-name
 * and data-sig are a customer identity signed by the brand's server (docs/web.md, "Session").
 *
 * The protocol is docs/web.md ("The chat widget"). In short: POST /widget/session gives a token;
 * the socket /widget/ws?token= starts with `hello` (the greatest `seq` shown), then carries
 * `message`, `button` and `image` frames up and `ack`, `error` and `message` frames down.
 *
 * No dependencies and no build step: this file is what browsers run. It draws inside a Shadow
 * DOM, so the page's CSS cannot reach it and its CSS cannot reach the page. Every text from the
 * server or the visitor goes into the page through textContent, never as HTML.
 */
(() => {
  "use strict";

  const script = document.currentScript;
  // Without its own <script> element the widget cannot know its server; loaded twice, it
  // would draw two buttons.
  if (!script || !script.src || document.querySelector("supportbot-chat")) return;

  const ORIGIN = new URL(script.src, location.href).origin;
  const LANG = script.dataset.lang === "en" ? "en" : "ru";
  const IDENTITY = script.dataset.user && script.dataset.sig
    ? { user: script.dataset.user, name: script.dataset.name || "", sig: script.dataset.sig }
    : null;

  const MAX_TEXT = 4000;
  const MAX_IMAGE_BYTES = 5 * 1024 * 1024;
  const IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"];
  const HISTORY_MAX = 200; // messages kept in localStorage to redraw the chat after a reload
  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  const CONNECT_TIMEOUT_MS = 10000;
  const CLOSE_BAD_TOKEN = 4401;

  const TEXTS = {
    ru: {
      title: "Поддержка",
      subtitle: "Обычно отвечаем сразу",
      open: "Открыть чат поддержки",
      close: "Закрыть чат",
      unread: (n) => `, новых сообщений: ${n}`,
      log: "Сообщения",
      empty: "Здравствуйте! Напишите свой вопрос — например, «где мой заказ».",
      input: "Сообщение",
      placeholder: "Напишите сообщение…",
      send: "Отправить",
      attach: "Прикрепить изображение",
      reconnecting: "Соединение…",
      refused: "Чат сейчас недоступен. Попробуйте обновить страницу позже.",
      sending: "отправляется…",
      delivered: "доставлено",
      failed: "Не отправлено",
      retry: "Повторить",
      operator: "Оператор",
      image: "Изображение",
      openImage: "Открыть изображение в новой вкладке",
      badType: "Можно прикрепить только PNG, JPEG, GIF или WebP.",
      tooBig: "Изображение больше 5 МБ.",
      uploadFailed: "Не удалось загрузить изображение",
    },
    en: {
      title: "Support",
      subtitle: "We usually answer at once",
      open: "Open the support chat",
      close: "Close the chat",
      unread: (n) => `, ${n} new`,
      log: "Messages",
      empty: "Hello! Ask your question — for example, “where is my order”.",
      input: "Message",
      placeholder: "Write a message…",
      send: "Send",
      attach: "Attach an image",
      reconnecting: "Reconnecting…",
      refused: "The chat is unavailable right now. Please reload the page later.",
      sending: "sending…",
      delivered: "delivered",
      failed: "Not sent",
      retry: "Retry",
      operator: "Agent",
      image: "Image",
      openImage: "Open the image in a new tab",
      badType: "Only PNG, JPEG, GIF or WebP images can be attached.",
      tooBig: "The image is larger than 5 MB.",
      uploadFailed: "The image could not be uploaded",
    },
  };
  const t = TEXTS[LANG];

  // ---------------------------------------------------------------- storage
  // localStorage belongs to the page's origin; the keys name the bot's server, so two widgets
  // of two servers on one site keep apart. Storage may be full or disabled (private modes):
  // the chat then still works, it only forgets on reload.
  const PREFIX = `supportbot:${ORIGIN}:`;
  const store = {
    get(name, fallback) {
      try {
        const raw = localStorage.getItem(PREFIX + name);
        return raw === null ? fallback : JSON.parse(raw);
      } catch {
        return fallback;
      }
    },
    set(name, value) {
      try {
        localStorage.setItem(PREFIX + name, JSON.stringify(value));
      } catch {
        /* see above */
      }
    },
    remove(name) {
      try {
        localStorage.removeItem(PREFIX + name);
      } catch {
        /* see above */
      }
    },
  };

  // Frames the server has not acknowledged yet, in the order written. They are read and written
  // through storage each time, so two tabs of one visitor share them: a resend by either is
  // harmless, the server stores each id once.
  const pending = {
    all() {
      const list = store.get("pending", []);
      return Array.isArray(list) ? list.filter((f) => f && typeof f.id === "string") : [];
    },
    get(id) {
      return pending.all().find((f) => f.id === id);
    },
    add(frame) {
      const list = pending.all();
      if (!list.some((f) => f.id === frame.id)) list.push(frame);
      store.set("pending", list);
    },
    remove(id) {
      const list = pending.all();
      if (list.some((f) => f.id === id)) store.set("pending", list.filter((f) => f.id !== id));
    },
  };

  // ---------------------------------------------------------------- seq
  // A seq is a decimal number or a Redis stream id ("1765000000000-3"); either compares as a
  // pair of integers, with BigInt because stream ids outgrow a double.
  function seqKey(seq) {
    const [major, minor = "0"] = String(seq).split("-");
    try {
      return [BigInt(major), BigInt(minor)];
    } catch {
      return [0n, 0n];
    }
  }

  function seqAfter(a, b) {
    const [a1, a2] = seqKey(a);
    const [b1, b2] = seqKey(b);
    return a1 > b1 || (a1 === b1 && a2 > b2);
  }

  function newId() {
    if (crypto.randomUUID) return crypto.randomUUID(); // secure contexts only (https, localhost)
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  // ---------------------------------------------------------------- DOM helpers
  function el(tag, props = {}, children = []) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    node.append(...children);
    return node;
  }

  // Feather icons (MIT), drawn as strokes.
  const ICONS = {
    chat: "M21 11.5a8.38 8.38 0 0 1-.9 3.8 8.5 8.5 0 0 1-7.6 4.7 8.38 8.38 0 0 1-3.8-.9L3 21l1.9-5.7a8.38 8.38 0 0 1-.9-3.8 8.5 8.5 0 0 1 4.7-7.6 8.38 8.38 0 0 1 3.8-.9h.5a8.48 8.48 0 0 1 8 8v.5z",
    close: "M18 6 6 18M6 6l12 12",
    send: "M22 2 11 13M22 2l-7 20-4-9-9-4 20-7z",
    attach: "m21.44 11.05-9.19 9.19a6 6 0 0 1-8.49-8.49l9.19-9.19a4 4 0 0 1 5.66 5.66l-9.2 9.19a2 2 0 0 1-2.83-2.83l8.49-8.48",
  };

  function icon(name) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", ICONS[name]);
    svg.append(path);
    return svg;
  }

  // A URL from the server, for an <img> or a link: relative ones are the server's; anything but
  // http(s) (javascript:, data:) is dropped. blob: is the widget's own preview of an upload.
  function safeUrl(url, allowBlob = false) {
    try {
      const parsed = new URL(url, ORIGIN);
      const ok = ["http:", "https:"].includes(parsed.protocol) ||
        (allowBlob && parsed.protocol === "blob:");
      return ok ? parsed.href : null;
    } catch {
      return null;
    }
  }

  // Plain text with its http(s) addresses as links the visitor may click (new tab, no opener).
  function textWithLinks(text) {
    const fragment = document.createDocumentFragment();
    const pattern = /https?:\/\/[^\s<>"']+/g;
    let last = 0;
    for (const match of text.matchAll(pattern)) {
      const url = match[0].replace(/[.,!?;:)»]+$/, "");
      const href = safeUrl(url);
      if (!href) continue;
      fragment.append(document.createTextNode(text.slice(last, match.index)));
      fragment.append(el("a", { href, target: "_blank", rel: "noopener noreferrer nofollow", text: url }));
      last = match.index + url.length;
    }
    fragment.append(document.createTextNode(text.slice(last)));
    return fragment;
  }

  function timeOf(at) {
    const date = new Date(Number(at) * 1000);
    if (!Number.isFinite(date.getTime()) || !at) return "";
    return date.toLocaleTimeString(LANG, { hour: "2-digit", minute: "2-digit" });
  }

  // ---------------------------------------------------------------- the view
  const CSS = `
    :host { all: initial; --accent: #2f5bea; --accent-dark: #2147c4; --accent-soft: #eef2fe;
            --ink: #1d2330; --muted: #667085; --line: #e3e7ee; }
    *, *::before, *::after { box-sizing: border-box; }
    [hidden] { display: none !important; }
    .root { font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
            sans-serif; color: var(--ink); -webkit-font-smoothing: antialiased; }
    button { font: inherit; }
    button:focus-visible, textarea:focus-visible, a:focus-visible {
      outline: 3px solid #9db4ff; outline-offset: 2px; }
    svg { width: 22px; height: 22px; fill: none; stroke: currentColor; stroke-width: 2;
          stroke-linecap: round; stroke-linejoin: round; }

    .launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; width: 60px;
                height: 60px; border: 0; border-radius: 50%; background: var(--accent);
                color: #fff; box-shadow: 0 6px 20px rgba(16, 24, 40, .28); cursor: pointer;
                display: grid; place-items: center; transition: transform .15s ease; }
    .launcher:hover { transform: scale(1.06); background: var(--accent-dark); }
    .launcher svg { width: 28px; height: 28px; }
    .badge { position: absolute; top: -3px; right: -3px; min-width: 20px; height: 20px;
             padding: 0 6px; border-radius: 10px; background: #e5484d; color: #fff;
             font-size: 12px; font-weight: 700; line-height: 20px; text-align: center; }

    .panel { position: fixed; right: 20px; bottom: 92px; z-index: 2147483001; width: 380px;
             height: 600px; max-width: calc(100vw - 40px); max-height: calc(100vh - 112px);
             display: flex; flex-direction: column; background: #fff; border-radius: 16px;
             box-shadow: 0 12px 48px rgba(16, 24, 40, .24); overflow: hidden; }
    header { display: flex; align-items: center; gap: 8px; padding: 12px 10px 12px 18px;
             background: var(--accent); color: #fff; flex: none; }
    header .title { flex: 1; min-width: 0; }
    header strong { display: block; font-size: 17px; font-weight: 650; }
    header span { display: block; font-size: 13px; opacity: .85; white-space: nowrap;
                  overflow: hidden; text-overflow: ellipsis; }
    .icon-button { width: 40px; height: 40px; flex: none; border: 0; border-radius: 50%;
                   background: transparent; color: inherit; display: grid; place-items: center;
                   cursor: pointer; padding: 0; }
    .icon-button:hover { background: rgba(16, 24, 40, .07); }
    header .icon-button:hover { background: rgba(255, 255, 255, .18); }

    .log { flex: 1; min-height: 0; overflow-y: auto; overscroll-behavior: contain;
           padding: 16px 14px; background: #f4f6f9; display: flex; flex-direction: column;
           gap: 10px; }
    .empty { margin: auto 12px; text-align: center; color: var(--muted); font-size: 14px; }
    .msg { display: flex; flex-direction: column; align-items: flex-start; max-width: 85%; }
    .msg.visitor { align-self: flex-end; align-items: flex-end; }
    .who { font-size: 12px; font-weight: 650; color: var(--accent); margin: 0 6px 2px; }
    .bubble { padding: 9px 13px; border-radius: 16px; background: #fff;
              border: 1px solid var(--line); white-space: pre-wrap; overflow-wrap: anywhere;
              max-width: 100%; }
    .msg.bot .bubble, .msg.operator .bubble { border-bottom-left-radius: 4px; }
    .msg.visitor .bubble { background: var(--accent); border-color: var(--accent); color: #fff;
                           border-bottom-right-radius: 4px; }
    .bubble a { color: var(--accent); }
    .msg.visitor .bubble a { color: inherit; }
    .bubble img { display: block; max-width: 100%; max-height: 240px; border-radius: 10px; }
    .bubble img + .caption { margin-top: 6px; }
    .meta { font-size: 11px; color: var(--muted); margin: 3px 6px 0; }
    .msg.pending .bubble { opacity: .6; }
    .msg.failed .bubble { opacity: .6; }
    .msg.failed .meta { color: #c62828; }
    .retry { border: 0; background: none; color: inherit; text-decoration: underline;
             cursor: pointer; padding: 0; margin-left: 6px; font-size: inherit; }
    .buttons { display: flex; flex-direction: column; gap: 6px; margin-top: 8px; }
    .buttons .row { display: flex; flex-wrap: wrap; gap: 6px; }
    .choice { font-size: 14px; padding: 7px 13px; border-radius: 18px; text-align: left;
              border: 1px solid var(--accent); background: #fff; color: var(--accent);
              cursor: pointer; }
    .choice:hover:not(:disabled) { background: var(--accent-soft); }
    .choice:disabled { opacity: .5; cursor: default; }
    .choice.chosen { background: var(--accent); color: #fff; opacity: 1; }

    .status { flex: none; padding: 6px 14px; font-size: 13px; background: #fff4d6;
              color: #6b4e00; border-top: 1px solid #f1e0a8; }
    .composer { flex: none; display: flex; align-items: flex-end; gap: 4px; padding: 10px;
                border-top: 1px solid var(--line); background: #fff; }
    .composer .icon-button { color: var(--muted); }
    .composer .send { color: var(--accent); }
    textarea { flex: 1; min-width: 0; resize: none; font: inherit; color: inherit;
               padding: 9px 14px; border: 1px solid #cfd6e1; border-radius: 20px;
               max-height: 120px; background: #fff; line-height: 1.4; }
    textarea:focus { border-color: var(--accent); outline: none; }

    @media (max-width: 599px) {
      .panel { inset: 0; width: auto; height: auto; max-width: none; max-height: none;
               border-radius: 0; }
      :host([data-open]) .launcher { display: none; }
      .launcher { right: 16px; bottom: 16px; }
      textarea { font-size: 16px; } /* smaller fields make mobile Safari zoom in */
    }
    @media (prefers-reduced-motion: reduce) { .launcher { transition: none; } }
  `;

  function buildView() {
    const host = document.createElement("supportbot-chat");
    const shadow = host.attachShadow({ mode: "open" });
    const ui = {};
    ui.host = host;
    ui.badge = el("span", { class: "badge", hidden: "" });
    ui.launcherIcon = icon("chat");
    ui.launcher = el("button", {
      type: "button", class: "launcher", "aria-label": t.open, "aria-expanded": "false",
      "aria-controls": "panel",
    }, [ui.launcherIcon, ui.badge]);
    ui.close = el("button", { type: "button", class: "icon-button", "aria-label": t.close },
      [icon("close")]);
    ui.empty = el("p", { class: "empty", text: t.empty });
    ui.log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": t.log },
      [ui.empty]);
    ui.status = el("div", { class: "status", role: "status", hidden: "" });
    ui.file = el("input", { type: "file", accept: IMAGE_TYPES.join(","), hidden: "" });
    ui.attach = el("button", { type: "button", class: "icon-button", "aria-label": t.attach },
      [icon("attach")]);
    ui.input = el("textarea", {
      rows: "1", maxlength: String(MAX_TEXT), "aria-label": t.input, placeholder: t.placeholder,
    });
    ui.send = el("button", { type: "submit", class: "icon-button send", "aria-label": t.send },
      [icon("send")]);
    ui.form = el("form", { class: "composer" }, [ui.attach, ui.file, ui.input, ui.send]);
    ui.panel = el("section", {
      id: "panel", class: "panel", role: "dialog", "aria-label": t.title, hidden: "",
    }, [
      el("header", {}, [
        el("div", { class: "title" }, [el("strong", { text: t.title }), el("span", { text: t.subtitle })]),
        ui.close,
      ]),
      ui.log, ui.status, ui.form,
    ]);
    shadow.append(el("style", { text: CSS }), el("div", { class: "root", lang: LANG }, [ui.launcher, ui.panel]));
    return ui;
  }

  const ui = buildView();
  const localViews = new Map(); // id -> view of a visitor's message without a seq yet

  function nearBottom() {
    const log = ui.log;
    return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  }

  function scrollToEnd() {
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  // Messages with a seq are in seq order; the visitor's own not yet confirmed stay below them.
  function insertConfirmed(node) {
    const firstLocal = ui.log.querySelector(".msg.local");
    ui.log.insertBefore(node, firstLocal);
  }

  function buildMessage(msg) {
    const from = ["bot", "operator", "visitor"].includes(msg.from) ? msg.from : "bot";
    const node = el("div", { class: `msg ${from}` });
    if (from === "operator") node.append(el("div", { class: "who", text: String(msg.name || t.operator) }));
    const bubble = el("div", { class: "bubble" });
    const image = msg.image ? safeUrl(String(msg.image), true) : null;
    if (image) {
      const img = el("img", { src: image, alt: t.image }); // the caption follows as text
      img.addEventListener("load", () => { if (node.dataset.stick) scrollToEnd(); });
      bubble.append(el("a", {
        href: image, target: "_blank", rel: "noopener noreferrer", "aria-label": t.openImage,
      }, [img]));
    }
    if (msg.text) bubble.append(el("div", { class: "caption" }, [textWithLinks(String(msg.text))]));
    node.append(bubble);
    if (Array.isArray(msg.buttons) && msg.buttons.length) node.append(buildButtons(msg.buttons));
    node.append(el("div", { class: "meta", text: timeOf(msg.at) }));
    return node;
  }

  function buildButtons(rows) {
    const box = el("div", { class: "buttons" });
    for (const row of rows) {
      if (!Array.isArray(row)) continue;
      const line = el("div", { class: "row" });
      for (const button of row) {
        if (!button || typeof button.text !== "string") continue;
        const node = el("button", { type: "button", class: "choice", text: button.text });
        node.addEventListener("click", () => pressButton(button, node, box));
        line.append(node);
      }
      box.append(line);
    }
    return box;
  }

  function showMessage(msg, { fromHistory = false } = {}) {
    const stick = fromHistory || msg.from === "visitor" || nearBottom();
    ui.empty.hidden = true;
    const node = buildMessage(msg);
    if (stick) node.dataset.stick = "1";
    insertConfirmed(node);
    if (stick) scrollToEnd();
  }

  // The visitor's message at once, before the server has it: pending until `ack`.
  function showLocal(frame, preview) {
    ui.empty.hidden = true;
    const image = preview || (frame.file ? `/widget/files/${encodeURIComponent(frame.file)}` : "");
    const node = buildMessage({ from: "visitor", text: frame.text, image });
    node.classList.add("local", "pending");
    node.dataset.stick = "1";
    const view = { node, meta: node.querySelector(".meta") };
    view.meta.textContent = t.sending;
    localViews.set(frame.id, view);
    ui.log.append(node);
    scrollToEnd();
    return view;
  }

  function markDelivered(id) {
    const view = localViews.get(id);
    if (!view || !view.node) return;
    view.node.classList.remove("pending");
    view.meta.textContent = t.delivered;
  }

  function markFailed(view, reason, retry) {
    if (!view.node) return;
    view.node.classList.remove("pending");
    view.node.classList.add("failed");
    view.meta.textContent = reason;
    if (retry) {
      view.meta.append(el("button", {
        type: "button", class: "retry", text: t.retry,
        onclick: () => {
          view.node.classList.remove("failed");
          view.node.classList.add("pending");
          view.meta.textContent = t.sending;
          submit(retry);
        },
      }));
    }
  }

  function dropLocal(id) {
    const view = localViews.get(id);
    localViews.delete(id);
    if (view && view.node) view.node.remove();
  }

  let noticeTimer = 0;
  let notice = "";

  function flash(text) {
    notice = text;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { notice = ""; renderStatus(); }, 5000);
    renderStatus();
  }

  function renderStatus() {
    let text = notice;
    if (conn.refused) text = t.refused;
    else if (!text && conn.wanted && !conn.ready) text = t.reconnecting;
    ui.status.textContent = text;
    ui.status.hidden = !text;
  }

  let unread = 0;

  function renderBadge() {
    ui.badge.textContent = String(unread);
    ui.badge.hidden = unread === 0;
    const label = ui.panel.hidden ? t.open : t.close;
    ui.launcher.setAttribute("aria-label", unread ? label + t.unread(unread) : label);
  }

  function setOpen(open) {
    ui.panel.hidden = !open;
    ui.host.toggleAttribute("data-open", open);
    ui.launcher.setAttribute("aria-expanded", String(open));
    const launcherIcon = icon(open ? "close" : "chat");
    ui.launcherIcon.replaceWith(launcherIcon);
    ui.launcherIcon = launcherIcon;
    if (open) {
      unread = 0;
      connect();
      scrollToEnd();
      ui.input.focus();
    }
    renderBadge();
  }

  // ---------------------------------------------------------------- the visitor's actions
  function growInput() {
    ui.input.style.height = "auto";
    ui.input.style.height = `${Math.min(ui.input.scrollHeight + 2, 120)}px`;
  }

  function sendText() {
    const text = ui.input.value.trim().slice(0, MAX_TEXT);
    if (!text) return;
    ui.input.value = "";
    growInput();
    const frame = { type: "message", id: newId(), text };
    showLocal(frame);
    submit(frame);
  }

  function pressButton(button, node, box) {
    for (const other of box.querySelectorAll("button")) other.disabled = true;
    node.classList.add("chosen");
    const frame = { type: "button", id: newId(), data: String(button.data ?? "") };
    // No bubble now: the server echoes the press as the visitor's message if it shows one.
    localViews.set(frame.id, { buttons: box, chosen: node });
    submit(frame);
  }

  async function attachImage(file) {
    if (!IMAGE_TYPES.includes(file.type)) return flash(t.badType);
    if (file.size > MAX_IMAGE_BYTES) return flash(t.tooBig);
    const text = ui.input.value.trim().slice(0, MAX_TEXT);
    ui.input.value = "";
    growInput();
    const id = newId();
    const view = showLocal({ id, text }, URL.createObjectURL(file));
    try {
      submit({ type: "image", id, file: await upload(file), text });
    } catch {
      markFailed(view, t.uploadFailed, null);
    }
  }

  async function upload(file, retried = false) {
    const session = await getSession();
    const url = new URL("/widget/upload", ORIGIN);
    url.searchParams.set("token", session.token);
    const form = new FormData();
    form.append("file", file, file.name || "image");
    const response = await fetch(url, { method: "POST", body: form, credentials: "include" });
    if (response.status === 401 && !retried) {
      store.remove("session"); // the token went stale: one more try with a new one
      return upload(file, true);
    }
    if (!response.ok) throw new Error(`upload: HTTP ${response.status}`);
    const data = await response.json();
    if (!data || typeof data.file !== "string") throw new Error("upload: no file id");
    return data.file;
  }

  // ---------------------------------------------------------------- the connection
  const conn = {
    wanted: false, // the widget should be connected (opened once, or has a conversation)
    socket: null,
    ready: false, // open, and `hello` sent
    connecting: false,
    attempt: 0,
    timer: 0,
    refused: false, // the server refused the session (403): retrying cannot help
    lastSeq: String(store.get("seq", "0") || "0"),
  };

  async function getSession() {
    const saved = store.get("session", null);
    const user = IDENTITY ? IDENTITY.user : null;
    if (saved && typeof saved.token === "string" && saved.user === user) return saved;
    const response = await fetch(new URL("/widget/session", ORIGIN), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(IDENTITY ? { identity: IDENTITY } : {}),
      credentials: "include", // the anonymous visitor's cookie
    });
    if (response.status === 403) {
      const error = new Error("session refused");
      error.refused = true;
      throw error;
    }
    if (!response.ok) throw new Error(`session: HTTP ${response.status}`);
    const data = await response.json();
    if (!data || typeof data.token !== "string") throw new Error("session: no token");
    const session = {
      token: data.token,
      visitor: String(data.visitor || ""),
      ws: typeof data.ws === "string" ? data.ws : "/widget/ws",
      user,
    };
    // Another visitor (a cleared cookie, another customer signed in): the history shown is
    // not theirs, and their conversation's seqs start over.
    const before = store.get("visitor", null);
    if (before !== null && before !== session.visitor) forgetConversation();
    store.set("visitor", session.visitor);
    store.set("session", session);
    return session;
  }

  function forgetConversation() {
    store.remove("history");
    store.set("seq", "0");
    conn.lastSeq = "0";
    for (const node of ui.log.querySelectorAll(".msg:not(.local)")) node.remove();
  }

  function connect() {
    conn.wanted = true;
    if (conn.socket || conn.connecting || conn.refused) return;
    clearTimeout(conn.timer);
    conn.timer = 0;
    conn.connecting = true;
    renderStatus();
    openSocket().finally(() => { conn.connecting = false; });
  }

  async function openSocket() {
    let session;
    try {
      session = await getSession();
    } catch (error) {
      if (error.refused) {
        conn.refused = true;
        renderStatus();
      } else {
        retryLater();
      }
      return;
    }
    const url = new URL(session.ws, ORIGIN);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("token", session.token);
    const socket = new WebSocket(url.href);
    conn.socket = socket;
    // A handshake that hangs (a dead network) would never fire close on its own.
    const timeout = setTimeout(() => dropSocket(socket), CONNECT_TIMEOUT_MS);
    socket.onopen = () => {
      clearTimeout(timeout);
      conn.attempt = 0;
      socket.send(JSON.stringify({ type: "hello", after: conn.lastSeq }));
      // Everything not acknowledged goes again, with its own id: the server keeps each once.
      for (const frame of pending.all()) socket.send(JSON.stringify(frame));
      conn.ready = true;
      renderStatus();
    };
    socket.onmessage = (event) => onFrame(event.data);
    socket.onclose = (event) => {
      clearTimeout(timeout);
      if (event.code === CLOSE_BAD_TOKEN) store.remove("session");
      socketGone(socket);
    };
  }

  // Closed by us (offline, a hung handshake): act at once instead of waiting for a close
  // handshake that cannot finish on a dead network.
  function dropSocket(socket) {
    socket.onopen = socket.onmessage = socket.onclose = null;
    try {
      socket.close();
    } catch {
      /* already closing */
    }
    socketGone(socket);
  }

  function socketGone(socket) {
    if (conn.socket !== socket) return;
    conn.socket = null;
    conn.ready = false;
    renderStatus();
    retryLater();
  }

  // 0.5 s, 1 s, 2 s ... 10 s, each between 75% and 100% of its step, so a server restart is
  // not met by every widget at the same instant.
  function retryLater() {
    if (!conn.wanted || conn.refused || conn.timer) return;
    const step = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** conn.attempt);
    conn.attempt += 1;
    conn.timer = setTimeout(() => { conn.timer = 0; connect(); }, step * (0.75 + Math.random() * 0.25));
    renderStatus();
  }

  function submit(frame) {
    pending.add(frame);
    if (conn.ready) conn.socket.send(JSON.stringify(frame));
    else connect();
  }

  // ---------------------------------------------------------------- frames from the server
  function onFrame(raw) {
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    if (frame.type === "ack") onAck(frame);
    else if (frame.type === "error") onError(frame);
    else if (frame.type === "message") onMessage(frame);
  }

  function onAck(frame) {
    if (typeof frame.id !== "string") return;
    pending.remove(frame.id);
    markDelivered(frame.id);
    if (localViews.get(frame.id)?.buttons) localViews.delete(frame.id); // no bubble to update
  }

  function onError(frame) {
    const id = typeof frame.id === "string" ? frame.id : "";
    const sent = id ? pending.get(id) : undefined;
    if (id) pending.remove(id); // refused, not stored: sending it again unchanged would not help
    const view = localViews.get(id);
    if (view && view.node) {
      markFailed(view, t.failed, sent);
      view.node.title = String(frame.error || "");
    } else if (view && view.buttons) {
      localViews.delete(id);
      view.chosen.classList.remove("chosen");
      for (const button of view.buttons.querySelectorAll("button")) button.disabled = false;
      flash(t.failed);
    } else {
      console.warn("supportbot widget: the server refused a frame:", frame.error);
    }
  }

  function onMessage(msg) {
    if (typeof msg.seq !== "string" && typeof msg.seq !== "number") return;
    const seq = String(msg.seq);
    if (!seqAfter(seq, conn.lastSeq)) return; // shown already (a replay after reconnect)
    conn.lastSeq = seq;
    if (seqAfter(seq, store.get("seq", "0"))) store.set("seq", seq); // another tab may be ahead
    const entry = {
      seq, from: msg.from, text: typeof msg.text === "string" ? msg.text : "",
      buttons: Array.isArray(msg.buttons) ? msg.buttons : [], image: msg.image || "",
      name: msg.name || "", id: msg.id || "", at: msg.at || 0,
    };
    remember(entry);
    if (entry.from === "visitor" && entry.id) {
      // The server's copy of the visitor's own message replaces the pending bubble.
      pending.remove(entry.id);
      dropLocal(entry.id);
    }
    showMessage(entry);
    if (ui.panel.hidden && entry.from !== "visitor") {
      unread += 1;
      renderBadge();
    }
  }

  // Appended to the history in storage unless another tab of this visitor already did.
  function remember(entry) {
    const history = store.get("history", []);
    const list = Array.isArray(history) ? history : [];
    const last = list.length ? list[list.length - 1] : null;
    if (last && !seqAfter(entry.seq, last.seq)) return;
    list.push(entry);
    store.set("history", list.slice(-HISTORY_MAX));
  }

  // ---------------------------------------------------------------- start
  function restore() {
    const history = store.get("history", []);
    let shown = "0";
    for (const entry of Array.isArray(history) ? history : []) {
      if (!entry || typeof entry !== "object" || !seqAfter(entry.seq, shown)) continue;
      shown = String(entry.seq);
      showMessage(entry, { fromHistory: true });
    }
    if (seqAfter(shown, conn.lastSeq)) conn.lastSeq = shown;
    for (const frame of pending.all()) {
      if (frame.type === "message" || frame.type === "image") showLocal(frame);
    }
  }

  function wire() {
    ui.launcher.addEventListener("click", () => setOpen(ui.panel.hidden));
    ui.close.addEventListener("click", () => {
      setOpen(false);
      ui.launcher.focus();
    });
    ui.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        setOpen(false);
        ui.launcher.focus();
      }
    });
    ui.form.addEventListener("submit", (event) => {
      event.preventDefault();
      sendText();
      ui.input.focus();
    });
    ui.input.addEventListener("keydown", (event) => {
      // Enter sends, Shift+Enter is a new line; Enter that ends an IME composition is neither.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        sendText();
      }
    });
    ui.input.addEventListener("input", growInput);
    ui.attach.addEventListener("click", () => ui.file.click());
    ui.file.addEventListener("change", () => {
      const [file] = ui.file.files;
      ui.file.value = "";
      if (file) attachImage(file);
    });
    window.addEventListener("offline", () => { if (conn.socket) dropSocket(conn.socket); });
    window.addEventListener("online", () => {
      if (!conn.wanted) return;
      // Back online: now, not at the end of a back-off, and not on a socket begun offline.
      if (conn.socket && !conn.ready) dropSocket(conn.socket);
      clearTimeout(conn.timer);
      conn.timer = 0;
      conn.attempt = 0;
      connect();
    });
  }

  function start() {
    document.body.append(ui.host);
    wire();
    restore();
    // A visitor with a conversation connects at once, so answers arrive while the panel is
    // closed; one who never opened the chat costs the server nothing.
    if (store.get("session", null) || pending.all().length) connect();
  }

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start, { once: true });
})();
