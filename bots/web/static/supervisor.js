// The supervisors' pages: the team's figures over a period, three charts per hour (uPlot,
// served from /console/static/vendor) and the per-operator table. Every chart and table has a
// CSV link: the same API endpoint with format=csv. Data: GET /console/api/reports/hourly and
// /reports/operators (docs/api.md, docs/reports.md).
"use strict";

const API = "/console/api";
const state = { me: null, period: "today", charts: new Map(), zone: "UTC" };
const $ = (id) => document.getElementById(id);

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function toast(text) {
  const box = $("toast");
  box.textContent = text;
  box.className = "toast bad";
  box.hidden = false;
  setTimeout(() => { box.hidden = true; }, 6000);
}

async function api(path) {
  const response = await fetch(API + path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (response.status === 401) { location.href = "/console/supervisor"; throw new Error("signed out"); }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

function seconds(value) {
  if (value === null || value === undefined) return "—";
  if (value < 90) return `${Math.round(value)} с`;
  if (value < 5400) return `${(value / 60).toFixed(1)} мин`;
  return `${(value / 3600).toFixed(1)} ч`;
}

const query = () => `period=${encodeURIComponent(state.period)}`;

// --- the totals and the table --------------------------------------------------------------
function renderTotals(report) {
  const team = report.team;
  const d = team.durations;
  const items = [
    ["Взято", team.counts.taken], ["Закрыто", team.counts.closed],
    ["Возвращено боту", team.counts.returned], ["Передано", team.counts.transferred],
    ["1-я реакция p50", seconds(d.first_reaction.p50)], ["p90", seconds(d.first_reaction.p90)],
    ["Обработка p50", seconds(d.handle.p50)],
    ["CSAT", team.csat.average === null ? "—" : team.csat.average.toFixed(2)],
    ["Оценок", team.csat.ratings],
  ];
  $("totals").replaceChildren(...items.map(([label, value]) =>
    el("div", {}, el("dt", { text: label }), el("dd", { text: String(value) }))));
}

function distribution(csat) {
  const counts = [1, 2, 3, 4, 5].map((s) => csat.distribution[String(s)] || 0);
  const top = Math.max(1, ...counts);
  const bars = el("span", { class: "dist", title: counts.map((n, i) => `${i + 1}: ${n}`).join(", "),
                            "aria-label": counts.map((n, i) => `${i + 1} — ${n}`).join(", ") });
  for (const n of counts) {
    const bar = el("span");
    bar.style.height = `${Math.max(2, Math.round((n / top) * 18))}px`;
    bars.append(bar);
  }
  return bars;
}

function renderOperators(report, operators) {
  const rows = Object.entries(report.operators).map(([id, f]) => {
    const name = (operators.get(id) || {}).name || id;
    const d = f.durations;
    const cells = [f.counts.taken, f.counts.closed, f.counts.returned, f.counts.transferred,
      seconds(d.first_reaction.p50), seconds(d.first_reaction.p90),
      seconds(d.response.p50), seconds(d.response.p90),
      seconds(d.handle.p50), seconds(d.handle.p90), f.peak_parallel,
      f.csat.average === null ? "—" : f.csat.average.toFixed(2), f.csat.ratings];
    return el("tr", {}, el("th", { scope: "row", text: name, title: id }),
      ...cells.map((value) => el("td", { text: String(value) })),
      el("td", {}, distribution(f.csat)));
  });
  $("operators").replaceChildren(...rows);
  $("operators-empty").hidden = rows.length > 0;
}

// --- the charts ------------------------------------------------------------------------------
// Hours are drawn in the team's time zone (the report's), not the browser's, in Russian style.
const AXIS = { stroke: "#647084", grid: { stroke: "#eceff3" }, ticks: { stroke: "#dfe2e6" } };

function formatters(zone) {
  const make = (options) => new Intl.DateTimeFormat("ru-RU", { timeZone: zone, ...options });
  const hour = make({ hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const day = make({ day: "2-digit", month: "2-digit" });
  const full = make({ day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const at = (t) => new Date(t * 1000);
  return {
    legend: (t) => (t === null || t === undefined ? "—" : full.format(at(t))),
    ticks: (ticks) => {
      const span = ticks.length > 1 ? ticks[ticks.length - 1] - ticks[0] : 0;
      return ticks.map((t) => {
        const time = hour.format(at(t));
        if (span > 2 * 86400) return day.format(at(t));
        return time === "00:00" ? day.format(at(t)) : time;
      });
    },
  };
}

function chart(id, series, data, yLabel, extra = {}) {
  const target = $(id);
  const old = state.charts.get(id);
  if (old) old.destroy();
  const fmt = formatters(state.zone);
  const opts = {
    width: Math.max(240, target.clientWidth), height: 240,
    tzDate: (t) => uPlot.tzDate(new Date(t * 1000), state.zone),
    scales: { x: { time: true }, ...(extra.scales || {}) },
    axes: [
      { ...AXIS, label: `Время (${state.zone})`, labelSize: 20, size: 40,
        values: (_u, ticks) => fmt.ticks(ticks) },
      { ...AXIS, label: yLabel, labelSize: 20, size: 48, values: extra.values },
    ],
    series: [{ label: "Час", value: (_u, t) => fmt.legend(t) }, ...series],
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
  };
  state.charts.set(id, new uPlot(opts, data, target));
}

// An hour's value covers the hour after its start: bars and steps begin at their x.
function bars() {
  return uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.8, Infinity, 2], align: 1 }) : undefined;
}

function stepped() {
  return uPlot.paths && uPlot.paths.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined;
}

// A value per hour, possibly far apart: each drawn as a point too (a lone one has no line).
const dots = { show: true, size: 6 };
const number = (digits) => (_u, value) => (value === null || value === undefined ? "—" : value.toFixed(digits));

function renderCharts(hours) {
  const xs = hours.map((h) => h.start);
  const upFromZero = (_u, _min, max) => [0, Math.max(1, (max || 0) * 1.15)];
  chart("chart-volume", [
    { label: "Взято", stroke: "#2456d3", fill: "rgba(36,86,211,.35)", paths: bars(), points: { show: false }, value: number(0) },
    { label: "Закрыто", stroke: "#1d7a3a", width: 2, paths: stepped(), points: { show: false }, value: number(0) },
  ], [xs, hours.map((h) => h.taken), hours.map((h) => h.closed)], "разговоров в час",
  { scales: { y: { range: upFromZero } } });
  // Seconds while the slowest hour is under two minutes, minutes beyond.
  const slowest = Math.max(0, ...hours.map((h) => h.first_reaction_p90 || 0));
  const [unit, divisor] = slowest < 120 ? ["секунды", 1] : ["минуты", 60];
  const scaled = (v) => (v === null ? null : v / divisor);
  const short = divisor === 1 ? "с" : "мин";
  chart("chart-reaction", [
    { label: `p50, ${short}`, stroke: "#2456d3", width: 2, points: dots, value: number(1) },
    { label: `p90, ${short}`, stroke: "#a35c00", width: 2, dash: [6, 4], points: dots, value: number(1) },
  ], [xs, hours.map((h) => scaled(h.first_reaction_p50)), hours.map((h) => scaled(h.first_reaction_p90))],
  unit, { scales: { y: { range: upFromZero } } });
  chart("chart-csat", [
    { label: "CSAT, среднее", stroke: "#1d7a3a", width: 2, points: dots, value: number(2) },
  ], [xs, hours.map((h) => h.csat_average)], "оценка, 1–5",
  { scales: { y: { range: [1, 5] } }, values: (_u, ticks) => ticks.map((t) => t.toFixed(1)) });
}

function resizeCharts() {
  for (const [id, plot] of state.charts) {
    const width = Math.max(240, $(id).clientWidth);
    if (Math.abs(plot.width - width) > 2) plot.setSize({ width, height: 240 });
  }
}

// --- loading ------------------------------------------------------------------------------------
async function load() {
  for (const button of document.querySelectorAll(".periods button")) {
    button.setAttribute("aria-pressed", String(button.dataset.period === state.period));
  }
  for (const link of document.querySelectorAll("a[data-csv]")) {
    const what = link.dataset.csv === "hourly" ? "/reports/hourly" : "/reports/operators";
    link.href = `${API}${what}?${query()}&format=csv`;
    link.download = `${link.dataset.csv}-${state.period}.csv`;
  }
  try {
    const [report, hourly, operators] = await Promise.all([
      api(`/reports/operators?${query()}`), api(`/reports/hourly?${query()}`), api("/operators")]);
    $("period-label").textContent = report.period.label;
    state.zone = hourly.period.zone || "UTC";
    renderTotals(report);
    renderOperators(report, new Map(operators.operators.map((o) => [o.id, o])));
    renderCharts(hourly.hours);
  } catch (error) {
    toast(`Отчёт не загрузился: ${error.message}`);
  }
}

async function start() {
  state.me = await api("/session");
  $("me").textContent = `${state.me.name} (${state.me.operator})`;
  for (const button of document.querySelectorAll(".periods button")) {
    button.addEventListener("click", () => { state.period = button.dataset.period; load(); });
  }
  $("logout").addEventListener("click", async () => {
    await fetch("/console/logout", { method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": state.me.csrf } }).catch(() => {});
    location.href = "/console";
  });
  new ResizeObserver(resizeCharts).observe(document.querySelector(".charts"));
  await load();
}

start().catch((error) => toast(`Страница не загрузилась: ${error.message}`));
