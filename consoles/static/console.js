// Shared helpers of the IMS operator consoles. Every value reaches the page through textContent, never
// innerHTML, so names sent by stations cannot become markup.
"use strict";

const ims = {
  el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  },

  num(value, digits) {
    return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
  },

  utc(ns) {
    if (ns === null || ns === undefined) return "–";
    return new Date(Number(BigInt(ns) / 1000000n)).toISOString().replace(".000Z", "Z");
  },

  ago(nowNs, thenNs) {
    if (thenNs === null || thenNs === undefined) return "never";
    const s = Number(BigInt(nowNs) - BigInt(thenNs)) / 1e9;
    if (s < 120) return `${s.toFixed(0)} s ago`;
    if (s < 7200) return `${(s / 60).toFixed(0)} min ago`;
    return `${(s / 3600).toFixed(1)} h ago`;
  },

  card(label, value, detail, level) {
    const c = ims.el("div", { class: `card ${level || ""}` },
      ims.el("div", { class: "label", text: label }), ims.el("div", { class: "value", text: value }));
    if (detail) c.append(ims.el("div", { class: "detail", text: detail }));
    return c;
  },

  // columns: [{key, label, num: digits|undefined, format: fn(row)|undefined, level: fn(row)|undefined}]
  table(node, columns, rows, opts) {
    opts = opts || {};
    const head = ims.el("tr");
    for (const col of columns) {
      const th = ims.el("th", { text: col.label, "data-key": col.key });
      if (opts.onSort) th.addEventListener("click", () => opts.onSort(col.key));
      if (opts.sortKey === col.key) th.textContent += opts.sortDesc ? " ▼" : " ▲";
      head.append(th);
    }
    const body = rows.map((row) => {
      const tr = ims.el("tr", { class: opts.rowLevel ? opts.rowLevel(row) : "" });
      for (const col of columns) {
        const value = col.format ? col.format(row) : row[col.key];
        const td = ims.el("td", { class: (col.num !== undefined ? "num " : "") + (col.level ? col.level(row) : "") });
        if (value instanceof Node) td.append(value);
        else td.textContent = col.num !== undefined && typeof value === "number" ? ims.num(value, col.num)
          : (value === null || value === undefined ? "–" : String(value));
        tr.append(td);
      }
      return tr;
    });
    if (!body.length) {
      body.push(ims.el("tr", { class: "empty" }, ims.el("td", { colspan: String(columns.length), class: "muted", text: opts.empty || "none" })));
    }
    node.replaceChildren(ims.el("thead", {}, head), ims.el("tbody", {}, ...body));
  },

  // Server-sent events: onData(json) on every message; the header says when the stream stalls.
  lastEvent: 0,
  watching: false,

  live(url, onData) {
    const badge = document.getElementById("live");
    ims.lastEvent = Date.now();
    const source = new EventSource(url);
    source.onmessage = (ev) => {
      ims.lastEvent = Date.now();
      onData(JSON.parse(ev.data));
      if (badge) { badge.textContent = `live · updated ${new Date().toISOString().slice(11, 19)} UTC`;
        badge.className = "live"; }
    };
    if (!ims.watching) {
      ims.watching = true;
      setInterval(() => {
        if (badge && Date.now() - ims.lastEvent > 10000) { badge.textContent = "not updating: daemon unreachable";
          badge.className = "live stale"; }
      }, 2000);
    }
    return source;
  },

  // Availability as a strip of bars: green when complete, amber when partly there, red when empty,
  // grey where there is no record (null: before the daemon started).
  strip(canvas, percents) {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth * ratio, h = canvas.clientHeight * ratio;
    canvas.width = w; canvas.height = h;
    const g = canvas.getContext("2d");
    const bar = w / percents.length;
    percents.forEach((p, i) => {
      g.fillStyle = p === null ? "#d8d8d8" : p >= 99.9 ? "#1b7f3b" : p > 0 ? "#e0a030" : "#c62828";
      g.fillRect(i * bar, 0, Math.max(1, bar - ratio), h);
    });
    canvas.dataset.percents = percents.map((p) => (p === null ? "-" : p.toFixed(1))).join(" ");
  },

  // A line plot of samples on a canvas: x from time, y scaled to the samples' range.
  wave(canvas, points, spanS, endNs) {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth * ratio, h = canvas.clientHeight * ratio;
    canvas.width = w; canvas.height = h;
    const g = canvas.getContext("2d");
    g.clearRect(0, 0, w, h);
    if (!points.length) return;
    let lo = Infinity, hi = -Infinity;
    for (const [, v] of points) { if (v < lo) lo = v; if (v > hi) hi = v; }
    if (hi === lo) { hi += 1; lo -= 1; }
    const end = Number(BigInt(endNs) / 1000000n);
    g.strokeStyle = "#1f4e9c"; g.lineWidth = ratio; g.beginPath();
    points.forEach(([tMs, v], i) => {
      const x = w - ((end - tMs) / (spanS * 1000)) * w;
      const y = h - ((v - lo) / (hi - lo)) * (h - 4 * ratio) - 2 * ratio;
      if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
  },
};
