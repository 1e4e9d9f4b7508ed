// One live stream per page (GET /api/events): audit events for whoever listens, the latest
// counts for the dashboard, and the audit chain's state, refreshed when the log grows.
import { accessToken, get, type Schemas } from './api';
import { stream, type SseEvent } from './sse';

type Ev = Schemas['AuditEvent'];
type Stats = Schemas['StatsSample'];

export const live = $state<{ connected: boolean; stats: Stats | null; chain: { ok: boolean; detail: string } | null }>({
	connected: false,
	stats: null,
	chain: null,
});

const auditSubs = new Set<(e: Ev) => void>();
const statsSubs = new Set<(s: Stats) => void>();
let handle: { stop: () => void } | null = null;
let chainTimer: ReturnType<typeof setTimeout> | undefined;

async function checkChain() {
	try {
		const v = await get<Schemas['AuditVerification']>('/api/audit/verify');
		live.chain = { ok: v.intact, detail: v.detail };
	} catch {
		/* shown as unknown until the next event */
	}
}

function onEvent(e: SseEvent) {
	if (e.event === 'audit') {
		const ev = JSON.parse(e.data) as Ev;
		for (const f of auditSubs) f(ev);
		clearTimeout(chainTimer);
		chainTimer = setTimeout(checkChain, 1000);
	} else if (e.event === 'stats') {
		const s = JSON.parse(e.data) as Stats;
		live.stats = s;
		for (const f of statsSubs) f(s);
	}
}

export function start() {
	if (handle) return;
	checkChain();
	handle = stream({
		url: (id) => `/api/events?wait=5${id !== undefined ? `&since=${encodeURIComponent(id)}` : ''}`,
		headers: async () => {
			const t = await accessToken();
			return t ? { Authorization: `Bearer ${t}` } : null;
		},
		onEvent,
		onState: (c) => (live.connected = c),
	});
}

export function stop() {
	handle?.stop();
	handle = null;
	live.connected = false;
}

export const liveApi = {
	onAudit(f: (e: Ev) => void) {
		start();
		auditSubs.add(f);
		return () => auditSubs.delete(f);
	},
	onStats(f: (s: Stats) => void) {
		start();
		statsSubs.add(f);
		return () => statsSubs.delete(f);
	},
};
