// skein's live network view: the collector's model (GET /api/topology/stream, server-sent events)
// drawn with Cytoscape.js. Positions are computed once per new node, never on plain updates, so a
// 200-node network stays responsive. window.skein exposes the state for tests and the console.
"use strict";
(function () {
  const MAX_PATH_HOPS = 64;
  /** Edge labels (RTT) are drawn only while there are at most this many links (clutter, speed). */
  const MAX_LABELLED_LINKS = 400;
  /** Layout: screen pixels per ms of RTT along a link (before zooming to fit). */
  const LAYOUT_PX_PER_MS = 1.5;

  const $ = (id) => document.getElementById(id);
  const state = { topology: undefined, byId: new Map(), from: undefined, to: undefined, selected: undefined, updates: 0, layouts: 0, lastUpdateMs: 0, totalUpdateMs: 0 };

  const cy = cytoscape({
    container: $("graph"),
    minZoom: 0.05,
    maxZoom: 4,
    style: [
      { selector: "node", style: {
        "background-color": "#3b4a63", label: "data(label)", color: "#1d2330", "font-size": 11, "text-valign": "bottom", "text-margin-y": 3,
        width: 22, height: 22, "border-width": 2, "border-color": "#fff", "transition-property": "opacity", "transition-duration": "0.4s" } },
      { selector: "node[?collector]", style: { shape: "diamond", "background-color": "#0b7285", width: 28, height: 28 } },
      { selector: "node.stale", style: { opacity: 0.3 } },
      { selector: "node.from", style: { "border-color": "#1f6feb", "border-width": 4 } },
      { selector: "node.to", style: { "border-color": "#8250df", "border-width": 4 } },
      { selector: "node.onpath", style: { "background-color": "#1f6feb" } },
      { selector: "node:selected", style: { "overlay-color": "#1f6feb", "overlay-opacity": 0.15 } },
      { selector: "edge", style: {
        width: 2, "line-color": "mapData(rtt, 0, 250, #1a9850, #d73027)", "curve-style": "straight", opacity: 0.75,
        "font-size": 9, color: "#50596a", "text-background-color": "#fff", "text-background-opacity": 0.8, "text-background-padding": 1,
        "transition-property": "opacity", "transition-duration": "0.4s" } },
      { selector: "edge[rtt < 30]", style: { "line-color": "#1a9850" } },
      { selector: "edge[rtt >= 30][rtt < 80]", style: { "line-color": "#91cf60" } },
      { selector: "edge[rtt >= 80][rtt < 130]", style: { "line-color": "#fdae61" } },
      { selector: "edge[rtt >= 130][rtt < 200]", style: { "line-color": "#f46d43" } },
      { selector: "edge[rtt >= 200]", style: { "line-color": "#d73027" } },
      { selector: "edge[!measured]", style: { "line-color": "#c0c6d0", "line-style": "dotted" } },
      { selector: "edge.labelled", style: { label: "data(label)" } },
      { selector: "edge.stale", style: { opacity: 0.15 } },
      { selector: "edge.path", style: { width: 6, "line-color": "#1f6feb", opacity: 1, "z-index": 10, label: "data(label)", "font-weight": "bold", color: "#1f6feb" } },
      { selector: "edge.direct", style: {
        width: 4, "line-color": "#8250df", "line-style": "dashed", opacity: 1, "z-index": 9, label: "data(label)", color: "#8250df",
        // Bent away from the straight line, so that it stays visible beside the highlighted path.
        "curve-style": "unbundled-bezier", "control-point-distances": 70, "control-point-weights": 0.5 } },
    ],
  });

  const fmt = (ms) => (ms === null || ms === undefined ? "–" : ms < 10 ? ms.toFixed(1) : ms.toFixed(0));
  const esc = (text) => String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  const nodeKey = (id) => `n${id}`;
  const edgeKey = (a, b) => `e${Math.min(a, b)}-${Math.max(a, b)}`;

  // ---------------------------------------------------------------- model → graph

  function apply(topology) {
    const started = performance.now();
    state.topology = topology;
    state.byId = new Map();
    for (const node of topology.nodes) {
      state.byId.set(node.id, { ...node, routeTo: new Map(node.routes.map((r) => [r[0], { next_hop: r[1], metric_ms: r[2], hops: r[3] }])) });
    }
    let added = 0;
    cy.batch(() => {
      const seenNodes = new Set();
      for (const node of topology.nodes) {
        const key = nodeKey(node.id);
        seenNodes.add(key);
        const label = node.tags.length > 0 ? `${node.id} · ${node.tags.slice(0, 2).join(",")}` : String(node.id);
        let element = cy.getElementById(key);
        if (element.empty()) {
          element = cy.add({ group: "nodes", data: { id: key, nodeId: node.id, label, collector: node.collector }, position: placeNear(node) });
          added++;
        } else if (element.data("label") !== label || element.data("collector") !== node.collector) {
          element.data({ label, collector: node.collector });
        }
        // Only what changed is touched: each data() or class change costs a style pass.
        if (element.hasClass("stale") !== (node.state === "stale")) element.toggleClass("stale", node.state === "stale");
      }
      cy.nodes().forEach((element) => {
        if (!seenNodes.has(element.id())) element.remove();
      });
      const seenEdges = new Set();
      const labelled = topology.links.length <= MAX_LABELLED_LINKS;
      for (const link of topology.links) {
        const key = edgeKey(link.a, link.b);
        seenEdges.add(key);
        const measured = link.srtt_ms !== null;
        const label = measured ? `${fmt(link.srtt_ms)} ms` : "";
        let element = cy.getElementById(key);
        if (element.empty()) {
          element = cy.add({ group: "edges", data: { id: key, source: nodeKey(link.a), target: nodeKey(link.b), rtt: measured ? link.srtt_ms : 0, measured, label } });
        } else if (labelled ? element.data("label") !== label : movedEnough(element.data("rtt"), measured ? link.srtt_ms : 0)) {
          // RTTs move a little with every report: an edge is restyled only when what it shows changes
          // (its label, or without labels its RTT by more than 3%: the colour).
          element.data({ rtt: measured ? link.srtt_ms : 0, measured, label });
        }
        if (element.hasClass("stale") !== (link.state === "stale")) element.toggleClass("stale", link.state === "stale");
        if (element.hasClass("labelled") !== labelled) element.toggleClass("labelled", labelled);
      }
      cy.edges().forEach((element) => {
        if (!seenEdges.has(element.id())) element.remove();
      });
    });
    if (added > 0) layout();
    refreshPickers();
    drawPath();
    drawNodePanel();
    const live = topology.nodes.filter((n) => n.state === "live").length;
    $("summary").textContent = `${topology.nodes.length} nodes (${live} live, ${topology.nodes.length - live} stale) · ${topology.links.length} links · collector ${topology.collector}`;
    state.updates++;
    state.lastUpdateMs = performance.now() - started;
    state.totalUpdateMs += state.lastUpdateMs;
    if (state.updates === 1) state.firstApplyMs = state.lastUpdateMs;
  }

  function movedEnough(before, after) {
    return before === 0 || after === 0 ? before !== after : Math.abs(after - before) / before > 0.03;
  }

  /** A new node starts next to a neighbour already drawn, else on a circle (seeded by its id: the same network draws the same). */
  function placeNear(node) {
    const jitter = (k) => ((node.id * 2654435761 + k * 40503) % 1000) / 1000 - 0.5;
    for (const n of node.neighbours) {
      const other = cy.getElementById(nodeKey(n[0]));
      if (!other.empty()) {
        const p = other.position();
        return { x: p.x + jitter(1) * 120, y: p.y + jitter(2) * 120 };
      }
    }
    const angle = (node.id * 2.399963) % (2 * Math.PI);
    const radius = 150 + 20 * Math.sqrt(node.id);
    return { x: radius * Math.cos(angle), y: radius * Math.sin(angle) };
  }

  /**
   * Only when nodes were added (never on plain updates): a spring layout where each link's length
   * is its RTT (nodes far apart in time are far apart on screen), with a short-range repulsion so
   * that nodes do not overlap. Warm-started from the current positions, so the picture stays put
   * when a node joins. O(iterations × (links + nodes²)): ~25 ms at 200 nodes.
   */
  function layout() {
    const started = performance.now();
    state.layouts++;
    const nodes = cy.nodes();
    const n = nodes.length;
    if (n === 0) return;
    const index = new Map();
    const x = new Float64Array(n);
    const y = new Float64Array(n);
    nodes.forEach((node, i) => {
      index.set(node.id(), i);
      const p = node.position();
      x[i] = p.x;
      y[i] = p.y;
    });
    const links = [];
    cy.edges().forEach((edge) => {
      const rtt = edge.data("measured") ? edge.data("rtt") : 150;
      links.push([index.get(edge.source().id()), index.get(edge.target().id()), LAYOUT_PX_PER_MS * Math.max(15, Math.min(400, rtt))]);
    });
    // Fewer rounds for large graphs (each round is O(nodes²)); warm starts need fewer still.
    const iterations = (state.layouts === 1 ? 400 : 150) * (n > 100 ? 0.4 : 1);
    const minGap = 60;
    for (let it = 0; it < iterations; it++) {
      const step = 0.25 * (1 - it / iterations) + 0.02;
      const dx = new Float64Array(n);
      const dy = new Float64Array(n);
      for (const [a, b, length] of links) {
        const vx = x[b] - x[a];
        const vy = y[b] - y[a];
        const d = Math.hypot(vx, vy) || 0.01;
        const f = (step * (d - length)) / d / 2;
        dx[a] += f * vx; dy[a] += f * vy;
        dx[b] -= f * vx; dy[b] -= f * vy;
      }
      for (let a = 0; a < n; a++) {
        for (let b = a + 1; b < n; b++) {
          const vx = x[b] - x[a];
          const vy = y[b] - y[a];
          const d = Math.hypot(vx, vy) || 0.01;
          if (d >= minGap) continue;
          const f = (0.5 * (minGap - d)) / d;
          dx[a] -= f * vx; dy[a] -= f * vy;
          dx[b] += f * vx; dy[b] += f * vy;
        }
      }
      for (let i = 0; i < n; i++) {
        x[i] += Math.max(-50, Math.min(50, dx[i]));
        y[i] += Math.max(-50, Math.min(50, dy[i]));
      }
    }
    cy.batch(() => nodes.forEach((node, i) => node.position({ x: x[i], y: y[i] })));
    cy.fit(undefined, 40);
    if (cy.zoom() > 1.6) {
      cy.zoom(1.6);
      cy.center();
    }
    state.lastLayoutMs = performance.now() - started;
  }

  // ---------------------------------------------------------------- path between two nodes

  /** The path frames from `from` to `to` take, read hop by hop from each node's route table. */
  function pathOf(from, to) {
    const path = [from];
    let current = from;
    while (current !== to && path.length <= MAX_PATH_HOPS) {
      const node = state.byId.get(current);
      const route = node && node.routeTo.get(to);
      if (!route || route.next_hop === null) return { path, complete: false };
      current = route.next_hop;
      if (path.includes(current)) return { path: [...path, current], complete: false, loop: true };
      path.push(current);
    }
    return { path, complete: current === to };
  }

  function linkRtt(a, b) {
    const edge = cy.getElementById(edgeKey(a, b));
    return edge.empty() || !edge.data("measured") ? undefined : edge.data("rtt");
  }

  function drawPath() {
    cy.elements(".path, .direct, .onpath, .from, .to").removeClass("path direct onpath from to");
    const box = $("path-result");
    const { from, to } = state;
    if (from !== undefined) cy.getElementById(nodeKey(from)).addClass("from");
    if (from === undefined || to === undefined || from === to) {
      box.innerHTML = from === undefined ? "" : `<p class="hint">from ${from}: now click the destination</p>`;
      box.dataset.path = "";
      box.dataset.complete = "";
      return;
    }
    cy.getElementById(nodeKey(to)).addClass("to");
    const result = pathOf(from, to);
    let total = 0;
    let known = true;
    for (let i = 0; i + 1 < result.path.length; i++) {
      const edge = cy.getElementById(edgeKey(result.path[i], result.path[i + 1]));
      edge.addClass("path");
      const rtt = linkRtt(result.path[i], result.path[i + 1]);
      if (rtt === undefined) known = false;
      else total += rtt;
    }
    for (const id of result.path.slice(1, -1)) cy.getElementById(nodeKey(id)).addClass("onpath");
    const direct = linkRtt(from, to);
    const directEdge = cy.getElementById(edgeKey(from, to));
    if (!directEdge.empty() && !directEdge.hasClass("path")) directEdge.addClass("direct");
    const route = state.byId.get(from) && state.byId.get(from).routeTo.get(to);
    box.dataset.path = result.path.join(",");
    box.dataset.complete = String(result.complete);
    const overlayMs = result.complete && known ? total : undefined;
    const relayed = result.path.length > 2;
    let html = `<div class="row overlay"><span>overlay path ${esc(result.path.join(" → "))}${result.complete ? "" : " (incomplete)"}</span><span id="path-rtt">${fmt(overlayMs)} ms</span></div>`;
    html += `<div class="row direct"><span>direct link ${from} → ${to}${relayed ? "" : " (the path itself)"}</span><span id="direct-rtt">${directEdge.empty() ? "no link" : `${fmt(direct)} ms`}</span></div>`;
    if (route && route.metric_ms !== null) html += `<p class="dim">route metric at ${from}: ${fmt(route.metric_ms)} ms one way, ${route.hops} hop${route.hops === 1 ? "" : "s"}</p>`;
    if (relayed && overlayMs !== undefined && direct !== undefined && direct > overlayMs) {
      html += `<p class="gain">relaying saves ${fmt(direct - overlayMs)} ms (${Math.round((100 * (direct - overlayMs)) / direct)}%)</p>`;
    }
    box.innerHTML = html;
  }

  function pick(from, to) {
    state.from = from;
    state.to = to;
    $("from").value = from === undefined ? "" : String(from);
    $("to").value = to === undefined ? "" : String(to);
    drawPath();
  }

  function refreshPickers() {
    const ids = [...state.byId.keys()];
    for (const select of [$("from"), $("to")]) {
      const current = select.value;
      const wanted = ["", ...ids.map(String)].join(",");
      if (select.dataset.ids !== wanted) {
        select.innerHTML = `<option value="">–</option>${ids.map((id) => `<option value="${id}">${id}</option>`).join("")}`;
        select.dataset.ids = wanted;
      }
      select.value = current;
    }
  }

  // ---------------------------------------------------------------- node panel

  function drawNodePanel() {
    const node = state.selected === undefined ? undefined : state.byId.get(state.selected);
    const box = $("node-box");
    if (node === undefined) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    $("node-title").innerHTML = `Node ${node.id}${node.collector ? " (collector)" : ""} ${node.state === "stale" ? '<span class="stale-badge">stale</span>' : ""}`;
    const facts = [
      ["state", node.state],
      ["tags", node.tags.length === 0 ? "–" : node.tags.map((t) => `<span class="tag">${esc(t)}</span>`).join("")],
      ["version", esc(node.version || "–")],
      ["uptime", `${node.uptime_s} s`],
      ["last report", `${(node.age_ms / 1000).toFixed(1)} s ago (every ${node.interval_ms} ms)`],
    ];
    $("node-facts").innerHTML = facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("");
    $("node-neighbours").tBodies[0].innerHTML = node.neighbours
      .map((n) => `<tr><td>${n[0]}</td><td>${fmt(n[1])}</td><td>${fmt(n[2])}</td><td>${(n[3] * 100).toFixed(0)}%</td></tr>`)
      .join("");
    $("node-routes").tBodies[0].innerHTML = node.routes
      .map((r) => `<tr><td>${r[0]}</td><td>${r[1] === null ? "–" : r[1] === r[0] ? "direct" : r[1]}</td><td>${fmt(r[2])}</td><td>${r[3]}</td></tr>`)
      .join("");
    const c = node.counters;
    $("node-counters").innerHTML = [
      ["frames in / out", `${c.frames_in} / ${c.frames_out}`],
      ["bytes in / out", `${c.bytes_in} / ${c.bytes_out}`],
      ["forwarded", c.frames_forwarded],
      ["dropped", c.frames_dropped],
    ].map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("");
  }

  // ---------------------------------------------------------------- interaction

  cy.on("tap", "node", (event) => {
    const id = event.target.data("nodeId");
    state.selected = id;
    if (state.from === undefined || state.to !== undefined) pick(id, undefined);
    else pick(state.from, id);
    drawNodePanel();
  });
  cy.on("tap", (event) => {
    if (event.target === cy) {
      state.selected = undefined;
      pick(undefined, undefined);
      drawNodePanel();
    }
  });
  $("from").addEventListener("change", () => pick(numberOr($("from").value), state.to));
  $("to").addEventListener("change", () => pick(state.from, numberOr($("to").value)));
  function numberOr(value) {
    return value === "" ? undefined : Number(value);
  }

  // ---------------------------------------------------------------- the stream

  function connect() {
    const source = new EventSource("/api/topology/stream");
    source.addEventListener("topology", (event) => {
      $("status").textContent = "live";
      $("status").className = "live";
      apply(JSON.parse(event.data));
    });
    source.onerror = () => {
      $("status").textContent = "disconnected — retrying…";
      $("status").className = "down";
      fetch("/api/topology").then(async (response) => {
        if (response.status === 404) {
          const body = await response.json();
          source.close();
          $("status").textContent = body.error;
        }
      }).catch(() => {});
    };
  }

  window.skein = { cy, state, pick, pathOf, apply };
  connect();
})();
