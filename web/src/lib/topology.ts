// Layout of a hub-and-spoke network (pure; tests/unit/topology.test.ts): hubs on a small ring in
// the middle, other nodes on an outer ring, each linked to every hub (as its config is).
export interface TNode {
	id: string;
	name: string;
	hub: boolean;
	state: 'online' | 'offline' | 'disabled' | string;
}
export interface Placed extends TNode {
	x: number;
	y: number;
}
export interface Edge {
	x1: number;
	y1: number;
	x2: number;
	y2: number;
	live: boolean;
}

export function layout(nodes: TNode[], w: number, h: number): { nodes: Placed[]; edges: Edge[] } {
	const cx = w / 2;
	const cy = h / 2;
	const hubs = nodes.filter((n) => n.hub);
	const rest = nodes.filter((n) => !n.hub);
	const ring = (list: TNode[], r: number, phase: number): Placed[] =>
		list.map((n, i) => {
			if (list.length === 1 && r < 40) return { ...n, x: cx, y: cy };
			const a = phase + (2 * Math.PI * i) / list.length;
			return { ...n, x: +(cx + r * Math.cos(a)).toFixed(1), y: +(cy + r * Math.sin(a)).toFixed(1) };
		});
	const ph = ring(hubs, hubs.length > 1 ? 40 : 0, -Math.PI / 2);
	const pr = ring(rest, Math.min(w, h) / 2 - 30, -Math.PI / 2);
	const edges: Edge[] = [];
	if (ph.length)
		for (const n of pr)
			for (const hb of ph)
				edges.push({ x1: hb.x, y1: hb.y, x2: n.x, y2: n.y, live: n.state === 'online' && hb.state === 'online' });
	else
		// No hub: a mesh would be n^2 lines; show the nodes only.
		void 0;
	return { nodes: [...ph, ...pr], edges };
}
