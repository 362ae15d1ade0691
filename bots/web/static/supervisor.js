// The supervisors' pages: the team's figures over a period, three charts per hour (uPlot,
// served from /console/static/vendor) and the per-operator table. Every chart and table has a
// CSV link: the same API endpoint with format=csv. Data: GET /console/api/reports/hourly and
// /reports/operators (docs/api.md, docs/reports.md).
"use strict";

const API = "/console/api";
const state = { me: null, period: "today", charts: new Map(), hours: [] };
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
const AXIS = { stroke: "#647084", grid: { stroke: "#eceff3" }, ticks: { stroke: "#dfe2e6" } };

function chart(id, series, data, yLabel, extra = {}) {
  const target = $(id);
  const old = state.charts.get(id);
  if (old) old.destroy();
  const width = Math.max(240, target.clientWidth);
  const opts = {
    width, height: 240,
    scales: { x: { time: true }, ...(extra.scales || {}) },
    axes: [
      { ...AXIS, label: "Время (часы)", labelSize: 20, size: 40 },
      { ...AXIS, label: yLabel, labelSize: 20, size: 48, values: extra.values },
    ],
    series: [{ label: "Час" }, ...series],
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
  };
  const plot = new uPlot(opts, data, target);
  state.charts.set(id, plot);
}

function bars() {
  return uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.7, 24] }) : undefined;
}

function renderCharts(hours) {
  state.hours = hours;
  const xs = hours.map((h) => h.start);
  chart("chart-volume", [
    { label: "Взято", stroke: "#2456d3", fill: "rgba(36,86,211,.35)", paths: bars(), points: { show: false } },
    { label: "Закрыто", stroke: "#1d7a3a", width: 2, points: { show: false } },
  ], [xs, hours.map((h) => h.taken), hours.map((h) => h.closed)], "разговоров в час",
  { scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } } });
  const minutes = (v) => (v === null ? null : v / 60);
  chart("chart-reaction", [
    { label: "p50, мин", stroke: "#2456d3", width: 2, spanGaps: true },
    { label: "p90, мин", stroke: "#a35c00", width: 2, dash: [6, 4], spanGaps: true },
  ], [xs, hours.map((h) => minutes(h.first_reaction_p50)), hours.map((h) => minutes(h.first_reaction_p90))],
  "минуты", { scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max || 0)] } } });
  chart("chart-csat", [
    { label: "CSAT, среднее", stroke: "#1d7a3a", width: 2, spanGaps: true },
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
