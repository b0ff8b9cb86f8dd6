// The support lead's dashboard on the agents page: the desk's numbers from GET /api/stats,
// drawn as plain SVG charts (no library): per day, resolution, CSAT, what customers came for
// (their first line's intent), articles and tools; then the latest ratings and their comments.

import { el, errorMessage, showBidiControls } from "./common.js";

const KEY_STORAGE = "helpline.adminKey";
const SVG = "http://www.w3.org/2000/svg";
const COLOURS = { resolved: "#15803d", handoff: "#b45309", other: "#9ca3af", bar: "#4f46e5" };

const section = document.getElementById("dashboard");
const desk = document.getElementById("desk");
const body = document.getElementById("dashboard-body");
const since = document.getElementById("dashboard-since");
const status = document.getElementById("dashboard-status");

let request = 0; // only the latest request draws

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** An SVG chart of `width`×`height` described for screen readers by `label`. */
function chart(label, width, height) {
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": label,
    class: "chart",
    preserveAspectRatio: "xMidYMid meet",
  });
  root.append(svg("title", {}, label));
  return root;
}

function count(n, one, many) {
  return `${n.toLocaleString()} ${n === 1 ? one : many}`;
}

function percent(rate) {
  return rate === null || rate === undefined ? "–" : `${Math.round(rate * 100)}%`;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.round(seconds / 60);
  return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function tile(label, value, note = "") {
  const box = el("div", "kpi");
  box.append(el("span", "kpi-value", value), el("span", "kpi-label", label));
  if (note) box.append(el("span", "kpi-note", note));
  return box;
}

function tiles(stats) {
  const row = el("div", "kpis");
  const csat = stats.csat_average === null ? "–" : `${stats.csat_average.toFixed(2)} / 5`;
  row.append(
    tile("Conversations", String(stats.conversations)),
    tile("Resolved by the assistant", percent(stats.resolution_rate), count(stats.resolved_by_assistant, "conversation", "conversations")),
    tile("Handoff rate", percent(stats.handoff_rate), `${stats.handoffs} handed to a person`),
    tile("First answer (median)", duration(stats.median_seconds_to_first_answer)),
    tile("Agent reply after handoff (median)", duration(stats.median_seconds_to_agent_reply)),
    tile("CSAT", csat, count(stats.ratings, "rating", "ratings")),
    tile("Tool errors", String(stats.tool_errors), `of ${count(stats.tool_calls, "call", "calls")}`),
    tile(
      "Tokens and cost",
      `$${stats.cost_usd.toFixed(4)}`,
      count(stats.prompt_tokens + stats.completion_tokens, "token", "tokens"),
    ),
  );
  return row;
}

/** Vertical bars: `values` [{label, value}], each bar labelled with its value. */
function barChart(label, values, colour = COLOURS.bar) {
  const width = 320;
  const height = 180;
  const top = 16;
  const bottom = 28;
  const root = chart(label, width, height);
  const highest = Math.max(1, ...values.map((v) => v.value));
  const step = width / Math.max(1, values.length);
  values.forEach((v, i) => {
    const barHeight = ((height - top - bottom) * v.value) / highest;
    const x = i * step + step * 0.15;
    const y = height - bottom - barHeight;
    const bar = svg("rect", { x, y, width: step * 0.7, height: Math.max(barHeight, 0.5), rx: 3, fill: colour, class: "bar" });
    bar.append(svg("title", {}, `${v.label}: ${v.value}`));
    root.append(
      bar,
      svg("text", { x: x + step * 0.35, y: y - 4, "text-anchor": "middle", class: "chart-value" }, String(v.value)),
      svg("text", { x: x + step * 0.35, y: height - 10, "text-anchor": "middle", class: "chart-label" }, v.label),
    );
  });
  return root;
}

/** Stacked bars per day: resolved by the assistant, handed off, the rest. */
function dayChart(days) {
  const width = 320;
  const height = 200;
  const top = 12;
  const bottom = 30;
  const label = `Conversations per day: ${days.map((d) => `${d.day} ${d.conversations}`).join(", ") || "none yet"}`;
  const root = chart(label, width, height);
  const highest = Math.max(1, ...days.map((d) => d.conversations));
  const step = width / Math.max(1, days.length);
  const barWidth = Math.min(step * 0.7, 40);
  const scale = (height - top - bottom) / highest;
  days.forEach((d, i) => {
    const parts = [
      ["resolved", d.resolved_by_assistant],
      ["handoff", d.handoffs],
      ["other", d.conversations - d.resolved_by_assistant - d.handoffs],
    ];
    let y = height - bottom;
    const x = i * step + (step - barWidth) / 2;
    for (const [kind, count] of parts) {
      if (count <= 0) continue;
      const h = count * scale;
      y -= h;
      const bar = svg("rect", { x, y, width: barWidth, height: h, fill: COLOURS[kind], class: `bar ${kind}` });
      bar.append(svg("title", {}, `${d.day}: ${count} ${kind === "handoff" ? "handed off" : kind}`));
      root.append(bar);
    }
    if (days.length <= 14 || i % Math.ceil(days.length / 14) === 0) {
      root.append(svg("text", { x: x + barWidth / 2, y: height - 10, "text-anchor": "middle", class: "chart-label" }, d.day.slice(5)));
    }
  });
  return root;
}

/** A ring: resolved by the assistant, handed off, the rest, with the resolution rate inside. */
function resolutionRing(stats) {
  const resolved = stats.resolved_by_assistant;
  const handoffs = stats.handoffs;
  const other = Math.max(0, stats.conversations - resolved - handoffs);
  const label = `Of ${stats.conversations} conversations: ${resolved} resolved by the assistant, ${handoffs} handed off, ${other} neither`;
  const root = chart(label, 180, 180);
  const radius = 70;
  const circumference = 2 * Math.PI * radius;
  const total = Math.max(1, stats.conversations);
  let offset = 0;
  root.append(svg("circle", { cx: 90, cy: 90, r: radius, fill: "none", stroke: "#e5e7eb", "stroke-width": 22 }));
  for (const [kind, count] of [["resolved", resolved], ["handoff", handoffs], ["other", other]]) {
    if (!count) continue;
    const length = (circumference * count) / total;
    const arc = svg("circle", {
      cx: 90, cy: 90, r: radius, fill: "none", stroke: COLOURS[kind], "stroke-width": 22,
      "stroke-dasharray": `${length} ${circumference - length}`, "stroke-dashoffset": -offset,
      transform: "rotate(-90 90 90)", class: `arc ${kind}`,
    });
    arc.append(svg("title", {}, `${count} ${kind === "handoff" ? "handed off" : kind}`));
    root.append(arc);
    offset += length;
  }
  root.append(
    svg("text", { x: 90, y: 92, "text-anchor": "middle", class: "ring-value" }, percent(stats.resolution_rate)),
    svg("text", { x: 90, y: 112, "text-anchor": "middle", class: "chart-label" }, "resolved"),
  );
  return root;
}

/** Horizontal bars for the most used articles or tools. */
function rankChart(label, rows) {
  const width = 320;
  const rowHeight = 26;
  const height = Math.max(1, rows.length) * rowHeight + 6;
  const root = chart(label, width, height);
  const highest = Math.max(1, ...rows.map((r) => r.value));
  rows.forEach((r, i) => {
    const y = i * rowHeight + 4;
    const w = ((width - 150) * r.value) / highest;
    const name = r.label.length > 22 ? `${r.label.slice(0, 21)}…` : r.label;
    const text = svg("text", { x: 0, y: y + 15, class: "chart-label" }, showBidiControls(name));
    text.append(svg("title", {}, r.label));
    root.append(
      text,
      svg("rect", { x: 140, y, width: Math.max(w, 0.5), height: rowHeight - 8, rx: 3, fill: COLOURS.bar, class: "bar" }),
      svg("text", { x: 146 + w, y: y + 14, class: "chart-value" }, String(r.value)),
    );
  });
  return root;
}

function figure(title, ...content) {
  const box = el("figure", "chart-box");
  box.append(el("figcaption", "", title), ...content);
  return box;
}

function legend() {
  const row = el("p", "chart-legend");
  for (const [kind, text] of [["resolved", "resolved by the assistant"], ["handoff", "handed off"], ["other", "other"]]) {
    const swatch = el("span", "swatch");
    swatch.style.background = COLOURS[kind];
    row.append(swatch, el("span", "", text));
  }
  return row;
}

function ratingsList(ratings) {
  const list = el("ul", "recent-ratings");
  if (!ratings.length) list.append(el("li", "empty", "No ratings yet."));
  for (const r of ratings) {
    const item = el("li", "recent-rating");
    item.append(el("span", `score score-${r.score}`, `${r.score} / 5`));
    item.append(el("span", "comment", r.comment ? showBidiControls(r.comment) : "(no comment)"));
    item.append(el("span", "when", `${new Date(r.created_at).toLocaleString()} · conversation ${r.conversation_id}`));
    list.append(item);
  }
  return list;
}

function draw(stats) {
  const distribution = [1, 2, 3, 4, 5].map((s) => ({ label: `${s}★`, value: stats.csat_distribution[String(s)] ?? 0 }));
  const csatLabel = `Ratings: ${distribution.map((d) => `${d.value} gave ${d.label}`).join(", ")}`;
  const articles = stats.top_articles.map((a) => ({ label: a.article, value: a.count }));
  const tools = stats.top_tools.map((t) => ({ label: t.tool, value: t.calls }));
  const intents = stats.top_intents.map((i) => ({ label: i.intent.replaceAll("_", " "), value: i.conversations }));
  body.replaceChildren(
    tiles(stats),
    el("div", "charts"),
  );
  body.lastChild.append(
    figure("Conversations per day", dayChart(stats.by_day), legend()),
    figure("Resolution", resolutionRing(stats)),
    figure("CSAT", barChart(csatLabel, distribution, "#f59e0b")),
    figure("Most common intents", intents.length ? rankChart(`Intents: ${intents.map((i) => `${i.label} ${i.value}`).join(", ")}`, intents) : el("p", "empty", "No intents recorded yet.")),
    figure("Top help-centre articles", articles.length ? rankChart(`Articles: ${articles.map((a) => `${a.label} ${a.value}`).join(", ")}`, articles) : el("p", "empty", "No searches yet.")),
    figure("Tools called", tools.length ? rankChart(`Tools: ${tools.map((t) => `${t.label} ${t.value}`).join(", ")}`, tools) : el("p", "empty", "No tool calls yet.")),
    figure("Latest ratings", ratingsList(stats.recent_ratings)),
  );
}

export async function loadDashboard() {
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (!key) return;
  const mine = ++request;
  status.textContent = "Loading…";
  const query = since.value ? `?since=${encodeURIComponent(since.value)}` : "";
  try {
    const response = await fetch(`/api/stats${query}`, { headers: { Authorization: `Bearer ${key}` } });
    if (mine !== request) return;
    if (!response.ok) {
      status.textContent = await errorMessage(response);
      return;
    }
    draw(await response.json());
    status.textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    if (mine === request) status.textContent = `Couldn't load the numbers: ${error.message}`;
  }
}

// The dashboard shows with the desk (after sign-in) and loads its numbers then.
new MutationObserver(() => {
  section.hidden = desk.hidden;
  if (!desk.hidden) loadDashboard();
}).observe(desk, { attributes: true, attributeFilter: ["hidden"] });
section.hidden = desk.hidden;
if (!desk.hidden) loadDashboard();
since.addEventListener("change", loadDashboard);
document.getElementById("dashboard-refresh").addEventListener("click", loadDashboard);
