/* restore eval --report: the image list of index.html (sorting, pages, extremes, hole outlines).
 *
 * Reads window.RESTORE_REPORT (data.js, written by restore/report/builder.py). No framework and
 * no network: pictures are files beside the page, named by data.pictures' patterns.
 * The sorting functions are pure and exported for Node (tests/report/test_report_js.py).
 */
(function (root) {
  "use strict";

  // ---- sorting (pure) ----------------------------------------------------------------------

  /** A function of the image position giving run `label`'s `metric` as "quality": larger is better, null where undefined. */
  function qualityOf(data, label, metric) {
    const better = data.metrics.find(function (m) { return m.name === metric; }).better;
    const values = data.values[label][metric];
    return function (i) {
      const v = values[i];
      if (v === null || v === undefined || Number.isNaN(v)) return null;
      if (better === "higher") return v;
      if (better === "lower") return -v;
      return v > 0 ? -Math.abs(Math.log(v)) : -Infinity; // "one": the detail ratio, 1.0 is best
    };
  }

  function quality(data, label, metric, i) {
    return qualityOf(data, label, metric)(i);
  }

  /** A function of the image position giving the value it is sorted by under `spec` (null: sorted last). */
  function valueOf(data, spec) {
    if (spec.kind === "order") return function (i) { return i; };
    if (spec.kind === "hole") return function (i) { return data.hole[i]; };
    if (spec.kind === "metric") return qualityOf(data, spec.label, spec.metric);
    if (spec.kind === "gap") {
      const a = qualityOf(data, spec.a, spec.metric), b = qualityOf(data, spec.b, spec.metric);
      return function (i) {
        const x = a(i), y = b(i);
        if (x === null || y === null) return null;
        const gap = x - y; // NaN when both are infinite (two perfect images): a tie
        return Number.isNaN(gap) ? 0 : gap;
      };
    }
    throw new Error("unknown sort kind " + spec.kind);
  }

  function sortValue(data, spec, i) {
    return valueOf(data, spec)(i);
  }

  /** Image positions in the order `spec` gives; ascending or not; undefined values last; ties by position. */
  function sortOrder(data, spec, ascending) {
    const n = data.keys.length;
    const value = valueOf(data, spec);
    const values = new Array(n);
    const order = new Array(n);
    for (let i = 0; i < n; i++) { values[i] = value(i); order[i] = i; }
    order.sort(function (x, y) {
      const a = values[x], b = values[y];
      if (a === null && b === null) return x - y;
      if (a === null) return 1;
      if (b === null) return -1;
      if (a < b) return ascending ? -1 : 1;
      if (a > b) return ascending ? 1 : -1;
      return x - y;
    });
    return order;
  }

  /** The `k` worst and `k` best images of run `label` by `metric` (worst first; best first). */
  function extremes(data, label, metric, k) {
    const spec = { kind: "metric", label: label, metric: metric };
    const value = valueOf(data, spec);
    const defined = sortOrder(data, spec, true).filter(function (i) { return value(i) !== null; });
    const worst = defined.slice(0, k);
    const best = defined.slice(Math.max(k, defined.length - k)).reverse();
    return { worst: worst, best: best };
  }

  function metricTitle(data, name) {
    const spec = data.metrics.find(function (m) { return m.name === name; });
    return spec ? spec.title.replace(/ dB$| %$/, "") : name;
  }

  /** The sort choices: id, text, spec, and the two order choices (text, ascending). */
  function sortOptions(data) {
    const options = [
      { id: "order", text: "archive order", spec: { kind: "order" },
        orders: [["first to last", true], ["last to first", false]] },
      { id: "hole", text: "hole size", spec: { kind: "hole" },
        orders: [["largest holes first", false], ["smallest holes first", true]] },
    ];
    if (!data.has_target) return options;
    data.metrics.forEach(function (m) {
      data.labels.forEach(function (label, l) {
        options.push({ id: "metric:" + l + ":" + m.name, text: metricTitle(data, m.name) + " of " + label,
          spec: { kind: "metric", label: l, metric: m.name },
          orders: [["worst first", true], ["best first", false]] });
      });
    });
    data.metrics.forEach(function (m) {
      for (let a = 0; a < data.labels.length; a++) {
        for (let b = a + 1; b < data.labels.length; b++) {
          const la = data.labels[a], lb = data.labels[b];
          options.push({ id: "gap:" + a + ":" + b + ":" + m.name,
            text: metricTitle(data, m.name) + " gap: " + la + " vs " + lb,
            spec: { kind: "gap", a: a, b: b, metric: m.name },
            orders: [[la + " furthest behind first", true], [la + " furthest ahead first", false]] });
        }
      }
    });
    return options;
  }

  function format(data, metric, value) {
    if (value === null || value === undefined || Number.isNaN(value)) return "–";
    if (value === Infinity) return "∞";
    const spec = data.metrics.find(function (m) { return m.name === metric; });
    return value.toFixed(spec ? spec.digits : 3);
  }

  function picture(data, i, column) {
    const p = data.pictures;
    const folder = Math.floor(i / p.folder_size);
    return p.pattern.replace("{folder}", folder).replace("{index}", i).replace("{column}", column);
  }

  /** The image's hole overlays: white holes (top half), the outline (bottom half). */
  function holes(data, i) {
    const p = data.pictures;
    return p.holes.replace("{folder}", Math.floor(i / p.folder_size)).replace("{index}", i);
  }

  const api = { quality: quality, sortValue: sortValue, sortOrder: sortOrder, extremes: extremes,
    sortOptions: sortOptions, picture: picture, holes: holes, format: format };
  if (typeof module !== "undefined" && module.exports) { module.exports = api; return; }
  root.RestoreReport = api;

  // ---- the page ----------------------------------------------------------------------------

  const data = root.RESTORE_REPORT;
  if (!data) return;
  const doc = root.document;
  const options = sortOptions(data);
  const state = { sort: "order", order: 0, page: 0, size: data.page_size };

  function el(tag, cls, text) {
    const node = doc.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function currentOption() {
    return options.find(function (o) { return o.id === state.sort; }) || options[0];
  }

  function describeValue(option, i) {
    const spec = option.spec;
    if (spec.kind === "order") return "";
    if (spec.kind === "hole") return "";
    if (spec.kind === "metric") {
      return metricTitle(data, spec.metric) + " " + data.labels[spec.label] + ": " +
        format(data, spec.metric, data.values[spec.label][spec.metric][i]);
    }
    const a = data.values[spec.a][spec.metric][i], b = data.values[spec.b][spec.metric][i];
    const diff = (a === null || b === null) ? null : a - b;
    return metricTitle(data, spec.metric) + " " + data.labels[spec.a] + " − " + data.labels[spec.b] + ": " +
      (diff !== null && diff > 0 ? "+" : "") + format(data, spec.metric, diff);
  }

  function captionMetrics(l, i) {
    return data.metrics.filter(function (m) { return m.name !== "l1"; }).map(function (m) {
      return metricTitle(data, m.name) + " " + format(data, m.name, data.values[l][m.name][i]);
    }).join(" · ");
  }

  function imageRow(i, rank, note) {
    const row = el("article", "row");
    row.dataset.index = i;
    const head = el("header");
    if (rank !== null) head.appendChild(el("span", "rank", "#" + rank));
    head.appendChild(el("span", "key", data.keys[i]));
    let hole = "hole " + (100 * data.hole[i]).toFixed(1) + " %";
    if (data.bucket.length && data.bucket[i] !== null) hole += " (" + data.buckets[data.bucket[i]] + ")";
    head.appendChild(el("span", "hole", hole));
    if (note) head.appendChild(el("span", "sortvalue", note));
    row.appendChild(head);
    const cols = el("div", "cols");
    const side = data.pictures.side;
    const scale = side / Math.max(data.height[i], data.width[i]);
    const w = Math.round(data.width[i] * scale), h = Math.round(data.height[i] * scale);
    data.columns.forEach(function (column, c) {
      const fig = el("figure");
      const box = el("div", "pic");
      box.style.width = w + "px";
      box.style.height = h + "px";
      const img = el("img", "thumb");
      img.loading = "lazy";
      img.decoding = "async";
      img.width = w;
      img.height = h;
      img.alt = column.title + ": " + data.keys[i];
      if (scale > 1) img.classList.add("pixelated");
      img.src = picture(data, i, column.base || column.id);
      box.appendChild(img);
      // the masked input is its base picture under the white holes; every other picture gets the outline
      const overlay = el("img", column.base ? "fill" : "holes");
      overlay.loading = "lazy";
      overlay.alt = "";
      overlay.src = holes(data, i);
      box.appendChild(overlay);
      fig.appendChild(box);
      const cap = el("figcaption");
      cap.appendChild(el("span", "col-title", column.title));
      const l = column.id.charAt(0) === "m" ? Number(column.id.slice(1)) : null;
      if (l !== null && data.has_target) cap.appendChild(el("span", "col-metrics", captionMetrics(l, i)));
      fig.appendChild(cap);
      cols.appendChild(fig);
    });
    row.appendChild(cols);
    return row;
  }

  function renderExtremes() {
    const section = doc.getElementById("extremes");
    if (!data.has_target || !data.metrics.length) { section.hidden = true; return; }
    const option = currentOption();
    const metric = option.spec.metric || "psnr";
    doc.getElementById("extremes-title").textContent =
      "Worst and best " + data.extremes + " per method by " + metricTitle(data, metric);
    const box = doc.getElementById("extremes-rows");
    box.replaceChildren();
    data.labels.forEach(function (label, l) {
      const picked = extremes(data, l, metric, data.extremes);
      [["worst", picked.worst], ["best", picked.best]].forEach(function (pair) {
        const group = el("div", "extreme-group");
        group.dataset.label = label;
        group.dataset.kind = pair[0];
        group.appendChild(el("h3", null, label + ": " + pair[0] + " by " + metricTitle(data, metric)));
        pair[1].forEach(function (i, n) {
          group.appendChild(imageRow(i, n + 1, describeValue({ spec: { kind: "metric", label: l, metric: metric } }, i)));
        });
        box.appendChild(group);
      });
    });
    section.hidden = false;
  }

  const cache = { key: null, order: null };

  /** The current sort's order, computed once per sort and direction (not per page). */
  function currentOrder(option) {
    const key = state.sort + "|" + state.order;
    if (cache.key !== key) {
      cache.order = sortOrder(data, option.spec, option.orders[state.order][1]);
      cache.key = key;
    }
    return cache.order;
  }

  function renderPage() {
    const option = currentOption();
    const order = currentOrder(option);
    const pages = Math.max(1, Math.ceil(order.length / state.size));
    state.page = Math.min(Math.max(0, state.page), pages - 1);
    const start = state.page * state.size;
    const rows = doc.getElementById("rows");
    rows.replaceChildren();
    order.slice(start, start + state.size).forEach(function (i, n) {
      rows.appendChild(imageRow(i, start + n + 1, describeValue(option, i)));
    });
    doc.querySelectorAll("nav.pager").forEach(function (nav) {
      nav.replaceChildren();
      const prev = el("button", "prev", "‹ previous");
      prev.type = "button";
      prev.disabled = state.page === 0;
      prev.addEventListener("click", function () { state.page -= 1; update(true); });
      const next = el("button", "next", "next ›");
      next.type = "button";
      next.disabled = state.page >= pages - 1;
      next.addEventListener("click", function () { state.page += 1; update(true); });
      const where = el("span", "where",
        "page " + (state.page + 1) + " of " + pages + " (images " + (start + 1) + "–" +
        Math.min(order.length, start + state.size) + " of " + order.length + ")");
      nav.append(prev, where, next);
    });
  }

  function fillOrders() {
    const select = doc.getElementById("order");
    select.replaceChildren();
    currentOption().orders.forEach(function (pair, n) {
      const opt = el("option", null, pair[0]);
      opt.value = String(n);
      select.appendChild(opt);
    });
    select.value = String(state.order);
  }

  function writeHash() {
    const hash = "sort=" + encodeURIComponent(state.sort) + "&order=" + state.order +
      "&page=" + (state.page + 1) + "&size=" + state.size;
    if (root.history && root.history.replaceState) root.history.replaceState(null, "", "#" + hash);
  }

  function readHash() {
    const params = new URLSearchParams((root.location.hash || "").replace(/^#/, ""));
    if (params.get("sort") && options.some(function (o) { return o.id === params.get("sort"); })) state.sort = params.get("sort");
    if (params.get("order") === "1") state.order = 1;
    const page = parseInt(params.get("page") || "1", 10);
    if (page > 0) state.page = page - 1;
    const size = parseInt(params.get("size") || "", 10);
    if ([25, 50, 100, 200].indexOf(size) >= 0) state.size = size;
  }

  function update(scroll) {
    renderPage();
    writeHash();
    if (scroll) doc.getElementById("images").scrollIntoView();
  }

  function init() {
    readHash();
    const sort = doc.getElementById("sort");
    options.forEach(function (o) {
      const opt = el("option", null, o.text);
      opt.value = o.id;
      sort.appendChild(opt);
    });
    sort.value = state.sort;
    fillOrders();
    doc.getElementById("page-size").value = String(state.size);
    sort.addEventListener("change", function () {
      state.sort = sort.value; state.order = 0; state.page = 0;
      fillOrders(); renderExtremes(); update(false);
    });
    doc.getElementById("order").addEventListener("change", function (event) {
      state.order = Number(event.target.value); state.page = 0; update(false);
    });
    doc.getElementById("page-size").addEventListener("change", function (event) {
      state.size = Number(event.target.value); state.page = 0; update(false);
    });
    const toggle = doc.getElementById("outlines");
    toggle.addEventListener("change", function () { doc.body.classList.toggle("no-outlines", !toggle.checked); });
    doc.body.classList.toggle("no-outlines", !toggle.checked);
    renderExtremes();
    update(false);
    doc.body.dataset.ready = "1";
  }

  if (doc.readyState === "loading") doc.addEventListener("DOMContentLoaded", init); else init();
})(typeof window !== "undefined" ? window : globalThis);
