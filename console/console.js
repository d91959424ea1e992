// taskrouter's operator console: plain JavaScript, no framework, nothing fetched from anywhere but
// this Worker (its content security policy allows nothing else). Every call goes to the admin API
// with the admin key, which is kept in sessionStorage: this tab only, gone when it closes.
// The DOM is built with the helpers below (text nodes, never HTML strings), so nothing the API
// returns (rules, prompts, key names) can become markup.
"use strict";

const KEY_STORE = "taskrouter-admin-key";
const SVG_NS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------
// DOM helpers

/** An element with attributes (`class`, `data-*`, ...), properties for `on*` handlers, children. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** An SVG element, the same way. */
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

function say(el, text, kind = "") {
  el.textContent = text;
  el.className = `status ${kind}`;
}

const fmt = {
  time: (ms) => (ms ? new Date(ms).toLocaleString() : ""),
  num: (n) => (typeof n === "number" ? n.toLocaleString(undefined, { maximumFractionDigits: 3 }) : n ?? ""),
  usd: (n) => (typeof n === "number" ? `$${n < 0.01 && n > 0 ? n.toPrecision(2) : n.toFixed(2)}` : ""),
  pct: (n) => (typeof n === "number" ? `${(n * 100).toFixed(1)} %` : "n/a"),
  json: (v) => JSON.stringify(v, null, 2),
};

// ---------------------------------------------------------------------------------------------
// The admin API

class ApiError extends Error {
  constructor(status, body) {
    const err = body?.error ?? {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code ?? "";
    this.body = body;
  }
}

const adminKey = () => sessionStorage.getItem(KEY_STORE) ?? "";

/** Call the admin API: the parsed JSON answer, or an ApiError (a wrong key signs out). */
async function api(method, path, body, { key = adminKey(), headers = {} } = {}) {
  // The admin key last: no extra header can replace it.
  const init = { method, headers: { ...headers, authorization: `Bearer ${key}` } };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const res = await fetch(path, init);
  let parsed = null;
  try {
    parsed = await res.json();
  } catch {
    parsed = null;
  }
  if (!res.ok) {
    const err = new ApiError(res.status, parsed);
    if (res.status === 401 && key && key === adminKey()) signOut(keyMessage(err));
    throw err;
  }
  return parsed;
}

function keyMessage(err) {
  if (err.status === 401) return err.code === "invalid_api_key" || !err.message ? "the admin key is not valid" : `the admin key is not valid: ${err.message}`;
  return err.message;
}

// ---------------------------------------------------------------------------------------------
// Sign in, tabs, confirmation

const loaded = new Set();

async function signIn(key) {
  const err = $("login-error");
  err.hidden = true;
  try {
    // The history answers on a fresh deployment too (`/admin/rules` is 503 until rules are stored).
    await api("GET", "/admin/rules/history", undefined, { key });
  } catch (e) {
    err.textContent = e instanceof ApiError ? keyMessage(e) : `cannot reach the admin API: ${e.message}`;
    err.hidden = false;
    return false;
  }
  sessionStorage.setItem(KEY_STORE, key);
  $("login").hidden = true;
  $("tabs").hidden = false;
  $("logout").hidden = false;
  showTab((location.hash || "#rules").slice(1));
  return true;
}

const SIGNED_OUT = "taskrouter-signed-out";

/**
 * Forget the admin key and everything the page holds (a new key shown once, the gateway key typed,
 * answers, the editor, cached documents): the page is loaded again, signed out. `message` is shown
 * on the sign-in form.
 */
function signOut(message) {
  sessionStorage.removeItem(KEY_STORE);
  if (message) sessionStorage.setItem(SIGNED_OUT, message);
  location.reload();
}

const TABS = { rules: loadRules, playground: loadPlayground, traffic: loadTraffic, keys: loadKeys };

function showTab(name) {
  if (!Object.hasOwn(TABS, name)) name = "rules";
  for (const t of document.querySelectorAll(".tab")) t.hidden = t.id !== `tab-${name}`;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  if (!loaded.has(name)) {
    loaded.add(name);
    tabError(name);
    TABS[name]().catch((e) => {
      // Tried again the next time the tab is opened.
      loaded.delete(name);
      if (adminKey()) tabError(name, `Could not load this page: ${e.message}`);
    });
  }
}

/** A tab's load error, shown at its top (none: cleared). */
function tabError(name, message) {
  const section = $(`tab-${name}`);
  let el = section.querySelector(":scope > .tab-error");
  if (!el) {
    el = h("p", { class: "error tab-error", role: "alert" });
    section.prepend(el);
  }
  el.textContent = message ?? "";
  el.hidden = !message;
}

/** Ask before acting: resolves true when the operator confirms. */
function confirmAction(title, text, action = "Confirm") {
  const dialog = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-yes").textContent = action;
  return new Promise((resolve) => {
    const done = (answer) => {
      $("confirm-yes").removeEventListener("click", yes);
      $("confirm-no").removeEventListener("click", no);
      dialog.removeEventListener("cancel", no);
      dialog.close();
      resolve(answer);
    };
    const yes = () => done(true);
    const no = () => done(false);
    $("confirm-yes").addEventListener("click", yes);
    $("confirm-no").addEventListener("click", no);
    dialog.addEventListener("cancel", no);
    dialog.showModal();
  });
}

// ---------------------------------------------------------------------------------------------
// Rules: live document, history, diff, editor

// `known`: every version seen live in this tab or named by the history (the first version of a
// deployment is in no history entry until something replaces it).
// `docs`: the documents already read, by version (a deployment's first document, written to KV
// directly, is not stored as a version the API can return, but this tab may have seen it live).
// `busy`: a push or rollback is in flight (its buttons stay off until it settles).
const rules = { live: null, version: null, history: [], known: new Set(), docs: new Map(), validateTimer: 0, validateSeq: 0, busy: false };

// The editor's start on a deployment with no rules yet (validation lists what is missing).
const SKELETON = { version: 1, providers: {}, models: {}, routes: [], default: "" };

/** The live document, or null on a fresh deployment (`rules_missing`: nothing stored yet). */
const liveRules = () => api("GET", "/admin/rules").catch((e) => {
  if (e.code === "rules_missing") return null;
  throw e;
});

async function loadRules() {
  const [live, hist] = await Promise.all([liveRules(), api("GET", "/admin/rules/history")]);
  rules.live = live?.rules ?? null;
  rules.version = live?.live_version ?? null;
  rules.history = hist.history ?? [];
  if (live) {
    rules.known.add(live.live_version);
    rules.docs.set(live.live_version, live.rules);
  }
  for (const e of rules.history) rules.known.add(e.version);
  $("live-version").textContent = live ? `version ${live.live_version}` : "none";
  $("live-rules").textContent = live ? fmt.json(live.rules) : "No rules are live yet: write the first document below and push it.";
  drawHistory();
  if (!$("editor").dataset.touched) resetEditor();
}

function drawHistory() {
  const versions = [...rules.known].filter((v) => typeof v === "number").sort((a, b) => b - a);
  const items = [...rules.history].reverse().map((e) =>
    h("li", { class: e.version === rules.version ? "live" : "" },
      h("span", { class: `tag ${e.action}` }, e.action),
      ` version ${e.version}`,
      h("span", { class: "muted" }, ` ${fmt.time(e.at_ms)}`),
      e.version !== rules.version ? h("button", { type: "button", class: "small quiet", "data-rollback": e.version, disabled: rules.busy, onclick: () => rollback(e.version) }, `Roll back to ${e.version}`) : h("span", { class: "badge" }, "live")));
  const none = rules.version === null ? "No pushes yet, and no rules are live." : `No pushes yet: version ${rules.version} is the only one.`;
  fill($("history"), items.length ? items : h("li", { class: "muted" }, none));
  for (const [id, pick] of [["diff-from", versions[1] ?? versions[0]], ["diff-to", versions[0]]]) {
    const sel = $(id);
    const keep = sel.value;
    fill(sel, versions.map((v) => h("option", { value: v }, `v${v}${v === rules.version ? " (live)" : ""}`)));
    sel.value = keep && versions.includes(Number(keep)) ? keep : String(pick ?? "");
  }
}

/** After a change that succeeded: reload the view; a failed reload is said as such, never as a failed change. */
async function reloadAfter(load, msg, done) {
  try {
    await load();
  } catch (e) {
    say(msg, `${done} (The view could not be reloaded: ${e.message}.)`, "bad");
  }
}

/** Make `version` live again; without one, the newest version below the live one. */
async function rollback(version) {
  const which = version === undefined ? "the newest version below the live one" : `version ${version}`;
  if (rules.busy) return;
  const ok = await confirmAction("Roll back?", `Make ${which} live again, replacing version ${rules.version}? Requests use it at once.`, "Roll back");
  if (!ok) return;
  const msg = $("rules-message");
  rulesBusy(true);
  try {
    const r = await api("POST", "/admin/rules/rollback", version === undefined ? undefined : { version });
    const done = `Rolled back: version ${r.live_version} is live (was ${r.previous}).`;
    say(msg, done, "ok");
    await reloadAfter(loadRules, msg, done);
  } catch (e) {
    say(msg, `Rollback refused: ${e.message}`, "bad");
  } finally {
    rulesBusy(false);
  }
}

/** Push and every rollback button off while a change is in flight; on again (Push as validation says) after. */
function rulesBusy(on) {
  rules.busy = on;
  for (const b of document.querySelectorAll("#rollback-previous, #history button[data-rollback]")) b.disabled = on;
  if (on) $("push").disabled = true;
  else scheduleValidate(0);
}

async function versionDoc(v) {
  if (!rules.docs.has(v)) rules.docs.set(v, (await api("GET", `/admin/rules/versions/${encodeURIComponent(v)}`)).rules);
  return rules.docs.get(v);
}

async function showDiff(ev) {
  ev.preventDefault();
  const from = Number($("diff-from").value);
  const to = Number($("diff-to").value);
  try {
    const [a, b] = await Promise.all([versionDoc(from), versionDoc(to)]);
    const ops = lineDiff(fmt.json(a).split("\n"), fmt.json(b).split("\n"));
    const added = ops.filter((o) => o.op === "+").length;
    const removed = ops.filter((o) => o.op === "-").length;
    $("diff-summary").textContent = `v${from} → v${to}: ${added} line(s) added, ${removed} removed`;
    fill($("diff"), drawDiff(ops));
  } catch (e) {
    $("diff-summary").textContent = `Cannot compare: ${e.message}`;
    fill($("diff"));
  }
}

/**
 * A line diff by longest common subsequence: `[{op: " " | "-" | "+", line, a, b}]` where `a`/`b`
 * are 1-based line numbers in each side. The common head and tail are taken off first, so the
 * table is only as large as the changed middle.
 */
function lineDiff(a, b) {
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const x = a.slice(head, a.length - tail);
  const y = b.slice(head, b.length - tail);
  const n = x.length;
  const m = y.length;
  // lcs[i][j]: the LCS length of x[i..] and y[j..], in one flat array.
  const lcs = new Uint32Array((n + 1) * (m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * (m + 1) + j] = x[i] === y[j] ? lcs[(i + 1) * (m + 1) + j + 1] + 1 : Math.max(lcs[(i + 1) * (m + 1) + j], lcs[i * (m + 1) + j + 1]);
    }
  }
  const out = [];
  for (let k = 0; k < head; k++) out.push({ op: " ", line: a[k], a: k + 1, b: k + 1 });
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) {
      out.push({ op: " ", line: x[i], a: head + i + 1, b: head + j + 1 });
      i++;
      j++;
    } else if (i < n && (j === m || lcs[(i + 1) * (m + 1) + j] >= lcs[i * (m + 1) + j + 1])) {
      // Removals before additions where either keeps the subsequence longest.
      out.push({ op: "-", line: x[i], a: head + i + 1 });
      i++;
    } else {
      out.push({ op: "+", line: y[j], b: head + j + 1 });
      j++;
    }
  }
  for (let k = 0; k < tail; k++) out.push({ op: " ", line: a[a.length - tail + k], a: a.length - tail + k + 1, b: b.length - tail + k + 1 });
  return out;
}

/** The diff as rows, unchanged stretches folded to three lines of context around each change. */
function drawDiff(ops, context = 3) {
  if (!ops.some((o) => o.op !== " ")) return h("p", { class: "muted" }, "The two versions are the same.");
  const near = ops.map(() => false);
  ops.forEach((o, k) => {
    if (o.op === " ") return;
    for (let d = Math.max(0, k - context); d <= Math.min(ops.length - 1, k + context); d++) near[d] = true;
  });
  const rows = [];
  let folded = 0;
  ops.forEach((o, k) => {
    if (!near[k]) {
      folded++;
      return;
    }
    if (folded) rows.push(h("div", { class: "fold" }, `… ${folded} unchanged line(s)`));
    folded = 0;
    const cls = o.op === "+" ? "add" : o.op === "-" ? "del" : "same";
    rows.push(h("div", { class: `line ${cls}` }, h("span", { class: "ln" }, o.a ?? ""), h("span", { class: "ln" }, o.b ?? ""), h("span", { class: "op" }, o.op), h("span", { class: "text" }, o.line)));
  });
  if (folded) rows.push(h("div", { class: "fold" }, `… ${folded} unchanged line(s)`));
  return rows;
}

function resetEditor() {
  const editor = $("editor");
  editor.value = fmt.json(rules.live ?? SKELETON);
  delete editor.dataset.touched;
  scheduleValidate(0);
}

function scheduleValidate(delay = 400) {
  $("push").disabled = true;
  clearTimeout(rules.validateTimer);
  say($("validate-status"), "checking…", "");
  rules.validateTimer = setTimeout(validateEditor, delay);
}

/** Validate the editor's text: locally for JSON syntax, then by the Worker's own validation. */
async function validateEditor() {
  const seq = ++rules.validateSeq;
  const text = $("editor").value;
  const status = $("validate-status");
  const list = $("validate-errors");
  let errors = [];
  let version = null;
  try {
    JSON.parse(text);
  } catch (e) {
    errors = [{ path: "(document)", message: `not JSON: ${e.message}` }];
  }
  if (!errors.length) {
    try {
      const r = await api("POST", "/admin/rules/validate", text);
      if (r.valid) version = r.version;
      else errors = r.errors ?? [];
    } catch (e) {
      errors = e.body?.error?.errors ?? [{ path: "(request)", message: e.message }];
    }
  }
  if (seq !== rules.validateSeq) return; // a newer edit is being checked
  if (!errors.length && version !== null && rules.version !== null && version <= rules.version) {
    errors = [{ path: "version", message: `must be above the live version ${rules.version} to push (it is ${version})` }];
  }
  fill(list, errors.map((e) => h("li", {}, h("code", { class: "path" }, e.path || "(document)"), " ", e.message)));
  if (errors.length) say(status, `${errors.length} problem(s): Push is off until they are fixed.`, "bad");
  else say(status, `Valid: version ${version}, ready to push.`, "ok");
  $("push").disabled = errors.length > 0 || rules.busy;
  $("push").dataset.version = version ?? "";
}

async function push() {
  if (rules.busy) return;
  const version = $("push").dataset.version;
  const replacing = rules.version === null ? "the first rules of this deployment" : `replacing version ${rules.version}`;
  const ok = await confirmAction("Push these rules?", `Version ${version} becomes live at once, ${replacing}.`, "Push");
  if (!ok) return;
  const msg = $("rules-message");
  rulesBusy(true);
  try {
    const r = await api("PUT", "/admin/rules", $("editor").value);
    const done = `Pushed: version ${r.live_version} is live.`;
    say(msg, done, "ok");
    delete $("editor").dataset.touched;
    await reloadAfter(loadRules, msg, done);
  } catch (e) {
    const details = e.body?.error?.errors;
    if (details?.length) fill($("validate-errors"), details.map((d) => h("li", {}, h("code", { class: "path" }, d.path), " ", d.message)));
    say(msg, `Push refused: ${e.message}`, "bad");
  } finally {
    rulesBusy(false);
  }
}

// ---------------------------------------------------------------------------------------------
// Playground: explain a request, drawn; send it for real

const SAMPLE_MESSAGES = [{ role: "user", content: "Write a Python function that checks whether a string is a palindrome." }];

async function loadPlayground() {
  if (!$("play-messages").value.trim()) $("play-messages").value = fmt.json(SAMPLE_MESSAGES);
}

// Headers that carry a key: typed in the headers box they are dropped, so the admin key (explain)
// or the gateway-key field (send) is the only key a request carries.
const KEY_HEADERS = ["authorization", "x-router-key", "x-api-key"];

/**
 * The playground's request: body, extra headers and the key headers dropped from them, or an error
 * naming the field.
 */
function playRequest() {
  let messages;
  let metadata;
  try {
    messages = JSON.parse($("play-messages").value);
  } catch (e) {
    throw new Error(`messages: not JSON (${e.message})`);
  }
  if (!Array.isArray(messages)) throw new Error("messages: must be a JSON array of {role, content}");
  try {
    metadata = JSON.parse($("play-metadata").value.trim() || "{}");
  } catch (e) {
    throw new Error(`metadata: not JSON (${e.message})`);
  }
  if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) throw new Error("metadata: must be a JSON object");
  const headers = {};
  const dropped = new Set();
  for (const raw of $("play-headers").value.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const at = line.indexOf(":");
    if (at <= 0) throw new Error(`headers: "${line}" is not name: value`);
    const name = line.slice(0, at).trim().toLowerCase();
    if (KEY_HEADERS.includes(name)) dropped.add(name);
    else headers[name] = line.slice(at + 1).trim();
  }
  const body = { model: $("play-model").value.trim() || "auto", messages };
  if (Object.keys(metadata).length) body.metadata = metadata;
  return { body, headers, dropped: [...dropped] };
}

function playError(message) {
  const el = $("play-error");
  el.textContent = message ?? "";
  el.hidden = !message;
}

/** Say which typed key headers were left out (none: the note goes). */
function playDropped(names, keyField) {
  const el = $("play-note");
  el.textContent = names.length ? `Not sent: ${names.join(", ")}. Key headers typed in the headers box are left out; the key sent is ${keyField}.` : "";
  el.hidden = !names.length;
}

/** The playground's request for a button (errors and the dropped-headers note said), or null. */
function playStart(keyField) {
  playError();
  playDropped([]);
  let req;
  try {
    req = playRequest();
  } catch (e) {
    playError(e.message);
    return null;
  }
  playDropped(req.dropped, keyField);
  return req;
}

async function explainRequest(ev) {
  ev.preventDefault();
  const req = playStart("the admin key");
  if (!req) return;
  try {
    const x = await api("POST", "/admin/explain", req.body, { headers: req.headers });
    fill($("explanation"), drawExplanation(x, req.body.messages));
  } catch (e) {
    playError(`explain: ${e.message}`);
  }
}

const lastUserText = (messages) => {
  const m = [...messages].reverse().find((x) => x.role === "user");
  if (!m) return "";
  if (typeof m.content === "string") return m.content;
  return Array.isArray(m.content) ? m.content.map((p) => p.text ?? "").join("\n") : "";
};

function drawExplanation(x, messages) {
  const c = x.classification ?? {};
  const chosen = x.plan?.[0];
  return [
    h("p", { class: "verdict" },
      "Route ", h("strong", { class: "route-name" }, x.rule ?? "?"),
      " → ", h("strong", {}, chosen ? `${chosen.target} (${chosen.provider}/${chosen.model_id})` : "no attempt"),
      h("span", { class: "muted" }, ` · task ${c.task ?? "none"} (${c.source ?? "none"}) · rules v${x.rules_version}`)),
    h("h3", {}, "Facts"),
    drawFacts(x.facts ?? {}),
    h("h3", {}, "Task scores"),
    drawScores(c, lastUserText(messages)),
    c.model ? [h("h3", {}, "The task model's top labels"), drawLabels(c.model)] : [],
    h("h3", {}, "Routes checked"),
    drawRoutes(x.routes_checked ?? [], x.rule),
    h("h3", {}, "Attempt plan"),
    drawPlan(x.plan ?? [], x.skipped ?? []),
    x.cascade ? h("p", { class: "muted" }, `Below ${x.cascade.below} the cascade model ${x.cascade.would_ask} would be asked.`) : [],
  ];
}

function drawFacts(facts) {
  const value = (v) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return typeof v === "string" ? v : JSON.stringify(v);
    const entries = Object.entries(v);
    if (!entries.length) return "{}";
    const table = h("table", { class: "table facts inner" }, h("tbody", {}, entries.map(([k, x]) => h("tr", {}, h("th", {}, k), h("td", {}, typeof x === "string" ? x : JSON.stringify(x))))));
    // A long object (the request's headers) folds away.
    return entries.length > 4 ? h("details", {}, h("summary", {}, `${entries.length} entries`), table) : table;
  };
  const rows = Object.entries(facts).map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, value(v))));
  return h("table", { class: "table facts" }, h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { class: "muted" }, "none"))));
}

/** Keyword evidence (`keyword "x"`) and regex evidence (`regex x`) as patterns to mark in the prompt. */
function evidencePatterns(scores) {
  const out = [];
  for (const sc of scores) {
    for (const ev of sc.evidence ?? []) {
      let m = /^keyword "(.*)"$/.exec(ev);
      if (m) {
        out.push(new RegExp(m[1].replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "gi"));
        continue;
      }
      m = /^regex (.*)$/.exec(ev);
      if (m) {
        try {
          out.push(new RegExp(m[1], "g"));
        } catch {
          // Rust regex syntax JavaScript does not read: listed, not marked.
        }
      }
    }
  }
  return out;
}

/** The prompt with every evidence match marked. */
function highlight(text, patterns) {
  const marks = [];
  for (const re of patterns) {
    for (const m of text.matchAll(re)) if (m[0]) marks.push([m.index, m.index + m[0].length]);
  }
  marks.sort((a, b) => a[0] - b[0]);
  const parts = [];
  let at = 0;
  for (const [from, to] of marks) {
    if (from < at) continue;
    parts.push(text.slice(at, from), h("mark", {}, text.slice(from, to)));
    at = to;
  }
  parts.push(text.slice(at));
  return h("pre", { class: "prompt" }, parts);
}

function drawScores(c, prompt) {
  const scores = c.scores ?? [];
  const top = Math.max(1, ...scores.map((x) => x.score));
  const rows = scores.map((sc) =>
    h("div", { class: `score ${sc.task === c.task ? "chosen" : ""}` },
      h("span", { class: "label" }, sc.task),
      bar(sc.score / top, fmt.num(sc.score)),
      h("span", { class: "evidence" }, (sc.evidence ?? []).map((e) => h("code", { class: "chip" }, e)))));
  return [
    rows.length ? rows : h("p", { class: "muted" }, "No keyword or regex of the rules matched."),
    prompt ? highlight(prompt, evidencePatterns(scores)) : [],
  ];
}

/** A horizontal bar (an inline SVG) with its value beside it; `fraction` of the full width. */
function bar(fraction, label) {
  const w = Math.max(0, Math.min(1, fraction)) * 100;
  return h("span", { class: "barwrap" },
    s("svg", { class: "bar", viewBox: "0 0 100 10", preserveAspectRatio: "none", role: "img", "aria-label": label },
      s("rect", { x: 0, y: 0, width: 100, height: 10, class: "track" }),
      s("rect", { x: 0, y: 0, width: w.toFixed(2), height: 10, class: "fill" })),
    h("span", { class: "value" }, label));
}

function drawLabels(model) {
  return h("div", { class: "labels" },
    (model.top ?? []).map(([label, p]) => h("div", { class: `score ${label === model.task ? "chosen" : ""}` }, h("span", { class: "label" }, label), bar(p, fmt.pct(p)))));
}

function drawRoutes(checked, rule) {
  const items = checked.map((r) =>
    h("li", { class: r.matched ? "matched" : "failed" },
      h("span", { class: "mark" }, r.matched ? "✓" : "✗"), " ", h("strong", {}, r.route),
      r.matched ? " matched" : h("ul", {}, r.failed.map((f) => h("li", {}, h("code", {}, f))))));
  if (!checked.some((r) => r.matched)) items.push(h("li", { class: "matched" }, h("span", { class: "mark" }, "→"), " ", h("strong", {}, rule ?? "default"), rule === "explicit" ? " (named by the request)" : " (no route matched)"));
  return h("ul", { class: "routes" }, items);
}

function drawPlan(plan, skipped) {
  const steps = [];
  plan.forEach((a, k) => {
    if (k) steps.push(h("span", { class: "arrow", title: `on ${JSON.stringify(plan[k - 1].fallback_on)}` }, "→"));
    steps.push(h("div", { class: "step" },
      h("strong", {}, a.target),
      h("span", {}, `${a.provider} / ${a.model_id}`),
      h("span", { class: "muted" }, `retries ${a.retry?.attempts ?? 0} · timeout ${fmt.num(a.timeout_ms)} ms`),
      h("span", { class: "muted" }, a.why)));
  });
  return [
    h("div", { class: "chain" }, steps.length ? steps : h("p", { class: "muted" }, "No attempt.")),
    skipped.length ? h("ul", { class: "muted" }, skipped.map((x) => h("li", {}, `${x.target} skipped: ${x.reason}`))) : [],
  ];
}

async function sendForReal() {
  const req = playStart("the gateway key field");
  if (!req) return;
  const key = $("gateway-key").value.trim();
  if (!key) {
    playError("A gateway key is needed to send the request for real (the admin key does not open /v1).");
    return;
  }
  const out = $("sent");
  fill(out, h("p", { class: "muted" }, "sending…"));
  try {
    const res = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { ...req.headers, authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify(req.body),
    });
    const text = await res.text();
    let body = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    const routed = [...res.headers].filter(([k]) => k.startsWith("x-router-")).sort();
    const answer = body?.choices?.[0]?.message?.content ?? body?.error?.message ?? text;
    fill(out,
      h("h3", {}, `Sent: HTTP ${res.status}`),
      h("table", { class: "table facts sent-headers" }, h("tbody", {}, routed.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v))))),
      h("h3", {}, res.ok ? "Answer" : "Error"),
      h("pre", { class: "prompt answer" }, answer),
      h("details", {}, h("summary", {}, "The whole response body"), h("pre", { class: "code" }, body ? fmt.json(body) : text)));
  } catch (e) {
    fill(out);
    playError(`send: ${e.message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Traffic: charts drawn as inline SVG

const PALETTE = ["#2563eb", "#db2777", "#16a34a", "#ea580c", "#7c3aed", "#0891b2", "#ca8a04", "#dc2626", "#4b5563", "#65a30d"];

// `seq`: the newest load asked for (an older answer arriving late is dropped); `last`: its answer,
// redrawn when only "by" changes.
const traffic = { seq: 0, last: null };

async function loadTraffic(ev) {
  ev?.preventDefault?.();
  const out = $("traffic");
  const since = $("traffic-since").value;
  const seq = ++traffic.seq;
  traffic.last = null;
  fill(out, h("p", { class: "muted" }, "loading…"));
  let t;
  try {
    t = await api("GET", `/admin/traffic?since=${encodeURIComponent(since)}`);
  } catch (e) {
    if (seq !== traffic.seq) return;
    loaded.delete("traffic"); // asked again when the tab is opened next
    if (e.code === "analytics_unconfigured") {
      fill(out, drawUnconfigured(e.message));
      return;
    }
    fill(out, h("p", { class: "error" }, `Traffic is not available: ${e.message}`));
    return;
  }
  if (seq !== traffic.seq) return;
  traffic.last = t;
  drawTraffic();
}

/** The last answer drawn, by the "by" chosen now. */
function drawTraffic() {
  const t = traffic.last;
  if (!t) return;
  const out = $("traffic");
  const by = $("traffic-by").value;
  const rows = t.over_time ?? [];
  // One colour per task (or model) in every chart: the busiest first.
  const colors = colorsBy(series(rows, by, (r) => r.requests ?? 0));
  const totals = rows.reduce((acc, r) => ({ requests: acc.requests + (r.requests ?? 0), cost: acc.cost + (r.cost_usd ?? 0) }), { requests: 0, cost: 0 });
  const outcomes = t.outcomes ?? [];
  const all = outcomes.reduce((n, o) => n + (o.requests ?? 0), 0);
  const failed = outcomes.filter((o) => o.outcome !== "ok").reduce((n, o) => n + (o.requests ?? 0), 0);
  fill(out,
    h("div", { class: "tiles" },
      tile("requests", fmt.num(totals.requests)),
      tile("cost", fmt.usd(totals.cost)),
      tile("error rate", all ? fmt.pct(failed / all) : "n/a"),
      tile("fallback rate", fmt.pct(t.fallback_rate)),
      tile("latency p50", t.latency?.p50_ms != null ? `${fmt.num(t.latency.p50_ms)} ms` : "n/a"),
      tile("latency p95", t.latency?.p95_ms != null ? `${fmt.num(t.latency.p95_ms)} ms` : "n/a")),
    h("div", { class: "grid two charts" },
      chartCard(`Requests by ${by}`, lineChart(series(rows, by, (r) => r.requests ?? 0), colors, fmt.num)),
      chartCard(`Cost (USD) by ${by}`, lineChart(series(rows, by, (r) => r.cost_usd ?? 0), colors, fmt.usd)),
      chartCard(`Tokens (input + output) by ${by}`, lineChart(series(rows, by, (r) => (r.input_tokens ?? 0) + (r.output_tokens ?? 0)), colors, fmt.num)),
      chartCard("Outcomes (errors by code)", barChart(outcomes.map((o) => [o.outcome, o.requests ?? 0]), {
        kind: (label) => (label === "ok" ? "ok" : "bad"),
        value: (v) => `${fmt.num(v)} (${fmt.pct(all ? v / all : 0)})`,
      })),
      chartCard("Fallback rate by serving provider", barChart((t.fallback_by_provider ?? []).map((r) => [r.provider || "(none)", r.fallback_rate ?? 0]), { value: fmt.pct, max: 1 })),
      chartCard("Requests by task", barChart((t.by_task ?? []).map((r) => [r.task || "(none)", r.requests ?? 0]))),
      chartCard("Requests by model", barChart((t.by_model ?? []).map((r) => [r.model || "(none)", r.requests ?? 0])))));
}

function drawUnconfigured(message) {
  return h("div", { class: "notice" },
    h("h3", {}, "Traffic needs the Analytics Engine SQL API"),
    h("p", {}, message),
    h("p", {}, "With wrangler, then refresh:"),
    h("pre", { class: "code" }, "npx wrangler secret put CLOUDFLARE_ACCOUNT_ID\nnpx wrangler secret put CLOUDFLARE_API_TOKEN"),
    h("p", { class: "muted" }, "The var ANALYTICS_SQL_URL overrides the SQL API's URL (for a test double). Under wrangler dev, put them in .dev.vars."));
}

const tile = (label, value) => h("div", { class: "tile" }, h("span", { class: "muted" }, label), h("strong", {}, value));
const chartCard = (title, chart) => h("figure", { class: "chart" }, h("figcaption", {}, title), chart);

const timeOf = (t) => (typeof t === "number" ? (t < 1e12 ? t * 1000 : t) : Date.parse(String(t).replace(" ", "T")));

/** Rows grouped into one series per `by` value: `{name, points: [[time_ms, value]]}`, busiest first. */
function series(rows, by, value) {
  const groups = new Map();
  for (const r of rows) {
    const name = r[by] || "(none)";
    const t = timeOf(r.t);
    if (!Number.isFinite(t)) continue;
    const g = groups.get(name) ?? new Map();
    g.set(t, (g.get(t) ?? 0) + value(r));
    groups.set(name, g);
  }
  return [...groups].map(([name, g]) => ({ name, points: [...g].sort((a, b) => a[0] - b[0]) }))
    .sort((a, b) => b.points.reduce((n, p) => n + p[1], 0) - a.points.reduce((n, p) => n + p[1], 0));
}

/** A colour for each series name, in the order given; names beyond the palette share grey. */
function colorsBy(list) {
  const map = new Map(list.map((x, k) => [x.name, PALETTE[k] ?? "#9ca3af"]));
  return (name) => map.get(name) ?? "#9ca3af";
}

/** A round upper bound for an axis. */
function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 2.5, 5, 10].map((k) => k * p).find((k) => k >= v);
}

function lineChart(list, color, format) {
  const W = 560;
  const H = 220;
  const pad = { l: 56, r: 12, t: 10, b: 28 };
  const times = list.flatMap((x) => x.points.map((p) => p[0]));
  if (!times.length) return h("p", { class: "muted" }, "No requests in this period.");
  const t0 = Math.min(...times);
  const t1 = Math.max(...times);
  const ymax = niceMax(Math.max(...list.flatMap((x) => x.points.map((p) => p[1]))));
  const X = (t) => pad.l + (t1 === t0 ? (W - pad.l - pad.r) / 2 : ((t - t0) / (t1 - t0)) * (W - pad.l - pad.r));
  const Y = (v) => H - pad.b - (v / ymax) * (H - pad.t - pad.b);
  const grid = [0, 0.25, 0.5, 0.75, 1].map((f) => [
    s("line", { x1: pad.l, x2: W - pad.r, y1: Y(f * ymax), y2: Y(f * ymax), class: "grid" }),
    s("text", { x: pad.l - 6, y: Y(f * ymax) + 4, class: "axis", "text-anchor": "end" }, format(f * ymax)),
  ]);
  const label = (t) => new Date(t).toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  const ticks = (t1 === t0 ? [[t0, "middle"]] : [[t0, "start"], [(t0 + t1) / 2, "middle"], [t1, "end"]]).map(([t, anchor]) =>
    s("text", { x: X(t), y: H - 8, class: "axis", "text-anchor": anchor }, label(t)));
  const lines = list.map((x) => {
    const d = x.points.map((p, i) => `${i ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" ");
    return s("g", {},
      s("path", { d, class: "series", stroke: color(x.name) }),
      x.points.map((p) => s("circle", { cx: X(p[0]).toFixed(1), cy: Y(p[1]).toFixed(1), r: 2.5, fill: color(x.name) }, s("title", {}, `${x.name}: ${format(p[1])} at ${label(p[0])}`))));
  });
  const legend = h("ul", { class: "legend" }, list.map((x) => h("li", {}, s("svg", { width: 10, height: 10, viewBox: "0 0 10 10" }, s("rect", { width: 10, height: 10, fill: color(x.name) })), ` ${x.name}`)));
  return [s("svg", { viewBox: `0 0 ${W} ${H}`, class: "line-chart", role: "img" }, grid, ticks, lines), legend];
}

/** Horizontal bars, one `[label, value]` a row; `kind` classes a row, `value` formats its number. */
function barChart(pairs, { kind = () => "plain", value = fmt.num, max: top = undefined } = {}) {
  if (!pairs.length) return h("p", { class: "muted" }, "Nothing in this period.");
  const W = 560;
  const row = 22;
  const labelW = 150;
  const max = top ?? Math.max(1, ...pairs.map((p) => p[1]));
  const H = pairs.length * row + 4;
  return s("svg", { viewBox: `0 0 ${W} ${H}`, class: "bar-chart", role: "img" },
    pairs.map(([label, v], k) => s("g", { class: kind(label) },
      s("text", { x: labelW - 6, y: k * row + 15, class: "axis", "text-anchor": "end" }, label),
      s("rect", { x: labelW, y: k * row + 3, height: row - 6, width: Math.max(1, ((W - labelW - 70) * v) / max).toFixed(1), class: "barfill" }),
      s("text", { x: labelW + ((W - labelW - 70) * v) / max + 6, y: k * row + 15, class: "axis" }, value(v)))));
}

// ---------------------------------------------------------------------------------------------
// Keys

async function loadKeys() {
  const r = await api("GET", "/admin/keys");
  const list = (r.keys ?? []).slice().sort((a, b) => (b.created_at_ms ?? 0) - (a.created_at_ms ?? 0));
  const limit = (v) => (v === undefined || v === null ? "—" : fmt.num(v));
  const names = (v) => (Array.isArray(v) && v.length ? v.join(", ") : "all");
  fill($("keys"), list.length ? list.map((k) =>
    h("tr", { class: k.revoked ? "revoked" : "", "data-key": k.id },
      h("td", {}, h("code", {}, k.id)), h("td", {}, k.name ?? ""),
      h("td", {}, k.revoked ? "revoked" : "active"),
      h("td", {}, names(k.allowed_routes)), h("td", {}, names(k.allowed_tasks)),
      h("td", {}, limit(k.requests_per_minute)), h("td", {}, limit(k.spend_usd_per_day)),
      h("td", {}, fmt.time(k.created_at_ms)),
      h("td", {}, k.revoked ? "" : h("button", { type: "button", class: "small danger", onclick: () => revokeKey(k) }, "Revoke"))))
    : h("tr", {}, h("td", { colspan: 9, class: "muted" }, "No keys yet.")));
}

const commaList = (v) => v.split(",").map((x) => x.trim()).filter(Boolean);

async function createKey(ev) {
  ev.preventDefault();
  const msg = $("keys-message");
  const body = { name: $("key-name").value.trim() };
  const routes = commaList($("key-routes").value);
  const tasks = commaList($("key-tasks").value);
  if (routes.length) body.allowed_routes = routes;
  if (tasks.length) body.allowed_tasks = tasks;
  if ($("key-rpm").value) body.requests_per_minute = Number($("key-rpm").value);
  if ($("key-spend").value) body.spend_usd_per_day = Number($("key-spend").value);
  const button = $("create-key");
  if (button.disabled) return;
  button.disabled = true; // one key a click: on again once this request settles
  try {
    const r = await api("POST", "/admin/keys", body);
    $("new-key-value").textContent = r.key;
    $("new-key").hidden = false;
    const done = `Created key ${r.record?.id ?? ""}.`;
    say(msg, done, "ok");
    $("key-form").reset();
    await reloadAfter(loadKeys, msg, done);
  } catch (e) {
    say(msg, `Not created: ${e.message}`, "bad");
  } finally {
    button.disabled = false;
  }
}

async function copyKey() {
  const value = $("new-key-value").textContent;
  try {
    await navigator.clipboard.writeText(value);
    say($("keys-message"), "Copied to the clipboard.", "ok");
  } catch {
    const range = document.createRange();
    range.selectNodeContents($("new-key-value"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    say($("keys-message"), "Selected: press Ctrl-C (or ⌘-C) to copy.", "");
  }
}

async function revokeKey(k) {
  const ok = await confirmAction("Revoke this key?", `Key ${k.id} (${k.name ?? "no name"}) stops working within the cache time (CACHE_TTL_SECONDS) plus up to about a minute (KV's edge cache). This cannot be undone.`, "Revoke");
  if (!ok) return;
  try {
    await api("DELETE", `/admin/keys/${encodeURIComponent(k.id)}`);
    const done = `Revoked ${k.id}.`;
    say($("keys-message"), done, "ok");
    $("new-key").hidden = true;
    await reloadAfter(loadKeys, $("keys-message"), done);
  } catch (e) {
    say($("keys-message"), `Not revoked: ${e.message}`, "bad");
  }
}

// ---------------------------------------------------------------------------------------------
// Wiring

function start() {
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    signIn($("admin-key").value.trim());
  });
  $("logout").addEventListener("click", () => signOut());
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  window.addEventListener("hashchange", () => adminKey() && showTab(location.hash.slice(1)));
  $("editor").addEventListener("input", () => {
    $("editor").dataset.touched = "1";
    scheduleValidate();
  });
  $("reset-editor").addEventListener("click", resetEditor);
  $("rollback-previous").addEventListener("click", () => rollback());
  $("push").addEventListener("click", push);
  $("diff-form").addEventListener("submit", showDiff);
  $("play-form").addEventListener("submit", explainRequest);
  $("send").addEventListener("click", sendForReal);
  $("traffic-form").addEventListener("submit", loadTraffic);
  $("traffic-by").addEventListener("change", drawTraffic);
  $("traffic-since").addEventListener("change", () => loadTraffic());
  $("key-form").addEventListener("submit", createKey);
  $("copy-key").addEventListener("click", copyKey);
  const why = sessionStorage.getItem(SIGNED_OUT);
  sessionStorage.removeItem(SIGNED_OUT);
  if (why) {
    $("login-error").textContent = why;
    $("login-error").hidden = false;
  }
  const saved = adminKey();
  if (saved) signIn(saved);
}

start();
