/**
 * The admin endpoint's `/` page: draws `/topology` (nodes on a circle, links, RTT in ms) and fetches
 * it again every 2 s. Plain DOM, no library; every text from the network goes in with textContent.
 */
export const TOPOLOGY_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>nestjs-p2p topology</title>
<style>
body { font: 13px system-ui, sans-serif; margin: 1em; }
svg { border: 1px solid #ccc; }
.connection { stroke: #2563eb; stroke-width: 2; }
.peer-exchange { stroke: #999; stroke-dasharray: 4 3; }
.self circle { fill: #dc2626; } .neighbour circle { fill: #2563eb; } .known circle { fill: #9ca3af; }
text { font-size: 11px; }
</style></head>
<body>
<h1>nestjs-p2p topology</h1>
<p id="summary">loading…</p>
<svg id="graph" width="720" height="720" viewBox="0 0 720 720"></svg>
<p>Red: this node. Blue: its neighbours (solid links, RTT in ms). Grey: ids a neighbour's peer exchange named (dashed links).</p>
<script>
const NS = 'http://www.w3.org/2000/svg';
const short = (id) => id.slice(0, 8);
function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}
function draw(topo) {
  const svg = document.getElementById('graph');
  svg.replaceChildren();
  const n = topo.nodes.length, at = new Map();
  topo.nodes.forEach((node, i) => {
    const a = (2 * Math.PI * i) / Math.max(n, 1) - Math.PI / 2;
    at.set(node.id, { x: 360 + 280 * Math.cos(a), y: 360 + 280 * Math.sin(a) });
  });
  for (const link of topo.links) {
    const p = at.get(link.from), q = at.get(link.to);
    if (!p || !q) continue;
    const g = el('g', { class: 'link', 'data-from': link.from, 'data-to': link.to });
    g.append(el('line', { class: link.kind, x1: p.x, y1: p.y, x2: q.x, y2: q.y }));
    if (link.rttMs !== null) g.append(el('text', { class: 'rtt', x: (p.x + q.x) / 2, y: (p.y + q.y) / 2 }, link.rttMs.toFixed(1) + ' ms'));
    svg.append(g);
  }
  for (const node of topo.nodes) {
    const p = at.get(node.id);
    const g = el('g', { class: 'node ' + node.role, 'data-id': node.id });
    g.append(el('circle', { cx: p.x, cy: p.y, r: 9 }));
    g.append(el('text', { x: p.x + 12, y: p.y + 4 }, short(node.id) + (node.address ? ' ' + node.address : '')));
    svg.append(g);
  }
  document.getElementById('summary').textContent =
    topo.nodes.length + ' nodes, ' + topo.links.length + ' links; this node ' + topo.self.id + ' at ' + (topo.self.address || 'not listening') + '; ' + new Date().toLocaleTimeString();
}
async function refresh() {
  try {
    const res = await fetch('topology', { cache: 'no-store' });
    draw(await res.json());
  } catch (err) {
    document.getElementById('summary').textContent = 'the node did not answer: ' + err.message;
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body></html>
`;
