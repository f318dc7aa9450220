/// The console's single page: HTML, CSS and JavaScript inline, no external assets. It polls
/// /api/state every 2 s and draws each service's recent connection rate as an inline SVG line.
enum ConsolePage {
    static func login(failed: Bool) -> String {
        """
        <!doctype html><html lang="en"><head><meta charset="utf-8"><title>swinetd console: sign in</title>
        <style>body{font:15px system-ui,sans-serif;margin:3em auto;max-width:28em}input{font:inherit;width:100%;margin:.5em 0}</style>
        </head><body><h1>swinetd</h1>
        \(failed ? "<p id=\"login-error\" style=\"color:#b00\">Wrong token.</p>" : "")
        <form method="post" action="/login"><label>Admin token (the contents of --admin-token-file)
        <input type="password" name="token" id="token" autocomplete="current-password" autofocus></label>
        <button type="submit" id="login">Sign in</button></form></body></html>
        """
    }

    static let html = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>swinetd console</title>
        <style>
        body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
        h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.1em;margin:1.4em 0 .4em}
        table{border-collapse:collapse}td,th{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:left;vertical-align:middle}
        th{background:#f4f4f4}.paused{color:#b00;font-weight:bold}.active{color:#070}.unbound{color:#a60}
        button{font:inherit;cursor:pointer}#message{min-height:1.4em;color:#036}
        pre{background:#f6f6f6;padding:.8em;max-height:30em;overflow:auto}svg{vertical-align:middle}
        .muted{color:#777}
        </style></head><body>
        <h1>swinetd</h1>
        <div id="summary" class="muted">loading…</div>
        <p><button id="reload">Reload configuration</button> <button id="check">Check files on disk</button></p>
        <div id="message" role="status"></div>
        <h2>Services</h2>
        <table id="services"><thead><tr><th>Service</th><th>Proto</th><th>Listeners</th><th>State</th><th>Live</th>
        <th>Accepted</th><th>Refused</th><th>Spawned</th><th>Last 10 min (accepted / refused per 5 s)</th><th>Action</th></tr></thead><tbody></tbody></table>
        <h2>Live children</h2>
        <table id="children"><thead><tr><th>PID</th><th>Service</th><th>Peer</th><th>Age</th></tr></thead><tbody></tbody></table>
        <h2>Recent refusals</h2>
        <table id="refusals"><thead><tr><th>Time (UTC)</th><th>Service</th><th>Reason</th><th>Peer</th></tr></thead><tbody></tbody></table>
        <h2 id="check-title" hidden>Check of the files on disk</h2>
        <pre id="check-output" hidden></pre>
        <script>
        "use strict";
        const HDR = {"X-Swinetd-Console": "1"};
        const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;","\\"":"&quot;","'":"&#39;"}[c]));
        const el = id => document.getElementById(id);
        function dur(s) { s = Math.floor(s); return s < 120 ? s + "s" : s < 7200 ? Math.floor(s/60) + "m" : Math.floor(s/3600) + "h"; }
        function spark(history) {
          if (!history || history.length < 2) return '<span class="muted">collecting…</span>';
          const acc = [], ref = [];
          for (let i = 1; i < history.length; i++) {
            acc.push(Math.max(0, history[i][0] - history[i-1][0]));
            ref.push(Math.max(0, history[i][1] - history[i-1][1]));
          }
          // A fixed time axis: the newest sample at the right edge, ten minutes across.
          const w = 160, h = 28, max = Math.max(1, ...acc, ...ref), n = acc.length, step = w / 119;
          const pts = a => a.map((v, i) => (w - (n - 1 - i) * step).toFixed(1) + "," + (h - 1 - v * (h - 2) / max).toFixed(1)).join(" ");
          return `<svg width="${w}" height="${h}" role="img" aria-label="accepted and refused per 5 s, max ${max}">` +
            `<polyline fill="none" stroke="#07a" stroke-width="1.5" points="${pts(acc)}"/>` +
            `<polyline fill="none" stroke="#c22" stroke-width="1.5" points="${pts(ref)}"/></svg> <span class="muted">max ${max}</span>`;
        }
        function render(s) {
          el("summary").textContent = `pid ${s.pid}, up ${dur(s.uptime_seconds)}, ${s.services.length} services, ` +
            `${s.live_children} children, ${s.in_process_connections} in-process, ${s.refusals} refused, ${s.reloads} reloads, ${s.open_fds} fds`;
          el("services").tBodies[0].innerHTML = s.services.map(v => {
            let state = v.state;
            if (v.state === "paused") state += v.paused_indefinitely ? " (until resumed)" : ` (until ${new Date(v.paused_until*1000).toISOString().slice(11,19)})`;
            const action = v.state === "paused" ? "resume" : "pause";
            return `<tr data-service="${esc(v.id)}"><td>${esc(v.id)}</td><td>${esc(v.protocol)}</td>` +
              `<td>${v.listeners.map(l => esc(l.address) + (l.bound ? "" : " (closed)")).join("<br>") || "-"}</td>` +
              `<td class="state ${esc(v.state)}">${esc(state)}</td><td>${v.live_children + v.in_process_connections}</td>` +
              `<td>${v.accepted}</td><td>${v.refused}</td><td>${v.spawned}</td><td>${spark(v.history)}</td>` +
              `<td><button data-action="${action}" data-service="${esc(v.id)}">${action === "pause" ? "Pause" : "Resume"}</button></td></tr>`;
          }).join("");
          el("children").tBodies[0].innerHTML = s.children.map(c =>
            `<tr><td>${c.pid}</td><td>${esc(c.service)}</td><td>${esc(c.peer ?? "-")}</td><td>${dur(c.age_seconds)}</td></tr>`).join("") ||
            '<tr><td colspan="4" class="muted">none</td></tr>';
          el("refusals").tBodies[0].innerHTML = s.recent_refusals.map(r =>
            `<tr><td>${new Date(r.time*1000).toISOString().replace("T"," ").slice(0,19)}</td><td>${esc(r.service)}</td><td>${esc(r.reason)}</td><td>${esc(r.peer)}</td></tr>`).join("") ||
            '<tr><td colspan="4" class="muted">none</td></tr>';
        }
        async function refresh() {
          try {
            const r = await fetch("/api/state", {cache: "no-store"});
            if (r.status === 401) { location.href = "/"; return; }
            render(await r.json());
          } catch (e) { el("summary").textContent = "cannot reach swinetd: " + e; }
        }
        async function post(path) {
          const r = await fetch(path, {method: "POST", headers: HDR});
          const j = await r.json();
          el("message").textContent = j.message;
          await refresh();
        }
        document.addEventListener("click", ev => {
          const b = ev.target.closest("button[data-action]");
          if (b) post(`/api/${b.dataset.action}?service=${encodeURIComponent(b.dataset.service)}`);
        });
        el("reload").onclick = () => post("/api/reload");
        el("check").onclick = async () => {
          const j = await (await fetch("/api/check", {cache: "no-store"})).json();
          el("check-title").hidden = false;
          el("check-output").hidden = false;
          el("check-output").textContent = j.text;
          el("message").textContent = j.ok ? "check: no errors" : "check: the files on disk have errors";
        };
        refresh();
        setInterval(refresh, 2000);
        </script></body></html>
        """
}
