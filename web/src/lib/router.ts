// A small history router: paths are screens, the server answers index.html for each.
export interface Route {
	name: string;
	params: Record<string, string>;
}

const PATTERNS: [string, RegExp][] = [
	['dashboard', /^\/$/],
	['clients', /^\/clients$/],
	['client', /^\/clients\/(?<id>[0-9a-f-]{36})$/],
	['networks', /^\/networks$/],
	['network', /^\/networks\/(?<id>[0-9a-f-]{36})$/],
	['temp', /^\/temp-access$/],
	['sessions', /^\/vpn-sessions$/],
	['audit', /^\/audit$/],
	['policies', /^\/policies$/],
	['peers', /^\/peers$/],
	['tunnels', /^\/tunnels$/],
	['gateways', /^\/gateways$/],
	['resources', /^\/resources$/],
	['settings', /^\/settings$/],
	['users', /^\/users$/],
	['guest', /^\/guest$/],
];

export function match(path: string): Route {
	const p = path.length > 1 ? path.replace(/\/+$/, '') : path;
	for (const [name, re] of PATTERNS) {
		const m = re.exec(p);
		if (m) return { name, params: { ...(m.groups ?? {}) } };
	}
	return { name: 'notfound', params: {} };
}

type Sub = (r: Route, search: URLSearchParams) => void;
const subs = new Set<Sub>();

export function current(): [Route, URLSearchParams] {
	return [match(location.pathname), new URLSearchParams(location.search)];
}

export function navigate(to: string, replace = false) {
	if (replace) history.replaceState(null, '', to);
	else history.pushState(null, '', to);
	const [r, s] = current();
	for (const f of subs) f(r, s);
}

export function onRoute(f: Sub): () => void {
	subs.add(f);
	return () => subs.delete(f);
}

if (typeof window !== 'undefined') {
	window.addEventListener('popstate', () => {
		const [r, s] = current();
		for (const f of subs) f(r, s);
	});
}
