// The report's table of signals: drawn from the JSON block a page of rows at a time,
// sorted and filtered in place. Every text from the data is set with textContent.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const runs = data.runs, rows = data.rows, base = data.baseline;
  const EARS = ["L", "R"];
  const state = { key: null, dir: 1, page: 0 };
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    }
    for (const child of children || []) node.append(child);
    return node;
  }
  const fmt = (x, sign) => (x === null || x === undefined ? "–"
    : (sign && x > 0 ? "+" : "") + x.toFixed(1));

  // Sort keys: a value per row, missing values last whichever the direction.
  const keys = [
    { id: "signal", label: "Signal", value: (r) => r.signal },
    { id: "category", label: "Hearing loss", value: (r) => r.category },
    { id: "label", label: "Listeners", value: (r) => r.label },
  ];
  runs.forEach((run, i) => {
    keys.push({ id: "pred" + i, label: run.name + ": prediction", value: (r) => r.runs[i].pred });
    if (base !== null && i !== base)
      keys.push({ id: "change" + i, label: run.name + ": change", value: (r) => r.runs[i].change });
  });

  function compare(a, b) {
    const key = keys.find((k) => k.id === state.key);
    const x = key.value(a), y = key.value(b);
    if (x === null || x === undefined) return (y === null || y === undefined) ? 0 : 1;
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : x > y ? 1 : 0) * state.dir;
  }

  function shown() {
    const category = $("f-category").value, change = $("f-change").value;
    const low = $("f-label-min").value, high = $("f-label-max").value;
    const text = $("f-text").value.trim().toLowerCase();
    let out = rows.filter((r) => {
      if (category && r.category !== category) return false;
      if (change) {
        const [i, how] = change.split(":");
        const d = r.runs[+i].change;
        if (d === null || (how === "up" && !(d > 0)) || (how === "down" && !(d < 0))
            || (how === "same" && d !== 0)) return false;
      }
      if (low !== "" && !(r.label !== null && r.label >= +low)) return false;
      if (high !== "" && !(r.label !== null && r.label <= +high)) return false;
      if (text && !(r.signal.toLowerCase().includes(text) || r.prompt.toLowerCase().includes(text)))
        return false;
      return true;
    });
    if (state.key) out = out.slice().sort(compare);
    return out;
  }

  function earBlock(ear, side, i) {
    const box = el("div", { class: "ear", "data-run": i, "data-ear": side });
    box.append(el("span", { class: "side", text: side }));
    if (!ear) return box;
    ear.marks.forEach(([word, heard]) => box.append(el("span", {
      class: "w " + (heard ? "heard" : "missed"), "data-heard": heard,
      title: heard ? "heard" : "missed", text: word }), " "));
    box.append(el("span", { class: "count", text: ear.correct + "/" + ear.n }));
    box.append(el("div", { class: "transcript" + (ear.text.trim() ? "" : " empty"),
      text: ear.text.trim() ? "“" + ear.text.trim() + "”" : "(nothing heard)" }));
    return box;
  }

  function signalBody(r) {
    const body = el("tbody", { class: "signal", "data-signal": r.signal, "data-category": r.category });
    const top = el("tr", {}, [
      el("td", {}, [el("div", { class: "sid", text: r.signal }), el("div", { text: r.category }),
        el("div", { class: "num", text: "listeners: " + (r.label === null ? "no label" : fmt(r.label)) })]),
      el("td", { class: "prompt", text: r.prompt }),
    ]);
    r.runs.forEach((v, i) => {
      const cell = el("td", { class: "run", "data-run": i }, [
        el("div", { class: "num", text: "prediction " + fmt(v.pred) +
          (base !== null && i !== base ? ", change " + fmt(v.change, true) : "") })]);
      if (v.ears) v.ears.forEach((ear, e) => cell.append(earBlock(ear, EARS[e], i)));
      else cell.append(el("div", { class: "transcript empty", text: "(no transcripts in this run's files)" }));
      top.append(cell);
    });
    const players = el("div", { class: "players" });
    r.audio.forEach((a) => {
      const fig = el("figure", { class: "player" }, [el("figcaption", { text: a.label })]);
      if (a.spec) fig.append(el("img", { src: a.spec, alt: "spectrogram: " + a.label, loading: "lazy",
        width: 200, height: 64 }));
      const audio = el("audio", { controls: "", preload: "metadata", "data-src": a.src, "data-label": a.label });
      watch(audio);
      fig.append(audio);
      players.append(fig);
    });
    body.append(top, el("tr", { class: "audio-row" }, [el("td", { colspan: 2 + runs.length }, [players])]));
    return body;
  }

  // An audio element gets its file when its row comes near the screen, once the page has
  // loaded, so a page of rows opens at once however many players it holds.
  let near = null;
  const give = (audio) => { audio.src = audio.dataset.src; };
  function watch(audio) {
    if (near) near.observe(audio);
    else if (!("IntersectionObserver" in window)) give(audio);
  }
  window.addEventListener("load", () => {
    if (!("IntersectionObserver" in window)) return;
    near = new IntersectionObserver((entries) => entries.forEach((e) => {
      if (e.isIntersecting) { give(e.target); near.unobserve(e.target); }
    }), { rootMargin: "600px 0px" });
    document.querySelectorAll("audio:not([src])").forEach((a) => near.observe(a));
  });

  function draw() {
    const table = $("signal-table");
    if (near) near.disconnect();
    table.querySelectorAll("tbody").forEach((b) => b.remove());
    const all = shown(), size = +$("f-size").value || all.length || 1;
    const pages = Math.max(1, Math.ceil(all.length / size));
    state.page = Math.min(state.page, pages - 1);
    const slice = all.slice(state.page * size, (state.page + 1) * size);
    slice.forEach((r) => table.append(signalBody(r)));
    $("status").textContent = all.length ? `signals ${state.page * size + 1}–${state.page * size + slice.length} of ${all.length} shown (${rows.length} in all), page ${state.page + 1} of ${pages}` : `no signal matches (${rows.length} in all)`;
    $("prev").disabled = state.page === 0;
    $("next").disabled = state.page >= pages - 1;
    document.querySelectorAll("#head button[data-sort]").forEach((b) => {
      b.dataset.order = b.dataset.sort === state.key ? (state.dir > 0 ? "ascending" : "descending") : "none";
    });
  }

  function setUp() {
    const head = $("head");
    const groups = [["Signal", ["signal", "category", "label"]], ["Lyric line", []]];
    runs.forEach((run, i) => groups.push([run.name, keys.filter((k) => k.id === "pred" + i || k.id === "change" + i).map((k) => k.id)]));
    groups.forEach(([title, ids], g) => {
      const th = el("th", { class: g === 0 ? "col-signal" : g === 1 ? "col-prompt" : "col-run" },
        [el("div", { text: title })]);
      ids.forEach((id) => {
        const key = keys.find((k) => k.id === id);
        const button = el("button", { type: "button", "data-sort": id, "data-order": "none",
          title: "sort by " + key.label, text: key.label.replace(/^.*: /, "") });
        button.addEventListener("click", () => {
          state.dir = state.key === id ? -state.dir : 1;
          state.key = id;
          state.page = 0;
          draw();
        });
        th.append(" ", button);
      });
      head.append(th);
    });
    [...new Set(rows.map((r) => r.category))].forEach((c) => $("f-category").append(el("option", { value: c, text: c })));
    runs.forEach((run, i) => {
      if (base === null || i === base) return;
      [["up", "raised"], ["down", "lowered"], ["same", "unchanged"]].forEach(([how, word]) =>
        $("f-change").append(el("option", { value: i + ":" + how, text: `${run.name} ${word} the prediction` })));
    });
    if (!rows.some((r) => r.label !== null)) { $("f-label-min").disabled = true; $("f-label-max").disabled = true; }
    ["f-category", "f-change", "f-label-min", "f-label-max", "f-text", "f-size"].forEach((id) =>
      ["input", "change"].forEach((kind) => $(id).addEventListener(kind, () => { state.page = 0; draw(); })));
    $("prev").addEventListener("click", () => { state.page -= 1; draw(); });
    $("next").addEventListener("click", () => { state.page += 1; draw(); });
    draw();
    window.reportDrawnMs = performance.now();  // when the first rows were drawn (the tests read it)
  }
  setUp();
})();
