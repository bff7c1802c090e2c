"""The service's own pages, plain HTML with inline script and style: nothing is fetched from
anywhere but the service itself (no fonts, CDNs, trackers or remote images).

  docs_page()       GET /    the endpoints, read from the service's OpenAPI document (/docs.json)
  librarian_page()  GET /ui  paste a text or upload a file, choose language and refinement, see
                             the concepts with their place in the thesaurus, copy them as JSON/CSV;
                             with them the document's educational value and topics, from those
                             families' champions (greyed, with the reason, while one has none)
"""
from __future__ import annotations

LANGUAGES = {"en": "English", "fr": "Français", "es": "Español", "ar": "العربية", "ru": "Русский"}
REFINEMENTS = {"": "the model's own", "none": "none: keep every concept", "specific": "specific: keep the narrower",
               "balanced": "balanced: keep the higher-scored", "broad": "broad: keep the broader"}

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:72rem;padding:1rem 1.5rem;
color:#1d1d1f;background:#fff;line-height:1.4}
h1{font-size:1.4rem;margin:.2rem 0 .6rem}h2{font-size:1.1rem;margin:1.2rem 0 .4rem}
textarea{width:100%;box-sizing:border-box;font:inherit}label{margin-right:1rem}
button{font:inherit;padding:.3rem .8rem;margin:.3rem .4rem .3rem 0;cursor:pointer}
table{border-collapse:collapse;width:100%;margin-top:.5rem}th,td{border-bottom:1px solid #ddd;padding:.3rem .4rem;
text-align:left;vertical-align:top}th{background:#f4f4f6}
.muted{color:#666;font-size:.9rem}.warn{color:#8a4b00}.error{color:#b00020}code{background:#f4f4f6;padding:0 .2rem}
fieldset{border:1px solid #ddd;margin:.6rem 0;padding:.5rem .8rem}
.unavailable{color:#999}.family{margin:.3rem 0}.topic{display:inline-block;border:1px solid #ccc;border-radius:.8rem;
padding:0 .5rem;margin:0 .3rem .2rem 0;color:#666}.topic.chosen{border-color:#1d1d1f;color:#1d1d1f;font-weight:600}
"""


def _options(choices: dict[str, str], selected: str = "") -> str:
    return "".join(f'<option value="{value}"{" selected" if value == selected else ""}>{label}</option>'
                   for value, label in choices.items())


def librarian_page() -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Subject indexing: UNESCO Thesaurus</title><style>{_STYLE}</style></head>
<body>
<h1>Subject indexing with the UNESCO Thesaurus</h1>
<p id="model" class="muted">Model: checking…</p>
<p id="model-edu" class="muted">Educational value: checking…</p>
<p id="model-topics" class="muted">Topics: checking…</p>
<form id="form" onsubmit="return false">
<fieldset><legend>Document</legend>
<p><label for="title">Title (optional: it names the subjects, so it helps)</label>
<input id="title" type="text" maxlength="1000" style="width:100%;box-sizing:border-box"></p>
<label for="text">Paste the text</label>
<textarea id="text" rows="10" placeholder="Paste the document's text here"></textarea>
<p><label for="file">or choose a file (PDF, DOCX, HTML or text)</label>
<input id="file" type="file" accept=".pdf,.docx,.html,.htm,.txt,.md,text/plain,text/html,application/pdf,application/vnd.openxmlformats-officedocument.wordprocessingml.document"></p>
</fieldset>
<fieldset><legend>Options</legend>
<label>Labels in <select id="lang">{_options(LANGUAGES, "en")}</select></label>
<label>Broader and narrower together: <select id="refine">{_options(REFINEMENTS)}</select></label>
<label>Concepts <input id="top_n" type="number" min="1" max="50" placeholder="model's" style="width:5rem"></label>
</fieldset>
<button id="tag-text" type="button">Tag the text</button>
<button id="tag-file" type="button">Tag the file</button>
</form>
<p id="status" role="status"></p>
<section id="about" hidden>
<h2>About the document</h2>
<p id="edu-out" class="family"></p>
<p id="topics-out" class="family"></p>
</section>
<section id="results" hidden>
<h2>Concepts</h2>
<table><thead><tr><th>#</th><th>Concept</th><th>Score</th><th>Broader path</th><th>Micro-thesaurus</th><th>URI</th></tr></thead>
<tbody id="rows"></tbody></table>
<p><button id="copy-json" type="button">Copy as JSON</button><button id="copy-csv" type="button">Copy as CSV</button>
<span id="copied" class="muted"></span></p>
<textarea id="export" rows="6" readonly aria-label="exported concepts"></textarea>
</section>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const FAMILIES = {{edu: "Educational value", topics: "Topics"}};
let last = null;
let ready = {{}};            // family -> its model is in service (from /info)
let about = {{}};            // family -> its last answer, for the JSON export

function setStatus(text, kind) {{ const s = $("status"); s.textContent = text; s.className = kind || ""; }}

function options() {{
  const o = {{lang: $("lang").value, hierarchy: true}};
  if ($("refine").value) o.refine = $("refine").value;
  if ($("top_n").value) o.top_n = parseInt($("top_n").value, 10);
  if ($("title").value.trim()) o.title = $("title").value.trim();
  return o;
}}

function cell(row, text) {{ const td = document.createElement("td"); td.textContent = text; row.appendChild(td); return td; }}

function show(body) {{
  last = body;
  const rows = $("rows"); rows.textContent = "";
  body.keywords.forEach((k, i) => {{
    const tr = document.createElement("tr"); tr.className = "concept";
    cell(tr, String(i + 1)); cell(tr, k.label); cell(tr, k.score.toFixed(3));
    cell(tr, (k.broader || []).map((b) => b.label).join(" › ") || "—");
    cell(tr, k.micro_thesaurus ? k.micro_thesaurus.label : "—");
    cell(tr, k.uri).className = "uri";
    rows.appendChild(tr);
  }});
  $("results").hidden = false;
  $("export").value = "";
  const extra = body.chars ? `, ${{body.chars.toLocaleString()}} characters read from the file` : "";
  setStatus(body.keywords.length ? `${{body.keywords.length}} concepts (model ${{body.model.name}} v${{body.model.version}}${{extra}})`
                                 : `No concept found${{extra}}.`);
}}

async function answer(resp) {{
  let body = null;
  try {{ body = await resp.json(); }} catch (e) {{ /* not JSON */ }}
  if (resp.ok) return show(body);
  let message = (body && body.error) || `HTTP ${{resp.status}}`;
  if (body && body.detail) message += ": " + JSON.stringify(body.detail);
  if (resp.headers.get("Retry-After")) message += ` (try again in ${{resp.headers.get("Retry-After")}} s)`;
  setStatus(message, "error");
}}

function gateText(g) {{
  return g && g.metric ? ` · gate ${{g.decision}}: ${{g.metric}} ${{g.value}} (target ${{g.target}})` : "";
}}

function el(tag, text, className) {{
  const e = document.createElement(tag); e.textContent = text; if (className) e.className = className; return e;
}}

const RENDER = {{
  edu(out, body) {{
    const score = el("b", body.score.toFixed(2)); score.id = "edu-score";
    out.append("Educational value: ", score, ` (${{body.int_score}} of 5) · ${{body.model.name}} v${{body.model.version}}`);
  }},
  topics(out, body) {{
    out.append("Topics: ");
    const labels = Object.keys(body.probabilities).sort((a, b) => body.probabilities[b] - body.probabilities[a]);
    labels.forEach((label) => {{
      const chip = el("span", `${{label}} ${{body.probabilities[label].toFixed(2)}}`,
                        body.topics.includes(label) ? "topic chosen" : "topic");
      chip.title = `threshold ${{body.thresholds[label]}}` + (body.topics.includes(label) ? ": chosen" : ": below");
      out.append(chip);
    }});
    if (!body.topics.length) out.append(el("span", "none at or above its threshold", "muted"));
    out.append(` · ${{body.model.name}} v${{body.model.version}}`);
  }},
}};

// The other families' answers for the same document: send(name) posts it to that family.
function runFamilies(send) {{
  about = {{}};
  for (const [name, title] of Object.entries(FAMILIES)) {{
    const out = $(`${{name}}-out`); out.textContent = "";
    if (!ready[name]) {{
      out.className = "family unavailable";
      out.textContent = `${{title}}: not available (no ${{name}} model in service)`;
      continue;
    }}
    out.className = "family muted"; out.textContent = `${{title}}: …`;
    send(name).then(async (resp) => {{
      let body = null;
      try {{ body = await resp.json(); }} catch (e) {{ /* not JSON */ }}
      out.textContent = "";
      if (!resp.ok) {{ out.className = "family error"; out.textContent = `${{title}}: ${{(body && body.error) || "HTTP " + resp.status}}`; return; }}
      out.className = "family"; about[name] = body; RENDER[name](out, body);
    }}).catch((e) => {{ out.className = "family error"; out.textContent = `${{title}}: the service did not answer`; }});
  }}
  $("about").hidden = false;
}}

async function tagText() {{
  const text = $("text").value;
  if (!text.trim()) return setStatus("Paste a text first.", "error");
  setStatus("Tagging…");
  runFamilies((name) => fetch(`/${{name}}`, {{method: "POST", headers: {{"content-type": "application/json"}},
                                              body: JSON.stringify({{text}})}}));
  try {{
    await answer(await fetch("/tag", {{method: "POST", headers: {{"content-type": "application/json"}},
                                       body: JSON.stringify({{text, ...options()}})}}));
  }} catch (e) {{ setStatus("The service did not answer: " + e, "error"); }}
}}

async function tagFile() {{
  const file = $("file").files[0];
  if (!file) return setStatus("Choose a file first.", "error");
  const form = new FormData();
  form.append("file", file, file.name);
  for (const [k, v] of Object.entries(options())) form.append(k, String(v));
  setStatus(`Reading ${{file.name}}…`);
  runFamilies((name) => {{ const f = new FormData(); f.append("file", file, file.name);
                           return fetch(`/${{name}}_file`, {{method: "POST", body: f}}); }});
  try {{ await answer(await fetch("/tag_file", {{method: "POST", body: form}})); }}
  catch (e) {{ setStatus("The service did not answer: " + e, "error"); }}
}}

function csvField(v) {{ v = String(v ?? ""); return /[",\\n]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v; }}

function asCsv(body) {{
  const lines = [["rank", "uri", "label", "score", "broader_path", "micro_thesaurus"].join(",")];
  body.keywords.forEach((k, i) => lines.push([i + 1, k.uri, k.label, k.score,
    (k.broader || []).map((b) => b.label).join(" > "), k.micro_thesaurus ? k.micro_thesaurus.label : ""]
    .map(csvField).join(",")));
  return lines.join("\\n") + "\\n";
}}

async function copy(kind) {{
  if (!last) return;
  const text = kind === "json" ? JSON.stringify({{keywords: last.keywords, model: last.model, ...about}}, null, 2) : asCsv(last);
  $("export").value = text;
  try {{ await navigator.clipboard.writeText(text); $("copied").textContent = `${{kind.toUpperCase()}} copied`; }}
  catch (e) {{ $("export").select(); $("copied").textContent = "Select the text below and copy it"; }}
}}

async function model() {{
  try {{
    const info = await (await fetch("/info", {{method: "POST", headers: {{"content-type": "application/json"}}, body: "{{}}"}})).json();
    for (const [name, title] of Object.entries(FAMILIES)) {{
      const f = (info.families || {{}})[name], line = $(`model-${{name}}`);
      ready[name] = Boolean(f && f.ready);
      if (ready[name]) {{
        line.textContent = `${{title}}: model ${{f.model.name}} v${{f.model.version}}` + gateText(f.gate) + (f.gate && f.gate.note ? " · " + f.gate.note : "");
        line.className = f.gate && f.gate.note ? "warn" : "muted";
      }} else {{
        line.textContent = `${{title}}: not available: ` + ((f && f.reason) || "this service does not serve it");
        line.className = "unavailable";
      }}
    }}
    if (!info.ready) {{ $("model").textContent = "No model in service yet: " + (info.reason || ""); $("model").className = "warn"; return; }}
    const g = info.gate || {{}};
    const text = `Model ${{info.model.name}} v${{info.model.version}}` + gateText(g);
    $("model").textContent = text + (g.note ? " · " + g.note : "");
    $("model").className = g.note ? "warn" : "muted";
  }} catch (e) {{ $("model").textContent = "The service did not answer."; }}
}}

$("tag-text").addEventListener("click", tagText);
$("tag-file").addEventListener("click", tagFile);
$("copy-json").addEventListener("click", () => copy("json"));
$("copy-csv").addEventListener("click", () => copy("csv"));
model();
</script>
</body></html>
"""


def docs_page() -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tagflow tagger service</title><style>{_STYLE}
pre{{background:#f4f4f6;padding:.5rem;overflow:auto}}</style></head>
<body>
<h1>tagflow tagger service</h1>
<p>Tags documents with UNESCO Thesaurus concepts using the registry's champion model; scores
their educational value (<code>/edu</code>) and classifies their topics (<code>/topics</code>) with
those families' champions (each answers 503 while its family has none; <code>POST /info</code> says which are in service).
People who index documents: use <a href="/ui">the indexing page</a>.</p>
<p class="muted">Machine-readable description: <a href="/docs.json">/docs.json</a> (OpenAPI).
Health: <code>GET /livez</code>, <code>GET /readyz</code> (200 only while the tagger's champion is loaded, and those of the families named in TAGFLOW_READY_FAMILIES), <code>GET /metrics</code>.</p>
<pre>curl -s -X POST http://HOST/tag -H 'content-type: application/json' -d '{{"text": "Museums preserve heritage", "top_n": 5}}'
curl -s -X POST http://HOST/tag_file -F file=@report.pdf -F lang=fr -F hierarchy=true
curl -s -X POST http://HOST/edu -H 'content-type: application/json' -d '{{"text": "Photosynthesis turns light into chemical energy..."}}'
curl -s -X POST http://HOST/topics_batch -H 'content-type: application/json' -d '{{"texts": ["Wheat exports rose", "Net profit per share"], "top_k": 3}}'</pre>
<h2>Endpoints</h2>
<div id="endpoints">Reading /docs.json…</div>
<script>
"use strict";
fetch("/docs.json").then((r) => r.json()).then((spec) => {{
  const root = document.getElementById("endpoints"); root.textContent = "";
  for (const [path, methods] of Object.entries(spec.paths || {{}})) {{
    for (const [method, op] of Object.entries(methods)) {{
      const h = document.createElement("h3"); h.textContent = method.toUpperCase() + " " + path; root.appendChild(h);
      const p = document.createElement("p");
      p.textContent = (op.description || op.summary || "").replace(/<[^>]*>/g, ""); root.appendChild(p);
      const body = op.requestBody && op.requestBody.content;
      if (body) {{
        const pre = document.createElement("pre");
        pre.textContent = Object.keys(body).join(", ") + "\\n" + JSON.stringify(Object.values(body)[0].schema, null, 1);
        root.appendChild(pre);
      }}
    }}
  }}
}}).catch((e) => {{ document.getElementById("endpoints").textContent = "Could not read /docs.json: " + e; }});
</script>
</body></html>
"""
