import { describe, it, expect } from 'vitest';
import { emptyFilter, localToMs, toQuery, matches } from '../../src/lib/audit';

describe('audit filters', () => {
	it('reads datetime-local text as local time', () => {
		expect(localToMs('2026-12-07T14:05')).toBe(new Date(2026, 11, 7, 14, 5, 0).getTime());
		expect(localToMs('2026-12-07 14:05:09')).toBe(new Date(2026, 11, 7, 14, 5, 9).getTime());
		expect(localToMs('  ')).toBeUndefined();
		expect(() => localToMs('yesterday')).toThrow(/not a date/);
		expect(() => localToMs('2026-02-30T10:00')).toThrow(/no such date/);
	});
	it('builds the query of GET /api/audit, leaving out what is empty', () => {
		const f = { ...emptyFilter(), event_type: ' client.created ', since: '2026-12-07T00:00' };
		expect(toQuery(f)).toEqual({ event_type: 'client.created', actor_id: undefined, resource_type: undefined, since: new Date(2026, 11, 7).getTime(), until: undefined });
		expect(() => toQuery({ ...emptyFilter(), since: '2026-12-08T00:00', until: '2026-12-07T00:00' })).toThrow(/after/);
	});
	it('tells whether a live event belongs in the filtered list', () => {
		const e = { event_type: 'client.created', actor_id: 'u1', resource_type: 'client', ts: new Date(2026, 11, 7, 12).getTime() };
		expect(matches(emptyFilter(), e)).toBe(true);
		expect(matches({ ...emptyFilter(), event_type: 'network.created' }, e)).toBe(false);
		expect(matches({ ...emptyFilter(), actor_id: 'u1', resource_type: 'client' }, e)).toBe(true);
		expect(matches({ ...emptyFilter(), until: '2026-12-07T11:00' }, e)).toBe(false);
		expect(matches({ ...emptyFilter(), since: '2026-12-07T11:00' }, e)).toBe(true);
	});
});
