import { describe, it, expect } from 'vitest';
import { layout } from '../../src/lib/topology';
import { fieldErrors } from '../../src/lib/forms';
import { ApiError } from '../../src/lib/api';

describe('topology layout', () => {
	it('puts one hub in the middle, links every client to it, live only when both are online', () => {
		const g = layout(
			[
				{ id: 'h', name: 'hub', hub: true, state: 'online' },
				{ id: 'a', name: 'a', hub: false, state: 'online' },
				{ id: 'b', name: 'b', hub: false, state: 'offline' },
			],
			400,
			200,
		);
		expect(g.nodes[0]).toMatchObject({ id: 'h', x: 200, y: 100 });
		expect(g.edges).toHaveLength(2);
		expect(g.edges.map((e) => e.live)).toEqual([true, false]);
		for (const n of g.nodes) {
			expect(n.x).toBeGreaterThanOrEqual(0);
			expect(n.x).toBeLessThanOrEqual(400);
			expect(n.y).toBeGreaterThanOrEqual(0);
			expect(n.y).toBeLessThanOrEqual(200);
		}
	});
	it('links each client to each of several hubs; no lines without a hub', () => {
		const nodes = [
			{ id: 'h1', name: 'h1', hub: true, state: 'online' },
			{ id: 'h2', name: 'h2', hub: true, state: 'online' },
			...Array.from({ length: 5 }, (_, i) => ({ id: `c${i}`, name: `c${i}`, hub: false, state: 'online' })),
		];
		expect(layout(nodes, 400, 400).edges).toHaveLength(10);
		expect(layout(nodes.slice(2), 400, 400).edges).toHaveLength(0);
	});
});

describe('problem documents on form fields', () => {
	it('puts a single field error on its field', () => {
		const f = fieldErrors(new ApiError(400, 'not a prefix', 'subnet4'));
		expect(f).toEqual({ fields: { subnet4: 'not a prefix' }, general: '' });
	});
	it("spreads a 422's list by field path and under the top-level field", () => {
		const f = fieldErrors(
			new ApiError(422, 'the policy has 2 problems', undefined, [
				{ field: 'tunnels[1].esp_proposals[0]', detail: 'unknown algorithm' },
				{ field: 'name', detail: 'required' },
			]),
		);
		expect(f.fields['tunnels[1].esp_proposals[0]']).toBe('unknown algorithm');
		expect(f.fields.tunnels).toBe('tunnels[1].esp_proposals[0]: unknown algorithm');
		expect(f.fields.name).toBe('required');
		expect(f.general).toBe('the policy has 2 problems');
	});
	it('keeps errors without a field general', () => {
		expect(fieldErrors(new ApiError(409, 'name taken')).general).toBe('name taken');
		expect(fieldErrors(new Error('offline')).general).toBe('offline');
	});
});
