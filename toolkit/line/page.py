"""The operator page: one HTML document, figures rendered in and refreshed from ``/state``."""

from __future__ import annotations

import html
import json
from typing import Any

_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;background:#111;color:#eee}
header{display:flex;gap:2rem;align-items:center;padding:.6rem 1rem;background:#222}
h1{font-size:1.2rem;margin:0}.big{font-size:2rem;font-weight:700}
.ok{color:#4caf50}.ng{color:#f44336}.bad{background:#7a1d1d}.good{background:#1d4d22}
#health{padding:.2rem .6rem;border-radius:4px}
main{display:grid;grid-template-columns:3fr 1fr;gap:1rem;padding:1rem}
.cams{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:1rem}
.cam img{width:100%;max-height:62vh;object-fit:contain;background:#000;min-height:120px}.cam h2{font-size:1rem;margin:.2rem 0}
table{border-collapse:collapse;font-size:.85rem}td,th{padding:.15rem .5rem;text-align:right}
.gallery{display:grid;grid-template-columns:1fr 1fr;gap:.4rem;font-size:.7rem}
.gallery img{width:100%;border:2px solid #f44336}
"""

_SCRIPT = """
async function refresh(){
  try{
    const s=await (await fetch('state',{cache:'no-store'})).json();
    document.getElementById('ok').textContent=s.ok;
    document.getElementById('ng').textContent=s.ng;
    document.getElementById('fps').textContent=(s.fps??0).toFixed(1);
    const h=document.getElementById('health');
    h.textContent=s.healthy?'healthy':s.reasons.join('; ');
    h.className=s.healthy?'good':'bad';
    for(const[name,v] of Object.entries(s.sources)){
      const c=document.getElementById('cam-'+v.index);
      if(!c){location.reload();return;}
      c.querySelector('.counts').textContent=
        `OK ${v.ok}  NG ${v.ng}  last ${v.verdict??'-'}  frames ${v.frames}`+
        (v.lost?'  NO SIGNAL':'');
    }
    const rows=Object.entries(s.latency_ms).map(([k,v])=>
      `<tr><th>${k}</th><td>${v.p50}</td><td>${v.p99}</td><td>${v.max}</td></tr>`).join('');
    document.getElementById('lat').innerHTML=rows;
    document.getElementById('age').textContent=
      `frame age p50 ${s.frame_age_ms.p50??'-'} ms, p99 ${s.frame_age_ms.p99??'-'} ms`;
    const g=document.getElementById('gallery');
    const ids=s.gallery.map(x=>x.id).join(',');
    if(g.dataset.ids!==ids){g.dataset.ids=ids;g.innerHTML=s.gallery.map(x=>
      `<div><img src="snapshot/${x.id}" alt="NG"><div>${x.source} ${x.ts}</div></div>`).join('');}
  }catch(e){}
}
setInterval(refresh,500);refresh();
"""


def render_page(summary: dict[str, Any]) -> str:
    """The page for the figures ``summary`` (:meth:`WebState.summary`)."""
    esc = html.escape
    cams = (
        "".join(
            f'<div class="cam" id="cam-{v["index"]}"><h2>{esc(name)}</h2>'
            f'<img src="stream/{v["index"]}" alt="{esc(name)}">'
            f'<div class="counts">OK {v["ok"]}  NG {v["ng"]}  frames {v["frames"]}</div></div>'
            for name, v in summary["sources"].items()
        )
        or "<p>waiting for the first frame...</p>"
    )
    health = "healthy" if summary["healthy"] else "; ".join(summary["reasons"]) or "starting"
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>edgetk - {esc(summary['station'])}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>edgetk {esc(summary['station'])}</h1>"
        f"<div>OK <span id='ok' class='big ok'>{summary['ok']}</span></div>"
        f"<div>NG <span id='ng' class='big ng'>{summary['ng']}</span></div>"
        f"<div>FPS <span id='fps'>{summary['fps'] or 0:.1f}</span></div>"
        f"<div id='health' class='{'good' if summary['healthy'] else 'bad'}'>{esc(health)}</div>"
        "</header><main><section class='cams'>" + cams + "</section><aside>"
        "<h2>latency (ms)</h2><table><thead><tr><th>stage</th><th>p50</th><th>p99</th>"
        "<th>max</th></tr></thead><tbody id='lat'></tbody></table><p id='age'></p>"
        "<h2>last NG</h2><div id='gallery' class='gallery'></div></aside></main>"
        f"<script>const initial={json.dumps({'ok': summary['ok']})};{_SCRIPT}</script>"
        "</body></html>"
    )
