// hazardvision's page: sign in, scan a photo, review findings, inspections and rectifications.
// Plain JavaScript, no build step, nothing from a CDN. Every text from the service is put in with
// textContent (never innerHTML), and the API key is sent once to POST /v1/session and never stored:
// the session lives in an HttpOnly cookie, and writes carry the session's CSRF token.
"use strict";

const SEVERITY_RANK = { critical: 4, high: 3, medium: 2, low: 1 };
const SEVERITY_COLOUR = { critical: "#8b0000", high: "#d93025", medium: "#e8a200", low: "#3b78a8" };
const state = {
  session: null,
  lang: localStorage.getItem("hv.lang") || (navigator.language.startsWith("zh") ? "zh" : "en"),
  strings: {},
  catalogue: [],
  inspection: sessionStorage.getItem("hv.inspection"),
};

// -- small helpers

function t(key, vars = {}) {
  const entry = state.strings[key];
  let text = entry ? entry[state.lang] || entry.en : key;
  for (const [name, value] of Object.entries(vars)) text = text.replaceAll(`{${name}}`, String(value));
  return text;
}

function text(pair) {  // a catalogue text {en, zh}
  return pair ? pair[state.lang] || pair.en : "";
}

function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function svg(tag, attrs = {}) {
  const element = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  return element;
}

function field(label, input) {
  const id = input.id || `f-${Math.random().toString(36).slice(2)}`;
  input.id = id;
  return h("div", {}, h("label", { for: id }, label), input);
}

function when(value) {
  if (!value) return "";
  return new Date(value).toLocaleString(state.lang === "zh" ? "zh-CN" : "en-GB",
    { dateStyle: "medium", timeStyle: "short" });
}

function toast(message) {
  const box = document.getElementById("toast");
  box.replaceChildren(h("span", {}, message));
  setTimeout(() => box.replaceChildren(), 4000);
}

function can(permission) {
  return Boolean(state.session && state.session.permissions.includes(permission));
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const headers = {};
  if (method !== "GET") headers["X-CSRF-Token"] = state.session ? state.session.csrf_token : "";
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
  const response = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  if (response.status === 204) return null;
  const json = (response.headers.get("content-type") || "").includes("json") ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, (json && json.message) || response.statusText);
  return json;
}

function upload(path, form, onProgress) {  // fetch reports no upload progress; XMLHttpRequest does
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", path);
    request.setRequestHeader("X-CSRF-Token", state.session.csrf_token);
    request.upload.onprogress = (event) => { if (event.lengthComputable) onProgress(event.loaded / event.total); };
    request.onload = () => {
      let json = null;
      try { json = JSON.parse(request.responseText); } catch { /* not JSON */ }
      if (request.status >= 200 && request.status < 300) resolve(json);
      else reject(new ApiError(request.status, (json && json.message) || request.statusText));
    };
    request.onerror = () => reject(new ApiError(0, t("error.network")));
    request.send(form);
  });
}

function uploadError(error) {
  if (error.status === 413) return t("error.too_large", { detail: error.message });
  if (error.status === 400 || error.status === 415) return t("error.not_a_photo", { detail: error.message });
  return error.message;
}

function errorLine(error) {
  return h("p", { class: "error", role: "alert" }, error instanceof ApiError ? error.message : String(error));
}

async function guarded(container, work) {  // run `work`; show its error in `container` instead of failing
  try { await work(); } catch (error) { container.append(errorLine(error)); if (error.status === 401) signedOut(); }
}

// -- frame: header, navigation, language

const VIEWS = [
  { hash: "#/scan", label: "nav.scan", permission: "scan" },
  { hash: "#/queue", label: "nav.queue", permission: "review" },
  { hash: "#/inspections", label: "nav.inspections", permission: "inspect" },
  { hash: "#/rectifications", label: "nav.rectifications", permission: "inspect" },
];

function renderFrame() {
  document.documentElement.lang = state.lang === "zh" ? "zh-Hans" : "en";
  document.title = t("app.title");
  const nav = document.getElementById("nav");
  const current = location.hash.split("/").slice(0, 2).join("/");
  nav.replaceChildren(...(state.session ? VIEWS.filter((view) => can(view.permission)).map((view) =>
    h("a", { href: view.hash, "aria-current": current === view.hash ? "page" : null }, t(view.label))) : []));
  const lang = document.getElementById("lang");
  lang.textContent = state.lang === "zh" ? "English" : "中文";
  lang.setAttribute("lang", state.lang === "zh" ? "en" : "zh-Hans");
  lang.setAttribute("aria-label", t("lang.switch"));
  document.getElementById("who").textContent = state.session
    ? t("who", { name: state.session.name, role: t(`role.${state.session.role}`) }) : "";
  const signout = document.getElementById("signout");
  signout.hidden = !state.session;
  signout.textContent = t("signout");
}

function main(...children) {
  const element = document.getElementById("main");
  element.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined));
  return element;
}

function signedOut() {
  state.session = null;
  renderFrame();
  renderSignIn();
}

// -- sign-in

function renderSignIn() {
  const key = h("input", { type: "password", name: "key", autocomplete: "off", required: true,
                            spellcheck: "false" });
  const message = h("div");
  const form = h("form", { class: "card", onsubmit: async (event) => {
    event.preventDefault();
    message.replaceChildren();
    try {
      state.session = await api("POST", "/v1/session", { key: key.value.trim() });
      key.value = "";  // the key is not kept anywhere by the page
      await afterSignIn();
    } catch (error) {
      message.append(errorLine(error.status === 401 ? t("signin.refused") : error));
    }
  } }, field(t("signin.key"), key), h("p", { class: "muted" }, t("signin.hint")),
  h("div", { class: "actions" }, h("button", { type: "submit" }, t("signin.submit"))), message);
  main(h("h1", {}, t("signin.title")), form);
  renderFrame();
}

async function afterSignIn() {
  const found = await api("GET", "/v1/catalogue");
  state.catalogue = found.classes;
  const first = VIEWS.find((view) => can(view.permission));
  if (first && (!location.hash || location.hash === "#/")) {
    location.hash = first.hash;  // the hashchange renders it
    return;
  }
  route();
}

// -- scanning

function renderScan() {
  const file = h("input", { type: "file", name: "image", accept: "image/*", capture: "environment", required: true });
  const site = h("input", { name: "site", maxlength: 200 });
  const enterprise = h("input", { name: "enterprise", maxlength: 200 });
  const note = h("textarea", { name: "note", rows: 2, maxlength: 4000 });
  const progress = h("progress", { max: 1, value: 0, hidden: true, "aria-label": t("scan.progress") });
  const message = h("div");
  const filing = state.inspection ? h("p", { class: "muted" }, t("scan.filed_under"), " ",
    h("a", { href: `#/inspections/${state.inspection}` }, state.inspection.slice(0, 8))) : null;
  const form = h("form", { class: "card", onsubmit: async (event) => {
    event.preventDefault();
    message.replaceChildren();
    if (!file.files.length) return;
    const data = new FormData();
    data.append("image", file.files[0]);
    for (const [name, input] of [["site", site], ["enterprise", enterprise], ["note", note]]) {
      if (input.value.trim()) data.append(name, input.value.trim());
    }
    progress.hidden = false;
    progress.value = 0;
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const scan = await upload("/v1/scans", data, (fraction) => { progress.value = fraction; });
      if (state.inspection) await api("POST", `/v1/inspections/${state.inspection}/scans`, { scan_ids: [scan.scan_id] });
      location.hash = `#/scans/${scan.scan_id}`;
    } catch (error) {
      message.append(errorLine(uploadError(error)));
    } finally {
      button.disabled = false;
      progress.hidden = true;
    }
  } },
  field(t("scan.photo"), file), h("div", { class: "row" }, field(t("field.site"), site),
    field(t("field.enterprise"), enterprise)), field(t("field.note"), note), filing, progress,
  h("div", { class: "actions" }, h("button", { type: "submit" }, t("scan.submit"))), message);
  main(h("h1", {}, t("scan.title")), form);
}

function ordered(findings) {
  return [...findings].sort((a, b) => (SEVERITY_RANK[b.hazard.severity] - SEVERITY_RANK[a.hazard.severity])
    || (b.confidence - a.confidence));
}

function selectFinding(container, id) {
  for (const element of container.querySelectorAll("[data-finding]")) {
    element.classList.toggle("selected", element.dataset.finding === id);
  }
}

function photoWithBoxes(scan, findings, container) {
  const { width, height } = scan.image;
  const overlay = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "img",
                               "aria-label": t("scan.boxes", { count: findings.length }) });
  for (const finding of findings) {
    const { x1, y1, x2, y2 } = finding.box;
    const rect = svg("rect", { x: x1, y: y1, width: x2 - x1, height: y2 - y1, class: "box",
                               stroke: SEVERITY_COLOUR[finding.hazard.severity] || "#e8a200" });
    rect.dataset.finding = finding.id;
    const title = svg("title");
    title.textContent = text(finding.hazard.name);
    rect.append(title);
    rect.addEventListener("click", () => {
      selectFinding(container, finding.id);
      const item = container.querySelector(`li[data-finding="${finding.id}"]`);
      if (item) item.scrollIntoView({ block: "nearest" });
    });
    overlay.append(rect);
  }
  return h("figure", { class: "photo" },
    h("img", { src: `/v1/scans/${scan.scan_id}/photo`, alt: t("scan.photo_alt", { source: scan.source }),
               width, height }), overlay);
}

function similarCases(cases) {
  if (!cases.length) return h("p", { class: "muted" }, t("cases.none"));
  return h("div", { class: "cases", role: "list", "aria-label": t("cases.title") }, cases.map((item) =>
    h("div", { class: "case", role: "listitem" },
      item.thumbnail ? h("img", { src: item.thumbnail, alt: t("cases.alt", { id: item.case_id }), loading: "lazy" }) : null,
      h("div", {}, t("cases.score", { score: item.score.toFixed(2) })),
      h("div", {}, [item.site, item.captured_at ? when(item.captured_at) : null].filter(Boolean).join(" · ")),
      item.description ? h("div", { class: "muted" }, item.description) : null)));
}

function drawBox(overlay, onDrawn) {
  // One drag on the photo draws a box, in the photo's pixels (the overlay's viewBox).
  const point = (event) => {
    const position = new DOMPoint(event.clientX, event.clientY).matrixTransform(overlay.getScreenCTM().inverse());
    return { x: Math.round(position.x), y: Math.round(position.y) };
  };
  const drawn = svg("rect", { class: "box drawn", stroke: "#0b57d0" });
  let start = null;
  overlay.classList.add("drawing");
  const down = (event) => { start = point(event); overlay.setPointerCapture(event.pointerId); overlay.append(drawn); };
  const move = (event) => {
    if (!start) return;
    const end = point(event);
    drawn.setAttribute("x", Math.min(start.x, end.x)); drawn.setAttribute("y", Math.min(start.y, end.y));
    drawn.setAttribute("width", Math.abs(end.x - start.x)); drawn.setAttribute("height", Math.abs(end.y - start.y));
  };
  const up = (event) => {
    if (!start) return;
    const end = point(event);
    const [width, height] = overlay.getAttribute("viewBox").split(" ").slice(2).map(Number);
    const clamp = (value, limit) => Math.max(0, Math.min(limit, value));
    const box = { x1: clamp(Math.min(start.x, end.x), width), y1: clamp(Math.min(start.y, end.y), height),
                  x2: clamp(Math.max(start.x, end.x), width), y2: clamp(Math.max(start.y, end.y), height) };
    overlay.removeEventListener("pointerdown", down);
    overlay.removeEventListener("pointermove", move);
    overlay.removeEventListener("pointerup", up);
    overlay.classList.remove("drawing");
    start = null;
    if (box.x2 > box.x1 && box.y2 > box.y1) onDrawn(box); else drawn.remove();
  };
  overlay.addEventListener("pointerdown", down);
  overlay.addEventListener("pointermove", move);
  overlay.addEventListener("pointerup", up);
}

function reviewControls(finding, review, container, refresh) {
  if (review) {
    return h("p", {}, h("span", { class: `badge ${review.decision === "confirm" ? "confirmed" : "rejected"}` },
      t(`review.${review.decision}ed`)), " ", t("review.by", { name: review.reviewer, at: when(review.created_at) }),
      review.corrected ? ` (${t("review.corrected")})` : "");
  }
  if (!can("review")) return null;
  const note = h("input", { name: "note", maxlength: 4000 });
  const corrected = h("select", { name: "class_name" }, h("option", { value: "" }, t("review.same_class")),
    state.catalogue.filter((entry) => entry.class_name !== finding.class_name).map((entry) =>
      h("option", { value: entry.class_name }, `${text(entry.name)} (${entry.class_name})`)));
  const message = h("div");
  const boxNote = h("span", { class: "muted", role: "status" });
  let box = null;
  const redraw = h("button", { type: "button", class: "secondary", onclick: () => {
    const overlay = container.querySelector(".photo svg");
    boxNote.textContent = t("review.draw_box");
    overlay.scrollIntoView({ block: "nearest" });
    drawBox(overlay, (drawnBox) => {
      box = drawnBox;
      boxNote.textContent = t("review.new_box", drawnBox);
    });
  } }, t("review.correct_box"));
  const send = (decision) => async () => {
    message.replaceChildren();
    const body = { decision };
    if (note.value.trim()) body.note = note.value.trim();
    if (corrected.value) body.class_name = corrected.value;
    if (box) body.box = box;
    try {
      await api("POST", `/v1/findings/${finding.id}/review`, body);
      toast(t(`review.${decision}ed`));
      refresh();
    } catch (error) { message.append(errorLine(error)); }
  };
  return h("div", {}, h("div", { class: "row" }, field(t("review.note"), note), field(t("review.class"), corrected)),
    h("div", { class: "actions" }, redraw, boxNote),
    h("div", { class: "actions" },
      h("button", { type: "button", onclick: send("confirm") }, t("review.confirm")),
      h("button", { type: "button", class: "danger", onclick: send("reject") }, t("review.reject"))), message);
}

function findingItem(finding, review, container, refresh) {
  const hazard = finding.hazard;
  return h("li", { class: "finding", dataset: { finding: finding.id, severity: hazard.severity } },
    h("h3", {}, h("button", { type: "button", "aria-describedby": `conf-${finding.id}`,
                              onclick: () => selectFinding(container, finding.id) }, text(hazard.name))),
    h("p", {}, h("span", { class: `badge ${hazard.severity}` }, t(`severity.${hazard.severity}`)), " ",
      h("span", { id: `conf-${finding.id}` }, t("finding.confidence", { value: Math.round(finding.confidence * 100) })),
      " ", h("span", { class: "muted" }, finding.id)),
    finding.likely_false_alarm ? h("p", { class: "muted" }, t("finding.likely_false_alarm")) : null,
    h("ul", {}, hazard.rules.map((rule) => h("li", {}, h("strong", {}, rule.ref), ": ", rule.summary))),
    h("p", {}, h("strong", {}, t("finding.advice")), " ", text(hazard.advice)),
    h("h4", {}, t("cases.title")), similarCases(finding.similar_cases),
    reviewControls(finding, review, container, refresh));
}

async function renderScanResult(scanId) {
  const container = main(h("p", { class: "muted" }, t("loading")));
  await guarded(container, async () => {
    const scan = await api("GET", `/v1/scans/${scanId}`);
    const reviews = can("review") ? (await api("GET", `/v1/reviews?scan_id=${scanId}`)).reviews : [];
    const byFinding = Object.fromEntries(reviews.map((review) => [review.finding_id, review]));
    const findings = ordered(scan.findings);
    const refresh = () => renderScanResult(scanId);
    const list = h("ol", { class: "findings", "aria-label": t("scan.findings") });
    const layout = h("div", { class: "scan" });
    layout.append(photoWithBoxes(scan, findings, layout), h("section", { "aria-label": t("scan.findings") },
      h("h2", {}, t("scan.findings_count", { count: findings.length })),
      scan.frame_quality && scan.frame_quality.status !== "ok"
        ? h("p", { class: "error" }, t(`quality.${scan.frame_quality.status}`)) : null,
      findings.length ? list : h("p", {}, t("scan.no_findings"))));
    for (const finding of findings) list.append(findingItem(finding, byFinding[finding.id], layout, refresh));
    main(h("h1", {}, t("scan.result", { source: scan.source })),
      h("p", { class: "muted" }, [scan.context.site, scan.context.enterprise, when(scan.created_at)]
        .filter(Boolean).join(" · ")), layout);
  });
}

// -- the review queue

async function renderQueue(filters = {}) {
  const site = h("input", { name: "site", value: filters.site || "" });
  const enterprise = h("input", { name: "enterprise", value: filters.enterprise || "" });
  const severity = h("select", { name: "severity" }, h("option", { value: "" }, t("filter.any")),
    Object.keys(SEVERITY_RANK).map((level) => h("option", { value: level, selected: filters.severity === level },
      t(`severity.${level}`))));
  const form = h("form", { class: "card row", onsubmit: (event) => {
    event.preventDefault();
    renderQueue({ site: site.value.trim(), enterprise: enterprise.value.trim(), severity: severity.value });
  } }, field(t("field.site"), site), field(t("field.enterprise"), enterprise), field(t("field.severity"), severity),
  h("div", {}, h("button", { type: "submit" }, t("filter.apply"))));
  const results = h("div");
  main(h("h1", {}, t("queue.title")), form, results);
  await guarded(results, async () => {
    const query = new URLSearchParams(Object.entries(filters).filter(([, value]) => value));
    const { findings } = await api("GET", `/v1/findings?${query}`);
    if (!findings.length) { results.append(h("p", {}, t("queue.empty"))); return; }
    results.append(h("div", { class: "table" }, h("table", {},
      h("thead", {}, h("tr", {}, ["queue.hazard", "field.severity", "queue.confidence", "field.site", "queue.scanned"]
        .map((key) => h("th", { scope: "col" }, t(key))))),
      h("tbody", {}, findings.map((finding) => h("tr", {},
        h("td", {}, h("a", { href: `#/scans/${finding.scan_id}` },
          finding.hazard ? text(finding.hazard.name) : finding.class_name)),
        h("td", {}, finding.hazard ? h("span", { class: `badge ${finding.hazard.severity}` },
          t(`severity.${finding.hazard.severity}`)) : ""),
        h("td", {}, `${Math.round(finding.confidence * 100)}%`),
        h("td", {}, [finding.site, finding.enterprise].filter(Boolean).join(" · ")),
        h("td", {}, when(finding.scanned_at))))))));
  });
}

// -- inspections

async function renderInspections(filters = {}) {
  const inputs = {
    site: h("input", { name: "site", value: filters.site || "" }),
    enterprise: h("input", { name: "enterprise", value: filters.enterprise || "" }),
    since: h("input", { type: "date", name: "since", value: filters.since || "" }),
    until: h("input", { type: "date", name: "until", value: filters.until || "" }),
  };
  const filter = h("form", { class: "card row", onsubmit: (event) => {
    event.preventDefault();
    renderInspections(Object.fromEntries(Object.entries(inputs).map(([name, input]) => [name, input.value.trim()])));
  } }, field(t("field.site"), inputs.site), field(t("field.enterprise"), inputs.enterprise),
  field(t("filter.since"), inputs.since), field(t("filter.until"), inputs.until),
  h("div", {}, h("button", { type: "submit" }, t("filter.apply"))));

  const site = h("input", { name: "site", required: true, maxlength: 200 });
  const enterprise = h("input", { name: "enterprise", maxlength: 200 });
  const notes = h("textarea", { name: "notes", rows: 2, maxlength: 8000 });
  const message = h("div");
  const open = h("form", { class: "card", onsubmit: async (event) => {
    event.preventDefault();
    message.replaceChildren();
    try {
      const body = { site: site.value.trim() };
      if (enterprise.value.trim()) body.enterprise = enterprise.value.trim();
      if (notes.value.trim()) body.notes = notes.value.trim();
      const inspection = await api("POST", "/v1/inspections", body);
      useInspection(inspection.id);
      location.hash = `#/inspections/${inspection.id}`;
    } catch (error) { message.append(errorLine(error)); }
  } }, h("h2", {}, t("inspections.new")), h("div", { class: "row" }, field(t("field.site"), site),
    field(t("field.enterprise"), enterprise)), field(t("field.notes"), notes),
  h("div", { class: "actions" }, h("button", { type: "submit" }, t("inspections.open"))), message);

  const results = h("div");
  main(h("h1", {}, t("inspections.title")), open, filter, results);
  await guarded(results, async () => {
    const query = new URLSearchParams();
    if (filters.site) query.set("site", filters.site);
    if (filters.enterprise) query.set("enterprise", filters.enterprise);
    if (filters.since) query.set("since", `${filters.since}T00:00:00`);
    if (filters.until) query.set("until", `${filters.until}T23:59:59`);
    const { inspections } = await api("GET", `/v1/inspections?${query}`);
    if (!inspections.length) { results.append(h("p", {}, t("inspections.empty"))); return; }
    results.append(h("div", { class: "table" }, h("table", {},
      h("thead", {}, h("tr", {}, ["field.site", "field.enterprise", "field.inspector", "field.visited", "inspections.scans"]
        .map((key) => h("th", { scope: "col" }, t(key))))),
      h("tbody", {}, inspections.map((item) => h("tr", {},
        h("td", {}, h("a", { href: `#/inspections/${item.id}` }, item.site)), h("td", {}, item.enterprise || ""),
        h("td", {}, item.inspector), h("td", {}, when(item.visited_on)), h("td", {}, item.scan_ids.length)))))));
  });
}

function useInspection(id) {
  state.inspection = id;
  sessionStorage.setItem("hv.inspection", id);
}

function rectificationRow(item, refresh) {
  const status = item.overdue ? "overdue" : item.status;
  const actions = h("div", { class: "actions" });
  const message = h("div");
  if (item.status === "open") {
    const photo = h("input", { type: "file", accept: "image/*", capture: "environment" });
    actions.append(field(t("rect.after_photo"), photo), h("button", { type: "button", onclick: async () => {
      message.replaceChildren();
      if (!photo.files.length) return;
      const data = new FormData();
      data.append("image", photo.files[0]);
      try {
        const closed = await upload(`/v1/rectifications/${item.id}/close`, data, () => {});
        toast(closed.after_passed ? t("rect.passed") : t("rect.failed"));
        refresh();
      } catch (error) { message.append(errorLine(uploadError(error))); }
    } }, t("rect.close")));
  } else if (item.status === "closed" && item.closed_by !== state.session.name) {
    const reason = h("input", { name: "override_reason", maxlength: 4000 });
    const verify = (accept) => async () => {
      message.replaceChildren();
      const body = { accept };
      if (reason.value.trim()) body.override_reason = reason.value.trim();
      try { await api("POST", `/v1/rectifications/${item.id}/verify`, body); refresh(); }
      catch (error) { message.append(errorLine(error)); }
    };
    actions.append(item.after_passed ? null : field(t("rect.override_reason"), reason),
      h("button", { type: "button", onclick: verify(true) }, t("rect.verify")),
      h("button", { type: "button", class: "danger", onclick: verify(false) }, t("rect.refuse")));
  } else if (item.status === "closed") {
    actions.append(h("span", { class: "muted" }, t("rect.other_verifies")));
  }
  return h("tr", {},
    h("td", {}, h("a", { href: `#/scans/${item.scan_id}` }, item.class_name)),
    h("td", {}, item.responsible), h("td", {}, when(item.deadline)),
    h("td", {}, h("span", { class: `badge ${status}` }, t(`rect.${status}`)),
      item.after_passed === false ? h("div", { class: "muted" }, t("rect.failed")) : null),
    h("td", {}, actions, message));
}

function rectificationTable(items, refresh) {
  return h("div", { class: "table" }, h("table", {},
    h("thead", {}, h("tr", {}, ["rect.hazard", "rect.responsible", "rect.deadline", "rect.status", "rect.actions"]
      .map((key) => h("th", { scope: "col" }, t(key))))),
    h("tbody", {}, items.map((item) => rectificationRow(item, refresh)))));
}

function assignForm(finding, refresh) {
  const responsible = h("input", { name: "responsible", required: true, maxlength: 200 });
  const deadline = h("input", { type: "date", name: "deadline", required: true });
  const message = h("div");
  return h("form", { class: "row", onsubmit: async (event) => {
    event.preventDefault();
    message.replaceChildren();
    try {
      await api("POST", `/v1/findings/${finding.id}/rectification`,
        { responsible: responsible.value.trim(), deadline: `${deadline.value}T23:59:59` });
      refresh();
    } catch (error) { message.append(errorLine(error)); }
  } }, field(t("rect.responsible"), responsible), field(t("rect.deadline"), deadline),
  h("div", {}, h("button", { type: "submit" }, t("rect.assign"))), message);
}

async function renderInspection(id) {
  const container = main(h("p", { class: "muted" }, t("loading")));
  await guarded(container, async () => {
    const inspection = await api("GET", `/v1/inspections/${id}`);
    const refresh = () => renderInspection(id);
    const reviewed = Object.fromEntries(inspection.reviews.map((review) => [review.finding_id, review]));
    const rectified = new Set(inspection.rectifications.map((item) => item.finding_id));
    const scans = inspection.scans.map((scan) => h("div", { class: "card" },
      h("div", { class: "thumbs" }, h("a", { href: `#/scans/${scan.scan_id}` },
        h("img", { src: `/v1/scans/${scan.scan_id}/annotated`, alt: t("scan.photo_alt", { source: scan.source }),
                   width: scan.image.width, height: scan.image.height }))),
      h("ul", {}, ordered(scan.findings).map((finding) => {
        const review = reviewed[finding.id];
        return h("li", {}, text(finding.hazard.name), " ",
          review ? h("span", { class: `badge ${review.decision === "confirm" ? "confirmed" : "rejected"}` },
            t(`review.${review.decision}ed`)) : h("span", { class: "muted" }, t("review.pending")),
          review && review.decision === "confirm" && !rectified.has(finding.id) ? assignForm(finding, refresh) : null);
      }))));
    main(h("h1", {}, t("inspection.title", { site: inspection.site })),
      h("div", { class: "card" },
        h("p", {}, [inspection.enterprise, t("inspection.by", { name: inspection.inspector }), when(inspection.visited_on)]
          .filter(Boolean).join(" · ")),
        inspection.notes ? h("p", {}, inspection.notes) : null,
        h("div", { class: "actions" },
          state.inspection === id ? h("span", { class: "muted" }, t("inspection.current"))
            : h("button", { type: "button", class: "secondary", onclick: () => { useInspection(id); refresh(); } },
              t("inspection.use")),
          h("a", { class: "button secondary", href: `/v1/inspections/${id}/record.pdf?lang=en`, download: "" },
            t("inspection.pdf_en")),
          h("a", { class: "button secondary", href: `/v1/inspections/${id}/record.pdf?lang=zh`, download: "" },
            t("inspection.pdf_zh")))),
      h("h2", {}, t("inspection.scans", { count: inspection.scans.length })),
      inspection.scans.length ? scans : h("p", { class: "muted" }, t("inspection.no_scans")),
      h("h2", {}, t("nav.rectifications")),
      inspection.rectifications.length ? rectificationTable(inspection.rectifications, refresh)
        : h("p", { class: "muted" }, t("rect.none")));
  });
}

async function renderRectifications(filters = {}) {
  const enterprise = h("input", { name: "enterprise", value: filters.enterprise || "" });
  const status = h("select", { name: "status" }, h("option", { value: "" }, t("filter.any")),
    ["open", "overdue", "closed", "verified"].map((value) =>
      h("option", { value, selected: filters.status === value }, t(`rect.${value}`))));
  const form = h("form", { class: "card row", onsubmit: (event) => {
    event.preventDefault();
    renderRectifications({ enterprise: enterprise.value.trim(), status: status.value });
  } }, field(t("field.enterprise"), enterprise), field(t("rect.status"), status),
  h("div", {}, h("button", { type: "submit" }, t("filter.apply"))));
  const results = h("div");
  main(h("h1", {}, t("nav.rectifications")), form, results);
  await guarded(results, async () => {
    const query = new URLSearchParams(Object.entries(filters).filter(([, value]) => value));
    const { rectifications } = await api("GET", `/v1/rectifications?${query}`);
    results.append(rectifications.length ? rectificationTable(rectifications, () => renderRectifications(filters))
      : h("p", {}, t("rect.none")));
  });
}

// -- routing

function route() {
  renderFrame();
  if (!state.session) { renderSignIn(); return; }
  const [, view, id] = location.hash.split("/");
  const views = {
    scan: () => renderScan(), scans: () => renderScanResult(id), queue: () => renderQueue(),
    inspections: () => (id ? renderInspection(id) : renderInspections()), rectifications: () => renderRectifications(),
  };
  const render = views[view];
  if (!render) { main(h("h1", {}, t("app.title")), h("p", {}, t("app.welcome"))); return; }
  render();
  document.getElementById("main").focus({ preventScroll: true });
}

async function start() {
  state.strings = await (await fetch("/app/strings.json")).json();
  document.getElementById("lang").addEventListener("click", () => {
    state.lang = state.lang === "zh" ? "en" : "zh";
    localStorage.setItem("hv.lang", state.lang);
    route();
  });
  document.getElementById("signout").addEventListener("click", async () => {
    try { await api("DELETE", "/v1/session"); } catch { /* the session may have ended already */ }
    sessionStorage.removeItem("hv.inspection");
    state.inspection = null;
    signedOut();
  });
  window.addEventListener("hashchange", route);
  try {
    state.session = await api("GET", "/v1/session");
  } catch {
    state.session = null;  // not signed in (401): the sign-in form
  }
  if (state.session) await afterSignIn();
  else route();
}

start();
