// The audit screen's filters as query parameters of GET /api/audit (and the export).
export interface AuditFilter {
	event_type: string;
	actor_id: string;
	resource_type: string;
	since: string; // datetime-local text, local time
	until: string;
}

export const emptyFilter = (): AuditFilter => ({ event_type: '', actor_id: '', resource_type: '', since: '', until: '' });

/** datetime-local ("2026-12-07T14:05") -> unix ms, or undefined when empty; throws on garbage. */
export function localToMs(s: string): number | undefined {
	if (!s.trim()) return undefined;
	const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?$/.exec(s.trim());
	if (!m) throw new Error(`not a date and time: ${s}`);
	const d = new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], m[6] ? +m[6] : 0);
	if (d.getMonth() !== +m[2] - 1 || d.getDate() !== +m[3]) throw new Error(`no such date: ${s}`);
	return d.getTime();
}

export function toQuery(f: AuditFilter): Record<string, string | number | undefined> {
	const since = localToMs(f.since);
	const until = localToMs(f.until);
	if (since !== undefined && until !== undefined && since > until) throw new Error('"from" is after "to"');
	return {
		event_type: f.event_type.trim() || undefined,
		actor_id: f.actor_id.trim() || undefined,
		resource_type: f.resource_type.trim() || undefined,
		since,
		until,
	};
}

/** Whether an event that arrived live belongs in the list the filter shows. */
export function matches(f: AuditFilter, e: { event_type: string; actor_id: string | null; resource_type: string | null; ts: number }): boolean {
	const q = toQuery(f);
	if (q.event_type && e.event_type !== q.event_type) return false;
	if (q.actor_id && e.actor_id !== q.actor_id) return false;
	if (q.resource_type && e.resource_type !== q.resource_type) return false;
	if (q.since !== undefined && e.ts < (q.since as number)) return false;
	if (q.until !== undefined && e.ts > (q.until as number)) return false;
	return true;
}
