// A network as a graph (pure; tests/unit/topology.test.ts): its hubs in the middle and clients
// around them, the gateways that reach it on the left, the sites behind it on the right, and
// the tunnels its managed nodes (agents) report at the bottom, each linked to its ends (a
// tunnel's other end outside the network shows at the top). Built from the API's objects by
// buildGraph, placed by layout.

export type Kind = 'hub' | 'client' | 'gateway' | 'site' | 'tunnel' | 'peer';
export interface TNode {
	id: string;
	name: string;
	kind: Kind;
	/** online | offline | disabled | pending (gateways) | up | partial | down (tunnels) | site */
	state: string;
}
export interface TEdge {
	a: string;
	b: string;
	/** live: both ends up; down: a tunnel end down; idle: no traffic expected (offline) */
	state: 'live' | 'down' | 'idle';
}
export interface Placed extends TNode {
	x: number;
	y: number;
}
export interface PlacedEdge {
	x1: number;
	y1: number;
	x2: number;
	y2: number;
	state: TEdge['state'];
}

// The API's objects, only the fields the graph reads.
export interface GClient {
	id: string;
	name: string;
	is_relay: boolean;
	enabled: boolean;
	online: boolean;
}
export interface GPeer {
	id: string;
	name: string;
	client_id?: string | null;
	online: boolean;
}
export interface GGateway {
	id: string;
	name: string;
	online: boolean;
	state: string;
	agent_id?: string | null;
	expose?: { network_id: string } | null;
}
export interface GSite {
	id: string;
	name: string;
	networks: string[];
}
export interface GResource {
	gateway_id: string;
	site_id?: string | null;
}
export interface GTunnel {
	name: string;
	state: string;
	ends: { peer_id: string; peer_name: string; state: string }[];
}
export interface GNetwork {
	id: string;
	subnet4?: string | null;
	subnet6?: string | null;
}

function v4(a: string): number | null {
	const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
	if (!m) return null;
	const o = m.slice(1).map(Number);
	if (o.some((x) => x > 255)) return null;
	return ((o[0] << 24) >>> 0) + (o[1] << 16) + (o[2] << 8) + o[3];
}

/** Whether prefix `inner` lies inside prefix `outer` (IPv4; IPv6 only when equal). */
export function cidrWithin(inner: string, outer: string): boolean {
	const [ia, il] = inner.split('/');
	const [oa, ol] = outer.split('/');
	const i = v4(ia);
	const o = v4(oa);
	const iln = Number(il);
	const oln = Number(ol);
	if (i === null || o === null) return inner.toLowerCase() === outer.toLowerCase();
	if (!(iln >= oln) || oln > 32) return false;
	const mask = oln === 0 ? 0 : (~0 << (32 - oln)) >>> 0;
	return ((i & mask) >>> 0) === ((o & mask) >>> 0);
}

const clientState = (c: GClient) => (!c.enabled ? 'disabled' : c.online ? 'online' : 'offline');
const up = (s: string) => s === 'online' || s === 'up';

export function buildGraph(d: { network: GNetwork; clients: GClient[]; peers: GPeer[]; gateways: GGateway[]; sites: GSite[]; resources: GResource[]; tunnels: GTunnel[] }): { nodes: TNode[]; edges: TEdge[] } {
	const nodes: TNode[] = [];
	const edges: TEdge[] = [];
	const byId = new Map<string, TNode>();
	const add = (n: TNode) => {
		if (!byId.has(n.id)) {
			byId.set(n.id, n);
			nodes.push(n);
		}
		return byId.get(n.id)!;
	};
	const link = (a: string, b: string, state?: TEdge['state']) => {
		const na = byId.get(a)!;
		const nb = byId.get(b)!;
		edges.push({ a, b, state: state ?? (up(na.state) && up(nb.state) ? 'live' : 'idle') });
	};
	for (const c of d.clients) add({ id: 'c:' + c.id, name: c.name, kind: c.is_relay ? 'hub' : 'client', state: clientState(c) });
	const hubs = nodes.filter((n) => n.kind === 'hub');
	for (const n of nodes.filter((x) => x.kind === 'client')) for (const h of hubs) link(h.id, n.id);
	// A managed node (agent) is the client it runs; a gateway is its agent too.
	const nodeOfPeer = new Map<string, string>();
	for (const p of d.peers) if (p.client_id && byId.has('c:' + p.client_id)) nodeOfPeer.set(p.id, 'c:' + p.client_id);
	const gws = d.gateways.filter((g) => g.expose?.network_id === d.network.id || (g.agent_id && nodeOfPeer.has(g.agent_id)));
	for (const g of gws) {
		const n = add({ id: 'g:' + g.id, name: g.name, kind: 'gateway', state: g.online ? 'online' : g.state === 'pending' ? 'pending' : 'offline' });
		if (g.agent_id) nodeOfPeer.set(g.agent_id, n.id);
		for (const h of hubs) link(h.id, n.id);
	}
	const prefixes = [d.network.subnet4, d.network.subnet6].filter((x): x is string => !!x);
	const gwIds = new Set(gws.map((g) => g.id));
	for (const s of d.sites) {
		const inside = s.networks.some((c) => prefixes.some((p) => cidrWithin(c, p)));
		const served = d.resources.filter((r) => r.site_id === s.id && gwIds.has(r.gateway_id));
		if (!inside && !served.length) continue;
		add({ id: 's:' + s.id, name: s.name, kind: 'site', state: 'site' });
		if (inside) for (const h of hubs) link(h.id, 's:' + s.id, byId.get(h.id)!.state === 'online' ? 'live' : 'idle');
		for (const g of new Set(served.map((r) => r.gateway_id))) link('g:' + g, 's:' + s.id, byId.get('g:' + g)!.state === 'online' ? 'live' : 'idle');
	}
	for (const t of d.tunnels) {
		if (!t.ends.some((e) => nodeOfPeer.has(e.peer_id))) continue;
		const tn = add({ id: 't:' + t.name, name: t.name, kind: 'tunnel', state: t.state });
		for (const e of t.ends) {
			let end = nodeOfPeer.get(e.peer_id);
			if (!end) end = add({ id: 'p:' + e.peer_id, name: e.peer_name, kind: 'peer', state: e.state === 'up' ? 'online' : 'offline' }).id;
			link(tn.id, end, e.state === 'up' ? 'live' : 'down');
		}
	}
	return { nodes, edges };
}

/** Positions: hubs in the middle (a small ring when several), clients on a ring around them,
 * gateways in a column on the left, sites on the right, tunnels along the bottom, outside peers
 * along the top. Every node inside w x h. */
export function layout(g: { nodes: TNode[]; edges: TEdge[] }, w: number, h: number): { nodes: Placed[]; edges: PlacedEdge[] } {
	const cx = w / 2;
	const cy = h / 2;
	const of = (k: Kind) => g.nodes.filter((n) => n.kind === k);
	const hasTop = of('peer').length > 0;
	const hasBottom = of('tunnel').length > 0;
	const ringR = Math.max(30, Math.min(w * 0.28, h / 2 - (hasTop || hasBottom ? 70 : 30)));
	const ring = (list: TNode[], r: number): Placed[] =>
		list.map((n, i) => {
			if (list.length === 1 && r < 40) return { ...n, x: cx, y: cy };
			const a = -Math.PI / 2 + (2 * Math.PI * i) / list.length;
			return { ...n, x: +(cx + r * Math.cos(a)).toFixed(1), y: +(cy + r * Math.sin(a)).toFixed(1) };
		});
	const column = (list: TNode[], x: number): Placed[] => list.map((n, i) => ({ ...n, x, y: +((h * (i + 1)) / (list.length + 1)).toFixed(1) }));
	const row = (list: TNode[], y: number): Placed[] => list.map((n, i) => ({ ...n, x: +(w * 0.15 + (w * 0.7 * (i + 1)) / (list.length + 1)).toFixed(1), y }));
	const hubs = of('hub');
	const placed = [
		...ring(hubs, hubs.length > 1 ? 40 : 0),
		...ring(of('client'), ringR),
		...column(of('gateway'), 50),
		...column(of('site'), w - 50),
		...row(of('tunnel'), h - 24),
		...row(of('peer'), 24),
	];
	const at = new Map(placed.map((p) => [p.id, p]));
	const edges = g.edges.filter((e) => at.has(e.a) && at.has(e.b)).map((e) => ({ x1: at.get(e.a)!.x, y1: at.get(e.a)!.y, x2: at.get(e.b)!.x, y2: at.get(e.b)!.y, state: e.state }));
	return { nodes: placed, edges };
}
